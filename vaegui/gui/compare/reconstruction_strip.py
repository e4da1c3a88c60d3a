"""What a pick in the comparison decodes: a data image beside its reconstruction by every
model, and a point picked in one map decoded by that map's model."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from vaegui.core.latent import tile

from ..explorer.image_canvas import ImageCanvas


class ReconstructionStrip(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.row = ImageCanvas(minimum=72)
        self.row.set_image(None, "Click an image in a map: every model reconstructs it")
        self.point = ImageCanvas(minimum=72)
        self.point.set_image(None, "Click empty space in a map: its model decodes that point")
        self.point_caption = QLabel()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(QLabel("Reconstructions"))
        layout.addWidget(self.row, 2)
        layout.addWidget(self.point_caption)
        layout.addWidget(self.point, 1)

    def show_reconstructions(self, index: int, image: np.ndarray, images: list, names: list[str]) -> None:
        """The data image ``image`` (uint8) and each run's reconstruction (float, or None: a
        blank cell for a model without an encoder)."""
        original = image.astype(np.float32) / 255.0
        cells = [original] + [r if r is not None else np.ones_like(original) for r in images]
        # Numbered as the maps are (#1 is the first map): names are too long to fit above an image.
        self.row.set_image(tile(np.stack(cells), len(cells)),
                           column_labels=[f"image {index}", *(f"#{k + 1}" for k in range(len(names)))])

    def show_decoded(self, name: str, point: np.ndarray, image: np.ndarray | None) -> None:
        self.point_caption.setText(f"{name} decodes ({point[0]:.2f}, {point[1]:.2f}) of its map")
        self.point.set_image(image, "" if image is not None else f"{name}: no weights to decode with")
