"""The window's exports: File > Export (one entry per plot, image and data set), right-click >
Export on every plot and image view, and File > Export bundle. The targets are found by walking
the window's widgets (targets.py); the files are written by plot_export.py, core.export and
bundle.py. Every failure is one message naming the file and the reason (``failed``), and leaves
no partial file; file dialogs start in the folder of the last export.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QFileDialog, QInputDialog, QMenu, QWidget

from vaegui.core import explorer_images as images
from vaegui.core import export
from vaegui.core.errors import VaeguiError
from vaegui.core.explorer import ExplorerModel
from vaegui.core.export import PLOT_SCALES
from vaegui.core.run_model import RunModel

from .. import settings as store
from ..theme import light_plots
from ..loss_view import LossView
from . import bundle
from .bundle_chooser import choose_bundle_folder
from .image_figure import write_image_figure
from .plot_export import default_scale, png_size, screen_ratio, write_plot
from .targets import ImageTarget, PlotTarget, find_targets

PLOT_FILTERS = {"png": "PNG image (*.png)", "svg": "SVG vector image (*.svg)", "pdf": "PDF document (*.pdf)"}


class ExportController(QObject):
    exported = Signal(str)  # a message: what was written where
    failed = Signal(str)  # a message naming the file and the reason
    bundleWritten = Signal(str)  # the folder, once its README.md is written

    def __init__(self, window: QWidget, settings: QSettings, explorer: ExplorerModel, run: RunModel,
                 loss_view: LossView, save_checkpoint: Callable[[str], None]):
        """``run``: the losses and settings exported; ``loss_view`` draws its pending rows
        before a figure is written."""
        super().__init__(window)
        self._window = window
        self._settings = settings
        self.explorer = explorer
        self.run = run
        self._loss_view = loss_view
        self._save_checkpoint = save_checkpoint
        self._pending: bundle.Report | None = None  # a bundle waiting for its checkpoint
        self.plots, self.images = find_targets(window)

    # ---- menus -------------------------------------------------------------------------------
    def build_menu(self, menu: QMenu) -> None:
        """File > Export: every target, then the animation and the data."""
        for target in self.plots:
            menu.addAction(f"{target.title} (PNG, SVG, PDF)…", lambda t=target: self.plot_dialog(t))
        menu.addSeparator()
        for target in self.images:
            menu.addAction(f"{target.title} (PNG)…", lambda t=target: self.image_dialog(t))
        menu.addAction("Interpolation animation (GIF)…", self.gif_dialog)
        menu.addSeparator()
        menu.addAction("Loss history (CSV)…", lambda: self.data_dialog("losses.csv", "CSV (*.csv)"))
        menu.addAction("Latent codes (CSV or NPZ)…",
                       lambda: self.data_dialog("latents.csv", "CSV (*.csv);;NumPy arrays (*.npz)"))
        menu.addSeparator()
        self.dark_figures = menu.addAction("Dark figures under the dark theme")
        self.dark_figures.setCheckable(True)
        self.dark_figures.setChecked(store.load_dark_exports(self._settings))
        self.dark_figures.setToolTip("Exported plots as the dark window draws them; off, they stay light for a page")
        self.dark_figures.toggled.connect(self._on_dark_figures_toggled)

    def _on_dark_figures_toggled(self, checked: bool) -> None:
        store.save_dark_exports(self._settings, checked)

    def install_context_menus(self) -> None:
        """Right-click > Export on every plot (pyqtgraph's own Export… entry, which opens its
        dialog, opens ours) and on every image view."""
        for target in self.plots:
            scene = target.widget.scene()
            # pyqtgraph's "Export..." (GraphicsScene.contextMenu[0]) opens its ExportDialog,
            # whose SVG exporter fails on Qt 6.11 and whose PNG draws hairlines: ours instead.
            action = scene.contextMenu[0]
            action.triggered.disconnect(scene.showExportDialog)
            action.triggered.connect(lambda _=False, t=target: self.plot_dialog(t))
        for target in self.images:
            target.canvas.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
            action = QAction("Export image…", target.canvas)
            action.triggered.connect(lambda _=False, t=target: self.image_dialog(t))
            target.canvas.addAction(action)
            if target.name == "interpolation":
                gif = QAction("Export animation as GIF…", target.canvas)
                gif.triggered.connect(self.gif_dialog)
                target.canvas.addAction(gif)

    # ---- dialogs -----------------------------------------------------------------------------
    def _ask_path(self, caption: str, name: str, filters: str) -> tuple[str, str]:
        start = str(Path(store.load_export_dir(self._settings) or Path.home()) / name)
        path, chosen = QFileDialog.getSaveFileName(self._window, caption, start, filters)
        if path:
            store.save_export_dir(self._settings, str(Path(path).parent))
        return path, chosen

    def plot_dialog(self, target: PlotTarget) -> None:
        path, chosen = self._ask_path(f"Export {target.title}", f"{target.name}.png", ";;".join(PLOT_FILTERS.values()))
        if not path:
            return
        fmt = _format(path, chosen, PLOT_FILTERS)
        scale = None
        if fmt == "png":  # asked in on-screen sizes, counted in the screen's own pixels
            ratio = screen_ratio(target.widget)
            w, h = png_size(target.plot, ratio)
            factor, ok = QInputDialog.getDouble(
                self._window, "PNG size", f"Times the on-screen size (1 = {w} × {h} pixels):",
                default_scale(target.widget) / ratio, PLOT_SCALES[0] / ratio, PLOT_SCALES[1] / ratio, 2)
            if not ok:
                return
            scale = factor * ratio
        self.export_plot(target, _with_suffix(path, fmt), fmt, scale)

    def image_dialog(self, target: ImageTarget) -> None:
        image = self._image(target)
        if image.array is None:  # said before asking for a file name
            self.failed.emit(f"Nothing to export from {target.title}: {image.why}")
            return
        labelled = bool(image.row_labels or image.column_labels)  # a figure: PNG, SVG or PDF
        filters = PLOT_FILTERS if labelled else {"png": PLOT_FILTERS["png"]}
        path, chosen = self._ask_path(f"Export {target.title} image", f"{target.name}.png", ";;".join(filters.values()))
        if not path:
            return
        factor, ok = QInputDialog.getInt(self._window, "Enlarge", "Each pixel becomes a square of this side:",
                                         export.default_factor(image.array.shape), 1, 64)
        if ok:
            self.export_image(target, _with_suffix(path, _format(path, chosen, filters)), factor)

    def gif_dialog(self) -> None:
        if not self.explorer.interpolation.ready or self.explorer.snapshot is None:
            why = images.why_no_animation(images.decoder_of(self.explorer))
            self.failed.emit(f"Nothing to export as an animation: {why}")
            return
        path, _ = self._ask_path("Export interpolation animation", "interpolation.gif", "GIF animation (*.gif)")
        if path:
            self.export_gif(_with_suffix(path, "gif"))

    def data_dialog(self, name: str, filters: str) -> None:
        why = self._why_no_data(name)
        if why:
            self.failed.emit(f"Nothing to export as {name}: {why}")
            return
        path, chosen = self._ask_path(f"Export {name}", name, filters)
        if not path:
            return
        fmt = _format(path, chosen, {"csv": "CSV (*.csv)", "npz": "NumPy arrays (*.npz)"})
        path = _with_suffix(path, fmt)
        self.export_losses(path) if name.startswith("losses") else self.export_latents(path)

    def bundle_dialog(self) -> None:
        start = store.load_export_dir(self._settings) or str(Path.home())
        folder = choose_bundle_folder(self._window, start)  # a new folder's name makes it
        if folder:
            store.save_export_dir(self._settings, folder)
            self.export_bundle(folder)

    # ---- exports (the dialogs' work; tests call these) ----------------------------------------
    def export_plot(self, target: PlotTarget | str, path: str, fmt: str | None = None,
                    scale: float | None = None) -> bool:
        """``scale``: PNG pixels per logical pixel (default: twice the on-screen pixels)."""
        target = self._target(target)
        scale = default_scale(target.widget) if scale is None else scale
        self._loss_view.flush()  # its last rows may wait for the next redraw
        return self._run(lambda: write_plot(target.plot, path, fmt, scale, target.title))

    def export_image(self, target: ImageTarget | str, path: str, factor: int | None = None) -> bool:
        target = self._target(target)

        def write():
            image = self._image(target)
            if image.array is None:
                raise export.ExportError(path, f"nothing to export: {image.why}")
            if image.row_labels or image.column_labels:  # with them, as on screen
                return write_image_figure(path, image, None, factor, target.title)
            return export.write_png(path, image.array, factor)
        return self._run(write)

    def export_gif(self, path: str, factor: int | None = None) -> bool:
        def write():
            decoder = images.decoder_of(self.explorer)
            frames = None if decoder is None else images.animation_frames(self.explorer, decoder)
            if frames is None:
                raise export.ExportError(path, f"nothing to export: {images.why_no_animation(decoder)}")
            return export.write_gif(path, frames, factor, images.frame_ms(self.explorer))
        return self._run(write)

    def export_losses(self, path: str) -> bool:
        def write():
            if why := self._why_no_data("losses.csv"):
                raise export.ExportError(path, f"nothing to export: {why}")
            return export.write_losses_csv(path, self.run.history, self.run.steps_per_epoch)
        return self._run(write)

    def export_latents(self, path: str) -> bool:
        def write():
            if why := self._why_no_data("latents.csv"):
                raise export.ExportError(path, f"nothing to export: {why}")
            writer = export.write_latents_npz if path.lower().endswith(".npz") else export.write_latents_csv
            return writer(path, self.explorer.encoded)
        return self._run(write)

    def export_bundle(self, folder: str) -> bool:
        """Everything into ``folder``; the checkpoint is saved by the training worker, and the
        README is written once it has (``bundleWritten``)."""
        self._loss_view.flush()
        info = self.run.info
        snapshot = self.explorer.snapshot
        outside = snapshot is not None and bool(snapshot.why_no_checkpoint)  # a user's own model
        plots = [p for p in self.plots if not (outside and p.name in bundle.TRAINING_PLOTS)]
        sources = bundle.Sources(self.explorer, plots, self.images, self.run.history,
                                 self.run.steps_per_epoch, None if info is None else info.config.to_dict())
        # Seconds with a big map (a vector circle per point): say the app is busy, not hung.
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            report = bundle.write_bundle(folder, sources, scale=default_scale(self._window))
        except VaeguiError as exc:
            self.failed.emit(str(exc))
            return False
        finally:
            QApplication.restoreOverrideCursor()
        if outside:
            bundle.trained_outside(report, snapshot.why_no_checkpoint)
            return self._finish(report)
        if snapshot is None:
            report.lack(bundle.CHECKPOINT, images.NO_MODEL)
            return self._finish(report)
        self._pending = report
        self._save_checkpoint(str(report.folder / bundle.CHECKPOINT))
        return True

    def on_checkpoint_saved(self, path: str) -> None:
        report = self._pending
        if report is not None and Path(path) == report.folder / bundle.CHECKPOINT:
            report.add(bundle.CHECKPOINT)
            self._finish(report)

    def on_save_failed(self, path: str, message: str) -> None:
        report = self._pending
        if report is not None and Path(path) == report.folder / bundle.CHECKPOINT:
            report.lack(bundle.CHECKPOINT, f"not saved: {message}")
            self._finish(report)

    def _finish(self, report: bundle.Report) -> bool:
        self._pending = None
        if not self._run(lambda: bundle.finish(report, "vaegui export")):
            return False
        self.bundleWritten.emit(str(report.folder))
        return True

    # ---- helpers -------------------------------------------------------------------------------
    def _target(self, target):
        if not isinstance(target, str):
            return target
        found = [t for t in self.plots + self.images if t.name == target]
        if not found:
            raise KeyError(f"no export target {target!r}")
        return found[0]

    def _image(self, target: ImageTarget) -> images.Image:
        """What the view shows; decoded now for a view that never showed it (or why not)."""
        array = target.array()
        if array is not None:
            rows, columns = target.canvas.labels()
            return images.Image(array, row_labels=tuple(rows), column_labels=tuple(columns))
        if target.name not in images.IMAGES:  # a view the model cannot decode: its own hint
            return images.Image.missing(target.why_empty())
        return images.image(target.name, self.explorer, images.decoder_of(self.explorer))

    def _why_no_data(self, name: str) -> str:
        if name.startswith("losses"):
            return "" if len(self.run.history.steps) else bundle.NO_STEPS
        return "" if self.explorer.encoded is not None else bundle.NO_MAP

    def _run(self, write: Callable[[], Path]) -> bool:
        try:
            if store.load_dark_exports(self._settings):
                path = write()
            else:
                with light_plots(self._window):  # figures for a page stay light under the dark theme
                    path = write()
        except VaeguiError as exc:
            self.failed.emit(str(exc))
            return False
        self.exported.emit(f"Exported {path}")
        return True


def _format(path: str, chosen_filter: str, filters: dict[str, str]) -> str:
    """The file's suffix when it names a format, else the filter chosen in the dialog."""
    suffix = Path(path).suffix.lstrip(".").lower()
    if suffix in filters:
        return suffix
    return next((fmt for fmt, text in filters.items() if text == chosen_filter), next(iter(filters)))


def _with_suffix(path: str, fmt: str) -> str:
    return path if Path(path).suffix.lower() == f".{fmt}" else f"{path}.{fmt}"
