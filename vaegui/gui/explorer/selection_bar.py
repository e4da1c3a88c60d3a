"""The row under the latent map that says what a brushed selection holds (its count and its
biggest classes) and offers its images and its export (NPZ or CSV of the selected indices)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (QDialog, QFileDialog, QHBoxLayout, QLabel, QPushButton, QSizePolicy,
                               QVBoxLayout, QWidget)

from vaegui.core.errors import VaeguiError
from vaegui.core.latent import EncodedSet, tile
from vaegui.core.selection import Selection, describe, write_selection

from ..qimage import to_qimage

GRID_IMAGES = 64  # images of a selection shown at once, spread over it
GRID_PX = 480  # the grid is enlarged by an integer factor to about this width


class SelectionBar(QWidget):
    clearRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.summary = QLabel()
        # A long list of classes is cut, not a reason for the dock to grow.
        self.summary.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.images_button = QPushButton("Images…")
        self.images_button.setToolTip(f"Show up to {GRID_IMAGES} images of the selection")
        self.images_button.clicked.connect(self._on_images_button_clicked)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save the selected indices, labels and positions (NPZ or CSV)")
        self.export_button.clicked.connect(self._on_export_button_clicked)
        clear = QPushButton("Clear")
        clear.clicked.connect(self.clearRequested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary, 1)
        for button in (self.images_button, self.export_button, clear):
            layout.addWidget(button)
        self.selection: Selection | None = None
        self._encoded: EncodedSet | None = None
        self.images_dialog: QDialog | None = None
        self.hide()

    def show_selection(self, selection: Selection | None, encoded: EncodedSet | None) -> None:
        self.selection, self._encoded = selection, encoded
        if selection is None or encoded is None:
            self.hide()
            return
        self.summary.setText(describe(selection, encoded.labels, encoded.class_names))
        self.summary.setStyleSheet("")
        has_points = len(selection.indices) > 0
        self.images_button.setEnabled(has_points)
        self.export_button.setEnabled(has_points)
        self.show()

    def export_to(self, path: str | Path) -> Path:
        """Write the selection to ``path`` (.npz or .csv); raises ExportError naming the file."""
        return write_selection(path, self.selection, self._encoded)

    def grid_image(self) -> np.ndarray:
        """(C, H', W') float image: up to GRID_IMAGES of the selected images, evenly spread over
        the selection (in index order), tiled in rows of eight."""
        ids = self.selection.indices
        picked = ids[np.unique(np.linspace(0, len(ids) - 1, min(GRID_IMAGES, len(ids))).astype(np.int64))]
        return tile(np.asarray(self._encoded.images[picked], np.float32) / 255.0, nrow=8)

    def _on_images_button_clicked(self) -> None:
        qimage = to_qimage(self.grid_image())
        factor = max(1, GRID_PX // max(1, qimage.width()))
        label = QLabel()
        label.setPixmap(QPixmap.fromImage(qimage.scaled(qimage.size() * factor, Qt.AspectRatioMode.IgnoreAspectRatio,
                                                        Qt.TransformationMode.FastTransformation)))
        caption = QLabel(self.summary.text())
        caption.setWordWrap(True)
        dialog = QDialog(self)
        dialog.setWindowTitle("Selected images")
        layout = QVBoxLayout(dialog)
        layout.addWidget(label)
        layout.addWidget(caption)
        if self.images_dialog is not None:
            self.images_dialog.close()
        self.images_dialog = dialog
        dialog.show()

    def _on_export_button_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the selection", "selection.npz",
                                              "NumPy arrays (*.npz);;CSV table (*.csv)")
        if not path:
            return
        try:
            written = self.export_to(path)
        except VaeguiError as exc:  # shown where the user looks; the app keeps running
            self.summary.setText(str(exc))
            self.summary.setStyleSheet("color: #b00020;")
            return
        self.summary.setText(f"{describe(self.selection, self._encoded.labels, self._encoded.class_names)}"
                             f" · saved {Path(written).name}")
