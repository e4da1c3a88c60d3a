"""Numpy work for a view off the GUI thread, where only the newest request counts: a spatial
index of a new map, a density image of the view after a pan. A request that waits when a newer
one comes is dropped, and a result whose request was overtaken is not delivered.

A plain Python thread runs while there is work and ends when there is none, so an idle view
holds no thread and nothing needs stopping at exit; :meth:`LatestJob.wait` lets a test or a
closing window wait for the job that runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot


class LatestJob(QObject):
    """``submit(work)`` runs ``work()`` on a worker thread; ``done(result)`` comes on the thread
    the job object lives in (the GUI thread) for the newest request only."""

    done = Signal(object)
    failed = Signal(str)
    # Emitted from the worker thread; this object lives in the GUI thread, so Qt queues it.
    _finished = Signal(int, object, str)

    def __init__(self, name: str, parent: QObject | None = None):
        super().__init__(parent)
        self._name = name
        self._lock = threading.Lock()
        self._pending: tuple[int, Callable[[], Any]] | None = None
        self._sequence = 0
        self._thread: threading.Thread | None = None
        self._finished.connect(self._on_finished)

    def submit(self, work: Callable[[], Any]) -> int:
        with self._lock:
            self._sequence += 1
            self._pending = (self._sequence, work)
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
                self._thread.start()
            return self._sequence

    def cancel(self) -> None:
        """Drop the waiting request, and the result of the one that runs."""
        with self._lock:
            self._sequence += 1
            self._pending = None

    def busy(self) -> bool:
        with self._lock:
            return self._thread is not None

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the worker thread to run out of work (results still come through events)."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _serve(self) -> None:
        while True:
            with self._lock:
                if self._pending is None:
                    self._thread = None
                    return
                sequence, work = self._pending
                self._pending = None
            try:
                result, error = work(), ""
            except Exception as exc:  # shown by the view; the thread goes on with the next
                result, error = None, f"{type(exc).__name__}: {exc}"
            try:
                self._finished.emit(sequence, result, error)
            except RuntimeError:  # the view was deleted meanwhile: nobody waits for it
                pass

    @Slot(int, object, str)
    def _on_finished(self, sequence: int, result: Any, error: str) -> None:
        with self._lock:
            current = sequence == self._sequence
        if not current:
            return
        if error:
            self.failed.emit(error)
        else:
            self.done.emit(result)
