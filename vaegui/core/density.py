"""The latent map as a density image, for views with more points than a scatter can draw well.

A view rectangle is cut into bins (one per screen pixel); each bin's count sets its strength on a
log scale, so lone points stay visible beside a cluster of thousands, and its colour is the mix
of its points' label colours, or the colour of the mean of a continuous factor over its points,
from the same palette the points use. Plain numpy (bincount), free of Qt: the map computes it on
a worker thread at each pause of a pan or zoom.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The weakest a bin with one point is drawn (0..1): dimmer would vanish on a white background.
MIN_ALPHA = 0.3

Rect = tuple[float, float, float, float]  # x0, x1, y0, y1 in the map's plane


@dataclass(frozen=True, eq=False)
class DensityImage:
    rgba: np.ndarray  # (H, W, 4) uint8, row 0 the bottom bin row (lowest y), not premultiplied
    counts: np.ndarray  # (H, W) int32 points per bin
    rect: Rect  # the plane rectangle the bins tile
    points: int  # points counted (in the rectangle and allowed)


def bin_index(x: np.ndarray, y: np.ndarray, rect: Rect, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The flat bin (row * W + column) of each point inside ``rect`` (edges included, as
    ``np.histogram2d``), and the indices of those points."""
    x0, x1, y0, y1 = (float(v) for v in rect)
    h, w = shape
    if not (x1 > x0 and y1 > y0) or h < 1 or w < 1:
        raise ValueError(f"density bins: {shape} over {rect} is not a non-empty grid")
    x, y = np.asarray(x), np.asarray(y)
    inside = np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
    col = _bins(x[inside], x0, x1, w)
    row = _bins(y[inside], y0, y1, h)
    return row * w + col, inside


def _bins(v: np.ndarray, lo: float, hi: float, n: int) -> np.ndarray:
    """Bin of each value of [lo, hi] in n equal bins, as ``np.histogram`` finds it: scaled,
    then corrected against the edges where rounding put a value on an edge's wrong side (points
    on the edges are common: integer positions, a map's own extremes). The right edge joins the
    last bin."""
    v = v.astype(np.float64)
    index = ((v - lo) * (n / (hi - lo))).astype(np.int64)
    np.clip(index, 0, n - 1, out=index)
    edges = np.linspace(lo, hi, n + 1)
    index[v < edges[index]] -= 1
    up = (v >= edges[index + 1]) & (index != n - 1)
    index[up] += 1
    return index


def density_image(x: np.ndarray, y: np.ndarray, rect: Rect, shape: tuple[int, int], *,
                  labels: np.ndarray | None = None, label_colors: np.ndarray | None = None,
                  values: np.ndarray | None = None, value_lut: np.ndarray | None = None,
                  value_range: tuple[float, float] | None = None,
                  allowed: np.ndarray | None = None) -> DensityImage:
    """The density image of points (x, y) over ``rect`` in ``shape`` = (H, W) bins.

    Colours: by ``labels`` with ``label_colors`` (C, 3) uint8 (a label k takes colour k mod C),
    or by ``values`` through ``value_lut`` (K, 3) uint8 over ``value_range`` (binned as the
    points' own palette bins them), or black. ``allowed`` (N,) bool leaves points out (classes
    hidden through the legend)."""
    h, w = shape
    flat, inside = bin_index(x, y, rect, shape)
    if allowed is not None:
        keep = np.asarray(allowed, bool)[inside]
        flat, inside = flat[keep], inside[keep]
    counts = np.bincount(flat, minlength=h * w)
    filled = np.flatnonzero(counts)
    n_filled = counts[filled]
    # Colour sums one channel at a time, kept only for the filled bins: the whole image as
    # floats (H x W x 3) and every point's colour as floats came to 60 MB of a worker's peak.
    rgba = np.zeros((h * w, 4), np.uint8)
    if labels is not None and label_colors is not None:
        colours = np.asarray(label_colors, np.float64)
        colour_of = np.asarray(labels)[inside] % len(colours)  # (n,)
        for c in range(3):
            sums = np.bincount(flat, weights=colours[:, c][colour_of], minlength=h * w)[filled]
            rgba[filled, c] = np.round(sums / n_filled).astype(np.uint8)
    elif values is not None and value_lut is not None:
        lut = np.asarray(value_lut, np.uint8)
        v = np.nan_to_num(np.asarray(values, np.float64)[inside], nan=0.0)
        mean = np.bincount(flat, weights=v, minlength=h * w)[filled] / n_filled
        lo, hi = value_range if value_range is not None else (float(v.min(initial=0)), float(v.max(initial=1)))
        span = hi - lo if hi > lo else 1.0
        level = np.clip(np.floor((mean - lo) / span * len(lut)), 0, len(lut) - 1).astype(np.int64)
        rgba[filled, :3] = lut[level, :3]
    rgba[:, 3] = np.round(255 * log_alpha(counts)).astype(np.uint8)
    return DensityImage(rgba.reshape(h, w, 4), counts.astype(np.int32).reshape(h, w),
                        tuple(float(v) for v in rect), int(len(flat)))


def log_alpha(counts: np.ndarray) -> np.ndarray:
    """Strength 0..1 of bins with these counts: 0 for an empty bin, MIN_ALPHA for one point, 1
    for the fullest bin, log-scaled between."""
    counts = np.asarray(counts)
    top = counts.max(initial=0)
    alpha = np.zeros(counts.shape, np.float64)
    if top <= 0:
        return alpha
    filled = counts > 0
    scale = np.log(top) if top > 1 else 1.0
    alpha[filled] = MIN_ALPHA + (1 - MIN_ALPHA) * np.log(counts[filled]) / scale
    return alpha
