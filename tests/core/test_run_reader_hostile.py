"""The run reader is the one boundary of an untrusted run folder: each crafted file is one
RunFolderError naming the file and the field (or, for a metrics line, the documented skip: the
line is left out and counted), within a second, never a hang or another exception."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import time
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from core_helpers import tiny_config, tiny_data
from vaegui.core.errors import RunFolderError
from vaegui.core.run_folder import RunFolder
from vaegui.core.following import follow
from vaegui.core.run_reader import RunReader
from vaegui.core.run_writer import RunWriter
from vaegui.core.trainer import Trainer

LATENT = 3  # tiny_config's
TEST_SIZE = 128


@contextmanager
def within(seconds):
    """Fail, instead of hanging, when the block takes longer (a blocked open() is interrupted)."""
    def expired(*_):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("trained") / "run"
    config = tiny_config(epochs=1)
    trainer = Trainer(config, tiny_data(config), report_interval=0.0, keep_test_means=True)
    with RunFolder(run).open(resume=False) as folder:
        writer = RunWriter(folder, trainer)
        for p in trainer.run():
            writer.record(p)
        writer.save()
        writer.close()
    return run


@pytest.fixture
def run(trained, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained, copy, symlinks=True)
    return copy


# ---- run.json ---------------------------------------------------------------------------------
def edit_info(change):
    def damage(run):
        info = json.loads((run / "run.json").read_text())
        change(info)
        (run / "run.json").write_text(json.dumps(info))
    return damage


def setter(*keys, value):
    def change(info):
        d = info
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return change


def deleter(*keys):
    def change(info):
        d = info
        for k in keys[:-1]:
            d = d[k]
        del d[keys[-1]]
    return change


def raw(text):
    def damage(run):
        (run / "run.json").write_text(text)
    return damage


def replace_with(kind, name):
    def damage(run):
        path = run / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "dir":
            path.mkdir()
        elif kind == "link":
            (run.parent / "elsewhere").write_bytes(b"{}")
            path.symlink_to(run.parent / "elsewhere")
    return damage


RUN_JSON_CASES = {
    "steps_per_epoch text": (edit_info(setter("steps_per_epoch", value="abc")), "steps_per_epoch"),
    "steps_per_epoch Infinity": (edit_info(setter("steps_per_epoch", value=float("inf"))), "steps_per_epoch"),
    "steps_per_epoch zero": (edit_info(setter("steps_per_epoch", value=0)), "steps_per_epoch 0 is out of range"),
    "steps_per_epoch float": (edit_info(setter("steps_per_epoch", value=2.5)), "steps_per_epoch"),
    "steps_per_epoch missing": (edit_info(deleter("steps_per_epoch")), "steps_per_epoch"),
    "dataset missing": (edit_info(deleter("dataset")), "dataset: missing"),
    "dataset a list": (edit_info(setter("dataset", value=[1])), "dataset: dataset is list"),
    "class_names an integer": (edit_info(setter("dataset", "class_names", value=7)), "class_names"),
    "class_names empty": (edit_info(setter("dataset", "class_names", value=[])), "class_names"),
    "class_names of numbers": (edit_info(setter("dataset", "class_names", value=[1, 2])), "class_names"),
    "image_shape too short": (edit_info(setter("dataset", "image_shape", value=[1, 28])), "image_shape"),
    "image_shape text": (edit_info(setter("dataset", "image_shape", value=["a", 28, 28])), "image channels"),
    "image_shape huge": (edit_info(setter("dataset", "image_shape", value=[1, 10**9, 28])), "image height"),
    "image_shape NaN": (edit_info(setter("dataset", "image_shape", value=[1, float("nan"), 28])), "image height"),
    "name a number": (edit_info(setter("dataset", "name", value=5)), "dataset name"),
    "name too long": (edit_info(setter("dataset", "name", value="x" * 5000)), "dataset name"),
    "test_size negative": (edit_info(setter("dataset", "test_size", value=-1)), "test_size"),
    "train_size text": (edit_info(setter("dataset", "train_size", value="many")), "train_size"),
    "config missing": (edit_info(deleter("config")), "config: missing"),
    "config a number": (edit_info(setter("config", value=3)), "config"),
    "latent_dim text": (edit_info(setter("config", "model", "latent_dim", value="7")), "config: bad settings"),
    "latent_dim huge": (edit_info(setter("config", "model", "latent_dim", value=10**12)), "config: bad settings"),
    "hidden too big for memory": (edit_info(setter("config", "model", "hidden", value=10**7)), "config"),
    "version text": (edit_info(setter("version", value="1")), "version"),
    "version newer": (edit_info(setter("version", value=99)), "newer"),
    "version true": (edit_info(setter("version", value=True)), "version"),
    "format other": (edit_info(setter("format", value="other")), "format"),
    "not an object": (raw("[1, 2, 3]"), "not a run description"),
    "not JSON": (raw("{not json"), "cannot be read"),
    "nested 200,000 deep": (raw("[" * 200_000), "nested"),
    "nested objects": (raw('{"a":' * 50_000 + "1" + "}" * 50_000), "nested"),
    "too large": (raw(" " * (2 << 20) + "{}"), "more than"),
    "a FIFO": (replace_with("fifo", "run.json"), "not a regular file"),
    "a folder": (replace_with("dir", "run.json"), "is a folder"),
    "a link": (replace_with("link", "run.json"), "symbolic link"),
}


@pytest.mark.parametrize("case", sorted(RUN_JSON_CASES))
def test_a_bad_run_json_is_one_error_naming_the_file_and_field(run, case):
    damage, field = RUN_JSON_CASES[case]
    damage(run)
    with within(1.0), pytest.raises(RunFolderError) as info:
        RunReader(run)
    assert info.value.path == str(run)
    assert "run.json" in info.value.reason and field in info.value.reason, info.value.reason


# ---- metrics.jsonl ----------------------------------------------------------------------------
def good_line(run):
    return json.loads((run / "metrics.jsonl").read_text().splitlines()[0])


def line_with(**fields):
    def make(run):
        r = good_line(run)
        for k, v in fields.items():
            if v is KeyError:
                del r[k]
            else:
                r[k] = v
        return json.dumps(r)
    return make


METRICS_CASES = {
    "kl_per_dim of 50 for a 3-D model": (line_with(kl_per_dim=[0.1] * 50), "kl_per_dim: 50 values"),
    "kl_per_dim too short": (line_with(kl_per_dim=[0.1]), "kl_per_dim: 1 values"),
    "kl_per_dim text": (line_with(kl_per_dim="abc"), "kl_per_dim"),
    "kl_per_dim NaN": (line_with(kl_per_dim=[float("nan")] * LATENT), "kl_per_dim"),
    "kl_per_dim missing": (line_with(kl_per_dim=KeyError), "kl_per_dim: missing"),
    "epoch Infinity": (line_with(epoch=float("inf")), "epoch"),
    "epoch text": (line_with(epoch="1"), "epoch"),
    "epoch negative": (line_with(epoch=-1), "epoch"),
    "step huge": (line_with(step=10**30), "step"),
    "step missing": (line_with(step=KeyError), "step: missing"),
    "test_elbo NaN": (line_with(test_elbo=float("nan")), "test_elbo"),
    "test_elbo text": (line_with(test_elbo="low"), "test_elbo"),
    "test_kl missing": (line_with(test_kl=KeyError), "test_kl: missing"),
    "test_bits_per_dim a list": (line_with(test_bits_per_dim=[1]), "test_bits_per_dim"),
    "active_units too many": (line_with(active_units=99), "active_units"),
    "active too long": (line_with(active=[True] * 7), "active"),
    "active of numbers": (line_with(active=[1] * LATENT), "active"),
    "images_per_s negative": (line_with(images_per_s=-5), "images_per_s"),
    "images_per_s infinite": (line_with(images_per_s=float("inf")), "images_per_s"),
    "kl_weight infinite": (line_with(kl_weight=float("-inf")), "kl_weight"),
    "train_elbo text": (line_with(train_elbo="x"), "train_elbo"),
    "iw_samples fraction": (line_with(iw_samples=1.5), "iw_samples"),
    "test_nll_iw Infinity": (line_with(test_nll_iw=float("inf")), "test_nll_iw"),
    "a list, not a record": (lambda run: "[1, 2]", "not a record"),
    "nested deeply": (lambda run: "[" * 100_000 + "]" * 100_000, "nested"),
    "not JSON": (lambda run: '{"epoch": 2, "st', "Unterminated string"),
    "not UTF-8": (lambda run: b"\xff\xfe{}".decode("latin-1"), ""),
}


@pytest.mark.parametrize("case", sorted(METRICS_CASES))
def test_a_bad_metrics_line_is_skipped_and_counted(run, case):
    make, field = METRICS_CASES[case]
    good = (run / "metrics.jsonl").read_text()
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(make(run) + "\n")
    with within(1.0):
        reader = RunReader(run)
        records = reader.metrics()
        evals = [p.eval for p in follow(RunReader(run), poll_s=0, sleep=lambda s: None) if p.eval is not None]
    assert records == [json.loads(x) for x in good.splitlines()]
    assert reader.skipped_lines == 1 and field in reader.skip_reason, reader.skip_reason
    assert reader.skip_reason.startswith("metrics.jsonl: a line skipped")
    assert [e.epoch for e in evals] == [1] and all(len(e.kl_per_dim) == LATENT for e in evals)


def test_a_metrics_fifo_is_one_error_and_does_not_hang(run):
    replace_with("fifo", "metrics.jsonl")(run)
    reader = RunReader(run)
    with within(1.0), pytest.raises(RunFolderError, match="metrics.jsonl is not a regular file"):
        reader.metrics()
    with within(1.0), pytest.raises(RunFolderError, match="metrics.jsonl is not a regular file"):
        list(follow(reader, poll_s=0, sleep=lambda s: None))


def test_bad_step_rows_are_skipped(run):
    with open(run / "steps.csv", "a") as f:
        f.write("999,inf,1,2,0.5\n1000,1,nan,2,0.5\n5,1,1,2,0.5\n1e400,1,1,1,1\n1001,1,1,2,inf\n1002,1,2,3,nan\n")
    steps, losses, weights = RunReader(run).steps()
    assert steps[-1] == 1002 and 999 not in steps and 1000 not in steps and 1001 not in steps
    assert np.isfinite(losses).all() and not np.isinf(weights).any()
    assert (np.diff(steps) > 0).all()


# ---- maps and decoders --------------------------------------------------------------------------
def save_map(array, allow_pickle=False):
    def damage(run):
        with open(run / "maps" / "epoch-0001.npy", "wb") as f:
            np.save(f, array, allow_pickle=allow_pickle)
    return damage


def truncated_map(run):
    path = run / "maps" / "epoch-0001.npy"
    path.write_bytes(path.read_bytes()[:200])


def huge_header_map(run):
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (128, 3), " + b" " * 200_000 + b"}\n"
    (run / "maps" / "epoch-0001.npy").write_bytes(b"\x93NUMPY\x02\x00" + len(header).to_bytes(4, "little") + header)


MAP_CASES = {
    "an object array": (save_map(np.array([object()] * 3, dtype=object), allow_pickle=True), "cannot be read"),
    "the wrong latent size": (save_map(np.zeros((TEST_SIZE, 7), np.float32)), "not (N, 3) means"),
    "1-D": (save_map(np.zeros(TEST_SIZE * 3, np.float32)), "not (N, 3) means"),
    "whole numbers": (save_map(np.zeros((TEST_SIZE, 3), np.int32)), "not (N, 3) means"),
    "all NaN": (save_map(np.full((TEST_SIZE, 3), np.nan, np.float32)), "NaN or infinite"),
    "another test set's size": (save_map(np.zeros((5, 3), np.float32)), "not the 128"),
    "truncated": (truncated_map, "cannot be read"),
    "a huge header": (huge_header_map, "epoch-0001.npy"),
    "a FIFO": (replace_with("fifo", "maps/epoch-0001.npy"), "not a regular file"),
    "a link": (replace_with("link", "maps/epoch-0001.npy"), "symbolic link"),
}


@pytest.mark.parametrize("case", sorted(MAP_CASES))
def test_a_bad_map_is_one_error_naming_it(run, case):
    damage, reason = MAP_CASES[case]
    damage(run)
    with within(1.0), pytest.raises(RunFolderError) as info:
        RunReader(run).map_means(1)
    assert "maps/epoch-0001.npy" in info.value.reason and reason in info.value.reason, info.value.reason


class Payload:
    def __reduce__(self):
        return (print, ("a pickle ran",))


def save_decoder(obj):
    def damage(run):
        torch.save(obj, run / "decoders" / "epoch-0001.pt")
    return damage


def decoder_with(change):
    def damage(run):
        state = torch.load(run / "decoders" / "epoch-0001.pt", weights_only=True)
        change(state)
        torch.save(state, run / "decoders" / "epoch-0001.pt")
    return damage


def pickled(run):
    (run / "decoders" / "epoch-0001.pt").write_bytes(pickle.dumps(Payload()))


DECODER_CASES = {
    "a pickle": (pickled, "not a zip archive"),
    "a list": (save_decoder([torch.zeros(3)]), "not this run's decoder weights"),
    "a missing key": (decoder_with(lambda s: s.pop("log_sigma")), "not this run's decoder weights"),
    "an extra key": (decoder_with(lambda s: s.update(extra=torch.zeros(1))), "not this run's decoder weights"),
    "a wrong shape": (decoder_with(lambda s: s.update(log_sigma=torch.zeros(5))), "log_sigma is not"),
    "NaN weights": (decoder_with(lambda s: s["log_sigma"].fill_(float("nan"))), "NaN or infinite"),
    "whole numbers": (decoder_with(lambda s: s.update(log_sigma=torch.zeros((), dtype=torch.int64))), "log_sigma is not"),
    "junk": (lambda run: (run / "decoders" / "epoch-0001.pt").write_bytes(b"junk"), "not a zip archive"),
    "a damaged zip": (lambda run: (run / "decoders" / "epoch-0001.pt").write_bytes(b"PK\x03\x04junk"), "cannot be read"),
    "a FIFO": (replace_with("fifo", "decoders/epoch-0001.pt"), "not a regular file"),
}


@pytest.mark.parametrize("case", sorted(DECODER_CASES))
def test_a_bad_decoder_is_one_error_naming_it(run, case, capsys):
    damage, reason = DECODER_CASES[case]
    damage(run)
    with within(1.0), pytest.raises(RunFolderError) as info:
        RunReader(run).decoder_state(1)
    assert "decoders/epoch-0001.pt" in info.value.reason and reason in info.value.reason, info.value.reason
    assert "a pickle ran" not in capsys.readouterr().out


def test_a_maps_folder_that_is_a_link_is_not_followed(run, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    np.save(tmp_path / "elsewhere" / "epoch-0001.npy", np.zeros((TEST_SIZE, 3), np.float32))
    shutil.rmtree(run / "maps")
    (run / "maps").symlink_to(tmp_path / "elsewhere")
    reader = RunReader(run)
    assert reader.map_epochs() == []
    with pytest.raises(RunFolderError, match="maps .*symbolic link"):
        reader.map_means(1)


# ---- agreement and liveness ---------------------------------------------------------------------
def test_a_run_json_that_disagrees_with_the_checkpoint_and_maps_is_named(run):
    edit_info(setter("config", "model", "latent_dim", value=7))(run)
    reader = RunReader(run)
    with within(1.0), pytest.raises(RunFolderError, match="checkpoint.pt: model latent_dim 3 disagrees with run.json's 7"):
        reader.load_checkpoint()
    with within(1.0), pytest.raises(RunFolderError, match=r"maps/epoch-0001.npy: holds .* not \(N, 7\) means"):
        reader.map_means(1)
    with pytest.raises(RunFolderError, match=r"decoder.hidden.weight is not a \(32, 7\) tensor"):
        reader.decoder_state(1)


def test_a_checkpoint_of_other_images_or_classes_is_named(run):
    edit_info(setter("dataset", "class_names", value=["a", "b"]))(run)
    with pytest.raises(RunFolderError, match="checkpoint.pt: .* classes disagree with run.json's 2"):
        RunReader(run).load_checkpoint()


def test_a_heartbeat_from_the_future_is_no_sign_of_life(run):
    beat = run / "heartbeat"
    beat.write_text("{}")
    assert RunReader(run).writer_alive()
    future = time.time() + 10 * 365 * 86400
    os.utime(beat, (future, future))
    assert not RunReader(run).writer_alive()


# ---- the map history --------------------------------------------------------------------------
def test_the_map_history_leaves_out_a_bad_epoch_and_says_why(run):
    from vaegui.core.map_history import MapHistory

    np.save(run / "maps" / "epoch-0002.npy", np.full((TEST_SIZE, 3), np.nan, np.float32))
    (run / "decoders" / "epoch-0001.pt").write_bytes(b"junk")
    history = MapHistory(RunReader(run))
    assert history.epochs == [1]
    assert history.problem.startswith("The history leaves out epoch 2: ") and "epoch-0002.npy" in history.problem
    assert history.at(1.5).shape == (TEST_SIZE, 3)  # only good epochs are blended
    history.problem = ""
    assert history.decoder_state(1) is None  # shown with the live decoder instead
    assert "epoch-0001.pt" in history.problem


# ---- the same folders through `vaegui train --resume` -------------------------------------------
RESUME_ARGS = ["--epochs", "2", "--offline", "--no-progress"]


@pytest.mark.parametrize("line", [
    '{"epoch": Infinity, "step": 4}',
    "[" * 100_000,
    None,  # kl_per_dim of 50 values: filled in from the run's own line
])
def test_resume_drops_a_damaged_metrics_line_and_rewrites_the_file_clean(run, capsys, line):
    from vaegui.cli import main

    good = (run / "metrics.jsonl").read_text()
    if line is None:
        line = json.dumps({**json.loads(good.splitlines()[0]), "kl_per_dim": [0.1] * 50})
    with open(run / "metrics.jsonl", "a") as f:
        f.write(line + "\n")
    with within(60.0):
        assert main(["train", "--resume", str(run / "checkpoint.pt"), *RESUME_ARGS]) == 0
    records = RunReader(run).metrics()
    assert [r["epoch"] for r in records] == [1, 2] and RunReader(run).skipped_lines == 0
    assert (run / "metrics.jsonl").read_text().startswith(good)


@pytest.mark.parametrize("name, kind", [("metrics.jsonl", "fifo"), ("steps.csv", "fifo"), ("maps", "link"),
                                        ("run.json", "dir")])
def test_resume_into_a_folder_with_a_planted_entry_is_one_line_exit_2(run, capsys, name, kind):
    from vaegui.cli import main

    replace_with(kind, name)(run)
    with within(30.0):
        assert main(["train", "--resume", str(run / "checkpoint.pt"), *RESUME_ARGS]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and name in err[0] and str(run) in err[0], err


# ---- maps/labels.npy --------------------------------------------------------------------------
def test_map_labels_are_the_test_sets_labels_in_map_order(run):
    reader = RunReader(run)
    n = len(reader.map_means(reader.map_epochs()[-1]))
    labels = reader.map_labels(n)
    assert labels.dtype == np.int64 and len(labels) == n
    np.testing.assert_array_equal(labels, np.load(run / "maps" / "labels.npy")[:n])


@pytest.mark.parametrize("damage, reason", [
    (lambda p: p.unlink(), "no such file"),
    (lambda p: p.write_bytes(b"not numpy"), "cannot be read"),
    (lambda p: np.save(p, np.zeros(3, np.int64)), "whole-number labels"),
    (lambda p: np.save(p, np.zeros(1000, np.float32)), "whole-number labels"),
    (lambda p: (p.unlink(), p.symlink_to(p.parent / "epoch-0001.npy")), "symbolic link"),
])
def test_map_labels_damaged_or_linked_is_one_error_naming_the_file(run, damage, reason):
    reader = RunReader(run)
    n = len(reader.map_means(reader.map_epochs()[-1]))
    damage(run / "maps" / "labels.npy")
    with pytest.raises(RunFolderError, match=f"maps/labels.npy.*{reason}"):
        reader.map_labels(n)
