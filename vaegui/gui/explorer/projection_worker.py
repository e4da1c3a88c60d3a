"""Fits the map's UMAP or t-SNE layout on a thread of its own: a minute of work (numba's first
compile included) that the GUI thread must never wait for. Only the newest request counts; a
running fit that a newer request or a cancel supersedes is stopped where the library allows
(openTSNE between iterations; umap-learn only before and after its optimisation) and its
result dropped."""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal

from vaegui.core.errors import VaeguiError
from vaegui.core.latent import EncodedSet
from vaegui.core.projection import Cancelled, NonlinearProjection, ProjectionSpec


@dataclass(frozen=True, eq=False)
class LayoutRequest:
    spec: ProjectionSpec
    base: EncodedSet  # the live map whose means are laid out
    previous: NonlinearProjection | None  # the start of the layout (the last epoch's)
    place: bool = False  # place the means on ``previous`` (its transform), not lay them out anew
    run: Path | None = None  # where the layout is cached (run folder and epoch), if anywhere
    epoch: int | None = None


class _FitThread(QThread):
    def __init__(self, worker: "ProjectionWorker", request: LayoutRequest, stop: threading.Event):
        super().__init__()
        self.setObjectName("projection fit")
        self._worker, self._request, self._stop = worker, request, stop

    def run(self) -> None:
        self._worker._fit(self._request, self._stop)


class ProjectionWorker(QObject):
    progressed = Signal(float, str)  # fraction done, what is being done
    finished = Signal(object, object)  # (layout, the LayoutRequest it answers)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread: _FitThread | None = None
        self._stop = threading.Event()
        self._pending: LayoutRequest | None = None
        self.request_shown: LayoutRequest | None = None  # the newest request sent

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.isRunning()

    def request(self, request: LayoutRequest) -> None:
        self.request_shown = request
        if self.busy:
            self._stop.set()  # the running fit ends (or is dropped); then this one starts
            self._pending = request
            return
        self._start(request)

    def cancel(self) -> None:
        self._pending = None
        self.request_shown = None
        if self.busy:
            self._stop.set()

    def shutdown(self) -> None:
        """Stop and wait: a umap-learn optimisation cannot be interrupted, so this can take as
        long as the fit's last phase."""
        self.cancel()
        if self._thread is not None:
            self._thread.wait()
            self._thread = None

    def _start(self, request: LayoutRequest) -> None:
        self._stop = threading.Event()
        self._thread = _FitThread(self, request, self._stop)
        self._thread.finished.connect(self._on_thread_finished)
        self._thread.start(QThread.Priority.LowPriority)

    def _on_thread_finished(self) -> None:
        if self._pending is not None and not self.busy:
            request, self._pending = self._pending, None
            self._start(request)

    def _fit(self, r: LayoutRequest, stop: threading.Event) -> None:
        """On the fitting thread: plain data in, plain data out through queued signals."""
        from vaegui.core.layout_cache import cached_projection
        from vaegui.core.thread_governor import pin_threads

        pin_threads(1)  # the training thread keeps the process's one multi-threaded pool
        z = r.base.latents
        try:
            if r.place and r.previous is not None:
                self.progressed.emit(0.1, f"placing the new means on the {r.spec.kind} layout")
                # The fast placement, not the library's optimised one (seconds of a core for
                # 10,000 means beside training: see benchmarks/projection_training.py).
                layout = r.previous.placed(z, r.previous.transform(z))
            else:
                layout = cached_projection(
                    r.spec, z, r.run, r.epoch, r.previous, on_cache_error=lambda e: self.progressed.emit(0.0, str(e)),
                    progress=lambda f, what: self.progressed.emit(f, what), should_stop=stop.is_set, n_jobs=1)
        except Cancelled:
            self.cancelled.emit()
            return
        except VaeguiError as exc:
            self.failed.emit(str(exc))
            return
        except Exception as exc:  # a library's error: shown, the app goes on with PCA
            traceback.print_exc()
            self.failed.emit(f"{type(exc).__name__}: {exc}")
            return
        if stop.is_set():
            self.cancelled.emit()
            return
        layout.transform(z[:1])  # builds its placement index here, not at the GUI's first path
        self.finished.emit(layout, r)
