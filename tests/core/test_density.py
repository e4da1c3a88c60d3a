"""The density image: its counts are a histogram of the points in view, its strength grows with
the count on a log scale, and its colours follow the labels or the factor's palette."""

import numpy as np
import pytest

from vaegui.core.density import MIN_ALPHA, bin_index, density_image, log_alpha

COLOURS = np.array([[255, 0, 0], [0, 0, 255], [0, 200, 0]], np.uint8)


@pytest.mark.parametrize("rect", [(-1.0, 1.0, -0.5, 2.0), (-3.0, 3.0, -3.0, 3.0), (0.1, 0.2, 0.0, 0.05)])
def test_counts_equal_a_histogram_of_the_points_in_view(rect):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 100_000)).astype(np.float32)
    image = density_image(x, y, rect, (37, 53))
    x0, x1, y0, y1 = rect
    hist, _, _ = np.histogram2d(x.astype(np.float64), y.astype(np.float64), bins=(53, 37), range=((x0, x1), (y0, y1)))
    np.testing.assert_array_equal(image.counts, hist.T)  # rows are y bins, from the bottom
    assert image.points == hist.sum() and image.rgba.shape == (37, 53, 4)
    np.testing.assert_array_equal(image.rgba[..., 3] > 0, hist.T > 0)


def test_points_on_the_edges_and_outside():
    x = np.array([0.0, 1.0, 1.0, 0.5, 1.0001, -0.1])
    y = np.array([0.0, 1.0, 0.0, 0.5, 0.5, 0.5])
    flat, inside = bin_index(x, y, (0.0, 1.0, 0.0, 1.0), (2, 2))
    np.testing.assert_array_equal(inside, [0, 1, 2, 3])
    np.testing.assert_array_equal(flat, [0, 3, 1, 3])  # the right and top edges join the last bins
    with pytest.raises(ValueError, match="not a non-empty grid"):
        bin_index(x, y, (1.0, 1.0, 0.0, 1.0), (2, 2))


def test_colours_follow_the_labels_and_mix_in_shared_bins():
    x = np.array([0.1, 0.1, 0.6, 0.6, 0.6, 0.6])
    y = np.array([0.1, 0.1, 0.1, 0.1, 0.6, 0.6])
    labels = np.array([0, 0, 0, 1, 2, 5])  # 5 wraps to colour 2
    image = density_image(x, y, (0, 1, 0, 1), (2, 2), labels=labels, label_colors=COLOURS)
    np.testing.assert_array_equal(image.rgba[0, 0, :3], [255, 0, 0])  # bottom left: two of class 0
    np.testing.assert_array_equal(image.rgba[0, 1, :3], [128, 0, 128])  # half red, half blue
    np.testing.assert_array_equal(image.rgba[1, 1, :3], [0, 200, 0])
    assert image.rgba[1, 0, 3] == 0  # empty
    # Hidden classes leave the image: only class 0 and 1 points count.
    hidden = density_image(x, y, (0, 1, 0, 1), (2, 2), labels=labels, label_colors=COLOURS,
                           allowed=labels < 2)
    assert hidden.counts[1, 1] == 0 and hidden.points == 4


def test_a_factor_colours_each_bin_by_the_mean_of_its_points():
    lut = np.stack([np.arange(4) * 80] * 3, axis=1).astype(np.uint8)  # 4 grey levels
    x = np.array([0.1, 0.1, 0.9])
    y = np.array([0.1, 0.1, 0.1])
    values = np.array([0.0, 0.5, 1.0])  # left bin mean 0.25 -> level 1; right 1.0 -> level 3
    image = density_image(x, y, (0, 1, 0, 1), (1, 2), values=values, value_lut=lut, value_range=(0.0, 1.0))
    np.testing.assert_array_equal(image.rgba[0, :, 0], [80, 240])


def test_strength_is_log_scaled_from_one_point_to_the_fullest_bin():
    counts = np.array([0, 1, 10, 100])
    np.testing.assert_allclose(log_alpha(counts), [0, MIN_ALPHA, MIN_ALPHA + (1 - MIN_ALPHA) / 2, 1])
    assert log_alpha(np.zeros(3)).max() == 0
    np.testing.assert_allclose(log_alpha(np.array([1, 0])), [MIN_ALPHA, 0])
