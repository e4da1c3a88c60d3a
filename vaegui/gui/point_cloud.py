"""A plot item for tens of thousands of round points of one size in a few colours.

pyqtgraph's ScatterPlotItem keeps a style record per point and works through them in Python:
giving it 60,000 points with their brushes costs ~190 ms of the GUI thread, and the latent map
does that at every epoch end while training runs. Here a point is a position and an index into a
few pre-rendered sprites, so new data is numpy work, and painting is one
``QPainter.drawPixmapFragments`` call, which is how ScatterPlotItem paints too.

That fast path is for pixels (the screen, a PNG). A vector device (SVG, PDF, a QPicture) gets one
filled circle per point instead, so an exported figure holds real points, not a bitmap of them.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
import shiboken6
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QWidget

_FRAGMENT_FIELDS = 10  # QPainter.PixmapFragment: x, y, sourceLeft, sourceTop, width, height,
#                        scaleX, scaleY, rotation, opacity (all qreal)


class PointCloud(pg.GraphicsObject):
    """Points at (x, y) in data coordinates, drawn ``size`` pixels wide whatever the zoom, each
    filled with ``brushes[colour[i]]``; a ``shown`` mask hides some without new data."""

    def __init__(self, size: int = 4):
        super().__init__()
        self._x = self._y = np.zeros(0, np.float64)
        self._colour = np.zeros(0, np.intp)
        self._shown = np.zeros(0, bool)
        self._brushes: list[QBrush] = []
        self._size = size
        self._sprites: QPixmap | None = None  # one per brush, side by side, at _sprite_dpr
        self._sprite_dpr = 0.0
        self._bounds: tuple[float, float, float, float] | None = None  # of the shown points
        # boundingRect, kept until the data or the zoom change: Qt asks for it several times per
        # paint of the map (every marker move, every animation frame), and each answer costs a
        # pixel-size computation in Python.
        self._rect: QRectF | None = None

    # ---- data --------------------------------------------------------------------------
    def set_data(self, x: np.ndarray, y: np.ndarray, colour: np.ndarray, brushes: list[QBrush],
                 size: int | None = None) -> None:
        # Float32 positions are kept as they come: a copy of a million of them as float64 cost the
        # GUI thread tens of ms at every new map.
        x, y = (np.asarray(v) if np.asarray(v).dtype in (np.float32, np.float64) else np.asarray(v, np.float64)
                for v in (x, y))
        if x.shape != y.shape or x.ndim != 1 or len(colour) != len(x):
            raise ValueError(f"x, y and colour must be 1-D of one length, got {x.shape}, "
                             f"{y.shape}, {np.shape(colour)}")
        self.prepareGeometryChange()
        self._x, self._y = x, y
        self._shown = np.ones(len(x), bool)
        if size is not None and size != self._size:
            self._size, self._sprites = size, None
        self.set_colours(colour, brushes)
        self._update_bounds()

    def set_colours(self, colour: np.ndarray, brushes: list[QBrush]) -> None:
        """Colour indices, wrapping around ``brushes``."""
        if brushes != self._brushes:
            self._brushes, self._sprites = list(brushes), None
        colour = np.asarray(colour, np.intp)
        n = max(1, len(brushes))
        # Wrapped only when needed: a modulo of a million indices is the slow part of new colours.
        self._colour = colour if not len(colour) or (colour.min() >= 0 and colour.max() < n) else colour % n
        self.update()

    def set_shown(self, shown: np.ndarray) -> None:
        self.prepareGeometryChange()
        self._shown = np.asarray(shown, bool).copy()
        self._update_bounds()

    def clear(self) -> None:
        self.set_data(np.zeros(0), np.zeros(0), np.zeros(0, np.intp), self._brushes)

    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        return self._x, self._y

    def colours(self) -> np.ndarray:
        return self._colour

    def brushes(self) -> list[QBrush]:
        return list(self._brushes)

    def shown(self) -> np.ndarray:
        return self._shown

    def __len__(self) -> int:
        return len(self._x)

    def _update_bounds(self) -> None:
        keep = self._shown & np.isfinite(self._x) & np.isfinite(self._y)
        # Without copies when every point counts (the usual case; a million points each time).
        x, y = (self._x, self._y) if keep.all() else (self._x[keep], self._y[keep])
        self._bounds = tuple(float(v) for v in (x.min(), x.max(), y.min(), y.max())) if len(x) else None
        self._rect = None
        self.informViewBoundsChanged()
        self.update()

    # ---- what a ViewBox asks ----------------------------------------------------------------
    def dataBounds(self, ax: int, frac: float = 1.0, orthoRange=None):
        """Range of the shown points along ``ax`` (0 = x), optionally of those whose other
        coordinate lies in ``orthoRange``, or the central ``frac`` of them."""
        if self._bounds is None:
            return (None, None)
        if frac >= 1.0 and orthoRange is None:
            return self._bounds[2 * ax:2 * ax + 2]
        d, other = (self._x, self._y) if ax == 0 else (self._y, self._x)
        mask = self._shown & np.isfinite(d)
        if orthoRange is not None:
            mask &= (other >= orthoRange[0]) & (other <= orthoRange[1])
        d = d[mask]
        if not len(d):
            return (None, None)
        if frac >= 1.0:
            return (d.min(), d.max())
        return tuple(np.percentile(d, [50 * (1 - frac), 50 * (1 + frac)]))

    def pixelPadding(self) -> float:
        return self._size / 2 + 1

    def boundingRect(self) -> QRectF:
        if self._rect is not None:
            return QRectF(self._rect)
        if self._bounds is None:
            return QRectF()
        x0, x1, y0, y1 = self._bounds
        pad = self._padding()
        rect = QRectF(x0 - pad[0], y0 - pad[1], x1 - x0 + 2 * pad[0], y1 - y0 + 2 * pad[1])
        if pad != (0.0, 0.0):  # not before the item is in a view
            self._rect = rect
        return QRectF(rect)

    def _padding(self) -> tuple[float, float]:
        """Half a point, in data units along x and y at the current zoom."""
        px, py = self.pixelVectors()
        if px is None or py is None:
            return 0.0, 0.0
        return px.length() * self.pixelPadding(), py.length() * self.pixelPadding()

    def viewTransformChanged(self) -> None:
        self.prepareGeometryChange()  # the padding, in data units, follows the zoom
        self._rect = None  # (after: Qt asks for the old rect while preparing)
        super().viewTransformChanged()

    # ---- painting ----------------------------------------------------------------------------
    def paint(self, painter: QPainter, *args) -> None:
        if not len(self._x) or not self._brushes:
            return
        index = self._visible_index()
        if not len(index):
            return
        t = painter.transform()
        x, y = self._x[index], self._y[index]
        px = np.clip(t.m11() * x + t.m21() * y + t.dx(), -2.0 ** 30, 2.0 ** 30)  # device pixels
        py = np.clip(t.m12() * x + t.m22() * y + t.dy(), -2.0 ** 30, 2.0 ** 30)
        scale = self._scene_to_device_scale(t)
        painter.save()
        painter.resetTransform()
        if is_raster(painter):
            self._paint_sprites(painter, index, px, py, scale)
        else:
            self._paint_vector(painter, index, px, py, scale)
        painter.restore()

    def _scene_to_device_scale(self, t) -> float:
        """How many device units a pixel of the scene spans: 1 on screen, more when an exporter
        scales the scene up (a PDF at its resolution), so points keep their size in the figure."""
        to_scene, ok = self.sceneTransform().inverted()
        scale = math.sqrt(abs((to_scene * t).determinant())) if ok else 1.0
        return scale if math.isfinite(scale) and scale > 0 else 1.0

    def _visible_index(self) -> np.ndarray:
        """Indices of the shown, finite points inside the view (with half a point's margin)."""
        keep = self._shown & np.isfinite(self._x) & np.isfinite(self._y)
        if (view := self.viewRect()) is not None:  # only what the view shows
            pad_x, pad_y = self._padding()
            keep &= ((self._x >= view.left() - pad_x) & (self._x <= view.right() + pad_x)
                     & (self._y >= view.top() - pad_y) & (self._y <= view.bottom() + pad_y))
        return np.flatnonzero(keep)

    def _paint_sprites(self, painter: QPainter, index: np.ndarray, px: np.ndarray, py: np.ndarray,
                       scale: float) -> None:
        dpr = painter.device().devicePixelRatioF()
        if self._sprites is None or dpr * scale != self._sprite_dpr:
            self._sprites, self._sprite_dpr = self._render_sprites(dpr * scale), dpr * scale
        frags = np.empty((len(index), _FRAGMENT_FIELDS), np.float64)
        frags[:, 0] = px
        frags[:, 1] = py
        side = self._sprites.width() // len(self._brushes)
        frags[:, 2] = self._colour[index] * side  # sourceLeft
        frags[:, 3] = 0.0  # sourceTop
        frags[:, 4:6] = side  # source width and height, in sprite pixels
        frags[:, 6:8] = 1.0 / dpr  # scale back to logical pixels
        frags[:, 8] = 0.0  # rotation
        frags[:, 9] = 1.0  # opacity
        # PySide takes the first fragment of a C array and the count: wrap the numpy buffer.
        first = shiboken6.wrapInstance(frags.ctypes.data, QPainter.PixmapFragment)
        painter.drawPixmapFragments(first, len(frags), self._sprites)

    def _paint_vector(self, painter: QPainter, index: np.ndarray, px: np.ndarray, py: np.ndarray,
                      scale: float) -> None:
        """One circle per point, in the order the sprites are drawn (later points on top)."""
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        radius = scale * self._size / 2
        colour = self._colour[index]
        current = -1
        for k, x, y in zip(colour.tolist(), px.tolist(), py.tolist()):
            if k != current:
                painter.setBrush(self._brushes[k])
                current = k
            painter.drawEllipse(QPointF(x, y), radius, radius)

    def _render_sprites(self, dpr: float) -> QPixmap:
        side = int(math.ceil(dpr * (self._size + 1)))
        image = QImage(side * len(self._brushes), side, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        p = QPainter(image)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        radius = dpr * self._size / 2
        for k, brush in enumerate(self._brushes):
            p.setBrush(brush)
            p.drawEllipse(QPointF(k * side + side / 2, side / 2), radius, radius)
        p.end()
        return QPixmap.fromImage(image)


def is_raster(painter: QPainter) -> bool:
    """Whether the painter paints pixels (a widget, an image, a pixmap), not vectors."""
    return isinstance(painter.device(), (QImage, QPixmap, QWidget))
