"""Plots to files: PNG at a chosen scale, SVG and vector PDF, from a pyqtgraph plot item.

- PNG: the scene is rendered into a QImage whose device pixel ratio is the scale, which is how a
  high-DPI screen draws it: text, pens (cosmetic ones too) and the map's points all grow by the
  scale, and the figure is the one on screen with more pixels. The scale counts logical pixels;
  :func:`default_scale` makes the default twice what the screen shows in its own pixels (four
  times the logical size on a screen of pixel ratio 2). (pyqtgraph's ImageExporter scales
  the painter instead, which leaves cosmetic pens and our point sprites one device pixel wide: a
  2x PNG got hairlines and half-size points.)
- SVG and PDF: the scene rendered into a QSvgGenerator, or a QPdfWriter page the size of the
  plot; vector throughout. (pyqtgraph's SVGExporter rewrites the path data Qt writes, and fails
  on Qt 6.11's, which closes paths with a separate "Z": ValueError on every plot.)

Items cached as device pixmaps (the map caches its points and axes) are drawn uncached while
exporting, so that a vector file gets vectors and a PNG gets the export's resolution. A legend
inside the axes that covers data is drawn outside them (plot_legend.outside_for_export).
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

import pyqtgraph as pg
from pyqtgraph.exporters import ImageExporter
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMarginsF, QRectF, QSizeF, Qt
from PySide6.QtGui import QColor, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QGraphicsItem, QGraphicsWidget, QWidget

from vaegui.core.export import PLOT_FORMATS, PLOT_SCALE, PLOT_SCALES, SCREEN_DPI, ExportError, write_bytes

from ..plot_legend import outside_for_export

DEFAULT_SIZE = (800, 600)  # a plot never laid out (a panel never shown) is exported at this size
PDF_DPI = 1200  # device units of the PDF: positions are this fine; the content is vector


def plot_size(item: QGraphicsItem) -> QSizeF:
    """The plot's size in logical (on-screen) pixels."""
    return item.sceneBoundingRect().size()


def lay_out(item: pg.GraphicsWidget, size: tuple[int, int] | None = None) -> None:
    """Lay out a plot that is not on screen (a panel never shown, or hidden since), at ``size``
    when given or when it never had one (its layout waits for a show otherwise)."""
    views = item.scene().views() if item.scene() is not None else []
    if views and views[0].isVisible() and size is None:
        return
    rect = item.sceneBoundingRect()
    if size is not None or rect.width() < 2 or rect.height() < 2:
        item.setGeometry(QRectF(0, 0, *(size or DEFAULT_SIZE)))
    layout = QGraphicsWidget.layout(item)  # PlotItem's ``layout`` attribute hides the method
    if layout is not None:
        layout.activate()


def screen_ratio(widget: QWidget | None) -> float:
    """Device pixels per logical pixel of the screen the widget is on (2 on most high-DPI
    screens; a widget never shown reports its screen's)."""
    ratio = widget.devicePixelRatioF() if widget is not None else 1.0
    return ratio if math.isfinite(ratio) and ratio >= 1 else 1.0


def default_scale(widget: QWidget | None) -> float:
    """The default PNG scale: PLOT_SCALE times the on-screen size in the screen's own pixels,
    within PLOT_SCALES."""
    return min(PLOT_SCALES[1], PLOT_SCALE * screen_ratio(widget))


def png_size(item: QGraphicsItem, scale: float) -> tuple[int, int]:
    size = plot_size(item)
    return max(1, round(size.width() * scale)), max(1, round(size.height() * scale))


@contextlib.contextmanager
def _export_mode(item: QGraphicsItem, painter: QPainter | None, scale: float = 1.0):
    """Items drawn uncached, told they are being exported (pyqtgraph's protocol; ``scale``:
    device units a logical pixel, beyond the device's pixel ratio), with no legend over data."""
    with outside_for_export(item), _uncached(item, painter, scale):
        yield


@contextlib.contextmanager
def _uncached(item: QGraphicsItem, painter: QPainter | None, scale: float):
    scene = item.scene()
    cached = [(i, i.cacheMode()) for i in scene.items() if i.cacheMode() != QGraphicsItem.CacheMode.NoCache]
    for i, _ in cached:
        i.setCacheMode(QGraphicsItem.CacheMode.NoCache)
    exporter = ImageExporter(item)
    exporter.setExportMode(True, {"antialias": True, "background": _background(item),
                                  "painter": painter, "resolutionScale": scale})
    try:
        yield
    finally:
        exporter.setExportMode(False)
        for i, mode in cached:
            i.setCacheMode(mode)


def _background(item: QGraphicsItem) -> QColor:
    views = item.scene().views()
    colour = views[0].backgroundBrush().color() if views else QColor("white")
    return colour if colour.alpha() else QColor("white")


def render_png(item: QGraphicsItem, scale: float = PLOT_SCALE) -> QImage:
    """The plot as an image ``scale`` times its on-screen size, drawn as a screen of that pixel
    ratio would draw it."""
    width, height = png_size(item, scale)
    image = QImage(width, height, QImage.Format.Format_ARGB32_Premultiplied)
    image.setDevicePixelRatio(scale)
    image.fill(_background(item))
    source = item.sceneBoundingRect()
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        # The pixel ratio scales everything already: pyqtgraph's scatter symbols must not
        # scale by the export's resolution again.
        with _export_mode(item, painter, 1.0):
            item.scene().render(painter, QRectF(0, 0, source.width(), source.height()), source)
    finally:
        painter.end()
    # Only now: a painter sizes text by the device's dots per inch (which the pixel ratio
    # already scales). Saved in the PNG, it makes the figure print at its on-screen size.
    dots_per_metre = round(SCREEN_DPI * scale / 0.0254)
    image.setDotsPerMeterX(dots_per_metre)
    image.setDotsPerMeterY(dots_per_metre)
    return image


def _render_vector(item: QGraphicsItem, device, scale: float) -> None:
    """Draw the plot on a vector device, ``scale`` device units a logical pixel."""
    source = item.sceneBoundingRect()
    painter = QPainter(device)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        target = QRectF(0, 0, source.width() * scale, source.height() * scale)
        painter.fillRect(target, _background(item))
        with _export_mode(item, painter, scale):
            item.scene().render(painter, target, source, Qt.AspectRatioMode.IgnoreAspectRatio)
    finally:
        painter.end()


def svg_bytes(item: QGraphicsItem, title: str = "") -> bytes:
    """An SVG document the size of the plot, in logical pixels."""
    size = plot_size(item)
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    generator = QSvgGenerator()
    generator.setOutputDevice(buffer)
    generator.setSize(size.toSize())
    generator.setViewBox(QRectF(0, 0, size.width(), size.height()))
    generator.setResolution(round(SCREEN_DPI))
    generator.setTitle(title)
    generator.setDescription("Exported by vaegui")
    _render_vector(item, generator, 1.0)
    buffer.close()
    return bytes(buffer.data())


def pdf_bytes(item: QGraphicsItem, title: str = "") -> bytes:
    """One page the size of the plot (at 96 logical pixels an inch), drawn in vectors."""
    source = item.sceneBoundingRect()
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buffer)
    writer.setResolution(PDF_DPI)
    writer.setCreator("vaegui")
    writer.setTitle(title)
    points = QSizeF(source.width() * 72 / SCREEN_DPI, source.height() * 72 / SCREEN_DPI)
    writer.setPageLayout(QPageLayout(QPageSize(points, QPageSize.Unit.Point, "", QPageSize.SizeMatchPolicy.ExactMatch),
                                     QPageLayout.Orientation.Portrait, QMarginsF(0, 0, 0, 0)))
    _render_vector(item, writer, PDF_DPI / SCREEN_DPI)
    buffer.close()
    return bytes(buffer.data())


def png_bytes(item: QGraphicsItem, scale: float = PLOT_SCALE) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not render_png(item, scale).save(buffer, "PNG"):
        raise ValueError("Qt could not encode the PNG")
    return bytes(data)


def write_plot(item: pg.GraphicsWidget, path: str | os.PathLike, fmt: str | None = None,
               scale: float = PLOT_SCALE, title: str = "") -> Path:
    """Write the plot as PNG, SVG or PDF (``fmt``, else the file's suffix), a PNG ``scale``
    times the logical size; atomic, and an ExportError names the file and the reason."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in PLOT_FORMATS:
        raise ExportError(path, f"a plot is written as {', '.join(PLOT_FORMATS)}, not {fmt or 'no format'!r}")
    if not PLOT_SCALES[0] <= scale <= PLOT_SCALES[1]:
        raise ExportError(path, f"scale {scale:g} is not in {PLOT_SCALES[0]:g}..{PLOT_SCALES[1]:g}")
    lay_out(item)
    data = {"png": lambda: png_bytes(item, scale), "svg": lambda: svg_bytes(item, title),
            "pdf": lambda: pdf_bytes(item, title)}[fmt]()
    return write_bytes(path, data)
