"""A plot's legend that stays off the data: outside the axes (below or right of them), or inside
in the corner that covers the fewest data points (the user may drag it from there), or hidden.
An exported figure never has it over data: a legend inside that covers any is drawn outside
for the export (see :func:`outside_for_export`, which plot_export.py uses)."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QSizePolicy

# auto: where ``prefer`` says when it can (outside: when the plot has room for it below or beside
# it; inside: when a corner is empty), else the other place (see place()).
MODES = ("outside", "inside", "auto", "hidden")
OUTSIDE_SHARE = 0.3  # a legend outside takes at most this share of the plot's height (or width)
MARGIN_PX = 8  # between the legend and the axes, inside the plot
SEGMENT_STEPS = 8  # points a curve segment is checked at, between its samples (sparse curves)
CLEARANCE_PX = 5  # a point this close to the legend counts as under it (a marker has a size)
DENSE = 4000
# A bigger set is counted on an even sample of this many points: where a legend may go is then
# decided in ~4 ms, not 14 ms, for a million-point map at every new map (the history's playback
# shows one a frame); a corner the sample finds empty holds at most a stray point or two.
MAX_COUNTED = 250_000  # a curve with this many samples is checked at its samples only

Data = Callable[[], list[tuple[np.ndarray, np.ndarray]]]  # the plotted (x, y), in view coordinates
_placements: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # plot item -> its PlacedLegend


class _Legend(pg.LegendItem):
    """A legend that remembers that the user dragged it (then it stays where it was put)."""

    moved_by_user = False

    def mouseDragEvent(self, ev):
        super().mouseDragEvent(ev)
        if ev.isAccepted():
            self.moved_by_user = True


class PlacedLegend:
    """Two legends of the same entries on ``plot``: one anchored in its view box, one in its
    layout (``side``: "bottom", below the x axis, or "right"); one of them is shown, by ``mode``.
    ``data`` gives the plotted points the legend must not cover."""

    def __init__(self, plot: pg.PlotItem, data: Data, mode: str = "outside", side: str = "bottom",
                 entry_px: int = 110, prefer: str = "inside", **style):
        """``entry_px``: the width an entry takes below the plot, for as many columns as fit;
        ``prefer``: where "auto" puts it when it can."""
        self.plot, self._data, self._side, self._entry_px = plot, data, side, entry_px
        self._prefer = prefer
        self.inside = _Legend(offset=(-MARGIN_PX, MARGIN_PX), **style)
        self.inside.setParentItem(plot.getViewBox())
        self.outside = _Legend(**style)
        # Its own height, not a share of the plot's: the layout must not stretch its rows.
        self.outside.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.outside.setVisible(False)
        self.mode = mode
        self.corner = (1, 0)  # (x, y) anchor of the inside legend: 1 = right / bottom
        self._showing: str | None = None  # "inside", "outside" or None
        _placements[plot] = self
        if side == "bottom":  # on screen and in a figure laid out off screen alike
            plot.geometryChanged.connect(self._fit_columns)
        self.set_mode(mode)

    # ---- entries --------------------------------------------------------------------------
    @property
    def items(self) -> list:
        """(sample, label) of each entry, as pyqtgraph's LegendItem.items."""
        return self.inside.items

    def isVisible(self) -> bool:
        return self.shown() is not None

    def add(self, item, name: str, row_height: int | None = None) -> None:
        """An entry in both legends (``row_height``: fixed, so that the legend stays compact:
        pyqtgraph sizes a legend from its rows' heights, which its own layout stretches)."""
        for legend in (self.inside, self.outside):
            legend.addItem(item, name)
            if row_height is not None:
                legend.items[-1][1].setFixedHeight(row_height)
        # A click on either legend's sample hides the item; the other legend's sample follows.
        item.visibleChanged.connect(self._repaint_samples)
        if self._side == "bottom":
            self._fit_columns()

    def set_flag(self, flag, on: bool = True) -> None:
        for legend in (self.inside, self.outside):
            legend.setFlag(flag, on)

    def clear(self) -> None:
        for legend in (self.inside, self.outside):
            legend.clear()
        self.place()

    def update_size(self) -> None:
        for legend in (self.inside, self.outside):
            legend.updateSize()

    def _fit_columns(self) -> None:
        """Below the plot: as many columns as its width holds (fewer rows, a taller plot)."""
        fit = int(self.plot.geometry().width() // self._entry_px)
        count = max(1, min(len(self.outside.items), fit))
        if self.outside.columnCount != count:
            self.outside.setColumnCount(count)
        if self.mode == "auto" and self._prefer == "outside":
            self.place()  # a short plot: inside, if a corner is free

    def _repaint_samples(self) -> None:
        for legend in (self.inside, self.outside):
            for sample, _ in legend.items:
                sample.update()

    # ---- where ------------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"legend mode {mode!r} is not one of {MODES}")
        self.mode = mode
        self.inside.moved_by_user = False
        self.place()

    def shown(self) -> pg.LegendItem | None:
        """The legend on screen, or None (hidden, or no entries)."""
        return {"inside": self.inside, "outside": self.outside}.get(self._showing)

    def scene_rect(self) -> QRectF:
        legend = self.shown()
        return QRectF() if legend is None else legend.sceneBoundingRect()

    def covers_data(self) -> bool:
        return self.shown() is self.inside and self.covered(self.scene_rect()) > 0

    def place(self) -> None:
        """Show the legend the mode asks for; inside, in the emptiest corner (not after the user
        dragged it)."""
        where = None if self.mode == "hidden" or not self.inside.items else self.mode
        if where == "auto" and self._prefer == "outside":
            if self._outside_fits():
                where = "outside"
            elif self._showing == "outside":  # the corners are those of the plot without it
                self._show(None)
                _activate(self.plot)
        if where in ("inside", "auto") and not self.inside.moved_by_user:
            covered = self._put_in_emptiest_corner()
            if where == "auto":
                # The map: beside the plot rather than over a point. A plot too short for the
                # legend below: the emptiest corner however full (below, it would be cut off);
                # an export draws it outside when it covers data (outside_for_export).
                where = "inside" if covered == 0 or self._prefer == "outside" else "outside"
        elif where == "auto":  # the user dragged it inside: it stays where they put it
            where = "inside"
        self._show(where)

    def _outside_fits(self) -> bool:
        """Whether the legend outside leaves the plot most of its height (below) or width."""
        layout = self.outside.layout  # pyqtgraph's attribute: the legend's grid of entries
        size, room = self.plot.geometry(), OUTSIDE_SHARE
        if self._side == "bottom":
            return layout.preferredHeight() <= room * size.height()
        return layout.preferredWidth() <= room * size.width()

    def _show(self, where: str | None) -> None:
        layout = self.plot.layout
        in_layout = any(layout.itemAt(i) is self.outside for i in range(layout.count()))
        if where == "outside" and not in_layout:
            row, column = (4, 1) if self._side == "bottom" else (2, 4)
            layout.addItem(self.outside, row, column)
            if self._side == "bottom":
                layout.setAlignment(self.outside, Qt.AlignmentFlag.AlignHCenter)
        elif where != "outside" and in_layout:
            layout.removeItem(self.outside)
        self.outside.setVisible(where == "outside")
        self.inside.setVisible(where == "inside")
        self._showing = where

    def covered(self, rect: QRectF) -> int:
        """How many plotted points (curves: also between their samples) lie in a scene rect."""
        view = self.plot.getViewBox()
        c = CLEARANCE_PX
        r = view.mapSceneToView(rect.adjusted(-c, -c, c, c)).boundingRect()
        count = 0
        for x, y in self._data():
            step = max(1, -(-len(x) // MAX_COUNTED))
            x, y = _densified(np.asarray(x)[::step], np.asarray(y)[::step])
            count += int(((x >= r.left()) & (x <= r.right()) & (y >= r.top()) & (y <= r.bottom())).sum())
        return count

    def _put_in_emptiest_corner(self) -> int:
        """Anchor the inside legend in the corner where it covers the fewest points: their count."""
        view = self.plot.getViewBox()
        box = view.sceneBoundingRect()
        self.inside.updateSize()
        w, h = self.inside.width(), self.inside.height()
        best = None
        # Right top first: on a tie (an empty plot) the legend goes where readers look for it.
        for cx, cy in ((1, 0), (0, 0), (1, 1), (0, 1)):
            x = box.right() - MARGIN_PX - w if cx else box.left() + MARGIN_PX
            y = box.bottom() - MARGIN_PX - h if cy else box.top() + MARGIN_PX
            n = self.covered(QRectF(x, y, w, h))
            if best is None or n < best[0]:
                best = (n, (cx, cy))
        count, self.corner = best
        cx, cy = self.corner
        offset = (-MARGIN_PX if cx else MARGIN_PX, -MARGIN_PX if cy else MARGIN_PX)
        self.inside.anchor(itemPos=self.corner, parentPos=self.corner, offset=offset)
        return count


def _densified(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A sparse curve's samples and points along its segments (a line between two far samples
    crosses what lies between them); finite values only."""
    if len(x) >= DENSE:  # a big map: no copies (NaN compares False: not counted)
        return x, y
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep].astype(np.float64), y[keep].astype(np.float64)
    if len(x) < 2:
        return x, y
    t = np.linspace(0.0, 1.0, SEGMENT_STEPS, endpoint=False)[:, None]
    xs = x[:-1] + t * np.diff(x)
    ys = y[:-1] + t * np.diff(y)
    return np.concatenate([xs.ravel(), x[-1:]]), np.concatenate([ys.ravel(), y[-1:]])


def placement(plot: pg.PlotItem) -> PlacedLegend | None:
    return _placements.get(plot)


@contextlib.contextmanager
def outside_for_export(plot: pg.PlotItem):
    """While a figure of ``plot`` is drawn: a legend shown inside that covers any data point is
    shown outside the axes (a figure for a paper has no legend over its data)."""
    legend = _placements.get(plot)
    if legend is None or legend.shown() is not legend.inside or legend.covered(legend.scene_rect()) == 0:
        yield
        return
    legend._show("outside")
    _activate(plot)
    try:
        yield
    finally:
        legend._show("inside")
        _activate(plot)


def _activate(plot: pg.PlotItem) -> None:
    layout = pg.QtWidgets.QGraphicsWidget.layout(plot)  # PlotItem's ``layout`` attribute hides it
    if layout is not None:
        layout.activate()
