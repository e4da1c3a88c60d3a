"""Training, map encoding and checkpoint I/O on a background QThread.

:class:`TrainingWorker` lives in a QThread that lasts as long as the window. Its public methods are
called from the GUI thread: control methods (pause, stop, beta, map and save requests) only set
flags, because the worker's event loop is blocked while a run's loop runs; the others queue a call
into the worker thread. Only plain data comes back: Progress snapshots, weight Snapshots (copied
state dicts), EncodedSets, strings.

torch and the engine are imported on the worker's thread (its first queued call, ``warm_up``),
not by this module: the window opens before torch has loaded, which takes seconds.
"""

from __future__ import annotations

import math
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal, Slot

from vaegui.core.config import DataConfig, RunConfig
from vaegui.core.errors import VaeguiError
from vaegui.core.history import History
from vaegui.core.latent import Snapshot, encoded_set, example_indices
from vaegui.core.progress import Progress
from vaegui.core.resume import fixed_differences
from vaegui.core.run_folder import METRICS_NAME, RunFolder, default_runs_dir, new_run_path
from vaegui.core.threads import pin_threads

from .progress_throttle import ProgressThrottle
from .threads import yield_to_the_window

if TYPE_CHECKING:
    from vaegui.core.data import ImageData
    from vaegui.core.model import VAE
    from vaegui.core.run_writer import RunWriter
    from vaegui.core.trainer import Trainer


@dataclass(frozen=True)
class RunInfo:
    """What the window needs to know when a run starts or a checkpoint opens."""

    config: RunConfig
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    steps_per_epoch: int
    history: History | None  # a copy of the losses so far (resumed run or checkpoint)
    source: str  # "train" or "checkpoint"
    step: int = 0  # training steps already done
    examples: np.ndarray | None = None  # (n, C, H, W) uint8 test images to reconstruct, if loaded
    run_dir: str | None = None  # the run folder it trains into, or the one it was opened from


EXAMPLES = 64  # test images sent for reconstructions (the explorer shows up to this many)


def examples_of(data: ImageData | None) -> np.ndarray | None:
    """A fixed, varied set of test images (a view of the dataset, not a copy)."""
    if data is None or not len(data.test_images):
        return None
    return data.test_images.numpy()[example_indices(data.test_labels.numpy(), EXAMPLES)]


def take_snapshot(model: VAE, step: int) -> Snapshot:
    """A copy of all the weights (the explorer reconstructs with the encoder too)."""
    from vaegui.core.model import model_state

    return Snapshot(model.config, model.image_shape, model_state(model), step)


def describe_error(exc: BaseException) -> str:
    """A message a user can act on, for any exception raised by a run."""
    torch = sys.modules.get("torch")  # not imported yet: the error cannot be torch's
    if torch is not None and isinstance(exc, torch.OutOfMemoryError):
        return ("The GPU ran out of memory. Try a smaller batch size or model, or the cpu device.\n"
                f"({str(exc).splitlines()[0] if str(exc) else 'out of memory'})")
    if isinstance(exc, VaeguiError):
        return str(exc)
    return f"Unexpected error: {type(exc).__name__}: {exc}"


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
    runFinished = Signal(object)  # the final Progress, or None when the run failed

    # Queued into the worker thread (connected with QueuedConnection in __init__).
    _warmUpQueued = Signal()
    _startQueued = Signal(object)
    _openQueued = Signal(str, object)
    _serveQueued = Signal()

    def __init__(self, *, torch_threads: int | None = None, progress_interval: float = 0.25,
                 decoder_interval: float = 1.0, report_interval: float = 0.05):
        """``progress_interval``: least seconds between progressed signals; ``decoder_interval``:
        between decoder snapshots; ``report_interval``: between the trainer's snapshots, i.e. how
        often the loop looks at map and save requests.

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
        self._map_request = threading.Event()
        self._save_lock = threading.Lock()
        self._save_path: str | None = None
        self._beta: float | None = None
        self._map_source: tuple[str, int | None] = ("test", None)
        self._map_step = -1  # training step of the weights the current map was encoded with
        self._warmUpQueued.connect(self._warm_up, Qt.ConnectionType.QueuedConnection)
        self._startQueued.connect(self._run, Qt.ConnectionType.QueuedConnection)
        self._openQueued.connect(self._open, Qt.ConnectionType.QueuedConnection)
        self._serveQueued.connect(self._serve_idle, Qt.ConnectionType.QueuedConnection)

    # ---- GUI-thread API ------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Load torch and the engine on the worker's thread; ``ready`` follows. Calls queued
        after this one (a Start, an Open) wait for it."""
        self._warmUpQueued.emit()

    def start(self, config: RunConfig) -> None:
        self._stop.clear()
        self._pause.clear()
        self._no_final_map.clear()
        self._beta = config.train.beta
        self._startQueued.emit(config)

    def open_checkpoint(self, path: str, data_dir: str | None = None) -> None:
        self._openQueued.emit(str(path), data_dir)

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
        self._map_request.set()
        self._serveQueued.emit()  # served at once when idle, else by the loop between snapshots

    def save_checkpoint(self, path: str) -> None:
        with self._save_lock:
            self._save_path = str(path)
        self._serveQueued.emit()

    # ---- worker thread -------------------------------------------------------------------------
    @Slot()
    def _warm_up(self) -> None:
        self.native_thread_id = threading.get_native_id()
        yield_to_the_window()  # before this thread's first torch work starts its pool
        try:
            import torch

            # Every module a run or an Open needs, so that neither waits for an import later.
            import vaegui.core.checkpoint  # noqa: F401
            import vaegui.core.data  # noqa: F401
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
        # torch's CPU thread count is per thread: set this thread's own (see core.threads). A
        # run then sets the count its settings ask for, "auto" tuning it while training runs.
        if self.torch_threads:
            pin_threads(self.torch_threads)

    @Slot(object)
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
        self._serve_save()
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
            if (p.eval is not None or self._map_request.is_set()) and not self._closing.is_set():
                self._encode_map()  # at every epoch end, and on request
            self._serve_save(trainer)
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
            from vaegui.core.data import load_dataset

            self._data, self._data_config = load_dataset(cfg), cfg
            d = self._data
            self.statusChanged.emit(f"Loaded {d.name}: {len(d.train_images):,} training and "
                                    f"{len(d.test_images):,} test images {d.image_shape}")
            reasons = d.skip_reasons or ("unreadable",) * len(d.skipped)
            self.dataSkipped.emit(d.skipped_summary(), "\n".join(
                f"{path}: {reason}" for path, reason in zip(d.skipped, reasons)))
        return self._data

    def _encode_map(self) -> None:
        self._map_request.clear()
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

            encoded = encode_set(self._model, self._data, split, limit, step=max(step, 0))
        self._map_step = step
        self.mapEncoded.emit(encoded)

    def _serve_save(self, trainer: Trainer | None = None) -> None:
        with self._save_lock:
            path, self._save_path = self._save_path, None
        if path is None:
            return
        source = trainer.state_dict if trainer is not None else self._state_source
        from vaegui.core.checkpoint import save_checkpoint

        try:
            if source is None:
                raise VaeguiError("Nothing to save yet: train a model or open a checkpoint first.")
            save_checkpoint(path, source())
        except VaeguiError as exc:
            self.saveFailed.emit(path, str(exc))
            self.failed.emit(str(exc))
            return
        self.checkpointSaved.emit(path)

    @Slot()
    def _serve_idle(self) -> None:
        # Requests queued while a run's loop was busy were served there already.
        if self._trainer is not None:
            return
        self._use_threads()
        try:
            self._serve_save()
            if self._map_request.is_set():
                self._encode_map()
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    @Slot(str, object)
    def _open(self, path: str, data_dir: str | None) -> None:
        """Open a run folder (its latest checkpoint) or a checkpoint file."""
        from vaegui.core.checkpoint import load_checkpoint, model_from_checkpoint

        self._use_threads()
        try:
            path, run_dir = run_of(path)
            state = load_checkpoint(path)
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
            self.checkpointOpened.emit(RunInfo(
                config, tuple(int(v) for v in state["dataset"]["image_shape"]),
                tuple(state["dataset"]["class_names"]), _steps_per_epoch(history, data, config),
                history, "checkpoint", int(state["step"]), examples_of(data),
                None if run_dir is None else str(run_dir)))
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


def run_of(path: str) -> tuple[str, Path | None]:
    """(checkpoint file, run folder or None) of what File > Open was given: a run folder means
    its latest checkpoint; a checkpoint inside a run folder belongs to that run."""
    from vaegui.core.run_reader import RunReader
    from vaegui.core.run_writer import RUN_JSON

    target = Path(path)
    if target.is_dir():
        return str(RunReader(target).checkpoint), target
    parent = target.parent
    if (parent / RUN_JSON).is_file() or (parent / METRICS_NAME).is_file():
        return str(target), parent
    return str(target), None


def _steps_per_epoch(history: History, data: ImageData | None, config: RunConfig) -> int:
    """Steps per epoch of a checkpoint's run: exact from the data, else from its first evaluation."""
    if data is not None:
        return math.ceil(len(data.train_images) / config.train.batch_size)
    first = history.evals[0] if history.evals else None
    return max(1, first.step // max(1, first.epoch)) if first else 1
