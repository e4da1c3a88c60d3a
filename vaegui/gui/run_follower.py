"""Following a run folder that another process writes (a `vaegui train` in a terminal, a job on
a server whose folder is mounted), on a thread of its own.

It sends what the training worker sends, with the same signal shapes: Progress snapshots (from
``core.following.follow``, the iterator a local trainer's loop has), a weight Snapshot and a map
when an epoch's checkpoint lands. So the window feeds the same panels from either.

Whatever the writer's folder does (a damaged line, a file replaced by a pipe or a folder, the
folder deleted, its model changed under it), the follower says what happened and stops
following: every read goes through the run reader, which turns each of these into one
RunFolderError within a read, and the loop ends on the first. A skipped metrics line is not an
end: it is counted and said (``statusChanged``), and the run goes on.
"""

from __future__ import annotations

import threading
import traceback
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QThread, Qt, Signal, Slot

from vaegui.core.errors import VaeguiError, describe_error
from vaegui.core.loss_history import History
from vaegui.core.latent import Snapshot, encoded_set
from vaegui.core.run_info import RunInfo, examples_of
from vaegui.core.thread_governor import pin_threads

from .progress_throttle import ProgressThrottle

if TYPE_CHECKING:
    from vaegui.core.dataset_loader import ImageData
    from vaegui.core.run_reader import RunReader

POLL_S = 0.5  # how often the folder is read for new lines


class RunFollower(QObject):
    started = Signal(object)  # RunInfo of the followed run
    progressed = Signal(object)  # Progress
    snapshotTaken = Signal(object)  # Snapshot
    mapEncoded = Signal(object)  # EncodedSet
    writerChanged = Signal(bool)  # whether a process is writing the folder
    statusChanged = Signal(str)  # news for the status bar (metrics lines skipped)
    failed = Signal(str)
    finished = Signal()

    _followQueued = Signal(str, object)

    def __init__(self, progress_interval: float = 0.25):
        super().__init__()
        self.progress_interval = progress_interval
        self.stopped_because = ""  # why the last follow ended, when it failed
        self.skipped_note = ""  # how many metrics lines it skipped, when it did
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
        from vaegui.core.dataset_loader import load_dataset
        from vaegui.core.run_reader import RunReader

        pin_threads(1)  # a viewer: never a second full OpenMP pool beside training (core.thread_governor)
        self.stopped_because = self.skipped_note = ""
        try:
            reader = RunReader(path)
            config = reader.config
            if data_dir:
                config = config.replace(data={"data_dir": data_dir})
            try:
                data, problem = load_dataset(config.data, download=False), None
            except VaeguiError as exc:
                data, problem = None, exc
            d = reader.description
            self.started.emit(RunInfo(config, d.image_shape, d.class_names, reader.steps_per_epoch,
                                      History(), "follow", 0, examples_of(data), str(reader.path)))
            if problem is not None:
                self.failed.emit(f"Following {reader.path}: the map needs the data: {problem}")
            self._loop(reader, config, data)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message, the app goes on
            if not isinstance(exc, VaeguiError):
                traceback.print_exception(exc)
            self.stopped_because = describe_error(exc)
            self.failed.emit(self.stopped_because)
        self.finished.emit()

    def _loop(self, reader: RunReader, config, data: ImageData | None) -> None:
        from vaegui.core.following import follow

        throttle = ProgressThrottle(self.progress_interval)
        alive = None
        checkpoint_mtime = None
        skipped = [0]

        def pause(seconds: float) -> None:
            # Between reads, also when a read found only lines it skipped (no snapshot then).
            if reader.skipped_since != skipped[0]:
                skipped[0] = n = reader.skipped_since
                self.skipped_note = (f"{n:,} line{'s' * (n > 1)} of metrics.jsonl skipped "
                                     f"({reader.skip_reason.split(': ', 2)[-1]})")
                self.statusChanged.emit(self.skipped_note)
            self._stop.wait(seconds)

        for p in follow(reader, poll_s=POLL_S, should_stop=self._stop.is_set, sleep=pause):
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
        """The weights and the map of the epoch that just landed (the latest checkpoint's,
        which must agree with run.json: a model changed under the follower ends it). The
        checkpoint is replaced atomically, so a failure is damage, not a write in progress."""
        state = reader.load_checkpoint()
        step = int(state["step"])
        self.snapshotTaken.emit(Snapshot(config.model, reader.description.image_shape, state["model"], step))
        epochs = reader.map_epochs()
        if data is not None and epochs:
            shown = epoch if epoch in epochs else epochs[-1]
            self.mapEncoded.emit(encoded_set(data, reader.map_means(shown), "test", step=step))


def _mtime(path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None
