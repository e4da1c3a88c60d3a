"""The comparison's thread: it reads the run folders, loads each run's model and the shared test
images, and reconstructs and decodes with them. Only plain data comes back (a Comparison, numpy
images); the models never leave this thread."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

from vaegui.core.compare import Comparison, data_key, read_runs


class CompareWorker(QObject):
    loaded = Signal(object, bool)  # Comparison, whether the runs are those of the last load
    imagesLoaded = Signal(object)  # (N, C, H, W) uint8 shared test images
    reconstructed = Signal(int, object, object)  # data index, its image, [float image or None per run]
    decoded = Signal(int, object, object)  # run index, plane point, float image (or None)
    failed = Signal(str)

    _load = Signal(object, object)  # paths, point limit (requests: queued to the thread)
    _reconstruct = Signal(int, int)  # request number, data index
    _decode = Signal(int, int, object)  # request number, run index, plane point

    def __init__(self):
        super().__init__()
        self.comparison: Comparison | None = None
        self._decoders: list = []
        self._stamps: list = []  # each run's checkpoint time stamp when its decoder was loaded
        self._images: np.ndarray | None = None
        self._images_key = None
        # The newest pick wins: picks queued behind a slow one (a model still loading) are
        # skipped, since only the last is on screen. Written by the GUI thread, read here.
        self._latest_pick = 0
        self.thread = QThread()
        self.thread.setObjectName("vaegui-compare")
        self.moveToThread(self.thread)
        self._load.connect(self._on_load)
        self._reconstruct.connect(self._on_reconstruct)
        self._decode.connect(self._on_decode)
        self.thread.started.connect(self._on_thread_started)
        # A comparison window may outlive the main window: its thread must end before the app does.
        # Direct: queued to this object's thread, shutdown would wait for its own thread.
        QCoreApplication.instance().aboutToQuit.connect(self.shutdown, Qt.ConnectionType.DirectConnection)
        self.thread.start()

    # ---- requests (from the GUI thread) ----------------------------------------------------------
    def load(self, paths: list[str], limit: int | None = None) -> None:
        self._load.emit(list(paths), limit)

    def reconstruct(self, index: int) -> None:
        self._latest_pick += 1
        self._reconstruct.emit(self._latest_pick, int(index))

    def decode(self, run: int, point: np.ndarray) -> None:
        self._latest_pick += 1
        self._decode.emit(self._latest_pick, int(run), np.asarray(point, np.float32))

    def shutdown(self) -> None:
        """Stop the thread (after the request it is working on); calling it again does nothing."""
        if self.thread.isRunning():
            self.thread.quit()
            self.thread.wait()

    # ---- in the thread ---------------------------------------------------------------------------
    @Slot()
    def _on_thread_started(self) -> None:
        from ..torch_threads import one_torch_thread_here

        one_torch_thread_here()

    @Slot(object, object)
    def _on_load(self, paths: list[str], limit: int | None) -> None:
        try:
            runs, problems = read_runs(paths)
            comparison = Comparison.of(runs, limit=limit, problems=problems)
        except Exception as exc:  # noqa: BLE001 - shown, and the window keeps running
            self.failed.emit(f"{type(exc).__name__}: {exc}")
            return
        same = self.comparison is not None and [r.path for r in self.comparison.runs] == [r.path for r in comparison.runs]
        self.comparison = comparison
        self.loaded.emit(comparison, same)
        self._load_models(comparison)

    def _load_models(self, comparison: Comparison) -> None:
        from vaegui.core.compare_models import decoder_of, shared_images

        stamps = [_stamp(r.path / "checkpoint.pt") for r in comparison.runs]
        if stamps != self._stamps or len(self._decoders) != len(comparison.runs):
            self._decoders = [decoder_of(r) for r in comparison.runs]
            self._stamps = stamps
        key = (data_key(comparison.runs[0].config), comparison.count) if comparison.runs else None
        if key != self._images_key:
            self._images, self._images_key = shared_images(comparison), key
            if self._images is not None:
                self.imagesLoaded.emit(self._images)

    @Slot(int, int)
    def _on_reconstruct(self, request: int, index: int) -> None:
        from vaegui.core.compare_models import reconstructions

        if request != self._latest_pick or self._images is None or not 0 <= index < len(self._images):
            return
        image = self._images[index]
        self.reconstructed.emit(index, image, reconstructions(self._decoders, image))

    @Slot(int, int, object)
    def _on_decode(self, request: int, run: int, point: np.ndarray) -> None:
        if request != self._latest_pick or self.comparison is None or not 0 <= run < len(self._decoders):
            return
        decoder, projection = self._decoders[run], self.comparison.runs[run].projection
        image = None
        if decoder is not None and projection is not None:
            image = decoder.decode(projection.inverse(point))[0]
        self.decoded.emit(run, point, image)


def _stamp(path) -> tuple[int, int] | None:
    try:
        st = path.stat()
        return st.st_mtime_ns, st.st_size
    except OSError:
        return None
