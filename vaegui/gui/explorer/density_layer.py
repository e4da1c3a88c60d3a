"""The map's density image, drawn instead of its points when more than DENSITY_THRESHOLD of them
are in view (a scatter of a million points takes a second a paint, and shows only a blot).

At every change of the view the points in it are counted (at once from the map's spatial
index's coarse table when the view holds far more or far fewer than the threshold, else a few
ms for a million: a slab of the index, or one mask before it is built), and the map switches
between the points and the image at once, both ways. The image itself is computed for the view on a worker thread once a
pan or zoom pauses (:mod:`vaegui.core.density`), over the view and a margin around it, so a pan
shows the old image moving until the new one comes, not a blank edge. The points stay in the
plot, only transparent (a transparent item is not painted), so the view's auto-range, the legend
and the colour bar work as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, QTimer, Signal

from vaegui.core.density import DensityImage, density_image
from vaegui.core.memory import release_free_memory
from vaegui.core.spatial_index import SpatialIndex

from ..point_cloud import PointCloud
from .latest_job import LatestJob

DENSITY_THRESHOLD = 100_000  # more points than this in view: the density image
DENSITY_DELAY_MS = 80  # the image follows pan and zoom once they pause this long
MARGIN = 0.25  # the image covers this share of the view's size beyond each edge
MAX_BINS = 4096  # on either axis (a 4K screen at 1x)
MODES = ("auto", "points", "density")


class DensityLayer(QObject):
    """Switches a map's :class:`PointCloud` and a density image of the same points."""

    switched = Signal(bool)  # density shown (True) or points
    imageShown = Signal()  # a new density image is on screen (tests and benchmarks wait on it)

    def __init__(self, plot: pg.PlotItem, scatter: PointCloud, threshold: int = DENSITY_THRESHOLD,
                 parent: QObject | None = None):
        super().__init__(parent)
        self._view = plot.getViewBox()
        self._scatter = scatter
        self.threshold = threshold
        self.mode = "auto"
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.image_item.setZValue(scatter.zValue())
        self.image_item.setVisible(False)
        # Its rectangle is the last view and a margin: counted in the view's auto-range, it
        # would make every auto-range wider than the one before.
        plot.addItem(self.image_item, ignoreBounds=True)
        self._x = self._y = np.zeros(0, np.float32)
        self._allowed: np.ndarray | None = None  # None: all points
        self._colouring: dict[str, Any] = {}
        self._index: SpatialIndex | None = None
        self.showing_density = False
        self.image: DensityImage | None = None  # the one shown
        self._job = LatestJob("vaegui-density", self)
        self._job.done.connect(self._on_job_done)
        self._timer = QTimer(self, singleShot=True, interval=DENSITY_DELAY_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._view.sigRangeChanged.connect(self._on_view_changed)
        self._view.sigResized.connect(self._on_view_changed)

    # ---- what it draws -----------------------------------------------------------------------
    def set_points(self, x: np.ndarray, y: np.ndarray, colouring: dict[str, Any],
                   allowed: np.ndarray | None = None, index: SpatialIndex | None = None) -> None:
        """New points (a new map), with the keyword arguments of :func:`density_image` that
        colour them (``labels`` and ``label_colors``, or ``values``, ``value_lut``, ``value_range``)."""
        self._x, self._y, self._index = x, y, index
        self._colouring = dict(colouring)
        self._allowed = self._all_or(allowed)
        self.image = None
        self._update(recompute_now=True)

    def set_index(self, index: SpatialIndex | None) -> None:
        """The points' spatial index, once built: counts then read a slab, not every point."""
        self._index = index

    def set_colouring(self, colouring: dict[str, Any]) -> None:
        self._colouring = dict(colouring)
        self._update(recompute_now=True)

    def set_allowed(self, allowed: np.ndarray | None) -> None:
        self._allowed = self._all_or(allowed)
        self._update(recompute_now=True)

    def set_mode(self, mode: str) -> None:
        """"auto" (by the count in view), or "points" or "density" always."""
        if mode not in MODES:
            raise ValueError(f"map drawing {mode!r} is not one of {MODES}")
        self.mode = mode
        self._update(recompute_now=True)

    def clear(self) -> None:
        self._job.cancel()
        self.set_points(np.zeros(0, np.float32), np.zeros(0, np.float32), {})

    def wait(self) -> None:
        """Wait for the image being computed (tests, benchmarks, closing)."""
        self._job.wait()

    def busy(self) -> bool:
        """An image is being computed."""
        return self._job.busy()

    # ---- counting and switching ------------------------------------------------------------
    def view_rect(self) -> tuple[float, float, float, float]:
        (x0, x1), (y0, y1) = self._view.viewRange()
        return float(x0), float(x1), float(y0), float(y1)

    def count_in_view(self) -> int:
        """Points (not hidden through the legend) in the view."""
        x0, x1, y0, y1 = self.view_rect()
        if self._index is not None and len(self._index) == len(self._x):
            return self._index.count_in_rect(x0, x1, y0, y1, self._allowed)
        inside = (self._x >= x0) & (self._x <= x1) & (self._y >= y0) & (self._y <= y1)
        if self._allowed is not None:
            inside &= self._allowed
        return int(np.count_nonzero(inside))

    def wants_density(self) -> bool:
        if self.mode != "auto":
            return self.mode == "density" and len(self._x) > 0
        if len(self._x) <= self.threshold:
            return False
        if self._index is not None and len(self._index) == len(self._x) and self._allowed is None:
            # Most frames are far from the threshold: the index's coarse table tells at once.
            least, most = self._index.count_bounds(*self.view_rect())
            if least > self.threshold or most <= self.threshold:
                return least > self.threshold
        return self.count_in_view() > self.threshold

    def _all_or(self, allowed: np.ndarray | None) -> np.ndarray | None:
        return None if allowed is None or np.all(allowed) else np.asarray(allowed, bool)

    def _on_view_changed(self, *_args) -> None:
        self._update(recompute_now=False)

    def _update(self, recompute_now: bool) -> None:
        density = self.wants_density()
        if density != self.showing_density:
            self.showing_density = density
            # Transparent, not hidden: the view's auto-range still reads the points' bounds.
            self._scatter.setOpacity(0.0 if density else 1.0)
            self.image_item.setVisible(density and self.image is not None)
            self.switched.emit(density)
            recompute_now = True
        if not density:
            self._timer.stop()
            self._job.cancel()
        elif recompute_now or self.image is None:
            self._timer.stop()
            self._on_timer_timeout()
        else:
            self._timer.start()

    # ---- the image ---------------------------------------------------------------------------
    def _on_timer_timeout(self) -> None:
        x0, x1, y0, y1 = self.view_rect()
        w, h = self._view.width(), self._view.height()
        if not (x1 > x0 and y1 > y0 and w >= 1 and h >= 1):
            return
        mx, my = MARGIN * (x1 - x0), MARGIN * (y1 - y0)
        rect = (x0 - mx, x1 + mx, y0 - my, y1 + my)
        scale = 1 + 2 * MARGIN
        shape = (min(MAX_BINS, max(1, round(h * scale))), min(MAX_BINS, max(1, round(w * scale))))
        self._job.submit(_density_work(self._x, self._y, rect, shape, self._colouring, self._allowed))

    def _on_job_done(self, image: DensityImage) -> None:
        if not self.showing_density:
            return
        self.image = image
        x0, x1, y0, y1 = image.rect
        self.image_item.setImage(image.rgba, autoLevels=False, levels=(0, 255))
        self.image_item.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        self.image_item.setVisible(True)
        self.imageShown.emit()


def _density_work(x, y, rect, shape, colouring, allowed) -> Callable[[], DensityImage]:
    def work() -> DensityImage:
        image = density_image(x, y, rect, shape, allowed=allowed, **colouring)
        release_free_memory()  # its temporaries: tens of MB a pan pause (see core.memory)
        return image
    return work
