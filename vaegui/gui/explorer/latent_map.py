"""The latent map: a scatter of the latent means of a dataset split in the plane of a
:class:`~vaegui.core.latent.Projection`, coloured by label or by a generating factor, with the
explorer's items over it (see map_overlay.py). It shows and edits an
:class:`~vaegui.core.explorer.ExplorerModel`:

- left press and drag: picks the point under the cursor and follows every move (or, in
  interpolation mode, sets end point A then B); a press on A or B drags that end point;
- Ctrl-drag selects the points in a lasso, Ctrl-Shift-drag in a rectangle (brush.py); Escape
  or a Ctrl-click clears the selection;
- Shift or middle drag pans, right drag and the wheel zoom (pyqtgraph's own);
- hovering a point previews its image; A or B while hovering makes it an end point;
- arrow keys nudge the picked point (Shift: further); Escape leaves interpolation mode.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QKeyEvent, QPixmap
from PySide6.QtWidgets import (QComboBox, QFrame, QGraphicsItem, QGraphicsScene, QHBoxLayout,
                               QLabel, QVBoxLayout, QWidget)

from vaegui.core.explorer import ExplorerModel
from vaegui.core.latent import EncodedSet, dimension_name
from vaegui.core.memory import release_free_memory
from vaegui.core.projection import describe
from vaegui.core.spatial_index import SpatialIndex, plane_index, prepare

from .. import palette
from ..plot_axes import cache_axes, signed_axes
from ..qimage import to_qimage
from ..plot_legend import PlacedLegend
from ..point_cloud import PointCloud
from ..stepped_view_box import SteppedViewBox
from .brush import Brush
from .density_layer import DENSITY_THRESHOLD, MODES as DRAW_MODES, DensityLayer
from .history_bar import HistoryBar
from .latest_job import LatestJob
from .map_overlay import MapOverlay
from .projection_bar import ProjectionBar
from .selection_bar import SelectionBar

LABEL_MODE = "label"
HINT = "Drag to decode · Shift-drag pans · Ctrl-drag selects · wheel zooms"
HOVER_RADIUS_PX = 6  # a point counts as hovered within this many screen pixels of the cursor
HOVER_DELAY_MS = 16  # mouse moves are coalesced: at most one nearest-point search per frame
HOVER_PREVIEW_PX = 112  # previews are enlarged by an integer factor to about this size
REGION_DELAY_MS = 150  # the manifold grid follows pan and zoom once they pause this long
# The spatial index of a new map is built once maps stop coming this long: the history's
# playback shows a new map every frame, and a million-point index takes a second of a core.
INDEX_DELAY_MS = 200
NUDGE_FRACTION = 0.01  # an arrow key moves the point by this share of the visible width
MAX_LEGEND_ENTRIES = 20
LEGEND_ROW_PX = 18
# Room around the points (a share of their span on each side). Each epoch's map moves the points
# a little; the view keeps its range while they fit it well, so a new map repaints the points but
# not the axes (laying them out was 11 ms of the 17 ms paint of a new map, see stepped_view_box.py).
MAP_ROOM = (0.05, 0.05)


def point_size(n: int) -> int:
    """Smaller dots for bigger sets, so dense clusters keep some structure."""
    return 5 if n <= 2000 else 4 if n <= 20000 else 3


def _build_index(encoded: EncodedSet) -> SpatialIndex:
    """The map's indexes, built on a worker; then the build's temporaries go back to the system."""
    prepare(encoded)
    release_free_memory()
    return plane_index(encoded)


class _HoverCard(QFrame):
    """A small overlay with an image enlarged without smoothing and its label."""

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.Box)
        self.setStyleSheet("_HoverCard { background: white; border: 1px solid #888; }"
                           "QLabel { color: black; background: transparent; }")
        # The card must never take the mouse from the plot underneath (it would flicker).
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.image = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.caption = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 2)
        layout.setSpacing(2)
        layout.addWidget(self.image)
        layout.addWidget(self.caption)
        self.hide()

    def show_image(self, image: np.ndarray, caption: str) -> None:
        qimage = to_qimage(image)
        factor = max(1, HOVER_PREVIEW_PX // max(qimage.width(), qimage.height()))
        size = qimage.size() * factor
        self.image.setPixmap(QPixmap.fromImage(qimage.scaled(
            size, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.FastTransformation)))
        self.caption.setText(caption)
        self.adjustSize()


class LatentMap(QWidget):
    def __init__(self, model: ExplorerModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self._encoded: EncodedSet | None = None
        self._x = self._y = np.zeros(0, np.float32)  # contiguous columns for the hover search
        self._shown = np.zeros(0, bool)  # points not hidden through the legend
        self._legend_classes: tuple[str, ...] | None = None  # what the legend lists
        self._label_palette = palette.label_palette()
        self._factor_palette = palette.factor_palette()
        self._dragging: str | None = None  # what a left drag moves: "point", "a" or "b"
        self._hovered: int | None = None  # index of the point under the cursor
        self._axis_texts: tuple[str, str, str] | None = None  # bottom, left, title shown
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # arrow keys nudge the point
        self._build_ui()
        self.overlay = MapOverlay(model, self._plot.getPlotItem())
        self.density = DensityLayer(self._plot.getPlotItem(), self.scatter, parent=self)
        self.brush = Brush(self._plot.getPlotItem(), parent=self)
        self.brush.selected.connect(self._on_brush_selected)
        self.density.switched.connect(self.brush.set_over_density)
        self.selection_bar.clearRequested.connect(self.brush.clear)
        # The map's spatial index (hover, nearest image) is built off the GUI thread.
        self._index_job = LatestJob("vaegui-map-index", self)
        self._index_job.done.connect(self._on_index_job_done)
        self._index_timer = QTimer(self, singleShot=True, interval=INDEX_DELAY_MS)
        self._index_timer.timeout.connect(self._on_index_timer_timeout)
        self._hover_timer = QTimer(self, singleShot=True, interval=HOVER_DELAY_MS)
        self._hover_timer.timeout.connect(self._on_hover_timer_timeout)
        self._hover_pos = QPoint()
        self._region_timer = QTimer(self, singleShot=True, interval=REGION_DELAY_MS)
        self._region_timer.timeout.connect(self._on_region_timer_timeout)
        self._plot.getPlotItem().getViewBox().sigRangeChanged.connect(self._region_timer.start)
        model.events.encoded.connect(self._on_model_encoded)
        model.events.click_target.connect(self._on_model_click_target)
        self._on_model_encoded()

    # ---- construction -----------------------------------------------------------------
    def _build_ui(self) -> None:
        self.colour_combo = QComboBox()
        self.colour_combo.setToolTip("Colour the points by their class label or by a generating factor")
        self.colour_combo.currentTextChanged.connect(self._on_colour_combo_changed)
        self.draw_combo = QComboBox()
        self.draw_combo.addItems(DRAW_MODES)
        self.draw_combo.setToolTip(f"auto: a density image when more than {DENSITY_THRESHOLD:,} points are in view")
        self.draw_combo.currentTextChanged.connect(self._on_draw_combo_changed)
        self.readout = QLabel()
        self.projection_bar = ProjectionBar(self.model)
        header = QHBoxLayout()
        header.addWidget(QLabel("Colour by"))
        header.addWidget(self.colour_combo)
        header.addWidget(QLabel("Draw"))
        header.addWidget(self.draw_combo)
        header.addStretch(1)
        header.addWidget(self.readout)

        self._plot = pg.PlotWidget(background=palette.BACKGROUND, viewBox=SteppedViewBox(MAP_ROOM, MAP_ROOM),
                                   axisItems=signed_axes())
        self._plot.setObjectName("latent_map")  # its name as an export target
        # The marker and the interpolation's moving point change place up to 100 times a
        # second; Qt's default BSP index re-files every moved item in a queued update.
        self._plot.scene().setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        item = self._plot.getPlotItem()
        item.setAspectLocked(True)  # the prior is isotropic: equal units on both axes
        # No grid across the plot: the axes draw it, and replaying its lines into the axes'
        # plot-sized pixmaps cost about half of every pan and zoom frame (16 ms of 30 under load).
        # The points and the axes keep their rendering in a pixmap until the view or the data
        # change: moving the marker, hovering and repainting during training then only blit them
        # (60,000 points: a marker move repaints in 1 ms, not 14).
        for name in ("left", "bottom"):
            item.getAxis(name).setPen("#444")
            item.getAxis(name).setTextPen("#222")
            # Without it every range change sets the label's HTML again and lays the axis out.
            item.getAxis(name).enableAutoSIPrefix(False)
            # Major and minor ticks, labels on the major ones: the third level's ticks and the
            # sizing of its labels were a third of an axis's paint at each pan frame.
            item.getAxis(name).setStyle(maxTickLevel=1, maxTextLevel=0)
        cache_axes(item)
        # Tick labels that get shorter keep their space: narrowing the axis lays the plot out
        # again, and each epoch's map would then be painted twice (20 ms each beside training).
        item.getAxis("left").setStyle(autoReduceTextSpace=False)
        self.scatter = PointCloud()
        self.scatter.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        item.addItem(self.scatter)
        # Never over the points: in a corner of the plot that none of them is in, else right of it.
        self.legend = PlacedLegend(item, self._shown_points, "auto", "right", labelTextColor="#222",
                                   brush=(255, 255, 255, 200), pen="#aaa")
        # Its entries lie inside it: clipping them to it lets Qt skip them (two Python
        # boundingRect calls each) in the paints of a moving marker that do not touch it.
        self.legend.set_flag(QGraphicsItem.GraphicsItemFlag.ItemClipsChildrenToShape)
        self.colour_bar = pg.ColorBarItem(colorMap=palette.factor_colormap(), interactive=False,
                                          colorMapMenu=False, width=14)
        self.colour_bar.axis.setTextPen("#222")
        self.hover_card = _HoverCard(self)

        self.hint = QLabel(HINT)
        self.hint.setToolTip("Ctrl-drag selects the points in a lasso, Ctrl-Shift-drag in a rectangle;"
                             " Escape clears the selection")
        self.hint.setStyleSheet("color: #555;")
        self._plot.viewport().installEventFilter(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(header)
        layout.addWidget(self.projection_bar)  # a row of its own: its status must not widen the dock
        layout.addWidget(self._plot, 1)
        self.history_bar = HistoryBar(self.model)
        layout.addWidget(self.history_bar)
        self.selection_bar = SelectionBar()
        layout.addWidget(self.selection_bar)
        layout.addWidget(self.hint)

    # ---- public API ---------------------------------------------------------------------
    @property
    def encoded(self) -> EncodedSet | None:
        return self._encoded

    def plot_widget(self) -> pg.PlotWidget:
        return self._plot

    def wait_for_workers(self) -> None:
        """Wait for the spatial index and the density image being computed (tests, benchmarks)."""
        self._index_job.wait()
        self.density.wait()

    @property
    def marker_xy(self) -> np.ndarray | None:
        """Where the picked point is drawn, in the plane."""
        return self.overlay.marker_xy()

    def shutdown(self) -> None:
        """End the projection's fitting thread (the window calls it as it closes)."""
        self.projection_bar.shutdown()

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    def _on_model_encoded(self) -> None:
        if self.model.encoded is None:
            self._clear()
        elif self.model.encoded is not self._encoded:
            self._show_encoded(self.model.encoded)

    def _show_encoded(self, encoded: EncodedSet) -> None:
        """Show a new encoding. The view keeps a user's zoom unless the kind of map changed."""
        old = self._encoded
        if old is None or old.latents.shape[1] != encoded.latents.shape[1] or old.split != encoded.split \
                or getattr(old.projection, "name", "") != getattr(encoded.projection, "name", ""):
            self._plot.getPlotItem().enableAutoRange()
        same_images = old is not None and old.split == encoded.split and len(old.xy) == len(encoded.xy)
        self._encoded = encoded
        xy = np.asarray(encoded.xy, dtype=np.float32)
        self._x, self._y = np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])
        self._shown = np.ones(len(xy), bool)
        self._set_colour_choices(list(encoded.factors))
        self.scatter.set_data(self._x, self._y, *self._colours(), size=point_size(len(xy)))
        self._update_colour_key()
        self._label_axes(encoded)
        # Fit the range now, not in the paint: a range changed while painting has the whole map
        # painted again at once (two 20 ms paints beside training, where one does).
        self._plot.getPlotItem().getViewBox().updateAutoRange()
        self.legend.place()  # off the new points, once their range is set
        self.density.set_points(self._x, self._y, self._density_colouring(), self._shown,
                                plane_index(encoded, build=False))
        self._index_timer.start()
        self.brush.set_points(self._x, self._y, point_size(len(xy)), keep=same_images)
        self.selection_bar.show_selection(self.brush.selection, encoded)
        split = "test images" if encoded.split == "test" else "training images"
        self.readout.setText(f"{len(xy):,} {split} · weights of step {encoded.step:,}")

    def _clear(self) -> None:
        self._encoded = None
        self._x = self._y = np.zeros(0, np.float32)
        self._shown = np.zeros(0, bool)
        self.scatter.clear()
        self._index_timer.stop()
        self._index_job.cancel()
        self.density.clear()
        self.brush.set_points(self._x, self._y, point_size(0))
        self._set_colour_choices([])
        self.legend.clear()
        self._legend_classes = None
        self._show_colour_bar(False)
        self.hover_card.hide()
        # Labelled even without a map: the first map then finds the axes' room for their labels
        # made, rather than laying the plot out again and painting it twice.
        self._set_axis_texts(dimension_name(0), dimension_name(1), "Latent map")
        self._plot.getPlotItem().enableAutoRange()
        self.readout.setText("No latent map yet: train or load a model")

    def _on_model_click_target(self) -> None:
        target = self.model.click_target
        self.hint.setText({"a": "Click end point A (Esc cancels)", "b": "Click end point B (Esc cancels)"}.get(
            target, HINT))
        self._plot.viewport().setCursor(Qt.CursorShape.CrossCursor if target != "point"
                                        else Qt.CursorShape.ArrowCursor)

    def _shown_points(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The points the legend must not cover."""
        if self._all_shown():
            return [(self._x, self._y)]
        return [(self._x[self._shown], self._y[self._shown])]

    def _on_region_timer_timeout(self) -> None:
        # A pan or zoom that brought points under the legend moves it (to another corner, or out
        # of the plot); one out of the plot stays there until the next map, or moving it would
        # resize the plot, change its range, and move it again.
        if self.legend.covers_data():
            self.legend.place()
        (x0, x1), (y0, y1) = self._plot.getPlotItem().getViewBox().viewRange()
        if self._encoded is not None and x1 > x0 and y1 > y0:
            self.model.set_grid(region=(float(x0), float(x1), float(y0), float(y1)))

    # ---- colouring ----------------------------------------------------------------------
    def _set_colour_choices(self, factors: list[str]) -> None:
        current = self.colour_combo.currentText()
        choices = [LABEL_MODE, *factors]
        if [self.colour_combo.itemText(i) for i in range(self.colour_combo.count())] == choices:
            return
        self.colour_combo.blockSignals(True)
        self.colour_combo.clear()
        self.colour_combo.addItems(choices)
        self.colour_combo.setCurrentText(current if current in choices else LABEL_MODE)
        self.colour_combo.blockSignals(False)

    def _colour_mode(self) -> str:
        return self.colour_combo.currentText() or LABEL_MODE

    def _colours(self) -> tuple[np.ndarray, list]:
        """Each point's index into a few brushes, by label or by binned factor value."""
        enc = self._encoded
        mode = self._colour_mode()
        if mode == LABEL_MODE or mode not in enc.factors:
            return enc.labels, self._label_palette.brushes
        bins, _, _ = palette.quantise(enc.factors[mode], len(self._factor_palette))
        return bins, self._factor_palette.brushes

    def _on_colour_combo_changed(self, _text: str) -> None:
        if self._encoded is None:
            return
        self.scatter.set_colours(*self._colours())
        self.density.set_colouring(self._density_colouring())
        self._update_colour_key()
        self.legend.place()

    def _density_colouring(self) -> dict:
        """The density image's colours, from the palette of the points (see density_image)."""
        enc, mode = self._encoded, self._colour_mode()
        if mode == LABEL_MODE or mode not in enc.factors:
            colours = [b.color() for b in self._label_palette.brushes]
            return {"labels": enc.labels,
                    "label_colors": np.array([(c.red(), c.green(), c.blue()) for c in colours], np.uint8)}
        _, lo, hi = palette.quantise(enc.factors[mode], len(self._factor_palette))
        lut = palette.factor_colormap().getLookupTable(nPts=len(self._factor_palette), alpha=False)
        return {"values": enc.factors[mode], "value_lut": lut, "value_range": (lo, hi)}

    def _on_brush_selected(self, selection) -> None:
        self.selection_bar.show_selection(selection, self._encoded)

    def _on_draw_combo_changed(self, mode: str) -> None:
        self.density.set_mode(mode)

    def _on_index_timer_timeout(self) -> None:
        encoded = self._encoded
        if encoded is not None:
            self._index_job.submit(lambda: _build_index(encoded))

    def _on_index_job_done(self, index: SpatialIndex) -> None:
        if self._encoded is not None and plane_index(self._encoded, build=False) is index:
            self.density.set_index(index)

    def _update_colour_key(self) -> None:
        """Legend of class names for label colouring, a colour bar for a factor. The legend is
        kept while the classes stay the same (each epoch's new map), and so are the classes
        hidden by clicking it."""
        enc, mode = self._encoded, self._colour_mode()
        by_label = mode == LABEL_MODE or mode not in enc.factors
        self._show_colour_bar(not by_label)
        if not by_label:
            self.legend.clear()
            self._legend_classes = None
            _, lo, hi = palette.quantise(enc.factors[mode])
            self.colour_bar.setLevels((lo, hi))
            self.colour_bar.getAxis("left").setLabel(mode, color="#222")
        elif self._legend_classes != enc.class_names:
            self._fill_legend(enc.class_names)
        self._on_legend_sample_toggled()

    def _fill_legend(self, class_names: tuple[str, ...]) -> None:
        self.legend.clear()
        self._legend_classes = class_names
        for k, name in enumerate(class_names[:MAX_LEGEND_ENTRIES]):
            sample = pg.ScatterPlotItem(symbol="o", size=10, pen=None, brush=self._label_palette.brushes[
                k % len(self._label_palette)])
            # pyqtgraph legends hide an item when its entry is clicked: hide that class's points.
            sample.visibleChanged.connect(self._on_legend_sample_toggled)
            self.legend.add(sample, name, LEGEND_ROW_PX)
        if len(class_names) > MAX_LEGEND_ENTRIES:
            self.legend.add(pg.ScatterPlotItem(), f"... {len(class_names)} classes", LEGEND_ROW_PX)
        self.legend.update_size()

    def _on_legend_sample_toggled(self) -> None:
        """Show the points of the classes whose legend entries are not hidden (all points when
        colouring by a factor)."""
        hidden = [k for k, (sample, _) in enumerate(self.legend.items[:MAX_LEGEND_ENTRIES])
                  if not sample.item.isVisible()] if self._legend_classes is not None else []
        shown = ~np.isin(self._encoded.labels, hidden)
        if not np.array_equal(shown, self._shown):
            self._shown = shown
            self.scatter.set_shown(shown)
            self.density.set_allowed(shown)

    def _show_colour_bar(self, show: bool) -> None:
        layout = self._plot.getPlotItem().layout
        in_layout = any(layout.itemAt(i) is self.colour_bar for i in range(layout.count()))
        if show and not in_layout:
            layout.addItem(self.colour_bar, 2, 5)  # right of the plot, as ColorBarItem(insert_in=)
        elif not show and in_layout:
            layout.removeItem(self.colour_bar)
        self.colour_bar.setVisible(show)

    def _label_axes(self, enc: EncodedSet) -> None:
        bottom, left, title = describe(enc.projection)  # names the projection and its parameters
        self._set_axis_texts(bottom, left, f"{title}, L = {enc.latents.shape[1]}")

    def _set_axis_texts(self, bottom: str, left: str, title: str) -> None:
        # Only when they change: setting an axis label, even the same, drops the axis's drawing,
        # and each epoch's map would then lay out both axes again.
        if (bottom, left, title) == self._axis_texts:
            return
        self._axis_texts = (bottom, left, title)
        item = self._plot.getPlotItem()
        item.setLabel("bottom", bottom)
        item.setLabel("left", left)
        item.setTitle(title, color="#222", size="10pt")

    # ---- mouse and keys ----------------------------------------------------------------------
    def _plane_point(self, viewport_pos: QPointF) -> np.ndarray | None:
        """The plane point under a viewport position, if it is inside the plot area and not on
        the legend."""
        scene_pos = self._plot.mapToScene(viewport_pos.toPoint())
        p = self._view_point(scene_pos)
        if p is None or self.legend.scene_rect().contains(scene_pos):
            return None
        return np.array([p.x(), p.y()])

    def _view_point(self, scene_pos: QPointF) -> QPointF | None:
        """The plane point at a scene position inside the plot area. Qt's own geometry only, at
        every move of a drag: pyqtgraph's boundingRect and mapSceneToView came to some fifteen
        calls into Python an event."""
        view = self._plot.getPlotItem().getViewBox()
        if not view.mapRectToScene(view.rect()).contains(scene_pos):
            return None
        view.updateMatrix()  # a range change not yet applied to the points' transform
        return view.childGroup.mapFromScene(scene_pos)

    def _on_left_press(self, event) -> bool:
        """Start a pick or drag; False leaves the press to pyqtgraph (a pan, the legend)."""
        modifiers = event.modifiers()
        if self._encoded is None or modifiers & Qt.KeyboardModifier.ShiftModifier \
                and not modifiers & Qt.KeyboardModifier.ControlModifier:
            return False
        xy = self._plane_point(event.position())
        if xy is None:
            return False
        self.setFocus(Qt.FocusReason.MouseFocusReason)  # for Escape and the arrow keys
        if modifiers & Qt.KeyboardModifier.ControlModifier:
            self._dragging = "brush"
            self.brush.start(xy, "rect" if modifiers & Qt.KeyboardModifier.ShiftModifier else "lasso")
            return True
        view = self._plot.getPlotItem().getViewBox()
        handle = self.overlay.handle_at(view, xy)
        if handle is not None and self.model.click_target == "point":
            self._dragging = handle
            return True
        self._dragging = self.model.click_target
        self.model.click_plane(xy)
        return True

    def _on_left_drag(self, event) -> None:
        xy = self._plane_point(event.position())
        if xy is None:
            return
        if self._dragging == "brush":
            self.brush.move(xy)
        elif self._dragging == "point":
            self.model.pick_plane(xy)
        else:
            self.model.set_endpoint(self._dragging, self.model.plane_to_latent(xy))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is not self._plot.viewport():
            return super().eventFilter(watched, event)
        kind = event.type()
        if kind == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:
            self._hover_timer.stop()
            self.hover_card.hide()
            return self._on_left_press(event)
        if kind == QEvent.Type.MouseMove and self._dragging is not None:
            if event.buttons() & Qt.MouseButton.LeftButton:
                self._on_left_drag(event)
                return True
            self._dragging = None  # the release happened elsewhere
        if kind == QEvent.Type.MouseButtonRelease and event.button() == Qt.MouseButton.LeftButton \
                and self._dragging is not None:
            if self._dragging == "brush":
                self.brush.finish(plane_index(self._encoded, build=False),
                                  None if self._all_shown() else self._shown)
            self._dragging = None
            return True
        if kind == QEvent.Type.MouseMove:
            self._hover_pos = event.position().toPoint()
            if not self._hover_timer.isActive():
                self._hover_timer.start()
        elif kind in (QEvent.Type.Leave, QEvent.Type.MouseButtonPress):
            self._hover_timer.stop()
            self.hover_card.hide()
            self._hovered = None
        return super().eventFilter(watched, event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key, m = event.key(), self.model
        arrows = {Qt.Key.Key_Left: (-1, 0), Qt.Key.Key_Right: (1, 0), Qt.Key.Key_Up: (0, 1),
                  Qt.Key.Key_Down: (0, -1)}
        if key in arrows and m.point is not None:
            (x0, x1), _ = self._plot.getPlotItem().getViewBox().viewRange()
            step = (x1 - x0) * NUDGE_FRACTION * (10 if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else 1)
            dx, dy = arrows[key]
            m.nudge(dx * step, dy * step)
        elif key in (Qt.Key.Key_A, Qt.Key.Key_B) and self._hovered is not None and self._encoded is not None:
            m.set_endpoint("a" if key == Qt.Key.Key_A else "b", m.dataset_latent(self._hovered))
        elif key == Qt.Key.Key_Escape and m.click_target != "point":
            m.set_click_target("point")
        elif key == Qt.Key.Key_Escape and self.brush.selection is not None:
            self.brush.clear()
        else:
            super().keyPressEvent(event)

    def _on_hover_timer_timeout(self) -> None:
        index = self._hovered = self._nearest_point(self._hover_pos)
        if index is None:
            self.hover_card.hide()
            return
        enc = self._encoded
        label = int(enc.labels[index])
        name = enc.class_names[label] if 0 <= label < len(enc.class_names) else str(label)
        self.hover_card.show_image(enc.images[index], f"{name}  (#{index})\nA / B: end point")
        self._place_hover_card(self._hover_pos)

    def _nearest_point(self, viewport_pos: QPoint) -> int | None:
        """Index of the shown point nearest the cursor, if within HOVER_RADIUS_PX: from the
        map's spatial index, or a scan of all points while it is being built."""
        if self._encoded is None or not len(self._x):
            return None
        view = self._plot.getPlotItem().getViewBox()
        p = self._view_point(self._plot.mapToScene(viewport_pos))
        if p is None:
            return None
        px, py = view.viewPixelSize()
        index = plane_index(self._encoded, build=False)
        if index is not None:
            # Equal units on both axes (the aspect is locked): a radius in the plane is one on screen.
            found, _ = index.nearest((p.x(), p.y()), HOVER_RADIUS_PX * max(px, py),
                                     None if self._all_shown() else self._shown)
            return None if found < 0 else found
        d2 = ((self._x - p.x()) / px) ** 2 + ((self._y - p.y()) / py) ** 2
        d2[~self._shown] = np.inf
        index = int(np.argmin(d2))
        return index if d2[index] <= HOVER_RADIUS_PX ** 2 else None

    def _all_shown(self) -> bool:
        return self._legend_classes is None or all(
            sample.item.isVisible() for sample, _ in self.legend.items[:MAX_LEGEND_ENTRIES])

    def _place_hover_card(self, viewport_pos: QPoint) -> None:
        """Below right of the cursor, flipped to the other side near the widget's edges."""
        card, pos = self.hover_card, self._plot.viewport().mapTo(self, viewport_pos)
        x, y = pos.x() + 14, pos.y() + 14
        if x + card.width() > self.width():
            x = pos.x() - 14 - card.width()
        if y + card.height() > self.height():
            y = pos.y() - 14 - card.height()
        card.move(max(0, x), max(0, y))
        card.show()
        card.raise_()
