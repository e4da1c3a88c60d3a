"""The comparison window: the figure of 2 to 8 runs (maps side by side, curves overlaid), what a
pick decodes, and the results table; exports of the figure and the table. A run still being
written (a sweep still running) is read again every few seconds, as a followed run is."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox, QSplitter

from vaegui.core.compare import RUNNING, Comparison, expand_sweeps
from vaegui.core.export import PLOT_FORMATS, write_text
from vaegui.core.sweep import csv_text, read_summary

from .compare_figure import CompareFigure
from .compare_worker import CompareWorker
from .map_links import MapLinks
from .reconstruction_strip import ReconstructionStrip
from .results_table import ResultsTable

FOLLOW_MS = 2000  # a running run's folder is read again this often


class CompareWindow(QMainWindow):
    mapsDrawn = Signal()  # the figure shows the latest comparison read

    def __init__(self, paths: list[str], parent=None, limit: int | None = None, follow_ms: int = FOLLOW_MS):
        super().__init__(parent)
        self.paths, self.limit = [str(p) for p in paths], limit
        self.setWindowTitle("Compare runs — vaegui")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.comparison: Comparison | None = None
        self.figure = CompareFigure()
        self.links = MapLinks(self.figure)
        self.strip = ReconstructionStrip()
        self.table = ResultsTable()
        side = QSplitter(Qt.Orientation.Vertical)
        side.addWidget(self.strip)
        side.addWidget(self.table)
        main = QSplitter(Qt.Orientation.Horizontal)
        main.addWidget(self.figure)
        main.addWidget(side)
        main.setStretchFactor(0, 3)
        main.setStretchFactor(1, 1)
        main.setSizes([1000, 420])
        self.setCentralWidget(main)
        self._build_toolbar()
        self.follow_timer = QTimer(self, singleShot=True, interval=follow_ms)
        self.follow_timer.timeout.connect(self.reload)
        self.worker = CompareWorker()
        self.worker.loaded.connect(self._on_worker_loaded)
        self.worker.failed.connect(self._on_worker_failed)
        self.worker.reconstructed.connect(self._on_worker_reconstructed)
        self.worker.decoded.connect(self._on_worker_decoded)
        self.links.imagePicked.connect(self.worker.reconstruct)
        self.links.pointPicked.connect(self.worker.decode)
        self.statusBar().showMessage("Reading the runs…")
        self.reload()

    def _build_toolbar(self) -> None:
        bar = self.addToolBar("Comparison")
        bar.setObjectName("compare_toolbar")
        self.export_figure_action = QAction("Export figure…", self)
        self.export_figure_action.triggered.connect(self._on_export_figure_triggered)
        self.export_table_action = QAction("Export table…", self)
        self.export_table_action.triggered.connect(self._on_export_table_triggered)
        bar.addActions([self.export_figure_action, self.export_table_action])

    def reload(self) -> None:
        """Read the runs again (in the worker)."""
        self.worker.load(self.paths, self.limit)

    # ---- from the worker --------------------------------------------------------------------------
    def _on_worker_loaded(self, comparison: Comparison, same_runs: bool) -> None:
        self.comparison = comparison
        if same_runs and self.figure.maps:
            self.figure.update_comparison(comparison)
        else:
            self.figure.set_comparison(comparison)
            self.links.attach()
        self.table.set_rows(*comparison.table())
        problems = "; ".join(comparison.problems)
        self.statusBar().showMessage(
            f"{len(comparison.runs)} runs · {comparison.count:,} shared test images · drag: rectangle, Ctrl-drag: lasso, "
            f"Shift-drag pans" + (f" · not compared: {problems}" if problems else ""))
        if self._still_running(comparison):
            self.follow_timer.start()
        self.mapsDrawn.emit()

    def _still_running(self, comparison: Comparison) -> bool:
        if any(r.status == RUNNING for r in comparison.runs):
            return True
        for p in map(Path, self.paths):  # a sweep whose runs have not all started
            document = read_summary(p) if p.is_dir() else None
            if document and len(expand_sweeps([p])) < len(document.get("planned", [])):
                return True
        return False

    def _on_worker_failed(self, message: str) -> None:
        self.statusBar().showMessage(f"Cannot compare: {message}")

    def _on_worker_reconstructed(self, index: int, image, images: list) -> None:
        if self.comparison is not None:
            self.strip.show_reconstructions(index, image, images, self.comparison.names)

    def _on_worker_decoded(self, run: int, point, image) -> None:
        if self.comparison is not None and run < len(self.comparison.runs):
            self.strip.show_decoded(self.comparison.runs[run].name, point, image)

    # ---- exports ---------------------------------------------------------------------------------
    def export_figure(self, path: str) -> Path:
        from ..export.plot_export import default_scale, write_plot

        return write_plot(self.figure.ci, path, scale=default_scale(self),
                          title="vaegui comparison of " + ", ".join(self.comparison.names))

    def export_table(self, path: str) -> Path:
        return write_text(path, csv_text(*self.comparison.table()))

    def _on_export_figure_triggered(self) -> None:
        filters = ";;".join(f"{f.upper()} (*.{f})" for f in PLOT_FORMATS)
        path, _ = QFileDialog.getSaveFileName(self, "Export comparison figure", "comparison.png", filters)
        if path:
            self._export(self.export_figure, path)

    def _on_export_table_triggered(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export results table", "comparison.csv", "CSV (*.csv)")
        if path:
            self._export(self.export_table, path)

    def _export(self, write, path: str) -> None:
        if self.comparison is None:
            return
        try:
            written = write(path)
        except Exception as exc:  # noqa: BLE001 - an ExportError names the file; the window stays
            QMessageBox.warning(self, "Export failed", str(exc))
            return
        self.statusBar().showMessage(f"Wrote {written}", 8000)

    def closeEvent(self, event) -> None:
        self.follow_timer.stop()
        self.worker.shutdown()
        super().closeEvent(event)
