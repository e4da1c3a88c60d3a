"""The app's open and history paths on crafted run folders: an error shown within a second (or
the damaged epoch left out of the history, said in its bar), no exception reaching Qt, no
traceback, the window still responsive, no thread left running (conftest)."""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pytest
from PySide6.QtWidgets import QLabel

from vaegui.gui.main_window import MainWindow

TIMEOUT = 30_000


@pytest.fixture(scope="module")
def trained(tmp_path_factory, train_shapes):
    return train_shapes(tmp_path_factory.mktemp("open") / "run", "--epochs", "2")


@pytest.fixture
def window(qtbot, settings):
    w = MainWindow(settings)
    qtbot.addWidget(w)
    w.show()
    if not w.engine_ready:
        with qtbot.waitSignal(w.engineReady, timeout=TIMEOUT):
            w._warm_up()  # torch loaded first: the second counted below is the open's alone
    return w


def crafted(trained, tmp_path, damage):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    damage(run)
    return run


def edit_run_json(change):
    def damage(run):
        info = json.loads((run / "run.json").read_text())
        change(info)
        (run / "run.json").write_text(json.dumps(info))
    return damage


REFUSED = {
    "latent_dim disagrees": (edit_run_json(lambda i: i["config"]["model"].update(latent_dim=7)),
                             "checkpoint.pt: model latent_dim 2 disagrees with run.json's 7"),
    "steps_per_epoch text": (edit_run_json(lambda i: i.update(steps_per_epoch="abc")), "run.json: steps_per_epoch"),
    "steps_per_epoch infinite": (edit_run_json(lambda i: i.update(steps_per_epoch=float("inf"))),
                                 "run.json: steps_per_epoch"),
    "nested 200,000 deep": (lambda run: (run / "run.json").write_text("[" * 200_000), "nested"),
    "checkpoint a FIFO": (lambda run: ((run / "checkpoint.pt").unlink(), os.mkfifo(run / "checkpoint.pt")),
                          "checkpoint.pt is not a regular file"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_folder_that_cannot_be_opened_is_an_error_within_a_second(window, qtbot, trained, tmp_path, capfd, case):
    damage, needle = REFUSED[case]
    run = crafted(trained, tmp_path, damage)
    started = time.monotonic()
    with qtbot.waitSignal(window.errorShown, timeout=TIMEOUT) as shown:
        window.open_checkpoint(str(run))
    assert time.monotonic() - started < 1.5, "the error took more than a second"
    assert needle in shown.args[0] and str(run) in shown.args[0], shown.args[0]
    assert "Traceback" not in capfd.readouterr().err
    window.explorer.set_playback(position=0.5)  # still responsive: the window takes input


def nan_map(run):
    np.save(run / "maps" / "epoch-0001.npy", np.full((128, 2), np.nan, np.float32))


def object_map(run):
    np.save(run / "maps" / "epoch-0001.npy", np.array([object()] * 3, dtype=object), allow_pickle=True)


def fifo_map(run):
    (run / "maps" / "epoch-0001.npy").unlink()
    os.mkfifo(run / "maps" / "epoch-0001.npy")


@pytest.mark.parametrize("damage", [nan_map, object_map, fifo_map])
def test_a_damaged_map_is_left_out_of_the_history_and_said(window, qtbot, trained, tmp_path, capfd, damage):
    run = crafted(trained, tmp_path, damage)
    with qtbot.waitSignal(window.mapUpdated, timeout=TIMEOUT):
        window.open_checkpoint(str(run))
    history = window.explorer.history
    assert history.epochs == [2] and "epoch-0001.npy" in history.problem
    labels = [w for w in window.findChildren(QLabel) if "files skipped" in w.text()]
    assert labels and "epoch-0001.npy" in labels[0].toolTip()
    window.explorer.show_history(2.0)  # the epoch that is there shows
    assert window.explorer.history_position == 2.0
    err = capfd.readouterr().err
    assert "Traceback" not in err, err


def test_a_damaged_decoder_shows_its_epoch_with_the_live_decoder(window, qtbot, trained, tmp_path, capfd):
    def fifo_decoder(run):
        (run / "decoders" / "epoch-0001.pt").unlink()
        os.mkfifo(run / "decoders" / "epoch-0001.pt")

    run = crafted(trained, tmp_path, fifo_decoder)
    with qtbot.waitSignal(window.mapUpdated, timeout=TIMEOUT):
        window.open_checkpoint(str(run))
    started = time.monotonic()
    window.explorer.show_history(1.0)  # the slider reaching that epoch
    assert time.monotonic() - started < 1.0
    assert window.explorer.history_position == 1.0
    assert "decoders/epoch-0001.pt is not a regular file" in window.explorer.history.problem
    assert "Traceback" not in capfd.readouterr().err
