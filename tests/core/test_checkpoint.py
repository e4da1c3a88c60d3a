"""Checkpoints: round trip, atomic writes, and refusal of bad or malicious files."""

import os
import pickle

import numpy as np
import pytest
import torch

from vaegui.core import checkpoint as ckpt_module
from vaegui.core.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from vaegui.core.errors import CheckpointError
from vaegui.core.trainer import Trainer

from core_helpers import tiny_config, tiny_data


@pytest.fixture(scope="module")
def trained():
    config = tiny_config(epochs=1)
    trainer = Trainer(config, tiny_data(config))
    list(trainer.run())
    return trainer


def test_round_trip(tmp_path, trained):
    path = save_checkpoint(tmp_path / "sub" / "a.pt", trained.state_dict())
    data = load_checkpoint(path)
    assert data["step"] == trained.step and data["epoch"] == 1
    config, model = model_from_checkpoint(data, path)
    assert config == trained.config
    for k, v in trained.model.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v.cpu(), rtol=0, atol=0)
    assert len(data["history"]["evals"]) == 1
    assert data["history"]["steps"].shape[0] == trained.step
    assert [p.name for p in path.parent.iterdir()] == ["a.pt"]  # no temporary files left


def test_a_checkpoint_without_kl_weights_resumes_with_them_unknown(tmp_path, trained):
    # The first checkpoints kept no per-step KL weights: they read as NaN, and new steps add theirs.
    state = trained.state_dict()
    del state["history"]["kl_weights"]
    path = save_checkpoint(tmp_path / "old.pt", state)
    config = trained.config.replace(train={"epochs": 2})
    resumed = Trainer(config, tiny_data(config))
    resumed.load_state_dict(load_checkpoint(path), str(path))
    assert np.isnan(resumed.history.kl_weights).all() and len(resumed.history.steps) == 8
    list(resumed.run())
    weights = resumed.history.kl_weights
    assert len(weights) == len(resumed.history.steps) == 16
    assert np.isnan(weights[:8]).all() and (weights[8:] == 1.0).all()


def test_interrupted_save_keeps_the_previous_file(tmp_path, trained, monkeypatch):
    path = save_checkpoint(tmp_path / "a.pt", trained.state_dict())
    before = path.read_bytes()

    def dies_half_way(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of writing

    monkeypatch.setattr(ckpt_module.torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, trained.state_dict())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]


def test_unwritable_destination_is_a_checkpoint_error(tmp_path, trained):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CheckpointError, match="cannot write"):
        save_checkpoint(blocker / "a.pt", trained.state_dict())


class RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickles_are_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps({"format": "vaegui-checkpoint", "x": RunsACommand(marker)}))
    zipped = tmp_path / "zipped.pt"
    torch.save({"format": "vaegui-checkpoint", "x": RunsACommand(marker)}, zipped)
    for path, reason in ((raw, "not a zip archive"), (zipped, "refused")):
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path)
        assert str(path) in str(info.value) and reason in info.value.reason
    assert not marker.exists()


@pytest.mark.parametrize("case", ["empty", "garbage", "truncated", "foreign", "future", "missing"])
def test_bad_files_raise_one_error_type_naming_the_file(tmp_path, trained, case):
    path = tmp_path / f"{case}.pt"
    good = save_checkpoint(tmp_path / "good.pt", trained.state_dict()).read_bytes()
    if case == "empty":
        path.write_bytes(b"")
    elif case == "garbage":
        path.write_bytes(os.urandom(4096))
    elif case == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif case == "foreign":
        torch.save({"weights": torch.zeros(3)}, path)
    elif case == "future":
        save_checkpoint(path, trained.state_dict())
        data = torch.load(path, weights_only=True)
        data["format_version"] = 99
        torch.save(data, path)
    elif case == "missing":
        pass
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert info.value.path == str(path)
    expected = {"empty": "empty", "garbage": "corrupt", "truncated": "corrupt",
                "foreign": "not a vaegui checkpoint", "future": "version 99", "missing": "no such file"}
    assert expected[case] in info.value.reason


def test_checkpoint_for_other_images_is_refused(tmp_path, trained):
    path = save_checkpoint(tmp_path / "a.pt", trained.state_dict())
    config = tiny_config().replace(data={"image_size": 32})
    other = Trainer(config, tiny_data(config))
    with pytest.raises(CheckpointError, match="images"):
        other.load_state_dict(load_checkpoint(path), str(path))
