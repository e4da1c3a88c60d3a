"""Links between the comparison's maps: what the pointer does in one map, every map shows.

- hovering: the data image nearest the pointer (within a few pixels) is ringed in every map;
- a left drag brushes a rectangle (Alt or Ctrl: a lasso): the images inside it in that map are
  highlighted in all;
- a left click on an image picks it (every model reconstructs it); a click on empty space picks
  that point of the map's plane (its own model decodes it).

The maps show the same images in the same order, so a data index is the link; the search is
numpy over one map's points.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, QTimer, Signal

from vaegui.core.selection import inside_polygon

from .compare_figure import CompareFigure

HOVER_RADIUS_PX = 6
HOVER_DELAY_MS = 16  # pointer moves are coalesced: one search a frame


class MapLinks(QObject):
    hovered = Signal(object)  # data index, or None
    brushed = Signal(object)  # data indices (np.ndarray)
    imagePicked = Signal(int)  # data index
    pointPicked = Signal(int, object)  # map (run) index, plane point (2,)

    def __init__(self, figure: CompareFigure):
        super().__init__(figure)
        self.figure = figure
        self._pending: QPointF | None = None
        self._timer = QTimer(self, singleShot=True, interval=HOVER_DELAY_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        figure.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)
        self.attach()

    def attach(self) -> None:
        """Listen to the figure's current maps (after each set_comparison)."""
        for k, m in enumerate(self.figure.maps):
            m.view.brushed.connect(lambda rect, k=k: self.brush(k, rect))
            m.view.lassoed.connect(lambda polygon, k=k: self.lasso(k, polygon))
            m.view.clicked.connect(lambda pos, k=k: self.click(k, pos))

    # ---- what the pointer does ---------------------------------------------------------------
    def _on_scene_mouse_moved(self, pos: QPointF) -> None:
        self._pending = QPointF(pos)
        if not self._timer.isActive():
            self._timer.start()

    def _on_timer_timeout(self) -> None:
        if self._pending is not None:
            self.hover_scene_pos(self._pending)

    def hover_scene_pos(self, pos: QPointF) -> int | None:
        """Ring, in every map, the image nearest ``pos`` (scene coordinates) in the map under it."""
        index = None
        for m in self.figure.maps:
            if m.view.sceneBoundingRect().contains(pos):
                p = m.view.mapSceneToView(pos)
                index = self.nearest(m, p.x(), p.y())
                break
        if index != self.figure.hovered:
            self.figure.set_hovered(index)
            self.hovered.emit(index)
        return index

    def nearest(self, m, x: float, y: float) -> int | None:
        """The index of the point of map ``m`` within HOVER_RADIUS_PX of (x, y), or None."""
        if not len(m.x):
            return None
        px, py = m.view.viewPixelSize()
        d2 = ((m.x - x) / px) ** 2 + ((m.y - y) / py) ** 2
        index = int(np.argmin(d2))
        return index if d2[index] <= HOVER_RADIUS_PX ** 2 else None

    def brush(self, k: int, rect: QRectF) -> np.ndarray:
        """Highlight in every map the images inside ``rect`` (data coordinates) of map ``k``."""
        m = self.figure.maps[k]
        inside = ((m.x >= rect.left()) & (m.x <= rect.right())
                  & (m.y >= rect.top()) & (m.y <= rect.bottom()))
        index = np.flatnonzero(inside)
        self.figure.set_brushed(index)
        self.brushed.emit(index)
        return index

    def lasso(self, k: int, polygon: np.ndarray) -> np.ndarray:
        """Highlight in every map the images inside ``polygon`` (M, 2, data coordinates) of map ``k``."""
        m = self.figure.maps[k]
        index = np.flatnonzero(inside_polygon(m.x, m.y, polygon))
        self.figure.set_brushed(index)
        self.brushed.emit(index)
        return index

    def click(self, k: int, pos: QPointF) -> None:
        m = self.figure.maps[k]
        index = self.nearest(m, pos.x(), pos.y())
        if index is not None:
            self.imagePicked.emit(index)
        else:
            self.pointPicked.emit(k, np.array([pos.x(), pos.y()], np.float32))
