"""Brushing on the latent map: a lasso (Ctrl-drag) or a rectangle (Ctrl-Shift-drag) selects the
points inside it (:mod:`vaegui.core.selection`, through the map's spatial index), and the
selection stays drawn: its outline, and a dark halo around each of its points (drawn under the
points, so their class colours stay; over the density image when that is shown instead).

Both are items in the plane, so they follow pan and zoom, and they lie over the density image
as over the points. At most HIGHLIGHT_MAX selected points get a halo, spread evenly over the
selection (halos for hundreds of thousands would cost every frame what the density image saves);
the outline marks a bigger selection's region.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QBrush, QColor

from vaegui.core.selection import Selection, select_polygon, select_rect
from vaegui.core.spatial_index import SpatialIndex

from ..point_cloud import PointCloud

HIGHLIGHT_MAX = 50_000  # selected points given a halo; above it, an even share of them
HIGHLIGHT_COLOUR = "#111111"  # dark on the light map and over every label colour
Z_VALUE = 7  # the outline: over the points and the density image, under the interpolation path
HALO_PX = 3  # the halo is this many pixels wider than a point
SHAPES = ("lasso", "rect")


class Brush(QObject):
    """Draws the selection being made and the one made, on a map's plot."""

    selected = Signal(object)  # the new Selection, or None when cleared

    def __init__(self, plot: pg.PlotItem, parent: QObject | None = None):
        super().__init__(parent)
        pen = pg.mkPen(HIGHLIGHT_COLOUR, width=1.5, style=Qt.PenStyle.DashLine)
        self.outline = pg.PlotCurveItem(pen=pen)
        self.points = PointCloud()
        for item in (self.outline, self.points):
            plot.addItem(item, ignoreBounds=True)  # the map's extent is the data's
        self.outline.setZValue(Z_VALUE)
        self.set_over_density(False)
        self._brush = [QBrush(QColor(HIGHLIGHT_COLOUR))]
        self._x = self._y = np.zeros(0, np.float32)
        self._trace: list[tuple[float, float]] = []
        self._shape = "lasso"
        self._size = 4
        self.selection: Selection | None = None

    def set_points(self, x: np.ndarray, y: np.ndarray, size: int, keep: bool = False) -> None:
        """A new map's points. ``keep``: the same images in a new plane (the next epoch's map), so
        the same points stay selected, drawn where they now lie; the old outline goes."""
        self._x, self._y, self._size = x, y, size
        self._trace = []
        if keep and self.selection is not None:
            self.selection = Selection(self.selection.indices, np.zeros((0, 2)))
            self._draw()
        else:
            self.clear()

    def set_over_density(self, density: bool) -> None:
        """Halos under the points (their colours stay seen), or over the density image."""
        self.points.setZValue(Z_VALUE if density else -1)

    # ---- a drag ------------------------------------------------------------------------------
    def start(self, xy: np.ndarray, shape: str) -> None:
        if shape not in SHAPES:
            raise ValueError(f"brush shape {shape!r} is not one of {SHAPES}")
        self._shape = shape
        self._trace = [(float(xy[0]), float(xy[1]))]
        self._draw_outline(self._corners())

    def move(self, xy: np.ndarray) -> None:
        if not self._trace:
            return
        p = (float(xy[0]), float(xy[1]))
        if self._shape == "rect":
            self._trace[1:] = [p]
        elif p != self._trace[-1]:
            self._trace.append(p)
        self._draw_outline(self._corners())

    def finish(self, index: SpatialIndex | None, allowed: np.ndarray | None) -> Selection | None:
        """Select what the drag enclosed (``allowed``: the points not hidden; None: all)."""
        trace, self._trace = self._trace, []
        if self._shape == "rect" and len(trace) == 2:
            sel = select_rect(self._x, self._y, trace[0], trace[1], index, allowed)
        elif self._shape == "lasso" and len(trace) >= 3:
            sel = select_polygon(self._x, self._y, np.array(trace), index, allowed)
        else:  # a click, not a drag: clears the selection, as in most tools
            self.clear()
            return None
        self.selection = sel
        self._draw()
        self.selected.emit(sel)
        return sel

    def clear(self) -> None:
        had = self.selection is not None
        self.selection = None
        self._trace = []
        self._draw()
        if had:
            self.selected.emit(None)

    # ---- drawing -----------------------------------------------------------------------------
    def _corners(self) -> np.ndarray:
        trace = np.array(self._trace, np.float64).reshape(-1, 2)
        if self._shape == "rect" and len(trace) == 2:
            (x0, y0), (x1, y1) = trace
            return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
        return trace

    def _draw_outline(self, corners: np.ndarray) -> None:
        if not len(corners):
            self.outline.clear()
            return
        closed = np.vstack([corners, corners[:1]])
        self.outline.setData(closed[:, 0], closed[:, 1])

    def _draw(self) -> None:
        sel = self.selection
        self._draw_outline(sel.outline if sel is not None else np.zeros((0, 2)))
        shown = np.zeros(0, np.int64) if sel is None else sel.indices
        if len(shown) > HIGHLIGHT_MAX:
            shown = shown[np.linspace(0, len(shown) - 1, HIGHLIGHT_MAX).astype(np.int64)]
        self.points.set_data(self._x[shown], self._y[shown], np.zeros(len(shown), np.intp), self._brush,
                             size=self._size + HALO_PX)
