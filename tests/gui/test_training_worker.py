"""TrainingWorker on its own QThread: throttled progress without lost rows, maps, decoder
snapshots, checkpoints and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import QThread

from vaegui.core import decoder
from vaegui.core.checkpoint import load_checkpoint
from vaegui.core.errors import TrainingError
from vaegui.core.decoder import Decoder
from vaegui.core.trainer import Trainer
from vaegui.core.progress import EvalResult, Progress
from vaegui.gui import training_worker
from vaegui.gui.progress_throttle import ProgressThrottle
from vaegui.gui.training_worker import TrainingWorker

TIMEOUT = 30_000


def _progress(step: int, rows: int, *, eval=None, done=False, paused=False) -> Progress:
    steps = np.arange(step - rows + 1, step + 1)
    return Progress(step=step, total_steps=100, steps_per_epoch=10, epochs=10, new_steps=steps,
                    new_losses=np.tile(steps[:, None], (1, 3)).astype(float),
                    new_kl_weights=steps / 100.0, kl_weight=1.0,
                    images_per_s=1.0, images_seen=step, train_seconds=1.0, seconds_left=1.0,
                    device="cpu", eval=eval, done=done, paused=paused)


def test_throttle_merges_the_rows_of_held_back_snapshots():
    throttle = ProgressThrottle(interval=1.0)
    assert throttle.offer(_progress(1, 1), now=0.0).step == 1  # the first passes
    assert throttle.offer(_progress(3, 2), now=0.3) is None
    assert throttle.offer(_progress(4, 1), now=0.6) is None
    out = throttle.offer(_progress(6, 2), now=1.2)
    np.testing.assert_array_equal(out.new_steps, [2, 3, 4, 5, 6])
    np.testing.assert_array_equal(out.new_losses[:, 0], [2, 3, 4, 5, 6])
    np.testing.assert_array_equal(out.new_kl_weights, [0.02, 0.03, 0.04, 0.05, 0.06])
    assert out.step == 6


def test_throttle_always_passes_evaluations_the_end_and_pause_changes():
    result = EvalResult(epoch=1, step=2, neg_elbo=1.0, recon=1.0, kl=0.0, bits_per_dim=0.1,
                        kl_per_dim=np.zeros(2), active_units=0)
    throttle = ProgressThrottle(interval=10.0)
    throttle.offer(_progress(1, 1), now=0.0)
    assert throttle.offer(_progress(2, 1, eval=result), now=0.1).eval is result
    assert throttle.offer(_progress(2, 0, paused=True), now=0.2).paused
    assert throttle.offer(_progress(2, 0, paused=True), now=0.3) is None
    assert not throttle.offer(_progress(3, 1), now=0.4).paused
    assert throttle.offer(_progress(4, 1), now=0.5) is None
    final = throttle.offer(_progress(5, 1, done=True), now=0.6)
    np.testing.assert_array_equal(final.new_steps, [4, 5])


@pytest.fixture
def worker(qtbot):
    # Trainer snapshots after every step, progress at most every 0.2 s: most snapshots are held back.
    w = TrainingWorker(progress_interval=0.2, report_interval=0.0, decoder_interval=0.05)
    thread = QThread()
    thread.setObjectName("test-worker")
    w.moveToThread(thread)
    thread.start()
    yield w
    w.shutdown()
    thread.quit()
    thread.wait()


def _run(qtbot, log, worker, config):
    """Start a run and wait for its runFinished; returns the final Progress (None if it failed)."""
    count = len(log.finished)
    worker.start(config)
    qtbot.waitUntil(lambda: len(log.finished) > count, timeout=TIMEOUT)
    return log.finished[-1]


def test_a_run_emits_every_step_once_with_maps_and_decoder_snapshots(qtbot, worker, tiny_config, signal_log):
    log = signal_log(worker)
    config = tiny_config(epochs=3, train=1024)  # 16 steps per epoch
    final = _run(qtbot, log, worker, config)
    assert final is not None and final.done and not final.stopped
    assert final.step == 48
    steps = np.concatenate([p.new_steps for p in log.progress])
    np.testing.assert_array_equal(steps, np.arange(1, 49))  # every row exactly once, in order
    assert sum(len(p.new_losses) for p in log.progress) == final.step
    assert len(log.progress) < 48  # ...although far fewer signals than steps
    assert [p.eval.epoch for p in log.progress if p.eval is not None] == [1, 2, 3]
    assert log.progress[-1].done
    assert len(log.maps) == 3 and log.maps[-1].step == 48  # one per epoch end, the last weights
    assert len(log.maps[-1].latents) == 128
    assert len(log.snapshots) >= 2 and not log.errors
    info = log.started[0]
    assert info.source == "train" and info.steps_per_epoch == 16 and info.image_shape == (1, 16, 16)
    # The last snapshot is a copy of the final weights, encoder included.
    snapshot = log.snapshots[-1]
    assert snapshot.step == 48 and snapshot.has_encoder and snapshot.image_shape == (1, 16, 16)
    decoder = Decoder.from_snapshot(snapshot)
    assert decoder.decode(log.maps[-1].latents[:3]).shape == (3, 1, 16, 16)
    assert info.examples.shape == (64, 1, 16, 16) and info.examples.dtype == np.uint8


def test_idle_map_refresh_save_and_open(qtbot, worker, tmp_path, tiny_config, signal_log):
    log = signal_log(worker)
    _run(qtbot, log, worker, tiny_config(epochs=1))
    worker.set_map_source("train", 200)
    worker.refresh_map()
    qtbot.waitUntil(lambda: len(log.maps) == 2, timeout=TIMEOUT)
    assert log.maps[-1].split == "train" and len(log.maps[-1].latents) == 200
    path = tmp_path / "model.pt"
    worker.save_checkpoint(str(path))
    qtbot.waitUntil(lambda: log.saved == [str(path)], timeout=TIMEOUT)
    assert load_checkpoint(path)["step"] == 4
    worker.set_map_source("test", None)
    worker.open_checkpoint(str(path))
    qtbot.waitUntil(lambda: len(log.maps) == 3, timeout=TIMEOUT)
    info = log.opened[0]
    assert info.source == "checkpoint" and info.step == 4 and info.steps_per_epoch == 4
    assert len(info.history.steps) == 4 and len(log.maps[-1].latents) == 128
    assert not log.errors


def test_a_save_requested_while_running_is_served_between_steps(qtbot, worker, tmp_path, tiny_config,
                                                                  signal_log):
    log = signal_log(worker)
    path = tmp_path / "running.pt"
    worker.start(tiny_config(epochs=500))
    qtbot.waitUntil(lambda: bool(log.progress), timeout=TIMEOUT)
    worker.save_checkpoint(str(path))
    qtbot.waitUntil(lambda: bool(log.saved), timeout=TIMEOUT)
    assert not log.finished  # saved while the run goes on
    worker.stop()
    qtbot.waitUntil(lambda: bool(log.finished), timeout=TIMEOUT)
    assert log.finished[0].stopped
    assert 0 < load_checkpoint(path)["step"] <= log.finished[0].step


def test_a_missing_folder_is_reported_and_the_worker_runs_again(qtbot, worker, tmp_path, tiny_config,
                                                                 signal_log):
    log = signal_log(worker)
    bad = tiny_config().replace(data={"dataset": f"folder:{tmp_path / 'nope'}"})
    assert _run(qtbot, log, worker, bad) is None
    assert len(log.errors) == 1 and "not found" in log.errors[0]
    assert _run(qtbot, log, worker, tiny_config(epochs=1)).done
    assert len(log.errors) == 1


@pytest.mark.parametrize("error, words", [
    (TrainingError("the loss became non-finite at step 3"), "non-finite"),
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "GPU ran out of memory"),
    (KeyError("surprise"), "Unexpected error: KeyError"),
])
def test_errors_during_training_become_messages(qtbot, worker, monkeypatch, error, words, tiny_config,
                                                signal_log):
    real_step = Trainer._train_step

    def failing_step(self, *args):
        if self.step == 2:
            raise error
        real_step(self, *args)

    monkeypatch.setattr(Trainer, "_train_step", failing_step)
    monkeypatch.setattr(training_worker.traceback, "print_exception", lambda exc: None)
    log = signal_log(worker)
    assert _run(qtbot, log, worker, tiny_config()) is None
    assert len(log.errors) == 1 and words in log.errors[0]


def test_stop_before_the_data_is_loaded_ends_the_run_without_training(qtbot, worker, tiny_config,
                                                                      signal_log):
    log = signal_log(worker)
    worker.start(tiny_config())
    worker.stop()
    qtbot.waitUntil(lambda: bool(log.finished), timeout=TIMEOUT)
    assert log.finished == [None] and not log.progress and not log.errors


def test_epoch_end_maps_reuse_the_evaluation_and_a_training_map_encodes(qtbot, worker, monkeypatch,
                                                                         tiny_config, signal_log):
    passes = []
    real = decoder.encode_set
    monkeypatch.setattr(decoder, "encode_set",  # the worker imports it from there when it encodes
                        lambda *args, **kw: passes.append(args[2]) or real(*args, **kw))
    log = signal_log(worker)
    _run(qtbot, log, worker, tiny_config(epochs=2))
    # Each epoch's test evaluation already computed the map's means: no second encoder pass.
    assert [m.step for m in log.maps] == [4, 8] and passes == []
    assert log.maps[0].latents is not log.maps[1].latents
    worker.set_map_source("train", 100)  # training images are not evaluated: they are encoded
    _run(qtbot, log, worker, tiny_config(epochs=1))
    assert passes == ["train"] and log.maps[-1].split == "train" and len(log.maps[-1].latents) == 100


def test_a_map_asked_for_mid_run_is_a_job_between_steps_and_an_open_waits_for_the_run(
        qtbot, worker, tmp_path, tiny_config, signal_log):
    log = signal_log(worker)
    path = tmp_path / "first.pt"
    _run(qtbot, log, worker, tiny_config(epochs=1))
    worker.save_checkpoint(str(path))
    qtbot.waitUntil(lambda: bool(log.saved), timeout=TIMEOUT)
    maps = len(log.maps)
    worker.start(tiny_config(epochs=2, train=32768))  # 512 steps an epoch: no epoch's map soon
    qtbot.waitUntil(lambda: len(log.started) == 2, timeout=TIMEOUT)
    worker.refresh_map()
    worker.open_checkpoint(str(path))  # no between-steps job: it waits for the run to end
    qtbot.waitUntil(lambda: len(log.maps) > maps, timeout=TIMEOUT)
    assert len(log.finished) == 1 and not log.opened and log.maps[maps].step < 512
    worker.stop()
    qtbot.waitUntil(lambda: bool(log.opened), timeout=TIMEOUT)
    assert len(log.finished) == 2 and log.finished[1].stopped and log.opened[0].step == 4
    # One map for the request (between steps) and one for the open, encoded after the open is
    # reported: a second request made while the first waits is folded into it, but whether it
    # still waits depends on the machine's speed.
    qtbot.waitUntil(lambda: log.maps[-1].step == 4, timeout=TIMEOUT)
    assert not log.errors


def test_a_map_that_reported_its_progress_says_when_it_is_done(qtbot, worker, tiny_config, signal_log, monkeypatch):
    log = signal_log(worker)
    _run(qtbot, log, worker, tiny_config(epochs=1))
    monkeypatch.setattr(training_worker, "MAP_PROGRESS_S", 0.0)  # every chunk reports
    worker.set_map_source("train", 200)
    worker.refresh_map()
    qtbot.waitUntil(lambda: len(log.maps) == 2, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: "Encoded the map: 200 images" in log.status, timeout=TIMEOUT)
    said = [m for m in log.status if "the map" in m]
    assert said[0].startswith("Encoding the map: ") and said[-1] == "Encoded the map: 200 images"
