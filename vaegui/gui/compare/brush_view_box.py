"""A map's ViewBox in the comparison: a left drag brushes a rectangle of points, a left click
picks a point; Shift-drag pans, right drag and the wheel zoom (pyqtgraph's own)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtWidgets import QGraphicsRectItem

BRUSH_PEN = pg.mkPen("#E8601C", width=1, style=Qt.PenStyle.DashLine)
BRUSH_FILL = pg.mkBrush(232, 96, 28, 40)


class BrushViewBox(pg.ViewBox):
    brushed = Signal(QRectF)  # the rectangle, in data coordinates, as the drag goes and at its end
    clicked = Signal(QPointF)  # a left click, in data coordinates

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.band = QGraphicsRectItem()
        self.band.setPen(BRUSH_PEN)
        self.band.setBrush(BRUSH_FILL)
        self.band.setZValue(1e9)
        self.band.hide()
        self.addItem(self.band, ignoreBounds=True)

    def mouseDragEvent(self, ev, axis=None) -> None:
        if ev.button() != Qt.MouseButton.LeftButton or ev.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            super().mouseDragEvent(ev, axis)  # pan, or right-drag zoom
            return
        ev.accept()
        a, b = self.mapToView(ev.buttonDownPos()), self.mapToView(ev.pos())
        rect = QRectF(a, b).normalized()
        if ev.isFinish():
            self.band.hide()
        else:
            self.band.setRect(rect)
            self.band.show()
        self.brushed.emit(rect)

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.clicked.emit(self.mapToView(ev.pos()))
            return
        super().mouseClickEvent(ev)
