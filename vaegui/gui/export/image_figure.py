"""A grid of decoded images as a figure with its labels (the traversal: each row's dimension and
KL on the left, each column's offset above), as PNG, SVG or PDF. The images are enlarged by a
whole factor, every pixel a crisp square (core.export.enlarge); the labels are text (vector in
SVG and PDF), thinned as on screen so that they never overlap."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMarginsF, QRect, QRectF, QSize, QSizeF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter
from PySide6.QtSvg import QSvgGenerator

from vaegui.core import explorer_images as images
from vaegui.core.export import PLOT_FORMATS, SCREEN_DPI, ExportError, default_factor, enlarge, write_bytes

from ..explorer.image_canvas import LABEL_GAP, label_step
from ..minus_sign import drawable
from ..qimage import to_qimage

FONT_PX = (12, 36)  # least and most label size; between, a quarter of a cell's height
MARGIN = 8


def _font(cell_px: float) -> QFont:
    font = QFont()
    font.setPixelSize(int(np.clip(cell_px / 4, *FONT_PX)))
    return font


class _Figure:
    """Where everything goes, in pixels of the enlarged image."""

    def __init__(self, image: images.Image, factor: int):
        self.picture = to_qimage(np.ascontiguousarray(enlarge(image.array, factor).transpose(2, 0, 1)))
        self.rows, self.columns = list(image.row_labels), list(image.column_labels)
        _, height, width = image.array.shape
        self.cell_h = self.picture.height() / max(1, len(self.rows))
        self.cell_w = self.picture.width() / max(1, len(self.columns))
        self.font = _font(min(self.cell_h, self.cell_w) if self.rows or self.columns else 48)
        m = QFontMetrics(self.font)
        self.rows = [drawable(m, t) for t in self.rows]
        self.columns = [drawable(m, t) for t in self.columns]
        left = max((m.horizontalAdvance(t) for t in self.rows), default=0)
        self.left = MARGIN + (left + LABEL_GAP if left else 0)
        self.top = MARGIN + (m.height() + LABEL_GAP if self.columns else 0)
        self.size = QSize(self.left + self.picture.width() + MARGIN, self.top + self.picture.height() + MARGIN)
        self.metrics = m

    def draw(self, painter: QPainter) -> None:
        painter.fillRect(QRect(0, 0, self.size.width(), self.size.height()), QColor("white"))
        painter.drawImage(self.left, self.top, self.picture)
        painter.setFont(self.font)
        painter.setPen(QColor("black"))
        for box, text in self.label_boxes():
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def label_boxes(self) -> list[tuple[QRectF, str]]:
        m, boxes = self.metrics, []
        h = m.height()
        step = label_step(len(self.rows), self.cell_h, h)
        for k, text in enumerate(self.rows):
            if k % step == 0:
                w = m.horizontalAdvance(text)
                y = self.top + (k + 0.5) * self.cell_h - h / 2
                boxes.append((QRectF(self.left - LABEL_GAP - w, y, w, h), text))
        widest = max((m.horizontalAdvance(t) for t in self.columns), default=0)
        step = label_step(len(self.columns), self.cell_w, widest + LABEL_GAP)
        for k, text in enumerate(self.columns):
            if k % step == 0:
                w = m.horizontalAdvance(text)
                x = self.left + (k + 0.5) * self.cell_w - w / 2
                boxes.append((QRectF(x, self.top - LABEL_GAP - h, w, h), text))
        return boxes


def _png(figure: _Figure) -> bytes:
    image = QImage(figure.size, QImage.Format.Format_RGB32)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    figure.draw(painter)
    painter.end()
    dots_per_metre = round(SCREEN_DPI / 0.0254)
    image.setDotsPerMeterX(dots_per_metre)
    image.setDotsPerMeterY(dots_per_metre)
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise ValueError("Qt could not encode the PNG")
    return bytes(data)


def _svg(figure: _Figure, title: str) -> bytes:
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    generator = QSvgGenerator()
    generator.setOutputDevice(buffer)
    generator.setSize(figure.size)
    generator.setViewBox(QRectF(0, 0, figure.size.width(), figure.size.height()))
    generator.setResolution(round(SCREEN_DPI))
    generator.setTitle(title)
    generator.setDescription("Exported by vaegui")
    painter = QPainter(generator)
    figure.draw(painter)
    painter.end()
    buffer.close()
    return bytes(buffer.data())


def _pdf(figure: _Figure, title: str) -> bytes:
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buffer)
    writer.setResolution(round(SCREEN_DPI))  # one unit a figure pixel
    writer.setCreator("vaegui")
    writer.setTitle(title)
    points = QSizeF(figure.size.width() * 72 / SCREEN_DPI, figure.size.height() * 72 / SCREEN_DPI)
    writer.setPageLayout(QPageLayout(QPageSize(points, QPageSize.Unit.Point, "", QPageSize.SizeMatchPolicy.ExactMatch),
                                     QPageLayout.Orientation.Portrait, QMarginsF(0, 0, 0, 0)))
    painter = QPainter(writer)
    figure.draw(painter)
    painter.end()
    buffer.close()
    return bytes(buffer.data())


def write_image_figure(path: str | os.PathLike, image: images.Image, fmt: str | None = None,
                       factor: int | None = None, title: str = "") -> Path:
    """The image with its labels as PNG, SVG or PDF (``fmt``, else the file's suffix), each
    pixel a ``factor`` square (default: to about core.export.IMAGE_TARGET_PX); atomic, and an
    ExportError names the file and the reason."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in PLOT_FORMATS:
        raise ExportError(path, f"a figure is written as {', '.join(PLOT_FORMATS)}, not {fmt or 'no format'!r}")
    if image.array is None:
        raise ExportError(path, f"nothing to export: {image.why}")
    figure = _Figure(image, default_factor(image.array.shape) if factor is None else factor)
    data = {"png": lambda: _png(figure), "svg": lambda: _svg(figure, title),
            "pdf": lambda: _pdf(figure, title)}[fmt]()
    return write_bytes(path, data)
