"""A widget that draws one image (a decoded image, a strip or a grid of them) crisp and as large
as fits, with optional labels beside its rows and above its columns."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QFontMetrics, QImage, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

from ..qimage import to_qimage

LABEL_GAP = 6  # pixels between labels and the image


class ImageCanvas(QWidget):
    """Draws an image scaled by the largest whole factor that fits, without smoothing, so every
    pixel of a 28x28 image stays a crisp square; an image larger than the widget is scaled down
    smoothly instead. Shows a hint text when there is no image."""

    def __init__(self, parent: QWidget | None = None, minimum: int = 64, top: bool = False):
        """``minimum``: least side in pixels; ``top``: draw at the top (grids of rows), not
        centred."""
        super().__init__(parent)
        self._top = top
        self._array: np.ndarray | None = None
        self._image: QImage | None = None
        self._painted: QImage | None = None  # _image in the paint engine's own format
        self._hint = ""
        self._row_labels: list[str] = []
        self._column_labels: list[str] = []
        self.setMinimumSize(minimum, minimum)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        # paintEvent fills every pixel: Qt need not paint the views behind it first (a drag or an
        # animation repaints a canvas up to 60 times a second).
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def set_image(self, image: np.ndarray | None, hint: str = "",
                  row_labels: list[str] | None = None, column_labels: list[str] | None = None) -> None:
        """(C, H, W) float in [0, 1] or uint8, or None to show ``hint`` instead. Labels, when
        given, are spread evenly over the image's height (rows) or width (columns)."""
        self._array = None if image is None else np.asarray(image)
        self._image = None if image is None else to_qimage(image)
        # Converted once here rather than at every paint: drawing a scaled grayscale or RGB888
        # image converts it to 32 bits first, each time (the point view repaints 60 times a
        # second during a drag; this makes its paint about 3 times as fast).
        self._painted = None if image is None else self._image.convertToFormat(QImage.Format.Format_RGB32)
        self._hint = hint
        self._row_labels = list(row_labels or [])
        self._column_labels = list(column_labels or [])
        self.update()

    def array(self) -> np.ndarray | None:
        """The image shown, as given."""
        return self._array

    def qimage(self) -> QImage | None:
        return self._image

    def hint(self) -> str:
        return self._hint

    def _margins(self) -> tuple[int, int]:
        metrics = QFontMetrics(self.font())
        left = max((metrics.horizontalAdvance(t) for t in self._row_labels), default=0)
        return (left + LABEL_GAP if left else 0), (metrics.height() + 2 if self._column_labels else 0)

    def image_rect(self) -> QRect:
        """Where the image is drawn: centred in the space the labels leave."""
        if self._image is None:
            return QRect()
        left, top = self._margins()
        room = self.rect().adjusted(left, top, 0, 0)
        w, h = self._image.width(), self._image.height()
        factor = min(room.width() // w, room.height() // h)
        size = QSize(w * factor, h * factor) if factor >= 1 else \
            QSize(w, h).scaled(room.size(), Qt.AspectRatioMode.KeepAspectRatio)
        rect = QRect(0, 0, max(1, size.width()), max(1, size.height()))
        rect.moveCenter(room.center())
        if self._top:
            rect.moveTop(room.top())
        return rect

    def sizeHint(self) -> QSize:
        # Modest: a view in a scroll area is laid out from its size hints (word-wrapped labels
        # make its layout height-for-width), and the canvases take what room there is anyway.
        return self.minimumSize() + QSize(32, 32)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().color(QPalette.ColorRole.Base))
        if self._image is None:
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.rect().adjusted(8, 8, -8, -8),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._hint)
            return
        rect = self.image_rect()
        # The paint engine scales while drawing (no scaled copy per paint): nearest neighbour
        # when enlarging, smooth when an image larger than the widget is shrunk.
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, rect.width() < self._image.width())
        painter.drawImage(rect, self._painted)
        self._paint_labels(painter, rect)

    def _paint_labels(self, painter: QPainter, rect: QRect) -> None:
        if not (self._row_labels or self._column_labels):
            return
        painter.setPen(self.palette().color(QPalette.ColorRole.Text))
        metrics = QFontMetrics(self.font())
        for k, text in enumerate(self._row_labels):
            y = rect.top() + (k + 0.5) * rect.height() / len(self._row_labels)
            box = QRect(0, int(y - metrics.height() / 2), rect.left() - LABEL_GAP, metrics.height())
            painter.drawText(box, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, text)
        for k, text in enumerate(self._column_labels):
            width = rect.width() / len(self._column_labels)
            box = QRect(int(rect.left() + k * width), rect.top() - metrics.height() - 2,
                        int(width), metrics.height())
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
