"""A pyqtgraph ViewBox for live curves whose auto-range moves in steps, not at every update.

pyqtgraph's auto-range fits the view to the data exactly, so a curve that grows moves the range at
each update, and every AxisItem drops its cached drawing whenever the range moves: re-laying out
the ticks, labels and grid was 8 ms of the loss view's 11.5 ms paint, twice a second, on the GUI
thread that a 2-core machine shares with training. Here the range leaves room beyond the data and
stays put while the data fits it well, so the axes are laid out again only when a bound jumps.
"""

from __future__ import annotations

import math

import pyqtgraph as pg

# A range is kept while the data fill at least this share of it: emptier, it fits them again.
MIN_FILL = 0.5


def stepped_range(current: tuple[float, float], lo: float, hi: float, below: float, above: float,
                  min_fill: float = MIN_FILL) -> tuple[float, float]:
    """The view range for data spanning [lo, hi], given the ``current`` one.

    The current range stays while it holds all the data and the data fill at least ``min_fill``
    of it (a hidden curve or a new run then fits again). Otherwise the data get a new range with
    ``below`` and ``above`` times their span of room on each side."""
    span = hi - lo
    if span <= 0:  # one value: room around it all the same
        span = abs(hi) or 1.0
    a, b = current
    if a <= lo and hi <= b and span >= min_fill * (b - a):
        return current
    return lo - below * span, hi + above * span


class SteppedViewBox(pg.ViewBox):
    """Auto-range (while the user has not zoomed or panned, as pyqtgraph decides) by
    :func:`stepped_range`, with room given per axis as ``(below, above)``.

    The rule applies to the range this view asked for, not to the one shown: with a locked
    aspect ratio pyqtgraph widens one axis beyond it. pyqtgraph's partial auto-range (a
    percentage of the data, "visible data only") is not offered: the whole data always fit."""

    def __init__(self, x_room: tuple[float, float], y_room: tuple[float, float], **kwargs):
        self._targets: list[tuple[float, float] | None] = [None, None]  # (ViewBox.__init__ uses it)
        super().__init__(**kwargs)
        self._room = (x_room, y_room)

    def enableAutoRange(self, *args, **kwargs) -> None:
        self._targets = [None, None]  # a user's zoom, or auto-range asked for again: fit afresh
        super().enableAutoRange(*args, **kwargs)

    def updateAutoRange(self) -> None:
        auto = self.autoRangeEnabled()
        try:
            if not any(auto):
                return
            bounds = self.childrenBounds()
            changed = {}
            for ax, key in ((0, "xRange"), (1, "yRange")):
                if auto[ax] is False or bounds[ax] is None:
                    continue
                current = self._targets[ax] or (math.inf, -math.inf)  # none yet: holds nothing
                new = stepped_range(current, *bounds[ax], *self._room[ax])
                if new != current:
                    self._targets[ax] = changed[key] = new
            if changed:
                self.setRange(padding=0.0, disableAutoRange=False, **changed)
        finally:
            self._autoRangeNeedsUpdate = False  # what pyqtgraph's own updateAutoRange clears
