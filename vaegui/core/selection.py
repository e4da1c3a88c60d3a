"""Brushing the latent map: the points inside a lasso or a rectangle drawn on its plane, what they
are (a count per class), and their export.

The candidates come from the map's spatial index (the slab of the shape's bounding box), so a
small lasso on a million points reads a few thousand of them. The point-in-polygon test is the
even-odd rule (a horizontal ray crosses the outline an odd number of times), vectorised by edge:
the candidates are sorted by y once, and each edge tests only the band of points its y range
spans, so the work grows with the points near the outline's crossings, not points x edges.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .export import ExportError, write_csv, write_file
from .latent import EncodedSet
from .spatial_index import SpatialIndex


@dataclass(frozen=True, eq=False)
class Selection:
    indices: np.ndarray  # (K,) int64, increasing: the selected points of the map
    outline: np.ndarray  # (V, 2) float64: the lasso's or rectangle's corners in the plane, open


def inside_polygon(x: np.ndarray, y: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(N,) bool: whether each point (x, y) lies inside ``polygon`` (V, 2), closed implicitly,
    by the even-odd rule (PNPOLY's crossing test: an edge counts when min(y1, y2) <= y <
    max(y1, y2) and the point lies left of its crossing)."""
    poly = np.asarray(polygon, np.float64).reshape(-1, 2)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    inside = np.zeros(len(x), bool)
    if len(poly) < 3 or not len(x):
        return inside
    order = np.argsort(y, kind="stable")
    ys, xs = y[order], x[order]
    flips = np.zeros(len(x), bool)
    for (x1, y1), (x2, y2) in zip(poly, np.roll(poly, -1, axis=0)):
        if y1 == y2:
            continue  # a horizontal edge is never crossed by a horizontal ray
        lo, hi = np.searchsorted(ys, (min(y1, y2), max(y1, y2)), "left")
        if lo == hi:
            continue
        crossing = (x2 - x1) * (ys[lo:hi] - y1) / (y2 - y1) + x1
        flips[lo:hi] ^= xs[lo:hi] < crossing
    inside[order] = flips
    return inside


def candidates(x: np.ndarray, y: np.ndarray, box: tuple[float, float, float, float],
               index: SpatialIndex | None = None) -> np.ndarray:
    """Indices (increasing) of the points in the box x0, x1, y0, y1: from the index when it is
    built for these points, else one scan (a map whose index is still being built)."""
    x0, x1, y0, y1 = box
    if index is not None and len(index) == len(x):
        return index.in_rect(x0, x1, y0, y1)
    return np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))


def select_polygon(x: np.ndarray, y: np.ndarray, polygon: np.ndarray, index: SpatialIndex | None = None,
                   allowed: np.ndarray | None = None) -> Selection:
    """The points inside a lasso (among those ``allowed``, a bool mask; None: all)."""
    poly = np.asarray(polygon, np.float64).reshape(-1, 2)
    if len(poly) < 3:
        return Selection(np.zeros(0, np.int64), poly)
    box = (poly[:, 0].min(), poly[:, 0].max(), poly[:, 1].min(), poly[:, 1].max())
    ids = _allowed(candidates(x, y, box, index), allowed)
    ids = ids[inside_polygon(np.asarray(x)[ids], np.asarray(y)[ids], poly)]
    return Selection(ids.astype(np.int64), poly)


def select_rect(x: np.ndarray, y: np.ndarray, corner_a, corner_b, index: SpatialIndex | None = None,
                allowed: np.ndarray | None = None) -> Selection:
    """The points in the rectangle with these opposite corners (edges included)."""
    (ax, ay), (bx, by) = corner_a, corner_b
    x0, x1, y0, y1 = min(ax, bx), max(ax, bx), min(ay, by), max(ay, by)
    ids = _allowed(candidates(x, y, (x0, x1, y0, y1), index), allowed)
    outline = np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], np.float64)
    return Selection(ids.astype(np.int64), outline)


def _allowed(ids: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
    return ids if allowed is None else ids[np.asarray(allowed, bool)[ids]]


def class_counts(labels: np.ndarray, indices: np.ndarray, class_names: tuple[str, ...]) -> list[tuple[str, int]]:
    """(class name, points) of the selection, most first; labels without a name show as numbers."""
    found, counts = np.unique(np.asarray(labels)[indices], return_counts=True)
    order = np.lexsort((found, -counts))
    return [(class_names[k] if 0 <= k < len(class_names) else str(k), int(c))
            for k, c in zip(found[order].tolist(), counts[order].tolist())]


def describe(selection: Selection, labels: np.ndarray, class_names: tuple[str, ...], most: int = 4) -> str:
    """"1,234 selected: circle 800, square 434" (the ``most`` biggest classes, then the rest)."""
    n = len(selection.indices)
    if not n:
        return "nothing selected"
    counts = class_counts(labels, selection.indices, class_names)
    parts = [f"{name} {count:,}" for name, count in counts[:most]]
    if len(counts) > most:
        parts.append(f"{len(counts) - most} more classes {sum(c for _, c in counts[most:]):,}")
    return f"{n:,} selected: " + ", ".join(parts)


def write_selection(path: str | os.PathLike, selection: Selection, encoded: EncodedSet) -> Path:
    """The selected points to ``path``, by its suffix: .npz (``index``, ``label``, ``x``, ``y``,
    ``class_names``, ``outline``) or .csv (index, label, class, x, y), written atomically."""
    path = Path(path)
    ids = selection.indices
    labels = np.asarray(encoded.labels, np.int64)[ids]
    x, y = encoded.xy[ids, 0], encoded.xy[ids, 1]
    if path.suffix.lower() == ".npz":
        arrays = {"index": ids, "label": labels, "x": x, "y": y, "outline": selection.outline,
                  "class_names": np.array(encoded.class_names, dtype=str)}
        return write_file(path, lambda f: np.savez(f, **arrays))
    if path.suffix.lower() == ".csv":
        names = np.array([*encoded.class_names, ""], dtype=str)
        known = np.where((labels >= 0) & (labels < len(encoded.class_names)), labels, len(encoded.class_names))
        return write_csv(path, ["index", "label", "class", "x", "y"], [ids, labels, names[known], x, y])
    raise ExportError(path, "a selection is written as .npz or .csv")
