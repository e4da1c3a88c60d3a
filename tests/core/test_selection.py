"""Brushing's geometry: the points in a lasso or rectangle, their classes, their export."""

import csv

import numpy as np
import pytest

from vaegui.core.export import ExportError
from vaegui.core.latent import EncodedSet, Projection
from vaegui.core.selection import (Selection, class_counts, describe, inside_polygon, select_polygon,
                                   select_rect, write_selection)
from vaegui.core.spatial_index import SpatialIndex


def pnpoly(px: float, py: float, poly: np.ndarray) -> bool:
    """The textbook crossing test, one point at a time (W. R. Franklin's PNPOLY)."""
    inside = False
    n = len(poly)
    for i in range(n):
        (x1, y1), (x2, y2) = poly[i], poly[(i + 1) % n]
        if (y1 > py) != (y2 > py) and px < (x2 - x1) * (py - y1) / (y2 - y1) + x1:
            inside = not inside
    return inside


def random_lasso(rng, vertices: int) -> np.ndarray:
    """A star-shaped, often non-convex outline around a random centre (as a hand draws)."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, vertices))
    radii = rng.uniform(0.2, 1.0, vertices)
    centre = rng.uniform(-0.5, 0.5, 2)
    return centre + np.c_[radii * np.cos(angles), radii * np.sin(angles)]


@pytest.mark.parametrize("seed", range(6))
def test_lasso_selects_what_brute_force_point_in_polygon_does(seed):
    rng = np.random.default_rng(seed)
    xy = rng.normal(size=(3000, 2)).astype(np.float32)
    index = SpatialIndex(xy)
    for vertices in (3, 7, 40):
        poly = random_lasso(rng, vertices)
        expected = np.array([k for k, (px, py) in enumerate(xy.astype(np.float64)) if pnpoly(px, py, poly)])
        for idx in (index, None):  # with the index, and while it is being built
            sel = select_polygon(xy[:, 0], xy[:, 1], poly, idx)
            assert np.array_equal(sel.indices, expected.astype(np.int64)), (seed, vertices)
        assert len(expected) > 0


def test_self_crossing_lasso_follows_the_even_odd_rule():
    # A bow tie: the two triangles are inside, the points above and below the crossing are not.
    poly = np.array([(0, 0), (2, 2), (2, 0), (0, 2)], float)
    x = np.array([0.2, 1.8, 1.0, 1.0])
    y = np.array([1.0, 1.0, 1.6, 0.4])
    assert inside_polygon(x, y, poly).tolist() == [True, True, False, False]


def test_rectangle_and_hidden_classes():
    rng = np.random.default_rng(3)
    xy = rng.uniform(-1, 1, (2000, 2))
    allowed = rng.random(2000) < 0.5
    sel = select_rect(xy[:, 0], xy[:, 1], (0.5, -0.2), (-0.3, 0.4), SpatialIndex(xy), allowed)
    brute = np.flatnonzero((xy[:, 0] >= -0.3) & (xy[:, 0] <= 0.5) & (xy[:, 1] >= -0.2) & (xy[:, 1] <= 0.4) & allowed)
    assert np.array_equal(sel.indices, brute)
    assert sel.outline.shape == (4, 2)
    # A lasso too short to enclose anything selects nothing.
    assert len(select_polygon(xy[:, 0], xy[:, 1], [(0, 0), (1, 1)]).indices) == 0


def test_class_counts_and_description():
    labels = np.array([0, 1, 1, 2, 2, 2, 7])
    sel = Selection(np.array([1, 2, 3, 4, 5, 6]), np.zeros((0, 2)))
    assert class_counts(labels, sel.indices, ("a", "b", "c")) == [("c", 3), ("b", 2), ("7", 1)]
    assert describe(sel, labels, ("a", "b", "c"), most=2) == "6 selected: c 3, b 2, 1 more classes 1"
    assert describe(Selection(np.zeros(0, np.int64), np.zeros((0, 2))), labels, ()) == "nothing selected"


@pytest.fixture
def encoded():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 2)).astype(np.float32)
    return EncodedSet(latents=z, xy=z, projection=Projection.fit(z), labels=rng.integers(0, 3, 50),
                      class_names=("circle", "square", "triangle"), images=np.zeros((50, 1, 4, 4), np.uint8))


def test_export_writes_the_selected_indices(encoded, tmp_path):
    sel = select_rect(encoded.xy[:, 0], encoded.xy[:, 1], (-1, -1), (1, 1))
    assert 5 < len(sel.indices) < 50
    with np.load(write_selection(tmp_path / "sel.npz", sel, encoded)) as f:
        assert np.array_equal(f["index"], sel.indices)
        assert np.array_equal(f["label"], encoded.labels[sel.indices])
        assert np.array_equal(f["x"], encoded.xy[sel.indices, 0])
        assert list(f["class_names"]) == list(encoded.class_names)
    with open(write_selection(tmp_path / "sel.csv", sel, encoded), newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["index", "label", "class", "x", "y"]
    assert [int(r[0]) for r in rows[1:]] == sel.indices.tolist()
    assert [r[2] for r in rows[1:]] == [encoded.class_names[k] for k in encoded.labels[sel.indices]]
    with pytest.raises(ExportError, match="sel.txt"):
        write_selection(tmp_path / "sel.txt", sel, encoded)
    assert not (tmp_path / "sel.txt").exists()
