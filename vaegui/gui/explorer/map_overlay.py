"""What the explorer draws over the latent map's points: the picked point, the interpolation
path with its end points A and B and the point moving along it, and the manifold grid as tiles.
Each item follows the explorer model; none of them changes the view's range."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF

from vaegui.core.explorer import ExplorerModel

HANDLE_RADIUS_PX = 9  # a press this close to A or B drags it


class _Unbounded(pg.ScatterPlotItem):
    """A scatter whose moves repaint its old and new spots only: a plot item's bounds change
    otherwise makes an auto-ranging ViewBox repaint everything (10,000 points: 4 -> 1 ms a move)."""

    def informViewBoundsChanged(self) -> None:
        pass  # added with ignoreBounds: the view's range never depends on it


class MapOverlay:
    """Owns the explorer's items on ``plot`` and keeps them in step with ``model``."""

    def __init__(self, model: ExplorerModel, plot: pg.PlotItem):
        self.model = model
        self.plot = plot
        self.tiles = pg.ImageItem(axisOrder="row-major")
        self.tiles.setZValue(-5)  # under the points
        self.path = pg.PlotCurveItem(pen=pg.mkPen("#222", width=2, style=pg.QtCore.Qt.PenStyle.DashLine))
        self.path.setZValue(8)
        self.handles = _Unbounded(pxMode=True)
        self.handles.setZValue(9)
        self.handle_labels = [pg.TextItem(text, color="#000", anchor=(-0.3, 1.2)) for text in "AB"]
        self.moving = _Unbounded(pxMode=True)
        self.moving.setZValue(9)
        self.marker = _Unbounded(pxMode=True)
        self.marker.setZValue(10)
        for item in (self.tiles, self.path, self.handles, *self.handle_labels, self.moving, self.marker):
            plot.addItem(item, ignoreBounds=True)  # the map's extent is the data's
        # Made once: the symbol cache is keyed by pen and brush objects, so new ones every move
        # would render the symbols again.
        self._marker_style = [
            {"size": 15, "symbol": "o", "pen": pg.mkPen("w", width=4), "brush": None},
            {"size": 15, "symbol": "o", "pen": pg.mkPen("#d00", width=2), "brush": None},
            {"size": 7, "symbol": "+", "pen": None, "brush": pg.mkBrush("#d00")},
        ]
        self._handle_style = {"size": 13, "symbol": "s", "pen": pg.mkPen("#000", width=1.5),
                              "brush": pg.mkBrush(255, 200, 0, 230)}
        self._moving_style = {"size": 11, "symbol": "o", "pen": pg.mkPen("#000", width=1),
                              "brush": pg.mkBrush(255, 120, 0, 255)}
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
        return None if m.point is None else m.to_plane(m.point)

    def update_marker(self) -> None:
        xy = self.marker_xy()
        if xy is None:
            self.marker.setData([])
        else:
            self.marker.setData(spots=[{"pos": (float(xy[0]), float(xy[1])), **s} for s in self._marker_style])

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
        self.handles.setData(spots=[{"pos": (float(xy[0]), float(xy[1])), **self._handle_style}
                                    for xy in ends.values()])
        for label, key in zip(self.handle_labels, "ab"):
            label.setVisible(key in ends)
            if key in ends:
                label.setPos(QPointF(float(ends[key][0]), float(ends[key][1])))

    def update_moving(self) -> None:
        m = self.model
        z = m.animation_latent()
        if z is None or m.encoded is None or not (m.playback.playing or m.playback.position > 0):
            self.moving.setData([])
            return
        x, y = m.to_plane(z)
        self.moving.setData(spots=[{"pos": (float(x), float(y)), **self._moving_style}])

    def update_tiles(self) -> None:
        m = self.model
        show = m.grid.overlay and m.grid_image is not None and m.grid_image_region is not None
        self.tiles.setVisible(show)
        if not show:
            return
        image = m.grid_image  # (C, H, W), row 0 at the top (high y)
        rgb = np.ascontiguousarray(np.round(255 * image.transpose(1, 2, 0)[::-1]).astype(np.uint8))
        self.tiles.setImage(rgb[..., 0] if rgb.shape[2] == 1 else rgb, levels=(0, 255))
        x0, x1, y0, y1 = m.grid_image_region
        self.tiles.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
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
