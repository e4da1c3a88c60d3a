"""Run folders: what the writer writes, the reader reads back (while written too); a resumed run
rewrites what came after its checkpoint; older folders migrate; bad files are one error."""

import json
import shutil

import numpy as np
import pytest
import torch

from core_helpers import tiny_config, tiny_data
from vaegui.core.checkpoint import load_checkpoint
from vaegui.core.errors import RunFolderError
from vaegui.core.run_folder import RunFolder
from vaegui.core.following import follow
from vaegui.core.run_reader import RunReader
from vaegui.core.run_writer import HEARTBEAT_NAME, RUN_JSON, RunWriter
from vaegui.core.trainer import Trainer


def train(path, epochs=2, state=None, **train):
    config = tiny_config(epochs=epochs, **train)
    trainer = Trainer(config, tiny_data(config), report_interval=0.0, keep_test_means=True)
    if state is not None:
        trainer.load_state_dict(state)
    with RunFolder(path).open(resume=state is not None) as folder:
        writer = RunWriter(folder, trainer)
        records = [r for p in trainer.run() if (r := writer.record(p)) is not None]
        writer.save()
        alive = RunReader(path).writer_alive()
        writer.close()
    return trainer, records, alive


def test_the_reader_reads_back_everything_the_writer_wrote(tmp_path):
    run = tmp_path / "run"
    trainer, records, alive_while_writing = train(run)
    reader = RunReader(run)
    assert alive_while_writing and not reader.writer_alive()
    assert reader.version == 1 and reader.config == trainer.config
    assert reader.info["dataset"]["class_names"] == list(trainer.data.class_names)
    assert reader.steps_per_epoch == trainer.steps_per_epoch
    # Metrics: one line per epoch, with what the explorer needs.
    metrics = reader.metrics()
    assert metrics == records and [r["epoch"] for r in metrics] == [1, 2]
    np.testing.assert_allclose(metrics[-1]["kl_per_dim"], trainer.history.evals[-1].kl_per_dim)
    # Every step's row.
    steps, losses, weights = reader.steps()
    np.testing.assert_array_equal(steps, trainer.history.steps)
    np.testing.assert_allclose(losses, trainer.history.losses, rtol=1e-5)
    np.testing.assert_allclose(weights, trainer.history.kl_weights, rtol=1e-5)
    # The map of each epoch, and the last one is the trainer's.
    assert reader.map_epochs() == [1, 2]
    np.testing.assert_array_equal(reader.map_means(2), trainer.test_means.means)
    assert reader.map_means(1).shape == (128, 3) and not np.array_equal(reader.map_means(1), reader.map_means(2))
    # Decoder weights of each epoch (small here), the last equal to the trained decoder.
    assert reader.decoder_epochs() == [1, 2]
    for name, value in trainer.decoder_state().items():
        torch.testing.assert_close(reader.decoder_state(2)[name], value)
    # The latest and the best checkpoints load; the best is the epoch of least test -ELBO.
    assert reader.load_checkpoint()["step"] == trainer.step
    best = min(metrics, key=lambda r: r["test_elbo"])
    assert reader.load_checkpoint(best=True)["step"] == best["step"]


def test_a_second_writer_is_refused(tmp_path):
    with RunFolder(tmp_path / "run").open(resume=False):
        with pytest.raises(RunFolderError, match=r"another run \(process \d+\) is writing it"):
            RunFolder(tmp_path / "run").open(resume=True)


def test_resuming_rewrites_what_came_after_the_checkpoint(tmp_path):
    run = tmp_path / "run"
    train(run, epochs=1)
    after_one = load_checkpoint(run / "checkpoint.pt")
    shutil.copy(run / "checkpoint.pt", tmp_path / "epoch1.pt")
    train(run, epochs=2, state=after_one)  # epoch 2, then pretend it was killed and resumed again
    trainer, _, _ = train(run, epochs=3, state=load_checkpoint(tmp_path / "epoch1.pt"))
    reader = RunReader(run)
    assert [r["epoch"] for r in reader.metrics()] == [1, 2, 3]  # each epoch once
    steps, _, _ = reader.steps()
    np.testing.assert_array_equal(steps, np.arange(1, trainer.step + 1))  # each step once
    assert reader.map_epochs() == [1, 2, 3]


def test_a_folder_from_before_run_json_reads_as_version_0(tmp_path):
    run = tmp_path / "run"
    trainer, _, _ = train(run, epochs=1)
    (run / RUN_JSON).unlink()
    reader = RunReader(run)
    assert reader.version == 0 and reader.config == trainer.config
    assert reader.steps_per_epoch == trainer.steps_per_epoch


def test_following_a_finished_run_gives_its_steps_and_epochs_then_ends(tmp_path):
    run = tmp_path / "run"
    trainer, _, _ = train(run)
    snapshots = list(follow(RunReader(run), sleep=lambda s: None))
    steps = np.concatenate([p.new_steps for p in snapshots])
    np.testing.assert_array_equal(steps, trainer.history.steps)
    evals = [p.eval for p in snapshots if p.eval is not None]
    assert [e.epoch for e in evals] == [1, 2]
    assert evals[-1].neg_elbo == pytest.approx(trainer.history.evals[-1].neg_elbo)
    assert snapshots[-1].done and snapshots[-1].step == trainer.step


def test_a_half_written_line_waits_for_its_end(tmp_path):
    run = tmp_path / "run"
    train(run, epochs=1)
    reader = RunReader(run)
    n = len(reader.steps_since()[0])
    with open(run / "steps.csv", "a") as f:
        f.write("999,1.0,2.0")  # a writer caught mid-line
    assert len(reader.steps_since()[0]) == 0
    with open(run / "steps.csv", "a") as f:
        f.write(",3.0,1.0\n")
    new_steps, losses, _ = reader.steps_since()
    assert list(new_steps) == [999] and losses.tolist() == [[1.0, 2.0, 3.0]] and n > 0


@pytest.mark.parametrize("damage, message", [
    (lambda run: (run / RUN_JSON).write_text("{not json"), "cannot be read"),
    (lambda run: (run / RUN_JSON).write_text(json.dumps({"format": "other"})), "not a vaegui run"),
    (lambda run: (run / RUN_JSON).write_text(json.dumps({"format": "vaegui-run", "version": 99})), "newer"),
    (lambda run: np.save(run / "maps" / "epoch-0001.npy", np.full((128, 3), np.nan)), "NaN or infinite means"),
    (lambda run: (run / "decoders" / "epoch-0001.pt").write_bytes(b"junk"), "not a zip archive"),
])
def test_damaged_files_are_one_error_naming_them(tmp_path, damage, message):
    run = tmp_path / "run"
    train(run, epochs=1)
    damage(run)
    with pytest.raises(RunFolderError, match=message):
        reader = RunReader(run)
        reader.map_means(1)
        reader.decoder_state(1)


def test_the_heartbeat_goes_when_the_writer_closes(tmp_path):
    run = tmp_path / "run"
    train(run, epochs=1)
    assert not (run / HEARTBEAT_NAME).exists() and not RunReader(run).writer_alive()
