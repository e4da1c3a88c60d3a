"""The latent map: a scatter of the latent means of a dataset split in the plane of a
:class:`~vaegui.core.latent.Projection`, coloured by label or by a generating factor. Hovering a
point previews its image; clicking the plane picks a latent vector (``pointPicked``)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (QComboBox, QFrame, QGraphicsItem, QHBoxLayout, QLabel, QVBoxLayout,
                               QWidget)

from ..core.latent import EncodedSet
from . import palette
from .point_cloud import PointCloud

LABEL_MODE = "label"
HOVER_RADIUS_PX = 6  # a point counts as hovered within this many screen pixels of the cursor
HOVER_DELAY_MS = 16  # mouse moves are coalesced: at most one nearest-point search per frame
HOVER_PREVIEW_PX = 112  # previews are enlarged by an integer factor to about this size
MAX_LEGEND_ENTRIES = 20
LEGEND_ROW_PX = 18


def point_size(n: int) -> int:
    """Smaller dots for bigger sets, so dense clusters keep some structure."""
    return 5 if n <= 2000 else 4 if n <= 20000 else 3


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
        qimage = palette.to_qimage(image)
        factor = max(1, HOVER_PREVIEW_PX // max(qimage.width(), qimage.height()))
        size = qimage.size() * factor
        self.image.setPixmap(QPixmap.fromImage(qimage.scaled(
            size, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.FastTransformation)))
        self.caption.setText(caption)
        self.adjustSize()


class _Marker(pg.ScatterPlotItem):
    """The picked point. Moving it repaints its old and new spots only: a plot item's bounds
    change otherwise makes an auto-ranging ViewBox repaint everything (10,000 points: 4 -> 1 ms
    a move here)."""

    def informViewBoundsChanged(self) -> None:
        pass  # added with ignoreBounds: the view's range never depends on the marker


class LatentMap(QWidget):
    pointPicked = Signal(object)  # np.ndarray (L,) float32: the latent vector of the clicked point

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._encoded: EncodedSet | None = None
        self._x = self._y = np.zeros(0, np.float32)  # contiguous columns for the hover search
        self._shown = np.zeros(0, bool)  # points not hidden through the legend
        self._legend_classes: tuple[str, ...] | None = None  # what the legend lists
        self._marker_xy: np.ndarray | None = None
        self._label_palette = palette.label_palette()
        self._factor_palette = palette.factor_palette()
        self._build_ui()
        self._hover_timer = QTimer(self, singleShot=True, interval=HOVER_DELAY_MS)
        self._hover_timer.timeout.connect(self._on_hover_timer_timeout)
        self._hover_pos = QPoint()
        self.clear()

    # ---- construction -----------------------------------------------------------------
    def _build_ui(self) -> None:
        self.colour_combo = QComboBox()
        self.colour_combo.setToolTip("Colour the points by their class label or by a generating factor")
        self.colour_combo.currentTextChanged.connect(self._on_colour_combo_changed)
        self.readout = QLabel()
        header = QHBoxLayout()
        header.addWidget(QLabel("Colour by"))
        header.addWidget(self.colour_combo)
        header.addStretch(1)
        header.addWidget(self.readout)

        self._plot = pg.PlotWidget(background=palette.BACKGROUND)
        item = self._plot.getPlotItem()
        item.setAspectLocked(True)  # the prior is isotropic: equal units on both axes
        item.showGrid(x=True, y=True, alpha=0.15)
        # The points and the axes (which draw the grid across the plot) keep their rendering in a
        # pixmap until the view or the data change: moving the marker, hovering and repainting
        # during training then only blit them (60,000 points: a marker move repaints in 1 ms, not 14).
        cached = QGraphicsItem.CacheMode.DeviceCoordinateCache
        for name in ("left", "bottom"):
            item.getAxis(name).setPen("#444")
            item.getAxis(name).setTextPen("#222")
            item.getAxis(name).setCacheMode(cached)
        self.scatter = PointCloud()
        self.scatter.setCacheMode(cached)
        item.addItem(self.scatter)
        self.marker = _Marker(pxMode=True, brush=None)
        self.marker.setZValue(10)
        item.addItem(self.marker, ignoreBounds=True)  # the map's extent is the data's
        # Made once: the symbol cache is keyed by pen and brush objects, so new ones every move
        # would render the symbols again.
        self._marker_style = [
            {"size": 15, "symbol": "o", "pen": pg.mkPen("w", width=4)},
            {"size": 15, "symbol": "o", "pen": pg.mkPen("#d00", width=2)},
            {"size": 7, "symbol": "+", "pen": None, "brush": pg.mkBrush("#d00")},
        ]
        self.legend = pg.LegendItem(offset=(-8, 8), labelTextColor="#222", brush=(255, 255, 255, 200),
                                    pen="#aaa")
        self.legend.setParentItem(item.getViewBox())
        self.colour_bar = pg.ColorBarItem(colorMap=palette.factor_colormap(), interactive=False,
                                          colorMapMenu=False, width=14)
        self.colour_bar.axis.setTextPen("#222")
        self.hover_card = _HoverCard(self)

        self._plot.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self._plot.viewport().installEventFilter(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(header)
        layout.addWidget(self._plot, 1)

    # ---- public API ---------------------------------------------------------------------
    @property
    def encoded(self) -> EncodedSet | None:
        return self._encoded

    def plot_widget(self) -> pg.PlotWidget:
        return self._plot

    @property
    def marker_xy(self) -> np.ndarray | None:
        return None if self._marker_xy is None else self._marker_xy.copy()

    def set_encoded(self, encoded: EncodedSet) -> None:
        """Show a new encoding. The view keeps a user's zoom unless the kind of map changed."""
        old = self._encoded
        if old is None or old.latents.shape[1] != encoded.latents.shape[1] or old.split != encoded.split:
            self._plot.getPlotItem().enableAutoRange()
        self._encoded = encoded
        xy = np.asarray(encoded.xy, dtype=np.float32)
        self._x, self._y = np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])
        self._shown = np.ones(len(xy), bool)
        self._set_colour_choices(list(encoded.factors))
        self.scatter.set_data(self._x, self._y, *self._colours(), size=point_size(len(xy)))
        self._update_colour_key()
        self._label_axes(encoded)
        split = "test images" if encoded.split == "test" else "training images"
        self.readout.setText(f"{len(xy):,} {split} · weights of step {encoded.step:,}")

    def clear(self) -> None:
        self._encoded = None
        self._x = self._y = np.zeros(0, np.float32)
        self._shown = np.zeros(0, bool)
        self.scatter.clear()
        self.set_marker(None)
        self._set_colour_choices([])
        self.legend.clear()
        self._legend_classes = None
        self._show_colour_bar(False)
        self.hover_card.hide()
        self._plot.getPlotItem().setTitle("Latent map")
        self._plot.getPlotItem().enableAutoRange()
        self.readout.setText("No latent map yet: train or load a model")

    def set_marker(self, xy: np.ndarray | None) -> None:
        if xy is None:
            self._marker_xy = None
            self.marker.setData([])
            return
        self._marker_xy = np.asarray(xy, dtype=np.float64).reshape(2)
        x, y = self._marker_xy
        self.marker.setData(spots=[{"pos": (x, y), **style} for style in self._marker_style])

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
        self._update_colour_key()

    def _update_colour_key(self) -> None:
        """Legend of class names for label colouring, a colour bar for a factor. The legend is
        kept while the classes stay the same (each epoch's new map), and so are the classes
        hidden by clicking it."""
        enc, mode = self._encoded, self._colour_mode()
        by_label = mode == LABEL_MODE or mode not in enc.factors
        self._show_colour_bar(not by_label)
        self.legend.setVisible(by_label)
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
            self.legend.addItem(sample, name)
        if len(class_names) > MAX_LEGEND_ENTRIES:
            self.legend.addItem(pg.ScatterPlotItem(), f"... {len(class_names)} classes")
        # LegendItem sizes itself from its rows' current heights, which its own layout has just
        # stretched: each entry made the legend taller. Fixed rows keep it compact.
        for _, label in self.legend.items:
            label.setFixedHeight(LEGEND_ROW_PX)
        self.legend.updateSize()

    def _on_legend_sample_toggled(self) -> None:
        """Show the points of the classes whose legend entries are not hidden (all points when
        colouring by a factor)."""
        hidden = [k for k, (sample, _) in enumerate(self.legend.items[:MAX_LEGEND_ENTRIES])
                  if not sample.item.isVisible()] if self._legend_classes is not None else []
        shown = ~np.isin(self._encoded.labels, hidden)
        if not np.array_equal(shown, self._shown):
            self._shown = shown
            self.scatter.set_shown(shown)

    def _show_colour_bar(self, show: bool) -> None:
        layout = self._plot.getPlotItem().layout
        in_layout = any(layout.itemAt(i) is self.colour_bar for i in range(layout.count()))
        if show and not in_layout:
            layout.addItem(self.colour_bar, 2, 5)  # right of the plot, as ColorBarItem(insert_in=)
        elif not show and in_layout:
            layout.removeItem(self.colour_bar)
        self.colour_bar.setVisible(show)

    def _label_axes(self, enc: EncodedSet) -> None:
        item, proj, latent = self._plot.getPlotItem(), enc.projection, enc.latents.shape[1]
        if proj.is_exact:
            item.setLabel("bottom", "z1")
            item.setLabel("left", "z2" if latent >= 2 else "(none: L = 1)")
            item.setTitle(f"Latent means, L = {latent}", color="#222", size="10pt")
        else:
            share = 100 * np.asarray(proj.explained)
            item.setLabel("bottom", f"PC1 ({share[0]:.0f}% var)")
            item.setLabel("left", f"PC2 ({share[1]:.0f}% var)")
            item.setTitle(f"PCA of the latent means, L = {latent}", color="#222", size="10pt")

    # ---- mouse ----------------------------------------------------------------------------
    def _on_scene_clicked(self, event) -> None:
        # Drags never arrive here (the scene turns them into pans). A click the scatter accepted
        # (it accepts clicks on its points) is still a pick; one the legend took is not.
        if (self._encoded is None or event.button() != Qt.MouseButton.LeftButton or event.double()
                or event.isAccepted() and event.acceptedItem not in (self.scatter, self.marker)):
            return
        view, pos = self._plot.getPlotItem().getViewBox(), event.scenePos()
        if not view.sceneBoundingRect().contains(pos) or (
                self.legend.isVisible() and self.legend.sceneBoundingRect().contains(pos)):
            return
        point = view.mapSceneToView(pos)
        xy = np.array([point.x(), point.y()])
        self.set_marker(xy)
        self.pointPicked.emit(self._encoded.projection.inverse(xy)[0])

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._plot.viewport():
            if event.type() == QEvent.Type.MouseMove:
                self._hover_pos = event.position().toPoint()
                if not self._hover_timer.isActive():
                    self._hover_timer.start()
            elif event.type() in (QEvent.Type.Leave, QEvent.Type.MouseButtonPress):
                self._hover_timer.stop()
                self.hover_card.hide()
        return super().eventFilter(watched, event)

    def _on_hover_timer_timeout(self) -> None:
        index = self._nearest_point(self._hover_pos)
        if index is None:
            self.hover_card.hide()
            return
        enc = self._encoded
        label = int(enc.labels[index])
        name = enc.class_names[label] if 0 <= label < len(enc.class_names) else str(label)
        self.hover_card.show_image(enc.images[index], f"{name}  (#{index})")
        self._place_hover_card(self._hover_pos)

    def _nearest_point(self, viewport_pos: QPoint) -> int | None:
        """Index of the shown point nearest the cursor, if within HOVER_RADIUS_PX; vectorised."""
        if self._encoded is None or not len(self._x):
            return None
        view = self._plot.getPlotItem().getViewBox()
        scene_pos = self._plot.mapToScene(viewport_pos)
        if not view.sceneBoundingRect().contains(scene_pos):
            return None
        p = view.mapSceneToView(scene_pos)
        px, py = view.viewPixelSize()
        d2 = ((self._x - p.x()) / px) ** 2 + ((self._y - p.y()) / py) ** 2
        d2[~self._shown] = np.inf
        index = int(np.argmin(d2))
        return index if d2[index] <= HOVER_RADIUS_PX ** 2 else None

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
