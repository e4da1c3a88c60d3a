"""What the explorer draws over the latent map's points: the picked point, the interpolation
path with its end points A and B and the point moving along it, and the manifold grid as tiles.
Each item follows the explorer model; none of them changes the view's range."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QGraphicsSimpleTextItem

from vaegui.core.explorer import ExplorerModel
from vaegui.core.latent import letterbox_tiles

HANDLE_RADIUS_PX = 9  # a press this close to A or B drags it
# Free space around each tile, a share of its side: tiles that touched their neighbours read as
# vertical bars on a wide view. With the cells' outlines the overlay reads as a grid of cells.
TILE_MARGIN = 0.25
OUTLINE_PEN = (90, 90, 90, 110)


def _symbol(path: QPainterPath, pen: QPen, brush: QBrush | None = None,
            parent: QGraphicsItem | None = None) -> QGraphicsPathItem:
    """A symbol of a fixed size in screen pixels, drawn by Qt itself: moving it is a setPos,
    with no Python at paint time (pyqtgraph's scatter items cost ~1 ms of Python a move)."""
    item = QGraphicsPathItem(path, parent)
    item.setPen(pen)
    item.setBrush(brush if brush is not None else QBrush(Qt.BrushStyle.NoBrush))
    if parent is None:
        item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        item.setVisible(False)
    return item


def _circle(diameter: float) -> QPainterPath:
    path = QPainterPath()
    path.addEllipse(QPointF(0, 0), diameter / 2, diameter / 2)
    return path


def _cross(size: float) -> QPainterPath:
    path = QPainterPath()
    path.moveTo(-size / 2, 0)
    path.lineTo(size / 2, 0)
    path.moveTo(0, -size / 2)
    path.lineTo(0, size / 2)
    return path


def _square(side: float) -> QPainterPath:
    path = QPainterPath()
    path.addRect(-side / 2, -side / 2, side, side)
    return path


class MapOverlay:
    """Owns the explorer's items on ``plot`` and keeps them in step with ``model``."""

    def __init__(self, model: ExplorerModel, plot: pg.PlotItem):
        self.model = model
        self.plot = plot
        self.tiles = pg.ImageItem(axisOrder="row-major")
        self.tiles.setZValue(-5)  # under the points
        self._tiles_of: tuple | None = None  # (grid image, region, tile shape) the tiles show
        # The grid's cells, outlined: each tile is a sample of its cell, taken at its centre.
        self.outlines = pg.PlotCurveItem(pen=pg.mkPen(OUTLINE_PEN, width=1), connect="pairs")
        self.outlines.setZValue(-4)
        self.path = pg.PlotCurveItem(pen=pg.mkPen("#222", width=2, style=pg.QtCore.Qt.PenStyle.DashLine))
        self.path.setZValue(8)
        # The moving point travels along the path, so every animation frame repaints the part of
        # it underneath: kept as a pixmap, that is a blit, not a dashed line stroked in Python.
        self.path.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        # The picked point: a red ring with a cross, on a white halo that shows on any colour.
        self.marker = _symbol(_circle(15), QPen(QColor("white"), 4))
        _symbol(_circle(15), QPen(QColor("#d00"), 2), parent=self.marker)
        _symbol(_cross(7), QPen(QColor("#d00"), 1.5), parent=self.marker)
        self.marker.setZValue(10)
        self.handles = {}
        for key in "ab":
            handle = _symbol(_square(12), QPen(QColor("black"), 1.5), QBrush(QColor(255, 200, 0, 230)))
            label = QGraphicsSimpleTextItem(key.upper(), handle)
            label.setFont(QFont(label.font().family(), 9, QFont.Weight.Bold))
            label.setPos(7, -18)
            handle.setZValue(9)
            self.handles[key] = handle
        self.moving = _symbol(_circle(11), QPen(QColor("black"), 1), QBrush(QColor(255, 120, 0)))
        self.moving.setZValue(9)
        for item in (self.tiles, self.outlines, self.path, self.marker, *self.handles.values(), self.moving):
            plot.addItem(item, ignoreBounds=True)  # the map's extent is the data's
        e = model.events
        for event in (e.point, e.encoded):
            event.connect(self.update_marker)
        for event in (e.interpolation, e.encoded):
            event.connect(self.update_path)
        for event in (e.playback, e.interpolation, e.encoded):
            event.connect(self.update_moving)
        for event in (e.grid_image, e.grid, e.encoded):
            event.connect(self.update_tiles)
        self.update_all()

    def update_all(self) -> None:
        self.update_marker()
        self.update_path()
        self.update_moving()
        self.update_tiles()

    # ---- what the model says ------------------------------------------------------------------
    def marker_xy(self) -> np.ndarray | None:
        m = self.model
        if m.point is not None and m.point_xy is not None:
            # Where it was picked: through a learned inverse and back, a point would not sit
            # under the cursor that drags it.
            return m.point_xy.copy()
        return None if m.point is None else m.to_plane(m.point)

    def update_marker(self) -> None:
        _place(self.marker, self.marker_xy())

    def endpoint_xy(self) -> dict[str, np.ndarray]:
        m, i = self.model, self.model.interpolation
        return {k: m.to_plane(v) for k, v in (("a", i.a), ("b", i.b)) if v is not None and m.encoded is not None}

    def update_path(self) -> None:
        curve = self.model.path_curve()
        if curve is None:
            self.path.setData([], [])
        else:
            self.path.setData(curve[:, 0], curve[:, 1])
        ends = self.endpoint_xy()
        for key, handle in self.handles.items():
            _place(handle, ends.get(key))

    def update_moving(self) -> None:
        m = self.model
        z = m.animation_latent()
        shown = z is not None and m.encoded is not None and (m.playback.playing or m.playback.position > 0)
        _place(self.moving, m.to_plane(z) if shown else None)

    def update_tiles(self) -> None:
        m = self.model
        show = (m.grid.overlay and m.grid_image is not None and m.grid_image_region is not None
                and m.snapshot is not None and _is_square_grid(m.grid_image, m.snapshot.image_shape[1:]))
        self.tiles.setVisible(show)
        self.outlines.setVisible(show)
        if not show:  # (a grid of another model's images hides until the new one is decoded)
            return
        # Every grid setting (the opacity slider, each pan or zoom) comes here: the tiles are
        # built again only for a new grid image.
        source = (m.grid_image, m.grid_image_region, tuple(m.snapshot.image_shape[1:]))
        shown = self._tiles_of
        if shown is None or shown[0] is not source[0] or shown[1:] != source[1:]:
            x0, x1, y0, y1 = m.grid_image_region
            # (4, H, W), row 0 at the top (high y); each tile keeps its shape in its cell
            image = letterbox_tiles(m.grid_image, source[2], (x1 - x0) / (y1 - y0), TILE_MARGIN)
            rgba = np.ascontiguousarray(np.round(255 * image.transpose(1, 2, 0)[::-1]).astype(np.uint8))
            self.tiles.setImage(rgba, levels=(0, 255))
            self.tiles.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
            self.outlines.setData(*_cell_lines(x0, x1, y0, y1, m.grid_image.shape[1] // source[2][0]))
            self._tiles_of = source
        self.tiles.setOpacity(m.grid.opacity)

    # ---- hit test -----------------------------------------------------------------------------
    def handle_at(self, view: pg.ViewBox, xy: np.ndarray) -> str | None:
        """The end point ("a" or "b") within HANDLE_RADIUS_PX of the plane point xy, if any."""
        px, py = view.viewPixelSize()
        best, best_d2 = None, HANDLE_RADIUS_PX ** 2
        for key, pos in self.endpoint_xy().items():
            d2 = ((pos[0] - xy[0]) / px) ** 2 + ((pos[1] - xy[1]) / py) ** 2
            if d2 <= best_d2:
                best, best_d2 = key, d2
        return best


def _cell_lines(x0: float, x1: float, y0: float, y1: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The outlines of a size x size grid of cells over the region, as pairs of points."""
    xs, ys = np.linspace(x0, x1, size + 1), np.linspace(y0, y1, size + 1)
    vertical = [(x, y) for x in xs for y in (y0, y1)]
    horizontal = [(x, y) for y in ys for x in (x0, x1)]
    points = np.array(vertical + horizontal, np.float64)
    return points[:, 0], points[:, 1]


def _is_square_grid(grid: np.ndarray, tile_hw: tuple[int, int]) -> bool:
    """Whether ``grid`` (C, H, W) is G x G tiles of ``tile_hw``, as the manifold grid decodes."""
    (gh, gw), (h, w) = grid.shape[1:], tile_hw
    return gh % h == 0 and gw % w == 0 and gh // h == gw // w


def _place(item: QGraphicsItem, xy: np.ndarray | None) -> None:
    """Show ``item`` at the plane point xy, or hide it for None."""
    if xy is None:
        item.setVisible(False)
        return
    item.setPos(float(xy[0]), float(xy[1]))
    item.setVisible(True)
