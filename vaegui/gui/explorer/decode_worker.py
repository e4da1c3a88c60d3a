"""Decoding for the explorer's views on a thread of its own, where only the newest request of
each channel counts.

A view registers a channel ("point", "strip", ...) with a handler and sends requests: a job is a
function of a :class:`~vaegui.core.decoder.Decoder` that returns plain data (numpy arrays). A
request that is still waiting when a newer one of its channel comes is dropped, and a result that
arrives after a newer request was sent is not delivered, so a drag or an animation never queues up
decodes and the GUI thread never decodes itself. New weights re-run the last request of every
channel, so every view follows training.

A big job (a grid of hundreds of images) is written as a generator function that yields between
chunks and returns its result (``grid = yield from decoder.tile_in_chunks(z, nrow)``). Between two
chunks a request of a more urgent channel runs first, so a click never waits for a whole grid;
a chunked job whose channel got a newer request, was cancelled or got new weights is dropped
half-way instead of finishing work nobody will see.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from vaegui.core.errors import VaeguiError
from vaegui.core.explorer import ExplorerModel
from vaegui.core.latent import Snapshot
from vaegui.core.thread_governor import pin_threads

if TYPE_CHECKING:
    from vaegui.core.decoder import Decoder

Job = Callable[["Decoder"], Any]


@dataclass(frozen=True)
class DecodeFailure:
    """What a handler gets instead of a result when its job raised."""

    message: str


@dataclass
class _Channel:
    handler: Callable[[Any], None]
    priority: int  # lower runs first when several channels wait
    latest: tuple[int, Job] | None = None  # (sequence, job) of the newest request
    pending: bool = False  # the newest request waits to run
    started: tuple[int, Generator] | None = None  # (sequence, chunked job) part-way through

    def has_work(self) -> bool:
        """A request waits to run, or a chunked job to go on."""
        return self.pending or self.started is not None


class _Thread(QThread):
    def __init__(self, target: Callable[[], None]):
        super().__init__()
        self.setObjectName("vaegui-decode")
        self._target = target

    def run(self) -> None:
        self._target()

    def release_target(self) -> None:
        """Forget the target once the thread has finished."""
        self._target = None


class DecodeWorker(QObject):
    # Emitted from the decoding thread; the worker lives in the GUI thread, so Qt queues it there.
    _finished = Signal(str, int, object)

    def __init__(self, model: ExplorerModel | None = None, parent: QObject | None = None):
        """With a ``model``, decodes with the model's snapshot of the weights as it changes."""
        super().__init__(parent)
        self._lock = threading.Condition()
        self._channels: dict[str, _Channel] = {}
        self._snapshot: Snapshot | None = None
        self._architecture = None  # of the weights decoded with (None: none)
        self._snapshot_changed = False
        self._decoder: Decoder | None = None  # used in the decoding thread only
        self._sequence = 0
        self._stopping = False
        self.dropped = 0  # requests replaced before they ran (read by tests and benchmarks)
        self.executed = 0
        self.failures: list[str] = []  # what every failed job raised (read by tests)
        self._finished.connect(self._on_finished)
        self._thread = _Thread(self._serve)
        self._thread.start()
        self._model = model
        if model is not None:
            model.events.snapshot.connect(self._on_model_snapshot)
            self.set_snapshot(model.snapshot)

    def _on_model_snapshot(self) -> None:
        self.set_snapshot(self._model.snapshot)

    # ---- GUI thread --------------------------------------------------------------------------
    def register(self, channel: str, handler: Callable[[Any], None], priority: int = 5) -> None:
        with self._lock:
            self._channels[channel] = _Channel(handler, priority)

    def request(self, channel: str, job: Job) -> int:
        """Queue ``job`` on ``channel``, replacing a request of that channel still waiting."""
        with self._lock:
            ch = self._channels[channel]
            if ch.pending:
                self.dropped += 1
            self._sequence += 1
            ch.latest, ch.pending = (self._sequence, job), True
            self._lock.notify()
            return self._sequence

    def cancel(self, channel: str) -> None:
        """Forget the channel's requests (a hidden view): nothing runs or arrives for it."""
        with self._lock:
            ch = self._channels[channel]
            ch.latest, ch.pending = None, False  # a result in flight is then not delivered

    def set_snapshot(self, snapshot: Snapshot | None) -> None:
        """Decode with these weights from now on, and run every channel's last request again.

        No weights, or weights of another architecture than the last ones, drop every request
        instead: they were made for the old model's latents, and the views ask anew. No weights
        drop them too, because a new model comes after them (the explorer clears first), and
        comparing the new model with no model would keep the old one's requests for it."""
        with self._lock:
            architecture = None if snapshot is None else snapshot.architecture
            other_model = snapshot is None or self._architecture not in (None, architecture)
            self._architecture = architecture
            self._snapshot, self._snapshot_changed = snapshot, True
            for ch in self._channels.values():
                if other_model:
                    ch.latest = None  # a result in flight is then not delivered either
                ch.pending = ch.latest is not None
                ch.started = None  # its chunks so far came from the old weights
            self._lock.notify()

    def idle(self) -> bool:
        """Nothing waits to run (a job may still be running)."""
        with self._lock:
            return not any(ch.has_work() for ch in self._channels.values())

    def shutdown(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify()
        self._thread.wait()
        # The thread holds its target, a method of this worker: without that cycle the worker
        # and its thread are freed when their owner lets go, not by a garbage collection at
        # some later moment (CI once crashed inside such a collection, in a later test's event
        # loop while that test's decoding thread ran).
        self._thread.release_target()

    @Slot(str, int, object)
    def _on_finished(self, channel: str, sequence: int, result: Any) -> None:
        ch = self._channels.get(channel)
        if ch is None or ch.latest is None or ch.latest[0] != sequence:
            return  # a newer request of this channel was made meanwhile: its result will come
        ch.handler(result)

    # ---- decoding thread --------------------------------------------------------------------
    def _serve(self) -> None:
        torch_ready = False
        while True:
            with self._lock:
                while not self._stopping and not self._work_waiting():
                    self._lock.wait()
                if self._stopping:
                    return
                snapshot, changed = self._snapshot, self._snapshot_changed
                self._snapshot_changed = False
                name, sequence, job = self._next_job() if snapshot is not None else (None, 0, None)
            if changed and snapshot is not None and not torch_ready:
                # torch only once weights come (the window opens before torch is imported). The
                # GUI process runs its other torch work with one thread each (see core.thread_governor):
                # a second multi-threaded OpenMP pool here would slow training down. Pinned, not
                # merely set: training sets the process's count meanwhile.
                pin_threads(1)
                torch_ready = True
            if changed:
                try:
                    self._decoder = self._load(snapshot)
                except Exception as exc:  # noqa: BLE001 - every job then fails with the reason
                    traceback.print_exception(exc)
                    self._decoder = None
            if job is not None:
                self._run(name, sequence, job)

    def _work_waiting(self) -> bool:
        if self._snapshot_changed:
            return True
        return self._snapshot is not None and any(ch.has_work() for ch in self._channels.values())

    def _next_job(self) -> tuple[str | None, int, Job | Generator | None]:
        """The most urgent waiting work: a new request, or the rest of a chunked job."""
        waiting = []
        for name, ch in self._channels.items():
            if ch.started is not None and (ch.pending or ch.latest is None
                                           or ch.latest[0] != ch.started[0]):
                ch.started = None  # replaced or cancelled: its remaining chunks are not wanted
            if ch.has_work():
                waiting.append((ch.priority, ch.latest[0], name))
        if not waiting:
            return None, 0, None
        _, _, name = min(waiting)
        ch = self._channels[name]
        if ch.pending:
            ch.pending = False
            return name, ch.latest[0], ch.latest[1]
        (sequence, chunks), ch.started = ch.started, None
        return name, sequence, chunks

    def _load(self, snapshot: Snapshot | None) -> Decoder | None:
        if snapshot is None:
            return None
        if self._decoder is not None and self._decoder.fits(snapshot):
            self._decoder.load_state(snapshot.state)
            return self._decoder
        from vaegui.core.decoder import decoder_for

        return decoder_for(snapshot)

    def _run(self, name: str, sequence: int, job: Job | Generator) -> None:
        """Run a job, or one chunk of a chunked job (which then waits its turn for the next)."""
        try:
            if self._decoder is None:
                raise ValueError("these weights cannot be loaded for decoding")
            result = job if isinstance(job, Generator) else job(self._decoder)
            if isinstance(result, Generator):
                try:
                    next(result)
                except StopIteration as stop:
                    result = stop.value
                else:
                    with self._lock:
                        self._channels[name].started = (sequence, result)  # _next_job checks it
                    return
        except Exception as exc:  # noqa: BLE001 - a failed decode is shown in its view
            if not isinstance(exc, VaeguiError):  # unexpected: keep the traceback for a bug report
                traceback.print_exception(exc)
            result = DecodeFailure(f"{type(exc).__name__}: {exc}")
            self.failures.append(result.message)
        self.executed += 1
        self._finished.emit(name, sequence, result)
