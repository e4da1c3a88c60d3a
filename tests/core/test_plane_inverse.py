"""The learned inverse's residual kernel (core/plane_inverse.py): near the map's points it adds
the detail a network fitted in a second misses, far from them it fades to the network alone,
it moves smoothly with the cursor, and it comes back from the arrays a run folder caches."""

from __future__ import annotations

import numpy as np
import pytest

from vaegui.core.plane_inverse import (EXTRAPOLATING_SPACINGS, FADE_FROM, KERNEL_CHOICES, LearnedInverse,
                                       PlaneDistance)


def fine_map(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Plane points in a square and latents that vary at a scale of a few neighbour spacings
    (as a t-SNE map's do), plus noise: (n, 2), (n, 3)."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-3, 3, (n, 2)).astype(np.float32)
    z = np.stack([np.sin(9 * xy[:, 0]) * np.cos(7 * xy[:, 1]), np.cos(11 * xy[:, 0] + xy[:, 1]), xy[:, 0]], 1)
    return xy, (z + rng.normal(0, 0.05, z.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def fitted():
    xy, z = fine_map(3000, 0)
    return LearnedInverse.fit(xy, z, steps=150), xy, z


def test_near_the_points_the_kernel_adds_what_the_network_misses(fitted):
    inverse, _, _ = fitted
    held_xy, held_z = fine_map(300, 1)
    error = lambda z_hat: np.median(np.linalg.norm(z_hat - held_z, axis=1))  # noqa: E731
    network, corrected = error(inverse.network(held_xy)), error(inverse(held_xy))
    assert corrected < 0.5 * network, (corrected, network)
    assert corrected < 0.25  # of a latent whose first two coordinates span [-1, 1]
    assert tuple(inverse.kernel.width) in KERNEL_CHOICES


def test_far_from_the_points_it_is_the_network_alone(fitted):
    inverse, xy, _ = fitted
    spacing = PlaneDistance(xy).spacing
    far = np.array([[3 + (EXTRAPOLATING_SPACINGS + 0.5) * spacing, 0.0], [0.0, -10.0]], np.float32)
    np.testing.assert_array_equal(inverse(far), inverse.network(far))
    # On a map point the correction is whole: the inverse is the kernel's estimate there.
    assert FADE_FROM > 0
    on = xy[:5]
    assert np.abs(inverse(on) - inverse.network(on)).max() > 0.05


def test_it_moves_smoothly_with_the_cursor(fitted):
    """No jump where the set of nearest points changes or the correction fades out: along a drag
    across the map and out past its edge, ten times finer steps change it ten times less."""
    inverse, xy, _ = fitted
    spacing = PlaneDistance(xy).spacing

    def largest_step(n: int) -> float:
        path = np.linspace([-2.0, 0.3], [3 + 4 * spacing, 0.3], n).astype(np.float32)
        z = inverse(path)
        assert np.isfinite(z).all()
        return float(np.linalg.norm(np.diff(z, axis=0), axis=1).max())

    coarse, fine = largest_step(3_000), largest_step(30_000)
    assert fine < 0.2 * coarse, (coarse, fine)


def test_it_comes_back_from_its_arrays(fitted):
    inverse, xy, z = fitted
    probe = np.concatenate([xy[:20] + 0.01, [[9.0, 9.0]]]).astype(np.float32)
    again = LearnedInverse.from_arrays(inverse.arrays(), 3, xy, z)
    assert again.kernel.width == inverse.kernel.width
    np.testing.assert_allclose(again(probe), inverse(probe), rtol=1e-5, atol=1e-6)
    # Without the map's points there is nothing to correct with: the network alone.
    alone = LearnedInverse.from_arrays(inverse.arrays(), 3)
    assert alone.kernel is None
    np.testing.assert_allclose(alone(probe), inverse.network(probe), rtol=1e-6)
    bad = dict(inverse.arrays(), kernel_width=np.array([np.nan, 0.5]))
    with pytest.raises(ValueError, match="kernel width"):
        LearnedInverse.from_arrays(bad, 3, xy, z)
