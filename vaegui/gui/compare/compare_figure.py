"""The comparison figure: one latent map per run (small multiples over the same test images, in
planes aligned to the first run's) above two plots of the runs' curves overlaid (test -ELBO and
test KL per epoch, a colour per run). The window shows it and ``vaegui export --compare`` writes
it; both draw a :class:`~vaegui.core.compare.Comparison`.

Highlights are drawn over the maps without touching their points: a ring on the hovered image in
every map, and the brushed images in a strong colour on top. The points themselves are cached
as a device pixmap, so a highlight repaints only what it covers.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QGraphicsItem

from vaegui.core.compare import Comparison
from vaegui.core.latent import dimension_name

from .. import palette, plot_axes
from ..explorer.latent_map import point_size
from ..point_cloud import PointCloud
from .brush_view_box import BrushViewBox

# Paul Tol's "bright" scheme, then black: a colour per run (8 at most), told apart by
# colour-blind readers; the maps keep the class colours.
RUN_COLORS = ("#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#BBBBBB", "#000000")
MAP_COLUMNS = 4
BRUSHED_COLOR = "#E8601C"  # the brushed images, over the class colours
HOVER_PEN = pg.mkPen("#000000", width=2)
CURVES = (("test_elbo", "test −ELBO"), ("test_kl", "test KL"))
MAP_PX, CURVE_PX = 300, 280  # the exported figure's cell sizes (logical pixels)


def run_color(index: int) -> QColor:
    return QColor(RUN_COLORS[index % len(RUN_COLORS)])


class MapPlot:
    """One run's map in the figure: its points, its brushed points and its hover ring."""

    def __init__(self, plot: pg.PlotItem, title: str):
        self.plot = plot
        self.set_title(title)
        plot.setAspectLocked(True)
        plot.showGrid(x=True, y=True, alpha=0.12)
        plot.setMenuEnabled(False)
        plot_axes.style_axes(plot, {})
        self.points = PointCloud()
        self.points.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.brushed = PointCloud()
        self.hover = pg.ScatterPlotItem(size=11, pen=HOVER_PEN, brush=None, symbol="o")
        self.hover.setZValue(10)
        self.brushed.setZValue(5)
        plot.addItem(self.points)
        # The highlights never move the view: a new selection must not refit the range, which
        # lays the axes out again (most of a repaint's time).
        for item in (self.brushed, self.hover):
            plot.addItem(item, ignoreBounds=True)
        plot_axes.cache_axes(plot)
        self.x = self.y = np.zeros(0, np.float64)
        self._fitted: list | None = None  # the range this map last fitted to its points

    def set_title(self, title: str) -> None:
        self.plot.setTitle(title, size="9pt", color="#222")
        # A title asks for its text's width; four long run names would then widen the figure
        # beyond a window. Let it be clipped instead (the table and the legend say it whole).
        self.plot.titleLabel.setMinimumWidth(0)

    @property
    def view(self) -> BrushViewBox:
        return self.plot.getViewBox()

    def set_points(self, xy: np.ndarray, labels: np.ndarray, brushes: list[QBrush]) -> None:
        self.x = np.ascontiguousarray(xy[:, 0], np.float64)
        self.y = np.ascontiguousarray(xy[:, 1], np.float64)
        self.points.set_data(self.x, self.y, labels, brushes, size=point_size(len(xy)))
        if self._fitted is not None and self.view.viewRange() != self._fitted:
            return  # the user zoomed or panned: a followed run's new map keeps that view
        self.plot.enableAutoRange()
        # Fit now, not at the next paint: a pointer event before that paint maps to the old range.
        self.view.updateAutoRange()
        # Then hold the range: with auto-range on, every hover ring's move made the view
        # recompute its range (four setRange calls a hover), though the rings are not in its bounds.
        self.view.disableAutoRange()
        self._fitted = self.view.viewRange()

    def show_brushed(self, index: np.ndarray, brush: QBrush) -> None:
        self.brushed.set_data(self.x[index], self.y[index], np.zeros(len(index), np.intp), [brush],
                              size=point_size(len(self.x)) + 1)

    def show_hover(self, index: int | None) -> None:
        if index is None or not 0 <= index < len(self.x):
            self.hover.setData([], [])
        else:
            self.hover.setData([self.x[index]], [self.y[index]])


class CompareFigure(pg.GraphicsLayoutWidget):
    """Maps in rows of up to four, the curves below. ``runToggled`` is emitted when a click on the
    curves' legend hides or shows a run (its maps stay: they are the same images)."""

    runToggled = Signal(int, bool)  # run index, shown

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground(palette.BACKGROUND)
        self.comparison: Comparison | None = None
        self.maps: list[MapPlot] = []
        self.curve_plots: list[pg.PlotItem] = []
        self.curves: list[list[pg.PlotDataItem]] = []  # per run, one per curve plot
        self._label_brushes = palette.label_palette().brushes
        self._brushed_brush = QBrush(QColor(BRUSHED_COLOR))
        self.brushed = np.zeros(0, np.intp)
        self.hovered: int | None = None

    # ---- building --------------------------------------------------------------------------
    def set_comparison(self, comparison: Comparison) -> None:
        """Lay out the figure for these runs (a new set of runs rebuilds it; new data for the
        same runs only updates the items: see :meth:`update_comparison`)."""
        self.ci.clear()
        self.comparison = comparison
        self.maps, self.curve_plots, self.curves = [], [], []
        columns = min(MAP_COLUMNS, max(1, len(comparison.runs)))
        for k, run in enumerate(comparison.runs):
            plot = self.ci.addPlot(row=k // columns, col=k % columns, viewBox=BrushViewBox(),
                                   axisItems=plot_axes.signed_axes())
            self.maps.append(MapPlot(plot, self._map_title(k)))
        curve_row = (len(comparison.runs) + columns - 1) // columns
        curve_layout = self.ci.addLayout(row=curve_row, col=0, colspan=columns)
        for c, (key, label) in enumerate(CURVES):
            plot = curve_layout.addPlot(row=0, col=c, axisItems=plot_axes.signed_axes())
            plot.showGrid(x=True, y=True, alpha=0.15)
            plot_axes.style_axes(plot, {"bottom": "epoch", "left": label})
            plot.setMenuEnabled(False)
            plot_axes.cache_axes(plot)
            self.curve_plots.append(plot)
        legend = self.curve_plots[0].addLegend(offset=(-8, 8), labelTextColor="#222",
                                               brush=(255, 255, 255, 200), pen="#aaa")
        for k, run in enumerate(comparison.runs):
            pen = pg.mkPen(run_color(k), width=2)
            items = [plot.plot(pen=pen, symbol="o", symbolSize=5, symbolPen=None,
                               symbolBrush=run_color(k), name=run.name if c == 0 else None)
                     for c, plot in enumerate(self.curve_plots)]
            # pyqtgraph's legend hides its item on a click: the run's other curves follow.
            items[0].visibleChanged.connect(lambda k=k: self._on_curve_visible_changed(k))
            self.curves.append(items)
        self.legend = legend
        self.update_comparison(comparison)

    def update_comparison(self, comparison: Comparison) -> None:
        """New maps and curves for the same runs (a sweep followed live)."""
        self.comparison = comparison
        for k, (m, run) in enumerate(zip(self.maps, comparison.runs)):
            m.set_title(self._map_title(k))
            m.set_points(run.xy, run.labels, self._label_brushes)
            for (key, _), item in zip(CURVES, self.curves[k]):
                item.setData(*run.curve(key))
        self.set_brushed(self.brushed if len(self.brushed) <= comparison.count else np.zeros(0, np.intp))
        self.set_hovered(self.hovered)

    def _map_title(self, k: int) -> str:
        run = self.comparison.runs[k]
        colour = RUN_COLORS[k % len(RUN_COLORS)]
        proj = run.projection
        plane = ("no map yet" if proj is None else f"{dimension_name(0)}, {dimension_name(1)}" if proj.is_exact
                 else "PCA")
        plane += ", turned" if run.turned else ""
        return (f"<span style='color:{colour}'>■</span> #{k + 1} {run.name}<br>"
                f"<span style='font-size:8pt;color:#555'>L = {run.latent_dim} · {plane} · "
                f"epoch {run.map_epoch}</span>")

    def _on_curve_visible_changed(self, k: int) -> None:
        shown = self.curves[k][0].isVisible()
        for item in self.curves[k][1:]:
            item.setVisible(shown)
        self.runToggled.emit(k, shown)

    def is_run_shown(self, k: int) -> bool:
        return self.curves[k][0].isVisible()

    # ---- highlights --------------------------------------------------------------------------
    def set_hovered(self, index: int | None) -> None:
        """Ring data image ``index`` in every map (None: none)."""
        self.hovered = index
        for m in self.maps:
            m.show_hover(index)

    def set_brushed(self, index: np.ndarray) -> None:
        """Draw data images ``index`` in the brushed colour in every map."""
        self.brushed = np.asarray(index, np.intp)
        for m in self.maps:
            m.show_brushed(self.brushed, self._brushed_brush)

    def layout_for_export(self) -> None:
        """Give the figure its export size (the cells' sizes times the grid) when not on screen."""
        from ..export.plot_export import lay_out

        runs = len(self.maps)
        columns = min(MAP_COLUMNS, max(1, runs))
        rows = (runs + columns - 1) // columns
        width = max(columns * MAP_PX, len(CURVES) * 360)
        lay_out(self.ci, (width, rows * MAP_PX + CURVE_PX))
