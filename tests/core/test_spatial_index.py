"""The spatial index finds what a scan of every point finds: nearest points (also among allowed
ones, within a radius, in the plane and in L dimensions) and the points in a rectangle."""

import gc

import numpy as np
import pytest

from vaegui.core import spatial_index
from vaegui.core.latent import EncodedSet, Projection, nearest_index
from vaegui.core.spatial_index import SpatialIndex


def brute_nearest(points, p, allowed=None, max_distance=np.inf):
    d = np.sqrt(((points.astype(np.float64) - p) ** 2).sum(1))
    if allowed is not None:
        d[~allowed] = np.inf
    i = int(np.argmin(d))
    return (i, d[i]) if d[i] <= max_distance else (-1, np.inf)


@pytest.mark.parametrize("dim", [2, 5])
def test_nearest_matches_brute_force_on_many_queries(dim):
    rng = np.random.default_rng(dim)
    # Clustered like a latent map, with duplicates: ties must still give a nearest point.
    points = np.concatenate([rng.normal(size=(3000, dim)), rng.normal(3, 0.1, size=(2000, dim)),
                             np.repeat(rng.normal(size=(10, dim)), 5, axis=0)]).astype(np.float32)
    index = SpatialIndex(points)
    for p in rng.normal(0, 2, size=(500, dim)):
        found, distance = index.nearest(p)
        expected, best = brute_nearest(points, p)
        assert distance == pytest.approx(best, rel=1e-6)
        assert np.linalg.norm(points[found] - p) == pytest.approx(best, rel=1e-5)
        assert found == expected or np.linalg.norm(points[expected] - p) == pytest.approx(best, rel=1e-5)


def test_nearest_among_allowed_points_and_within_a_radius():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(4000, 2))
    labels = rng.integers(0, 10, 4000)
    index = SpatialIndex(points)
    for hidden_classes in ([], [3], list(range(9))):
        allowed = ~np.isin(labels, hidden_classes)
        for p in rng.normal(0, 1.5, size=(200, 2)):
            for radius in (np.inf, 0.05):
                found, d = index.nearest(p, radius, allowed)
                expected, best = brute_nearest(points, p, allowed, radius)
                assert found == expected
                if found >= 0:
                    assert d == pytest.approx(best) and allowed[found] and d <= radius
    assert index.nearest([0, 0], np.inf, np.zeros(4000, bool)) == (-1, np.inf)


def test_points_that_are_not_finite_are_never_found():
    points = np.array([[0.0, 0.0], [np.nan, 0.0], [1.0, np.inf], [2.0, 2.0]])
    index = SpatialIndex(points)
    assert index.nearest([0.9, 0.0])[0] == 0
    assert index.nearest([2.1, 2.0])[0] == 3
    np.testing.assert_array_equal(index.in_rect(-10, 10, -10, 10), [0, 3])


def test_rectangle_queries_match_a_mask_of_all_points():
    rng = np.random.default_rng(2)
    points = rng.normal(size=(20000, 2)).astype(np.float32)
    points[:100] = points[100:200]  # duplicates on the edges of the slab
    index = SpatialIndex(points)
    allowed = rng.random(20000) < 0.7
    x, y = points[:, 0].astype(np.float64), points[:, 1].astype(np.float64)
    for _ in range(200):
        x0, x1 = np.sort(rng.normal(0, 1.5, 2))
        y0, y1 = np.sort(rng.normal(0, 1.5, 2))
        if rng.random() < 0.2:
            x0, x1 = x[rng.integers(20000)], x[rng.integers(20000)]  # edges on points
            x0, x1 = min(x0, x1), max(x0, x1)
        mask = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
        np.testing.assert_array_equal(index.in_rect(x0, x1, y0, y1), np.flatnonzero(mask))
        assert index.count_in_rect(x0, x1, y0, y1) == mask.sum()
        assert index.count_in_rect(x0, x1, y0, y1, allowed) == (mask & allowed).sum()


def encoded(latents):
    projection = Projection.fit(latents)
    n = len(latents)
    return EncodedSet(latents=latents, xy=projection.transform(latents), projection=projection,
                      labels=np.zeros(n, np.int64), class_names=("a",), images=np.zeros((n, 1, 2, 2), np.uint8))


def test_a_maps_indexes_are_built_once_and_kept_with_the_map():
    rng = np.random.default_rng(3)
    enc2, enc6 = encoded(rng.normal(size=(500, 2)).astype(np.float32)), encoded(
        rng.normal(size=(500, 6)).astype(np.float32))
    assert spatial_index.plane_index(enc2, build=False) is None
    spatial_index.prepare(enc2)
    plane = spatial_index.plane_index(enc2, build=False)
    assert plane is not None and spatial_index.plane_index(enc2) is plane
    assert spatial_index.latent_index(enc2) is plane  # L = 2: the plane is the latent space
    latent = spatial_index.latent_index(enc6)
    assert latent.dim == 6 and spatial_index.plane_index(enc6).dim == 2
    for z in rng.normal(size=(50, 6)).astype(np.float32):
        assert latent.nearest(z)[0] == nearest_index(enc6.latents, z)[0]
    assert spatial_index.latent_index(encoded(rng.normal(size=(50, 20)).astype(np.float32))) is None  # scanned
    gc.collect()
    kept = len(spatial_index._built)  # maps of earlier tests in this process may still be alive
    del enc2
    gc.collect()
    assert len(spatial_index._built) == kept - 1  # the map's indexes went with it


def test_count_bounds_bracket_the_exact_count_and_are_exact_for_a_covering_rectangle():
    rng = np.random.default_rng(11)
    xy = np.concatenate([rng.normal(size=(20_000, 2)), rng.uniform(-0.5, 0.5, (500, 2)) * [1, 0]]).astype(np.float32)
    index = SpatialIndex(xy)
    for _ in range(300):
        x0, x1 = np.sort(rng.uniform(-4, 4, 2))
        y0, y1 = np.sort(rng.uniform(-4, 4, 2))
        exact = index.count_in_rect(x0, x1, y0, y1)
        least, most = index.count_bounds(x0, x1, y0, y1)
        assert least <= exact <= most
    assert index.count_bounds(-10, 10, -10, 10) == (len(xy), len(xy))
    assert index.count_bounds(20, 30, 20, 30) == (0, 0)
    # A big view's bounds are tight enough to decide against a threshold without the exact count.
    least, most = index.count_bounds(-2, 2, -2, 2)
    assert most - least < 0.1 * len(xy)


def test_rectangles_on_float32_points_hold_exactly_the_points_float64_bounds_do():
    rng = np.random.default_rng(12)
    xy = rng.normal(size=(5000, 2)).astype(np.float32)
    index = SpatialIndex(xy)
    x, y = xy[:, 0].astype(np.float64), xy[:, 1].astype(np.float64)
    for k in range(200):
        # Bounds a hair's breadth (in float64) beside a point's float32 value, both ways.
        i, j = rng.integers(0, len(xy), 2)
        eps = np.array([-1e-12, 0.0, 1e-12])[k % 3]
        x0, x1 = sorted((float(x[i]) + eps, float(x[j]) - eps))
        y0, y1 = sorted((float(y[i]) - eps, float(y[j]) + eps))
        brute = np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
        found = index.in_rect(x0, x1, y0, y1)
        assert found.dtype == np.int64 and np.array_equal(found, brute)
        assert index.count_in_rect(x0, x1, y0, y1) == len(brute)
