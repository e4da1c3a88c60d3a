"""Encodes a user's images for the latent map on a thread of its own, a chunk at a time, with
progress: the GUI thread never runs the model. The model's calls hold its lock (see
core/user_model.py), so a drag decoded meanwhile waits at most one chunk."""

from __future__ import annotations

import threading
import traceback

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal

from vaegui.core.errors import VaeguiError
from vaegui.core.user_model import UserModel


class _Thread(QThread):
    def __init__(self, encoder: "MapEncoder"):
        super().__init__()
        self.setObjectName("vaegui-map-encoder")
        self._encoder = encoder

    def run(self) -> None:
        self._encoder._encode()
        self._encoder = None  # no cycle: the thread and its worker are freed with their owner


class MapEncoder(QObject):
    progressed = Signal(int, int)  # images encoded, of how many
    finished = Signal(object)  # (N, L) float32 encoder means
    failed = Signal(str)

    def __init__(self, model: UserModel, parent: QObject | None = None):
        super().__init__(parent)
        self.model = model
        self._stop = threading.Event()
        self._thread: _Thread | None = None

    def start(self) -> None:
        self._thread = _Thread(self)
        self._thread.start()

    def shutdown(self) -> None:
        """Stop after the chunk being encoded, and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.wait()
            self._thread = None

    def _encode(self) -> None:
        """On the encoding thread: plain data out through queued signals."""
        from vaegui.core.thread_governor import pin_threads

        pin_threads(1)  # as every thread but the training worker's (see gui/torch_threads.py)
        total = len(self.model.images.inputs)
        chunks = self.model.encodings()
        try:
            while True:
                try:
                    done = next(chunks)
                except StopIteration as stop:
                    latents: np.ndarray = stop.value
                    break
                if self._stop.is_set():
                    return
                self.progressed.emit(done, total)
        except VaeguiError as exc:
            self.failed.emit(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - shown; the window goes on without a map
            traceback.print_exc()
            self.failed.emit(f"{type(exc).__name__}: {exc}")
            return
        self.finished.emit(latents)
