"""Simple shapes rendered from known generating factors (the built-in ``shapes`` dataset).

Coordinates are normalised: the image spans [-1, 1] on both axes, x grows to the right and y grows
downward (like image rows), so one pixel is ``2 / image_size`` wide. A shape's ``scale`` is its
circumradius in these units, so every shape lies in the disc of radius ``scale`` around its centre
``(x, y)``; the centre is also the shape's centroid. ``rotation`` is in radians, drawn from one
symmetry period of the shape (a quarter turn for the square, half for the ellipse, a third for the
triangle), so that it can be read back from the image.
"""

from __future__ import annotations

import numpy as np

SHAPE_NAMES = ("square", "ellipse", "triangle")
FACTOR_NAMES = ("shape", "scale", "rotation", "x", "y")
SCALE_RANGE = (0.35, 0.75)

# Order of rotational symmetry of square, ellipse, triangle.
_SYMMETRY = np.array([4, 2, 3])
# Minor / major axis of the ellipse; a circle would make the rotation factor invisible.
_ELLIPSE_ASPECT = 0.6
# Shapes in their own frame with circumradius 1: square half-side and triangle inradius.
_SQUARE_HALF = 1 / np.sqrt(2)
_TRIANGLE_IN = 0.5
# Local area of each shape at scale 1 (used by tests to check the rendered ink).
SHAPE_AREAS = (2.0, np.pi * _ELLIPSE_ASPECT, 3 * np.sqrt(3) / 4)
# k x k subpixels per pixel, averaged: antialiased edges.
_SUPERSAMPLE = 3
# Images per vectorised step: big enough to amortise numpy calls, small enough to stay in cache.
_CHUNK = 128


# Peak bytes an image while its factors are drawn (the draws, float64 temporaries, the float32
# factors) and kept (the factors, an int64 label): what a set needs in memory besides its images.
FACTOR_BYTES = 128


def draw_factors(rng: np.random.Generator, n: int, image_size: int) -> dict[str, np.ndarray]:
    """Uniform random factors for ``n`` images, each (n,) float32, keyed by :data:`FACTOR_NAMES`."""
    # One row of draws per image, so the first k images do not depend on n (limits stay prefixes).
    u = rng.random((n, 5))
    shape = np.minimum(np.floor(u[:, 0] * 3), 2)
    lo, hi = SCALE_RANGE
    scale = lo + (hi - lo) * u[:, 1]
    rotation = u[:, 2] * 2 * np.pi / _SYMMETRY[shape.astype(int)]
    # The centre may go as far as keeps the whole shape off the outermost ring of pixels.
    reach = 1 - 2 / image_size - scale
    x = (2 * u[:, 3] - 1) * reach
    y = (2 * u[:, 4] - 1) * reach
    factors = dict(zip(FACTOR_NAMES, (shape, scale, rotation, x, y)))
    return {k: v.astype(np.float32) for k, v in factors.items()}


def render(factors: dict[str, np.ndarray], image_size: int) -> np.ndarray:
    """Images (n, 1, image_size, image_size) uint8 of the shapes the factors describe."""
    kinds = factors["shape"].astype(int)
    out = np.empty((len(kinds), image_size, image_size), np.uint8)
    # Coverage count (0..k*k) -> grey level, rounded.
    levels = np.round(np.arange(_SUPERSAMPLE**2 + 1) * 255 / _SUPERSAMPLE**2).astype(np.uint8)
    for kind in range(len(SHAPE_NAMES)):
        idx = np.flatnonzero(kinds == kind)
        for start in range(0, len(idx), _CHUNK):
            sel = idx[start : start + _CHUNK]
            part = {k: v[sel] for k, v in factors.items()}
            out[sel] = levels[_coverage(kind, part, image_size)]
    return out[:, None]


def _coverage(kind: int, f: dict[str, np.ndarray], size: int) -> np.ndarray:
    """Number of covered subpixels per pixel, (B, size, size) uint8."""
    k = _SUPERSAMPLE
    pixel = 2 / size
    centres = (np.arange(size, dtype=np.float32) + 0.5) * pixel - 1  # (size,)
    offsets = ((np.arange(k, dtype=np.float32) + 0.5) / k - 0.5) * pixel  # (k,)
    count = np.zeros((len(f["x"]), size, size), np.uint8)
    for dy in offsets:
        for dx in offsets:
            count += _inside(kind, f, centres + dx, centres + dy)
    return count


def _inside(kind: int, f: dict[str, np.ndarray], xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Whether each sample point (ys[i], xs[j]) lies in the shape, (B, H, W) bool."""
    theta, s = f["rotation"], f["scale"]
    if kind == 0:  # square: |u|, |v| <= half-side in the rotated frame
        u = np.abs(_along(theta, s, f, xs, ys))
        v = np.abs(_along(theta + np.pi / 2, s, f, xs, ys))
        return np.maximum(u, v, out=u) <= _SQUARE_HALF
    if kind == 1:  # ellipse: u^2 + (v / aspect)^2 <= 1
        u = _along(theta, s, f, xs, ys)
        v = _along(theta + np.pi / 2, s * _ELLIPSE_ASPECT, f, xs, ys)
        u *= u
        v *= v
        return np.add(u, v, out=u) <= 1
    # triangle: inside all three edges, whose outward normals are 120 degrees apart
    d = _along(theta - np.pi / 2, s, f, xs, ys)
    for turn in (2 * np.pi / 3, 4 * np.pi / 3):
        np.maximum(d, _along(theta - np.pi / 2 + turn, s, f, xs, ys), out=d)
    return d <= _TRIANGLE_IN


def _along(angle, length, f, xs, ys) -> np.ndarray:
    """Projection of (point - centre) on the direction `angle`, divided by `length`: (B, H, W) float32.

    The projection is linear in x and y, so it is an outer sum of a (B, W) and a (B, H) term: one
    full-size operation instead of five.
    """
    a = (np.cos(angle) / length).astype(np.float32)[:, None]  # (B, 1)
    b = (np.sin(angle) / length).astype(np.float32)[:, None]
    c = -(a * f["x"][:, None] + b * f["y"][:, None])  # (B, 1)
    return (b * ys + c)[:, :, None] + (a * xs)[:, None, :]
