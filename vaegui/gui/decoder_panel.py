"""The decoder panel: decodes a picked latent vector with the latest decoder snapshot and shows
the image large and crisp.

It is built from sections, so later tools (dragging a point, interpolation, traversals, grids)
can join the point view as sections or tabs of their own, all fed by the same decoder.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QImage, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from ..core.latent import Decoder
from . import palette

HINT_NO_DECODER = "No decoder yet: start training or load a checkpoint"
HINT_NO_POINT = "Click the latent map to decode a point"
MAX_SHOWN_DIMS = 8  # longer latent vectors are shown as their first and last values


def format_latent(z: np.ndarray) -> str:
    """``z = [0.12, -1.30]``; long vectors elided in the middle, with their length."""
    values = [f"{v:.2f}" for v in np.asarray(z, dtype=np.float64).ravel()]
    if len(values) > MAX_SHOWN_DIMS:
        values = values[:MAX_SHOWN_DIMS - 2] + ["...", values[-1]]
        return f"z = [{', '.join(values)}]  (L = {len(z)})"
    return f"z = [{', '.join(values)}]"


class ImageCanvas(QWidget):
    """Draws one image as large as fits, aspect kept, nearest-neighbour scaled (every pixel of a
    28x28 image stays a crisp square); shows a hint text when there is no image."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._image: QImage | None = None
        self._hint = ""
        self.setMinimumSize(64, 64)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_image(self, image: np.ndarray | None, hint: str = "") -> None:
        """(C, H, W) float in [0, 1] or uint8, or None to show ``hint`` instead."""
        self._image = None if image is None else palette.to_qimage(image)
        self._hint = hint
        self.update()

    def hint(self) -> str:
        return self._hint

    def image_rect(self) -> QRect:
        """Where the image is drawn: the largest rectangle of its aspect, centred."""
        if self._image is None:
            return QRect()
        size = QSize(self._image.size()).scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        rect = QRect(0, 0, size.width(), size.height())
        rect.moveCenter(self.rect().center())
        return rect

    def sizeHint(self) -> QSize:
        return QSize(280, 280)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().color(QPalette.ColorRole.Base))
        if self._image is None:
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.rect().adjusted(8, 8, -8, -8),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._hint)
            return
        rect = self.image_rect()
        # Scaling the image ourselves with FastTransformation guarantees nearest-neighbour.
        scaled = self._image.scaled(rect.size(), Qt.AspectRatioMode.IgnoreAspectRatio,
                                    Qt.TransformationMode.FastTransformation)
        painter.drawImage(rect.topLeft(), scaled)


class DecoderPanel(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._decoder: Decoder | None = None
        self._latent: np.ndarray | None = None
        self._image: np.ndarray | None = None
        # The point view: the decoded image of one latent vector and its values.
        self.canvas = ImageCanvas()
        self.latent_label = QLabel()
        self.latent_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.latent_label.setStyleSheet("font-family: monospace;")
        self.latent_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.latent_label)
        self._refresh()

    def set_decoder(self, decoder: Decoder | None) -> None:
        """Use this decoder (a new snapshot, or the same object with new weights loaded) and
        decode the current latent again. A latent of the wrong length for it is dropped."""
        self._decoder = decoder
        if decoder is not None and self._latent is not None and self._latent.shape != (decoder.latent_dim,):
            self._latent = None
        self._refresh()

    def show_latent(self, z: np.ndarray) -> None:
        self._latent = np.asarray(z, dtype=np.float32).reshape(-1).copy()
        self._refresh()

    def current_image(self) -> np.ndarray | None:
        return self._image

    def current_latent(self) -> np.ndarray | None:
        return None if self._latent is None else self._latent.copy()

    def decoder(self) -> Decoder | None:
        return self._decoder

    def _refresh(self) -> None:
        """Decode the current latent, if there is one and a decoder for it, and show the result."""
        self._image, hint = None, ""
        if self._decoder is None:
            hint = HINT_NO_DECODER
        elif self._latent is None:
            hint = HINT_NO_POINT
        elif self._latent.shape != (self._decoder.latent_dim,):
            hint = (f"This point has {self._latent.size} latent dimensions; "
                    f"the decoder expects {self._decoder.latent_dim}")
        else:
            self._image = self._decoder.decode(self._latent[None])[0]  # (C, H, W) in [0, 1]
        self.canvas.set_image(self._image, hint)
        self.latent_label.setText("" if self._latent is None else format_latent(self._latent))
