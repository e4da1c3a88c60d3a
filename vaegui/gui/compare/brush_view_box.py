"""A map's ViewBox in the comparison: a left drag brushes a rectangle of points, an Alt (or Ctrl)
left drag a lasso, a left click picks a point; Shift-drag pans, right drag and the wheel zoom
(pyqtgraph's own)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QPainterPath, QPolygonF
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsRectItem

BRUSH_PEN = pg.mkPen("#E8601C", width=1, style=Qt.PenStyle.DashLine)
BRUSH_FILL = pg.mkBrush(232, 96, 28, 40)


class BrushViewBox(pg.ViewBox):
    brushed = Signal(QRectF)  # the rectangle, in data coordinates, as the drag goes and at its end
    lassoed = Signal(object)  # the lasso's vertices (M, 2), in data coordinates, as it is drawn
    clicked = Signal(QPointF)  # a left click, in data coordinates

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.band = QGraphicsRectItem()
        self.band.setPen(BRUSH_PEN)
        self.band.setBrush(BRUSH_FILL)
        self.band.setZValue(1e9)
        self.band.hide()
        self.addItem(self.band, ignoreBounds=True)
        self.lasso = QGraphicsPathItem()
        self.lasso.setPen(BRUSH_PEN)
        self.lasso.setBrush(BRUSH_FILL)
        self.lasso.setZValue(1e9)
        self.lasso.hide()
        self.addItem(self.lasso, ignoreBounds=True)
        self._lasso: list[tuple[float, float]] = []

    def mouseDragEvent(self, ev, axis=None) -> None:
        if ev.button() != Qt.MouseButton.LeftButton or ev.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            super().mouseDragEvent(ev, axis)  # pan, or right-drag zoom
            return
        ev.accept()
        if ev.modifiers() & (Qt.KeyboardModifier.AltModifier | Qt.KeyboardModifier.ControlModifier):
            self._drag_lasso(ev)
            return
        a, b = self.mapToView(ev.buttonDownPos()), self.mapToView(ev.pos())
        rect = QRectF(a, b).normalized()
        if ev.isFinish():
            self.band.hide()
        else:
            self.band.setRect(rect)
            self.band.show()
        self.brushed.emit(rect)

    def _drag_lasso(self, ev) -> None:
        if ev.isStart():
            start = self.mapToView(ev.buttonDownPos())
            self._lasso = [(start.x(), start.y())]
        p = self.mapToView(ev.pos())
        self._lasso.append((p.x(), p.y()))
        polygon = np.asarray(self._lasso, np.float64)
        if ev.isFinish():
            self.lasso.hide()
        else:
            path = QPainterPath()
            path.addPolygon(QPolygonF([QPointF(x, y) for x, y in self._lasso]))
            path.closeSubpath()
            self.lasso.setPath(path)
            self.lasso.show()
        self.lassoed.emit(polygon)

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.clicked.emit(self.mapToView(ev.pos()))
            return
        super().mouseClickEvent(ev)
