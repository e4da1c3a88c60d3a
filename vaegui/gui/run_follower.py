"""Following a run folder that another process writes (a `vaegui train` in a terminal, a job on
a server whose folder is mounted), on a thread of its own.

It sends what the training worker sends, with the same signal shapes: Progress snapshots (from
``core.run_reader.follow``, the iterator a local trainer's loop has), a weight Snapshot and a map
when an epoch's checkpoint lands. So the window feeds the same panels from either.
"""

from __future__ import annotations

import threading
import traceback
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QThread, Qt, Signal, Slot

from vaegui.core.errors import VaeguiError, describe_error
from vaegui.core.history import History
from vaegui.core.latent import Snapshot, encoded_set
from vaegui.core.run_info import RunInfo, examples_of
from vaegui.core.threads import pin_threads

from .progress_throttle import ProgressThrottle

if TYPE_CHECKING:
    from vaegui.core.data import ImageData
    from vaegui.core.run_reader import RunReader

POLL_S = 0.5  # how often the folder is read for new lines


class RunFollower(QObject):
    started = Signal(object)  # RunInfo of the followed run
    progressed = Signal(object)  # Progress
    snapshotTaken = Signal(object)  # Snapshot
    mapEncoded = Signal(object)  # EncodedSet
    writerChanged = Signal(bool)  # whether a process is writing the folder
    failed = Signal(str)
    finished = Signal()

    _followQueued = Signal(str, object)

    def __init__(self, progress_interval: float = 0.25):
        super().__init__()
        self.progress_interval = progress_interval
        self._stop = threading.Event()
        self.thread = QThread()
        self.thread.setObjectName("vaegui-follow")
        self.moveToThread(self.thread)
        self._followQueued.connect(self._follow, Qt.ConnectionType.QueuedConnection)
        self.thread.start()

    # ---- GUI thread ---------------------------------------------------------------------------
    def follow(self, path: str, data_dir: str | None = None) -> None:
        self._stop.clear()
        self._followQueued.emit(str(path), data_dir)

    def stop(self) -> None:
        self._stop.set()

    def shutdown(self, wait_ms: int | None = None) -> bool:
        self._stop.set()
        self.thread.quit()
        return self.thread.wait() if wait_ms is None else self.thread.wait(wait_ms)

    # ---- its thread ---------------------------------------------------------------------------
    @Slot(str, object)
    def _follow(self, path: str, data_dir: str | None) -> None:
        # torch here, on this thread, not on import: the window opens before torch is loaded.
        from vaegui.core.data import load_dataset
        from vaegui.core.run_reader import RunReader

        pin_threads(1)  # a viewer: never a second full OpenMP pool beside training (core.threads)
        try:
            reader = RunReader(path)
            config = reader.config
            if data_dir:
                config = config.replace(data={"data_dir": data_dir})
            try:
                data, problem = load_dataset(config.data, download=False), None
            except VaeguiError as exc:
                data, problem = None, exc
            info = reader.info["dataset"]
            self.started.emit(RunInfo(config, tuple(info["image_shape"]), tuple(info["class_names"]),
                                      reader.steps_per_epoch, History(), "follow", 0,
                                      examples_of(data), str(reader.path)))
            if problem is not None:
                self.failed.emit(f"Following {reader.path}: the map needs the data: {problem}")
            self._loop(reader, config, data)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message, the app goes on
            if not isinstance(exc, VaeguiError):
                traceback.print_exception(exc)
            self.failed.emit(describe_error(exc))
        self.finished.emit()

    def _loop(self, reader: RunReader, config, data: ImageData | None) -> None:
        from vaegui.core.run_reader import follow

        throttle = ProgressThrottle(self.progress_interval)
        alive = None
        checkpoint_mtime = None
        for p in follow(reader, poll_s=POLL_S, should_stop=self._stop.is_set, sleep=self._stop.wait):
            if (out := throttle.offer(p)) is not None:
                self.progressed.emit(out)
            if (now := reader.writer_alive()) != alive:
                alive = now
                self.writerChanged.emit(alive)
            mtime = _mtime(reader.checkpoint)
            if p.eval is not None or (mtime is not None and checkpoint_mtime is None):
                checkpoint_mtime = mtime
                self._take_epoch(reader, config, data, p.eval.epoch if p.eval else None)

    def _take_epoch(self, reader: RunReader, config, data: ImageData | None, epoch: int | None) -> None:
        """The weights and the map of the epoch that just landed (the latest checkpoint's)."""
        from vaegui.core.checkpoint import load_checkpoint

        try:
            state = load_checkpoint(reader.checkpoint)
        except VaeguiError as exc:  # being replaced right now, or damaged: say so, go on
            self.failed.emit(str(exc))
            return
        step = int(state["step"])
        shape = tuple(int(v) for v in state["dataset"]["image_shape"])
        self.snapshotTaken.emit(Snapshot(config.model, shape, state["model"], step))
        epochs = reader.map_epochs()
        if data is not None and epochs:
            shown = epoch if epoch in epochs else epochs[-1]
            self.mapEncoded.emit(encoded_set(data, reader.map_means(shown), "test", step=step))


def _mtime(path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None
