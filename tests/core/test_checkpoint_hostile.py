"""Crafted and damaged checkpoints: each is refused in one line naming the file, by
load_checkpoint (what the app calls), `vaegui eval` and `vaegui train --resume` alike."""

import errno
import io
import os
import zipfile

import pytest
import torch

from vaegui.cli import main
from vaegui.core import checkpoint as ckpt_module
from vaegui.core.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from vaegui.core.errors import CheckpointError
from vaegui.core.trainer import Trainer

from core_helpers import tiny_config, tiny_data


@pytest.fixture(scope="module")
def good_state():
    config = tiny_config(epochs=1)
    trainer = Trainer(config, tiny_data(config))
    list(trainer.run())
    return trainer.state_dict()


def raw_payload(tmp_path, state):
    """The checkpoint's dict as torch.load gives it (with the format header, without the digest)."""
    path = save_checkpoint(tmp_path / "good.pt", state)
    data = torch.load(path, weights_only=True)
    del data[ckpt_module.DIGEST_KEY]
    return data


def write_crafted(path, data, digest=True):
    """Write ``data`` as an attacker would: a valid zip, and a digest that matches the contents,
    so only the schema checks stand between the file and the engine."""
    if digest:
        data = {**data, ckpt_module.DIGEST_KEY: ckpt_module.digest(data)}
    torch.save(data, path)
    return path


def first_weight(d):
    return next(k for k, v in d["model"].items() if v.dim() == 2)


CRAFTED = {
    "config is a string": lambda d: d.update(config="hello"),
    "config section is a list": lambda d: d["config"].update(model=[1, 2]),
    "config has an unknown section": lambda d: d["config"].update(extra={}),
    "latent_dim is huge": lambda d: d["config"]["model"].update(latent_dim=10**12),
    "latent_dim does not fit the weights": lambda d: d["config"]["model"].update(latent_dim=600),
    "hidden is a string": lambda d: d["config"]["model"].update(hidden="32"),
    "lr is NaN": lambda d: d["config"]["train"].update(lr=float("nan")),
    "epochs is a float": lambda d: d["config"]["train"].update(epochs=2.5),
    "step is a string": lambda d: d.update(step="8"),
    "step is negative": lambda d: d.update(step=-1),
    "step is a bool": lambda d: d.update(step=True),
    "epoch beyond step": lambda d: d.update(epoch=10**6),
    "history is garbage": lambda d: d.update(history="garbage"),
    "history losses have the wrong shape": lambda d: d["history"].update(losses=torch.zeros(3, 2)),
    "history steps are floats": lambda d: d["history"].update(
        steps=d["history"]["steps"].double()),
    "history steps beyond step": lambda d: d["history"].update(
        steps=d["history"]["steps"] + 100),
    "history evals are ints": lambda d: d["history"].update(evals=[1, 2]),
    "history eval misses a field": lambda d: d["history"]["evals"][0].pop("neg_elbo"),
    "history eval has a short kl_per_dim": lambda d: d["history"]["evals"][0].update(kl_per_dim=[1.0]),
    "class_names is an int": lambda d: d["dataset"].update(class_names=7),
    "class_names holds ints": lambda d: d["dataset"].update(class_names=[1, 2]),
    "image_shape is huge": lambda d: d["dataset"].update(image_shape=[1, 10**6, 10**6]),
    "image_shape is strings": lambda d: d["dataset"].update(image_shape=["1", "28", "28"]),
    "image_shape has two sides": lambda d: d["dataset"].update(image_shape=[28, 28]),
    "dataset is a list": lambda d: d.update(dataset=[]),
    "model is a list": lambda d: d.update(model=[torch.zeros(3)]),
    "a weight has the wrong shape": lambda d: d["model"].update({first_weight(d): torch.zeros(3)}),
    "a weight is missing": lambda d: d["model"].pop(first_weight(d)),
    "weights are all NaN": lambda d: [v.fill_(float("nan")) for v in d["model"].values()
                                      if v.is_floating_point()],
    "one weight is infinite": lambda d: d["model"][first_weight(d)].view(-1).__setitem__(0, float("inf")),
    "optimizer is garbage": lambda d: d.update(optimizer={"state": 5}),
    "optimizer state holds NaN": lambda d: [v.fill_(float("nan")) for s in d["optimizer"]["state"].values()
                                            for v in s.values() if v.is_floating_point() and v.dim()],
    "rng state is too short": lambda d: d["rng"].update(noise=torch.zeros(7, dtype=torch.uint8)),
    "rng is a string": lambda d: d.update(rng="seed"),
    "a required key is missing": lambda d: d.pop("history"),
}


def corrupt_bytes_in_a_weight(path):
    """Flip 64 bytes in the middle of the largest tensor of the archive."""
    with zipfile.ZipFile(path) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    start = info.header_offset + 100 + info.file_size // 2
    raw[start:start + 64] = bytes(b ^ 0x5A for b in raw[start:start + 64])
    path.write_bytes(bytes(raw))


def changed_contents_keeping_the_old_digest(tmp_path, state, path):
    data = torch.load(save_checkpoint(tmp_path / "src.pt", state), weights_only=True)
    data["model"][first_weight(data)].mul_(2)  # a tensor changed, the CRCs rewritten by torch.save
    torch.save(data, path)


@pytest.fixture
def crafted(tmp_path, good_state, request):
    """(path, case) of one crafted or damaged file."""
    case = request.param
    path = tmp_path / "bad.pt"
    if case == "64 bytes flipped in a weight":
        save_checkpoint(path, good_state)
        corrupt_bytes_in_a_weight(path)
    elif case == "contents differ from the saved digest":
        changed_contents_keeping_the_old_digest(tmp_path, good_state, path)
    else:
        data = raw_payload(tmp_path, good_state)
        CRAFTED[case](data)
        write_crafted(path, data)
    return path, case


ALL_CASES = [*CRAFTED, "64 bytes flipped in a weight", "contents differ from the saved digest"]


@pytest.mark.parametrize("crafted", ALL_CASES, indirect=True)
def test_crafted_checkpoints_are_refused_by_the_app_eval_and_resume(crafted, tmp_path, capsys):
    path, case = crafted
    # The app's way: load, then build the model.
    with pytest.raises(CheckpointError) as info:
        model_from_checkpoint(load_checkpoint(path), path)
    assert info.value.path == str(path) and info.value.reason
    for argv in (["eval", str(path), "--offline", "--device", "cpu"],
                 ["train", "--resume", str(path), "--offline", "--device", "cpu",
                  "--out", str(tmp_path / "resumed")]):
        assert main(argv) == 2, case
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"vaegui: error: checkpoint {path}: "), err
    assert not (tmp_path / "resumed").exists()  # nothing was written


def test_refusal_reasons_say_what_is_wrong(tmp_path, good_state):
    expected = {"config is a string": "settings must be a mapping",
                "latent_dim is huge": "latent_dim: 1000000000000 is out of range",
                "step is a string": "step is str '8', not a whole number",
                "history is garbage": "history is str 'garbage'",
                "class_names is an int": "class_names is int 7",
                "image_shape is huge": "image height 1000000 is out of range",
                "weights are all NaN": "the weights hold NaN or infinite values",
                "rng state is too short": "rng noise has 7 bytes"}
    for case, reason in expected.items():
        data = raw_payload(tmp_path, good_state)
        CRAFTED[case](data)
        path = write_crafted(tmp_path / "bad.pt", data)
        with pytest.raises(CheckpointError, match=reason.replace("(", r"\(")):
            load_checkpoint(path)
    path = tmp_path / "flipped.pt"
    save_checkpoint(path, good_state)
    corrupt_bytes_in_a_weight(path)
    with pytest.raises(CheckpointError, match="fails its CRC check"):
        load_checkpoint(path)
    changed_contents_keeping_the_old_digest(tmp_path, good_state, path)
    with pytest.raises(CheckpointError, match="do not match the checksum"):
        load_checkpoint(path)


def test_a_checkpoint_from_before_the_digest_still_loads(tmp_path, good_state):
    path = write_crafted(tmp_path / "old.pt", raw_payload(tmp_path, good_state), digest=False)
    assert load_checkpoint(path)["step"] == good_state["step"]


def test_non_finite_weights_are_never_saved(tmp_path, good_state):
    path = save_checkpoint(tmp_path / "a.pt", good_state)
    before = path.read_bytes()
    bad = {**good_state, "model": {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                                   for k, v in good_state["model"].items()}}
    with pytest.raises(CheckpointError, match="not saved: the weights hold NaN"):
        save_checkpoint(path, bad)
    assert path.read_bytes() == before


def test_a_huge_model_is_refused_before_it_is_built(good_state, monkeypatch):
    data = dict(good_state, config={**good_state["config"],
                                    "model": {**good_state["config"]["model"], "hidden": 65536}},
                dataset={**good_state["dataset"], "image_shape": [3, 1024, 1024]})
    monkeypatch.setattr(ckpt_module, "VAE", lambda *a: pytest.fail("the model was built"))
    with pytest.raises(CheckpointError, match="more than the 500,000,000 that fit in memory"):
        model_from_checkpoint(data, "x.pt")


def test_stale_temporary_files_of_killed_saves_are_removed(tmp_path, good_state):
    target = tmp_path / "checkpoint.pt"
    dead = _a_dead_pid()
    dead_tmp = tmp_path / f".checkpoint.pt.{dead}.abcd.tmp"
    live_tmp = tmp_path / f".checkpoint.pt.{os.getppid()}.efgh.tmp"  # a live writer's: kept
    old_tmp = tmp_path / ".checkpoint.pt.x1y2z3.tmp"  # no pid in the name: removed when old
    other_tmp = tmp_path / f".other.pt.{dead}.ijkl.tmp"  # another target's: not ours to touch
    for p in (dead_tmp, live_tmp, old_tmp, other_tmp):
        p.write_bytes(b"PK half")
    os.utime(old_tmp, (0, 0))
    save_checkpoint(target, good_state)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["checkpoint.pt", live_tmp.name, other_tmp.name])
    dead_tmp.write_bytes(b"PK half")
    load_checkpoint(target)  # a load cleans up too
    assert not dead_tmp.exists() and live_tmp.exists()


def _a_dead_pid():
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "checkpoint.pt"
    os.mkfifo(fifo)
    with pytest.raises(CheckpointError, match="not a regular file"):
        load_checkpoint(fifo)


def test_a_file_too_big_for_memory_is_refused_before_reading(tmp_path, good_state, monkeypatch):
    from vaegui.core import limits

    path = save_checkpoint(tmp_path / "a.pt", good_state)
    monkeypatch.setattr(limits, "budget_bytes", lambda device_type="cpu": path.stat().st_size - 1)
    monkeypatch.setattr(ckpt_module.torch, "load", lambda *a, **k: pytest.fail("it was read"))
    with pytest.raises(CheckpointError, match="is more than the .* of memory it may take here"):
        load_checkpoint(path)


def test_a_full_disk_is_one_error_and_keeps_the_previous_file(tmp_path, good_state, monkeypatch):
    import errno
    import io

    from vaegui.core import atomic

    path = save_checkpoint(tmp_path / "a.pt", good_state)
    before = path.read_bytes()
    real_fdopen = os.fdopen

    class FullDisk(io.RawIOBase):
        def __init__(self, f):
            self.f = f

        def writable(self):
            return True

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def close(self):
            self.f.close()

    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode)))
    with pytest.raises(CheckpointError, match=f"checkpoint {path}: cannot write: No space left on device"):
        save_checkpoint(path, good_state)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["a.pt"]


def test_ctrl_c_inside_torch_save_stays_an_interrupt(tmp_path, good_state, monkeypatch):
    path = save_checkpoint(tmp_path / "a.pt", good_state)
    before = path.read_bytes()
    real_save = torch.save

    def interrupted_then_torch_complains(obj, f):
        try:
            raise KeyboardInterrupt  # Ctrl-C while torch writes a record...
        finally:  # ...and torch's writer, closing the archive, raises its own error
            real_save({"x": 1}, f)
            raise RuntimeError("[enforce fail at inline_container.cc:671] . unexpected pos 1 vs 2")

    monkeypatch.setattr(ckpt_module.torch, "save", interrupted_then_torch_complains)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, good_state)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["a.pt"]


def test_a_full_disk_during_a_run_s_save_is_one_line_naming_the_folder_and_keeps_the_last_checkpoint(
        tmp_path, monkeypatch, capsys):
    """The disk fills up while torch writes the second epoch's checkpoint: torch reports the
    failed write as its own RuntimeError, which must still be one line, not a traceback."""
    from vaegui.cli import main

    run = tmp_path / "run"
    real_save = torch.save
    saves = []

    def fills_up(obj, f):
        if "format" in obj:  # a checkpoint (not a decoder's weights)
            saves.append(1)
        if len(saves) < 2:
            return real_save(obj, f)

        class Full(io.RawIOBase):
            written = 0

            def writable(self):
                return True

            def write(self, data):
                if self.written > 1000:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                self.written += len(data)
                return f.write(data)

        real_save(obj, Full())  # torch raises RuntimeError("... unexpected pos ...") from the OSError

    monkeypatch.setattr(ckpt_module.torch, "save", fills_up)
    code = main(["train", "--dataset", "shapes", "--train-limit", "128", "--test-limit", "64", "--hidden", "16",
                 "--batch-size", "64", "--device", "cpu", "--offline", "--no-progress", "--epochs", "3",
                 "--out", str(run)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert str(run) in err[0] and "No space left on device" in err[0] and "previous file is kept" in err[0]
    monkeypatch.setattr(ckpt_module.torch, "save", real_save)
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 2  # the first epoch's, intact
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]
