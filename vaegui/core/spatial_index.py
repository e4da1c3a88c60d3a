"""A spatial index of a map's points, so that hover cards, the nearest real image of a drag and
brushing ask a tree or a slab of sorted points, not every point (a million of them take 5-10 ms
to scan, and a hover or a drag asks up to 60 times a second).

Nearest points come from scipy's cKDTree (exact, any dimension: the plane of the map, or the
latent space for L > 2). Rectangles (brushing, the points in view) come from the points sorted by
x: a ``searchsorted`` finds the slab of the rectangle's x range and only that slab is tested on
y, which gives numpy index arrays (cKDTree's ball queries give Python lists, far slower for the
hundreds of thousands of points of a zoomed-out view).

An index is built once per map, off the GUI thread: :func:`plane_index` and
:func:`latent_index` build it on first use and keep it with the map's :class:`EncodedSet`, and
``build=False`` asks only whether it is there yet.
"""

from __future__ import annotations

import math
import threading
import weakref
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .latent import EncodedSet

# A KD-tree prunes little in more dimensions than this (its queries then visit most points, more
# slowly than one vectorised scan): latent means of a wider model are scanned.
MAX_TREE_DIM = 16
# Neighbours fetched at once when the nearest ones are masked out (hidden classes): the first
# query asks for one, then this many times more each round.
_GROWTH = 8
# Cells per axis of the coarse count table that bounds a rectangle's count at once (256 x 256
# int64: 0.5 MB): the map asks at every pan frame whether more than 100,000 points are in view,
# and an exact count reads the slab of the view's x range (a million points when zoomed out).
TABLE_CELLS = 256


class SpatialIndex:
    """Exact nearest-neighbour and rectangle queries on fixed points (N, D)."""

    def __init__(self, points: np.ndarray):
        from scipy.spatial import cKDTree  # imported here: it costs start-up time the window needs

        given = np.asarray(points)
        points = np.asarray(given, np.float64)  # the tree's precision
        if points.ndim != 2 or points.shape[1] < 1:
            raise ValueError(f"points must be (N, D), got shape {points.shape}")
        finite = np.isfinite(points).all(axis=1)
        # Points with NaN or inf (a diverged model) are left out of the tree, never found.
        self._ids = np.flatnonzero(finite) if not finite.all() else None
        kept = points[finite] if self._ids is not None else points
        self._n = len(points)
        self._table = None
        # Leaves of 32 points: half the nodes of scipy's 16 (5 MB less at a million points), and a
        # hover's query stays in the microseconds.
        self._tree = cKDTree(kept, leafsize=32, balanced_tree=False, compact_nodes=False) if len(kept) else None
        if points.shape[1] >= 2:
            order = np.argsort(kept[:, 0], kind="stable")
            ids = order if self._ids is None else self._ids[order]
            # (K,) point indices by increasing x, and their x and y in the precision they came in
            # (float32 maps: 12 MB less at a million points; bounds are rounded outward to it,
            # see _bounds, so a rectangle holds exactly the points it holds in float64).
            self._order = ids.astype(np.int32 if self._n < 2 ** 31 else np.int64)
            real = np.float32 if given.dtype == np.float32 else np.float64
            self._xs = np.ascontiguousarray(kept[order, 0], dtype=real)
            self._ys = np.ascontiguousarray(kept[order, 1], dtype=real)
            self._table = _count_table(self._xs, self._ys) if len(kept) else None
        self.dim = points.shape[1]

    def __len__(self) -> int:
        return self._n

    def nearest(self, p: np.ndarray, max_distance: float = np.inf,
                allowed: np.ndarray | None = None) -> tuple[int, float]:
        """The index of the point nearest ``p`` within ``max_distance`` among those ``allowed``
        (a boolean mask over all points; None: all), and its distance; (-1, inf) if none."""
        if self._tree is None:
            return -1, float("inf")
        p = np.asarray(p, np.float64).reshape(self.dim)
        bound = float(max_distance) * (1 + 1e-9) if np.isfinite(max_distance) else np.inf
        size = self._tree.n
        k = 1
        while True:
            dist, found = self._tree.query(p, k=min(k, size), distance_upper_bound=bound)
            dist, found = np.atleast_1d(dist), np.atleast_1d(found)
            valid = found < size
            ids = found[valid] if self._ids is None else self._ids[found[valid]]
            dist = dist[valid]
            ok = np.ones(len(ids), bool) if allowed is None else np.asarray(allowed)[ids]
            if ok.any():
                j = int(np.argmax(ok))  # the first allowed: distances come sorted
                if dist[j] > max_distance:
                    return -1, float("inf")
                return int(ids[j]), float(dist[j])
            # None allowed among these: all within the bound were seen, or all points were.
            if len(ids) < min(k, size) or k >= size:
                return -1, float("inf")
            k *= _GROWTH

    def in_rect(self, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
        """Indices of the points with x0 <= x <= x1 and y0 <= y <= y1, increasing."""
        lo, hi = self._slab(x0, x1)
        y0, y1 = self._bounds(y0, y1)
        ys = self._ys[lo:hi]
        return np.sort(self._order[lo:hi][(ys >= y0) & (ys <= y1)]).astype(np.int64)

    def count_in_rect(self, x0: float, x1: float, y0: float, y1: float,
                      allowed: np.ndarray | None = None) -> int:
        """How many points (of those ``allowed``) lie in the rectangle (edges included)."""
        lo, hi = self._slab(x0, x1)
        y0, y1 = self._bounds(y0, y1)
        ys = self._ys[lo:hi]
        inside = (ys >= y0) & (ys <= y1)
        if allowed is not None:
            inside &= np.asarray(allowed)[self._order[lo:hi]]
        return int(np.count_nonzero(inside))

    def count_bounds(self, x0: float, x1: float, y0: float, y1: float) -> tuple[int, int]:
        """At least and at most how many points lie in the rectangle, at once: the points of the
        table's cells wholly inside it, and of the cells it touches (each widened by a cell, so
        that a point binned across a cell's edge by rounding is still counted right)."""
        if self._table is None:
            return 0, 0
        (bx0, bx1, by0, by1), sums = self._table
        g = TABLE_CELLS
        fx0, fx1 = (np.array([x0, x1], np.float64) - bx0) * (g / (bx1 - bx0)) if bx1 > bx0 else (0.0, float(g))
        fy0, fy1 = (np.array([y0, y1], np.float64) - by0) * (g / (by1 - by0)) if by1 > by0 else (0.0, float(g))
        if not (x1 >= x0 and y1 >= y0 and x1 >= bx0 and x0 <= bx1 and y1 >= by0 and y0 <= by1):
            return 0, 0

        def cells(lo: float, hi: float, inner: bool) -> tuple[int, int]:
            a, b = (math.ceil(lo) + 1, math.floor(hi) - 1) if inner else (math.floor(lo) - 1, math.ceil(hi) + 1)
            return min(max(a, 0), g), min(max(b, 0), g)

        def total(cx: tuple[int, int], cy: tuple[int, int]) -> int:
            (c0, c1), (r0, r1) = cx, cy
            if c1 <= c0 or r1 <= r0:
                return 0
            return int(sums[r1, c1] - sums[r0, c1] - sums[r1, c0] + sums[r0, c0])

        inner = total(cells(fx0, fx1, True), cells(fy0, fy1, True))
        # A box the rectangle covers whole (the zoomed-out view) has all its points inside.
        covers = x0 <= bx0 and x1 >= bx1 and y0 <= by0 and y1 >= by1
        outer = total(cells(fx0, fx1, False), cells(fy0, fy1, False))
        return (outer, outer) if covers else (inner, outer)

    def _slab(self, x0: float, x1: float) -> tuple[int, int]:
        if self.dim < 2:
            raise ValueError("rectangle queries need points in a plane (D >= 2)")
        x0, x1 = self._bounds(x0, x1)
        return (int(np.searchsorted(self._xs, x0, "left")), int(np.searchsorted(self._xs, x1, "right")))

    def _bounds(self, lo: float, hi: float):
        """``lo`` and ``hi`` as scalars of the stored coordinates' type (a float64 bound would
        make numpy compare a float32 slab as float64, a copy of it per query), rounded outward
        only as far as the next representable value: for float32 points p, p >= lo exactly
        when p >= the result, and likewise for hi."""
        real = self._xs.dtype.type
        with np.errstate(over="ignore"):
            a, b = real(lo), real(hi)
        if a < lo:
            a = np.nextafter(a, real(np.inf))
        if b > hi:
            b = np.nextafter(b, real(-np.inf))
        return a, b


def _count_table(x: np.ndarray, y: np.ndarray):
    """The points' bounding box and the summed-area table of their counts in TABLE_CELLS^2
    cells over it: sums[r, c] is the count of the cells of rows < r and columns < c."""
    box = (float(x.min()), float(x.max()), float(y.min()), float(y.max()))
    g = TABLE_CELLS

    def cell(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
        if hi <= lo:
            return np.zeros(len(v), np.int64)
        return np.clip(((v - lo) * (g / (hi - lo))).astype(np.int64), 0, g - 1)

    counts = np.bincount(cell(y, box[2], box[3]) * g + cell(x, box[0], box[1]), minlength=g * g).reshape(g, g)
    sums = np.zeros((g + 1, g + 1), np.int64)
    sums[1:, 1:] = counts.cumsum(0).cumsum(1)
    return box, sums


# Indexes built for a map, kept as long as the map is (the history's blended maps come and go).
_built: "weakref.WeakKeyDictionary[EncodedSet, dict[str, SpatialIndex]]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def plane_index(encoded: "EncodedSet", build: bool = True) -> SpatialIndex | None:
    """The index of the map's points in its plane (``encoded.xy``); None if not built and
    ``build`` is False."""
    return _index(encoded, "plane", lambda: encoded.xy, build)


def latent_index(encoded: "EncodedSet", build: bool = True) -> SpatialIndex | None:
    """The index of the map's latent means: the plane's own when the projection is exact (L <= 2:
    the plane is the latent space), else one of its own in L dimensions; None above
    MAX_TREE_DIM dimensions (scan them with ``latent.nearest_index``)."""
    if encoded.projection.is_exact and encoded.latents.shape[1] == 2:
        return plane_index(encoded, build)
    if encoded.latents.shape[1] > MAX_TREE_DIM:
        return None
    return _index(encoded, "latent", lambda: encoded.latents, build)


def prepare(encoded: "EncodedSet") -> None:
    """Build both indexes of a map (call it off the GUI thread)."""
    plane_index(encoded)
    latent_index(encoded)


def _index(encoded: "EncodedSet", kind: str, points, build: bool) -> SpatialIndex | None:
    with _lock:
        index = _built.get(encoded, {}).get(kind)
    if index is not None or not build:
        return index
    index = SpatialIndex(points())  # outside the lock: a build of a million points takes a while
    with _lock:
        # Two threads may have built it at once: keep the first, so every caller shares one.
        return _built.setdefault(encoded, {}).setdefault(kind, index)
