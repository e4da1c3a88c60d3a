"""`vaegui train --tensorboard`: TensorBoard event files with the run's metrics, read back with
tensorboard's own reader; and the one line a user gets without the package."""

import json

import pytest

import vaegui.core.tensorboard_log as tensorboard_log
from vaegui.cli import main

TINY = ["--dataset", "shapes", "--image-size", "16", "--hidden", "16", "--train-limit", "512",
        "--test-limit", "128", "--batch-size", "64", "--device", "cpu", "--offline", "--no-progress"]
TRAIN_TAGS = {"train/recon", "train/kl", "train/neg_elbo", "train/kl_weight"}
TEST_TAGS = {"test/neg_elbo", "test/recon", "test/kl", "test/bits_per_dim", "test/active_units"}


def read_scalars(folder):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    events = accumulator.EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_event_files_hold_every_step_and_epoch(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "2", "--warmup", "4", "--out", str(out),
                 "--tensorboard"]) == 0
    capsys.readouterr()
    scalars = read_scalars(out / "tensorboard")
    assert set(scalars) == TRAIN_TAGS | TEST_TAGS
    for tag in TRAIN_TAGS:
        assert [step for step, _ in scalars[tag]] == list(range(1, 17))
    assert [w for _, w in scalars["train/kl_weight"]][:5] == pytest.approx([0, 0.25, 0.5, 0.75, 1])
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert scalars["test/neg_elbo"] == [(m["step"], pytest.approx(m["test_elbo"], rel=1e-6)) for m in metrics]
    assert [v for _, v in scalars["test/active_units"]] == [m["active_units"] for m in metrics]

    # A resumed run adds its epochs; each step shows once.
    assert main(["train", "--resume", str(out / "checkpoint.pt"), "--epochs", "3", "--offline",
                 "--tensorboard", "--no-progress"]) == 0
    scalars = read_scalars(out / "tensorboard")
    assert [step for step, _ in scalars["train/neg_elbo"]] == list(range(1, 25))
    assert [step for step, _ in scalars["test/neg_elbo"]] == [8, 16, 24]


def test_without_the_package_tensorboard_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tensorboard_log, "available", lambda: False)
    assert main(["train", *TINY, "--out", str(tmp_path / "run"), "--tensorboard"]) == 2
    err = capsys.readouterr().err
    assert err == ("vaegui: error: --tensorboard needs the tensorboard package: "
                   "pip install 'vaegui[tensorboard]'\n")
    assert not (tmp_path / "run").exists()
