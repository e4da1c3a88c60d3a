"""Training, map encoding, opening and saving as jobs on a background QThread.

:class:`TrainingWorker` lives in a QThread that lasts as long as the window. Its public methods are
called from the GUI thread. Each command is a job queued to the worker's thread: train a run,
open a checkpoint, encode the map, save a checkpoint. Pause, stop and beta are controls of the
running trainer instead: flags read between two steps, because the worker's thread is busy
running the training job. A map or save job asked for during a run needs the weights between two
steps: the run lends its thread to such jobs at each of the trainer's snapshots (the training
loop itself looks only at stop and pause). Only plain data comes back: Progress snapshots,
weight Snapshots (copied state dicts), EncodedSets, RunInfos, strings.

torch and the engine are imported on the worker's thread (its first job, ``warm_up``), not by
this module: the window opens before torch has loaded, which takes seconds.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from vaegui.core.config import DataConfig, RunConfig
from vaegui.core.errors import VaeguiError, describe_error
from vaegui.core.loss_history import History
from vaegui.core.latent import Snapshot, encoded_set
from vaegui.core.progress import Progress, steps_per_epoch, steps_per_epoch_from
from vaegui.core.resume import fixed_differences
from vaegui.core.run_folder import RunFolder, default_runs_dir, new_run_path
from vaegui.core.run_info import RunInfo, examples_of
from vaegui.core.thread_governor import pin_threads

from .progress_throttle import ProgressThrottle
from .torch_threads import yield_to_the_window

if TYPE_CHECKING:
    from vaegui.core.dataset_loader import ImageData
    from vaegui.core.model import VAE
    from vaegui.core.run_writer import RunWriter
    from vaegui.core.trainer import Trainer


class _MapProgress:
    """Says how far encoding the map has come, at most every MAP_PROGRESS_S (a million images
    take seconds), and that it is done when it said anything: the last count must not stay in
    the status bar beside the finished map. A quick map says nothing."""

    def __init__(self, say):
        self._say = say
        self._last = time.monotonic()
        self._said = False

    def __call__(self, done: int, total: int) -> None:
        if time.monotonic() - self._last >= MAP_PROGRESS_S:
            self._last = time.monotonic()
            self._said = True
            self._say(f"Encoding the map: {done:,} of {total:,} images")

    def finish(self, total: int) -> None:
        if self._said:
            self._say(f"Encoded the map: {total:,} images")


@dataclass(frozen=True)
class _Job:
    work: Callable[[], None]
    between_steps: bool  # a run lends its thread to it at a snapshot (a map, a save)
    kind: str = ""  # jobs of a kind wait at most once in the queue ("map")


def take_snapshot(model: VAE, step: int) -> Snapshot:
    """A copy of all the weights (the explorer reconstructs with the encoder too)."""
    from vaegui.core.model import model_state

    return Snapshot(model.config, model.image_shape, model_state(model), step)


MAP_PROGRESS_S = 0.5  # encoding the map reports its progress at most this often


class TrainingWorker(QObject):
    ready = Signal(str)  # torch and the engine are loaded: the device "auto" trains on
    runStarted = Signal(object)  # RunInfo
    progressed = Signal(object)  # Progress, with the rows of held-back snapshots merged in
    snapshotTaken = Signal(object)  # Snapshot: a CPU copy of the weights
    mapEncoded = Signal(object)  # EncodedSet
    checkpointOpened = Signal(object)  # RunInfo
    checkpointSaved = Signal(str)
    saveFailed = Signal(str, str)  # the path and why (also sent as ``failed``, for the user)
    statusChanged = Signal(str)
    dataSkipped = Signal(str, str)  # after each load: a summary and every skipped file with its reason ("" if none)
    failed = Signal(str)
    runFinished = Signal(object)  # the final Progress; None: it failed, or stopped before its first step

    _jobQueued = Signal()  # one per job, queued into the worker's thread (see _submit)

    def __init__(self, *, torch_threads: int | None = None, progress_interval: float = 0.25,
                 decoder_interval: float = 1.0, report_interval: float = 0.05):
        """``progress_interval``: least seconds between progressed signals; ``decoder_interval``:
        between decoder snapshots; ``report_interval``: between the trainer's snapshots, i.e. how
        often a run lends its thread to a waiting map or save job.

        On a 2-core machine every millisecond the GUI thread spends on these signals is taken
        from training, so the defaults are modest: 4 progress updates a second (the loss plot
        redraws at most 2 of them) and 1 decoder snapshot; see
        benchmarks/gui_responsiveness.py."""
        super().__init__()
        self.torch_threads = torch_threads
        self.native_thread_id: int | None = None  # the worker thread's, once it has started
        self.report_interval = report_interval
        self.progress_interval = progress_interval
        self.decoder_interval = decoder_interval
        self._data: ImageData | None = None
        self._data_config: DataConfig | None = None
        self._trainer: Trainer | None = None  # the running trainer (read by GUI-thread controls)
        self._model: VAE | None = None  # what the map encodes when idle
        self._state_source = None  # () -> state dict of the last run or opened checkpoint, when idle
        self._resume: dict | None = None  # an opened checkpoint that Start continues
        self._resume_path: str | None = None  # ...its file
        self._resume_folder: Path | None = None  # ...and the run folder it belongs to, if any
        self.runs_dir: Path = default_runs_dir()  # where new runs go (the window sets the user's)
        self._stop = threading.Event()
        self._pause = threading.Event()
        self._closing = threading.Event()
        self._no_final_map = threading.Event()
        self._jobs_lock = threading.Lock()
        self._jobs: deque[_Job] = deque()
        self._beta: float | None = None
        self._map_source: tuple[str, int | None] = ("test", None)
        self._map_step = -1  # training step of the weights the current map was encoded with
        self._jobQueued.connect(self._on_jobQueued, Qt.ConnectionType.QueuedConnection)

    # ---- GUI-thread API ------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Load torch and the engine on the worker's thread; ``ready`` follows. Calls queued
        after this one (a Start, an Open) wait for it."""
        self._submit(_Job(self._warm_up, between_steps=False))

    def start(self, config: RunConfig) -> None:
        self._stop.clear()
        self._pause.clear()
        self._no_final_map.clear()
        self._beta = config.train.beta
        self._submit(_Job(partial(self._run, config), between_steps=False))

    def open_checkpoint(self, path: str, data_dir: str | None = None, epochs: int | None = None) -> None:
        """Open a run folder or a checkpoint; ``epochs`` replaces its planned epochs (to train on)."""
        self._submit(_Job(partial(self._open, str(path), data_dir, epochs), between_steps=False))

    def pause(self) -> None:
        self._pause.set()
        if (t := self._trainer) is not None:
            t.pause()

    def resume(self) -> None:
        self._pause.clear()
        if (t := self._trainer) is not None:
            t.resume()

    def stop(self, final_map: bool = True) -> None:
        """Stop the run within one step; ``final_map`` False skips the map of its last weights
        (the window is about to close)."""
        if not final_map:
            self._no_final_map.set()
        self._stop.set()
        self._pause.clear()
        if (t := self._trainer) is not None:
            t.stop()

    def shutdown(self) -> None:
        """Stop everything as fast as possible; the window then quits and waits for the thread."""
        self._closing.set()
        self.stop()

    def set_beta(self, beta: float) -> None:
        self._beta = beta
        if (t := self._trainer) is not None:
            t.beta = beta  # a plain float: assigning it is atomic

    def set_map_source(self, split: str, limit: int | None) -> None:
        self._map_source = (split, limit)

    def refresh_map(self) -> None:
        self._submit(_Job(self._map_job, between_steps=True, kind="map"))

    def save_checkpoint(self, path: str) -> None:
        self._submit(_Job(partial(self._save, str(path)), between_steps=True))

    def _submit(self, job: _Job) -> None:
        with self._jobs_lock:
            if job.kind and any(j.kind == job.kind for j in self._jobs):
                return  # one waiting map job encodes the latest weights for every request
            self._jobs.append(job)
        self._jobQueued.emit()

    # ---- worker thread -------------------------------------------------------------------------
    @Slot()
    def _on_jobQueued(self) -> None:
        """Run the oldest waiting job (one signal per job; a run may have done it already)."""
        with self._jobs_lock:
            job = self._jobs.popleft() if self._jobs else None
        if job is not None:
            job.work()

    def _run_jobs_between_steps(self) -> None:
        """The map and save jobs that came during a run, with the weights of this step (a Start
        or an Open waits until the run has ended)."""
        with self._jobs_lock:
            ready = [j for j in self._jobs if j.between_steps]
            for job in ready:
                self._jobs.remove(job)
        for job in ready:
            job.work()

    def _warm_up(self) -> None:
        self.native_thread_id = threading.get_native_id()
        yield_to_the_window()  # before this thread's first torch work starts its pool
        try:
            import torch

            # Every module a run or an Open needs, so that neither waits for an import later.
            import vaegui.core.checkpoint  # noqa: F401
            import vaegui.core.dataset_loader  # noqa: F401
            import vaegui.core.decoder  # noqa: F401
            import vaegui.core.run_reader  # noqa: F401
            import vaegui.core.trainer  # noqa: F401
            from vaegui.core.device import describe_device, resolve_device

            if self.torch_threads is None:  # this thread's own default: every core
                self.torch_threads = torch.get_num_threads()
            device = describe_device(resolve_device("auto"))
        except Exception as exc:  # noqa: BLE001 - a broken install: say so, the window stays
            self._fail(exc)
            device = "unavailable"
        self.ready.emit(device)
        if device != "unavailable":
            # After ready, while the window idles: torch.optim's first use imports as much as
            # torch itself, which a Start would otherwise wait for.
            from vaegui.core.optimizer import prepare

            prepare()

    def _use_threads(self) -> None:
        # torch's CPU thread count is per thread: set this thread's own (see core.thread_governor). A
        # run then sets the count its settings ask for, "auto" tuning it while training runs.
        if self.torch_threads:
            pin_threads(self.torch_threads)

    def _run(self, config: RunConfig) -> None:
        self._use_threads()
        final = None
        try:
            data = self._load_data(config.data)
            if not self._stop.is_set():
                final = self._train(config, data)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message, the app goes on
            self._fail(exc)
        finally:
            from vaegui.core.device import release_cached_memory

            self._trainer = None
            release_cached_memory()
        self.runFinished.emit(final)

    def _train(self, config: RunConfig, data: ImageData) -> Progress:
        from vaegui.core.run_writer import RunWriter
        from vaegui.core.trainer import Trainer

        trainer = Trainer(config, data, report_interval=self.report_interval, keep_test_means=True)
        resumed = self._resume_into(trainer, config)
        if resumed is not None and resumed[1] is not None:
            run_dir, checkpoint = resumed[1], resumed[0]  # on in the opened run's own folder
        else:
            run_dir, checkpoint = new_run_path(self.runs_dir, data.name), None
        with RunFolder(run_dir).open(resume=resumed is not None, resumed_checkpoint=checkpoint) as folder:
            writer = RunWriter(folder, trainer)
            self._trainer, self._model, self._map_step = trainer, trainer.model, -1
            self._state_source = trainer.state_dict
            if self._beta is not None:
                trainer.beta = self._beta
            # Controls that came in before the trainer existed.
            if self._stop.is_set():
                trainer.stop()
            elif self._pause.is_set():
                trainer.pause()
            self.runStarted.emit(RunInfo(
                config, data.image_shape, data.class_names, trainer.steps_per_epoch,
                trainer.history.copy(), "train", trainer.step, examples_of(data), str(folder.path)))
            self.snapshotTaken.emit(take_snapshot(trainer.model, trainer.step))
            final = self._loop(trainer, writer)
            writer.save()  # nothing is lost: a stop, a close or Ctrl-C mid-epoch saves too
            writer.close()
        self._run_jobs_between_steps()  # saves asked for during the last steps
        if not (self._closing.is_set() or self._no_final_map.is_set()) and trainer.step != self._map_step:
            self._encode_map()
        return final

    def _loop(self, trainer: Trainer, writer: RunWriter) -> Progress:
        throttle = ProgressThrottle(self.progress_interval)
        decoder_time, decoder_step = time.perf_counter(), trainer.step
        p = None
        for p in trainer.run():
            writer.record(p)
            if (out := throttle.offer(p)) is not None:
                self.progressed.emit(out)
            now = time.perf_counter()
            if trainer.step != decoder_step and (p.done or now - decoder_time >= self.decoder_interval):
                self.snapshotTaken.emit(take_snapshot(trainer.model, trainer.step))
                decoder_time, decoder_step = now, trainer.step
            if p.done:
                break
            if p.eval is not None and not self._closing.is_set():
                self._encode_map()  # the epoch's map, from the means its evaluation has just made
            self._run_jobs_between_steps()
        return p

    def _resume_into(self, trainer: Trainer, config: RunConfig) -> tuple[str, Path | None] | None:
        """Continue the opened checkpoint, under the one resume rule; returns its file and run
        folder when it does (None: a new run)."""
        state, self._resume = self._resume, None
        if state is None:
            return None
        differences = fixed_differences(RunConfig.from_dict(state["config"]), config)
        if differences:
            _, name, old, new = differences[0]
            self.statusChanged.emit(f"Starting a new run: {name} is {new}, the opened checkpoint's is "
                                    f"{old}, and a resumed run cannot change it")
            return None
        trainer.load_state_dict(state)
        if trainer.step >= trainer.total_steps:
            self.statusChanged.emit(f"The checkpoint has already trained {trainer.step} steps; "
                                    "raise Epochs to train further")
        else:
            self.statusChanged.emit(f"Resuming from step {trainer.step:,}")
        return self._resume_path, self._resume_folder

    def _load_data(self, cfg: DataConfig) -> ImageData:
        if self._data is None or self._data_config != cfg:
            self._data = None  # free the old set before loading a new one
            self.statusChanged.emit(f"Loading {cfg.dataset}…")
            from vaegui.core.dataset_loader import load_dataset

            self._data, self._data_config = load_dataset(cfg), cfg
            d = self._data
            self.statusChanged.emit(f"Loaded {d.name}: {len(d.train_images):,} training and "
                                    f"{len(d.test_images):,} test images {d.image_shape}")
            reasons = d.skip_reasons or ("unreadable",) * len(d.skipped)
            self.dataSkipped.emit(d.skipped_summary(), "\n".join(
                f"{path}: {reason}" for path, reason in zip(d.skipped, reasons)))
        return self._data

    def _map_job(self) -> None:
        if self._trainer is None:
            self._use_threads()
        try:
            self._encode_map()
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message, the app goes on
            self._fail(exc)

    def _encode_map(self) -> None:
        if self._model is None or self._data is None:
            return
        split, limit = self._map_source
        trainer = self._trainer
        step = trainer.step if trainer is not None else self._map_step
        means = trainer.test_means if trainer is not None else None
        if split == "test" and limit is None and means is not None and means.step == step:
            # The epoch's test evaluation has just encoded these very images with these weights.
            encoded = encoded_set(self._data, means.means, split, step=step)
        else:
            from vaegui.core.decoder import encode_set

            progress = _MapProgress(self.statusChanged.emit)
            encoded = encode_set(self._model, self._data, split, limit, step=max(step, 0), progress=progress)
            progress.finish(len(encoded.latents))
        self._map_step = step
        self.mapEncoded.emit(encoded)

    def _save(self, path: str) -> None:
        trainer = self._trainer
        source = trainer.state_dict if trainer is not None else self._state_source
        try:
            if trainer is None:
                self._use_threads()
            from vaegui.core.checkpoint import save_checkpoint

            if source is None:
                raise VaeguiError("Nothing to save yet: train a model or open a checkpoint first.")
            save_checkpoint(path, source())
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message, the app goes on
            if not isinstance(exc, VaeguiError):
                traceback.print_exception(exc)
            self.saveFailed.emit(path, describe_error(exc))
            self.failed.emit(describe_error(exc))
            return
        self.checkpointSaved.emit(path)

    def _open(self, path: str, data_dir: str | None, epochs: int | None) -> None:
        """Open a run folder (its latest checkpoint) or a checkpoint file."""
        from vaegui.core.checkpoint import model_from_checkpoint
        from vaegui.core.run_paths import run_of
        from vaegui.core.run_reader import load_run_checkpoint

        self._use_threads()
        try:
            checkpoint, run_dir = run_of(path)
            path = str(checkpoint)
            state = load_run_checkpoint(path, run_dir)  # checked against its run.json too
            self._resume_path, self._resume_folder = path, run_dir
            config, model = model_from_checkpoint(state, path)
            if data_dir:
                config = config.replace(data={"data_dir": data_dir})
                state = {**state, "config": config.to_dict()}
            self._model, self._resume, self._map_step = model, state, int(state["step"])
            self._state_source = lambda: state
            try:
                data, problem = self._load_data(config.data), None
            except VaeguiError as exc:
                data, problem = None, exc
            history = History.from_dict(state["history"])
            shown = config.replace(train={"epochs": epochs}) if epochs else config
            self.checkpointOpened.emit(RunInfo(
                shown, tuple(int(v) for v in state["dataset"]["image_shape"]),
                tuple(state["dataset"]["class_names"]), _steps_per_epoch(history, data, config),
                history, "checkpoint", int(state["step"]), examples_of(data),
                None if run_dir is None else str(run_dir), path))
            self.snapshotTaken.emit(take_snapshot(model, int(state["step"])))
            if problem is not None:
                self.failed.emit(f"The model is open, but its map needs the data: {problem}")
            else:
                self._encode_map()
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if not isinstance(exc, VaeguiError):
            traceback.print_exception(exc)  # unexpected: keep the traceback for a bug report
        self.failed.emit(describe_error(exc))


def _steps_per_epoch(history: History, data: ImageData | None, config: RunConfig) -> int:
    """Steps per epoch of a checkpoint's run: exact from the data, else from its first evaluation."""
    if data is not None:
        return steps_per_epoch(len(data.train_images), config.train.batch_size)
    first = history.evals[0] if history.evals else None
    return steps_per_epoch_from(first.step, first.epoch) if first else 1


# Worker threads a close left running (a long training step): Qt aborts the process when a
# running QThread is destroyed, which the window's garbage collection would do.
_LEFT_RUNNING: list[tuple[QThread, QObject]] = []


def keep_until_finished(thread: QThread, worker: QObject) -> None:
    """Keep a worker and its thread, left running by a close, until the thread has ended."""
    _LEFT_RUNNING[:] = [(t, w) for t, w in _LEFT_RUNNING if t.isRunning()]  # the ended ones go
    _LEFT_RUNNING.append((thread, worker))
