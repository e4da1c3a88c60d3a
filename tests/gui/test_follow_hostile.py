"""Following survives anything the writer's folder does: the folder deleted, a corrupted metrics
line, metrics.jsonl turned into a FIFO while followed. The window says what happened in the
status bar (and stops following, except for a skipped line), no exception reaches Qt, no
traceback is printed, and no thread is left running (conftest)."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from vaegui.gui.main_window import MainWindow

TIMEOUT = 30_000


@pytest.fixture(scope="module")
def trained(tmp_path_factory, train_shapes):
    return train_shapes(tmp_path_factory.mktemp("follow") / "run")


@pytest.fixture
def following(trained, tmp_path, qtbot, settings):
    """A window following a copy of the run, whose writer looks alive (a fresh heartbeat), so
    the follower keeps polling it."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "heartbeat").write_text("{}")
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    started = []
    window.follower.started.connect(started.append)
    window.follow_run(str(run))
    qtbot.waitUntil(lambda: bool(started) and "writer alive" in window.status_bar.follow_label.text(), timeout=TIMEOUT)
    return window, run


def ends_with_error(qtbot, window, capfd, *words):
    with qtbot.waitSignal(window.followFinished, timeout=TIMEOUT):
        pass
    assert window.statusBar().currentMessage().startswith("Stopped following: ")
    status = window.status_bar.full_message  # the bar may cut it at a word; its tooltip has it all
    for word in words:
        assert word in status and word in window.last_error, (status, window.last_error)
    assert "Traceback" not in capfd.readouterr().err
    assert not window.run.following


def test_a_deleted_folder_ends_following_with_the_reason(following, qtbot, capfd):
    window, run = following
    shutil.rmtree(run)
    ends_with_error(qtbot, window, capfd, str(run), "no such folder")


def test_a_metrics_file_that_becomes_a_fifo_ends_following_at_once(following, qtbot, capfd):
    window, run = following
    (run / "metrics.jsonl").unlink()
    os.mkfifo(run / "metrics.jsonl")
    started = time.monotonic()
    ends_with_error(qtbot, window, capfd, "metrics.jsonl is not a regular file")
    assert time.monotonic() - started < 5  # a poll or two, never a blocked read


def test_a_corrupted_metrics_line_is_skipped_and_said_and_following_goes_on(following, qtbot, capfd):
    window, run = following
    with open(run / "metrics.jsonl", "a") as f:
        line = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
        f.write(json.dumps({**line, "epoch": 2, "step": 99, "kl_per_dim": [0.1] * 50}) + "\n")
    qtbot.waitUntil(lambda: "line of metrics.jsonl skipped" in window.statusBar().currentMessage(),
                    timeout=TIMEOUT)
    assert "kl_per_dim: 50 values" in window.statusBar().currentMessage()
    assert window.run.following  # a bad line is no end
    assert len(window.kl_view.bar_heights()) == 2  # the model's two dimensions, not 50
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").mkdir()  # then a folder in its place: that ends it
    ends_with_error(qtbot, window, capfd, "metrics.jsonl is a folder")


def test_a_model_changed_under_the_follower_ends_following(following, qtbot, capfd, tmp_path, train_shapes):
    window, run = following
    other = train_shapes(tmp_path / "other", "--latent-dim", "3")
    shutil.copy(other / "checkpoint.pt", run / "checkpoint.pt")  # another model's weights land
    with open(run / "metrics.jsonl", "a") as f:  # with an epoch line that is fine for this run
        line = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
        f.write(json.dumps({**line, "epoch": 2, "step": line["step"] * 2}) + "\n")
    ends_with_error(qtbot, window, capfd, "checkpoint.pt: model latent_dim 3 disagrees with run.json's 2")
