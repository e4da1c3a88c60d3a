"""The map's projections (core/projection.py), the learned inverse (core/plane_inverse.py) and
the run folder's layout cache (core/layout_cache.py), on small synthetic latent sets with
known, separated clusters. umap-learn's first fit in a process compiles it (tens of seconds):
the UMAP and t-SNE layouts are fitted once per module."""

from __future__ import annotations

import numpy as np
import pytest

from vaegui.core import layout_cache, projection
from vaegui.core.errors import ConfigError, RunFolderError
from vaegui.core.latent import Projection
from vaegui.core.layout_cache import cached_projection, layout_path, load_layout, save_layout
from vaegui.core.plane_inverse import LearnedInverse, PlaneDistance
from vaegui.core.projection import (AxesProjection, NonlinearProjection, ProjectionSpec, align_pca,
                                    describe, fit_projection)

CLUSTERS, PER_CLUSTER, LATENT = 5, 60, 8


def clustered(seed: int = 0, per_cluster: int = PER_CLUSTER) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs of unit spread whose centres are ~17 apart in 8-D: (N, L), labels."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(123).normal(0, 6, (CLUSTERS, LATENT))
    labels = np.repeat(np.arange(CLUSTERS), per_cluster)
    return (centres[labels] + rng.normal(0, 1, (len(labels), LATENT))).astype(np.float32), labels


def knn_accuracy(xy: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Leave-one-out k-NN label accuracy in the plane."""
    d = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nearest = np.argsort(d, axis=1)[:, :k]
    votes = np.array([np.bincount(labels[row], minlength=labels.max() + 1).argmax() for row in nearest])
    return float((votes == labels).mean())


@pytest.fixture(scope="module")
def data():
    return clustered()


@pytest.fixture(scope="module", params=["umap", "tsne"])
def fitted(request, data):
    z, _ = data
    return fit_projection(ProjectionSpec(request.param), z, seed=0, n_jobs=1)


def test_nonlinear_layouts_keep_separated_clusters_apart(fitted, data):
    z, labels = data
    assert isinstance(fitted, NonlinearProjection) and fitted.xy.shape == (len(z), 2)
    assert knn_accuracy(fitted.xy, labels) >= 0.95
    # PCA onto two axes cannot separate five clusters spread over 8 dimensions as well; the
    # test would not notice a "nonlinear" map that fell back to it otherwise.
    x_label, _, title = describe(fitted)
    assert {"umap": "UMAP", "tsne": "t-SNE"}[fitted.name] in title and "(" in title


def test_umap_learns_compiles_are_kept_in_numbas_disk_cache(data):
    """So the compile (a minute of a busy core) happens once per install, not per process."""
    import umap.umap_

    z, _ = data
    fit_projection(ProjectionSpec("umap"), z[:80], seed=0, n_jobs=1)
    for function in (umap.umap_.smooth_knn_dist, umap.umap_.compute_membership_strengths):
        stats = function.stats
        assert stats.cache_path is not None, function
        # Looked up in the cache when compiled (a hit, or a miss that then wrote it).
        assert sum(stats.cache_hits.values()) + sum(stats.cache_misses.values()) >= 1, function


def test_transform_places_new_points_in_their_cluster(fitted, data):
    z, labels = data
    new, new_labels = clustered(seed=1, per_cluster=6)
    centroids = np.stack([fitted.xy[labels == c].mean(0) for c in range(CLUSTERS)])
    for xy in (fitted.transform(new), fitted.place(new)):  # fast, and the library's own
        placed = np.argmin(((xy[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
        assert (placed == new_labels).mean() >= 0.95


def test_a_layout_started_from_the_previous_one_keeps_points_in_place(fitted, data):
    z, _ = data
    moved = z + np.random.default_rng(5).normal(0, 0.05, z.shape).astype(np.float32)
    again = fit_projection(ProjectionSpec(fitted.name), moved, previous=fitted, seed=1, n_jobs=1)
    def unit(xy):  # both libraries rescale a start layout: compare within the layouts' boxes
        return (xy - xy.min(0)) / np.ptp(xy, axis=0)

    moved_by = np.linalg.norm(unit(again.xy) - unit(fitted.xy), axis=1)
    # Warm: about a tenth of the box. An unrelated layout of the same means (a spectral start
    # for UMAP, a flipped or turned picture) moves points by a third of it or more; points
    # thrown into the box at random, by half.
    assert np.median(moved_by) < 0.2


def test_the_learned_inverse_returns_near_the_latent_of_a_map_point(fitted, data):
    z, _ = data
    spread = np.linalg.norm(z - z.mean(0), axis=1).mean()
    error = np.linalg.norm(fitted.inverse(fitted.xy) - z, axis=1) / spread
    # Within a cluster the plane keeps two of eight directions: the inverse returns near the
    # cluster's mean, an error of about the unit noise (sqrt(6) / 17), not the spread's.
    assert np.median(error) < 0.35
    distance = PlaneDistance(fitted.xy)
    assert distance(fitted.xy[:5]).max() == 0.0
    span = np.ptp(fitted.xy, axis=0).max()
    far = fitted.xy.max(0) + span
    assert PlaneDistance.extrapolating(float(distance(far)[0]))
    assert not PlaneDistance.extrapolating(float(distance(fitted.xy[0] + distance.spacing / 2)[0]))


def test_the_learned_inverse_fits_a_smooth_map_closely():
    rng = np.random.default_rng(0)
    xy = rng.uniform(-3, 3, (800, 2)).astype(np.float32)
    z = np.stack([np.sin(xy[:, 0]), np.cos(xy[:, 1]), xy[:, 0] * xy[:, 1] / 3, xy[:, 0]], 1).astype(np.float32)
    inverse = LearnedInverse.fit(xy, z, steps=600)
    held_out = rng.uniform(-2.5, 2.5, (200, 2)).astype(np.float32)
    truth = np.stack([np.sin(held_out[:, 0]), np.cos(held_out[:, 1]), held_out[:, 0] * held_out[:, 1] / 3,
                      held_out[:, 0]], 1)
    assert np.abs(inverse(held_out) - truth).mean() < 0.1
    # Its arrays (what the cache stores) and the map's points make the same inverse.
    again = LearnedInverse.from_arrays(inverse.arrays(), 4, xy, z)
    np.testing.assert_allclose(again(held_out), inverse(held_out), rtol=1e-6)
    with pytest.raises(ValueError):
        LearnedInverse.from_arrays(inverse.arrays(), 5)


def test_pca_alignment_undoes_a_sign_flip_and_a_rotation(data):
    z, _ = data
    p = Projection.fit(z)
    flipped = Projection(p.mean, p.components * np.array([[-1.0], [1.0]]), p.explained)
    assert not np.allclose(flipped.transform(z), p.transform(z), atol=1e-3)
    aligned = align_pca(flipped, p)
    np.testing.assert_allclose(aligned.transform(z), p.transform(z), atol=1e-3)
    assert aligned.aligned
    # A last plane turned within the same plane: a fresh fit turns to it, and each axis's share
    # of the variance is the share along the turned axis.
    c, s = np.cos(0.4), np.sin(0.4)
    turned_axes = np.array([[c, -s], [s, c]]) @ p.components
    turned = Projection(p.mean, turned_axes, np.full(2, 0.5))  # its shares: not used
    back = align_pca(p, turned)
    np.testing.assert_allclose(back.components, turned_axes, atol=1e-9)
    share = np.var((z - p.mean) @ turned_axes.T, axis=0, ddof=1) / np.trace(np.cov(z.T))
    np.testing.assert_allclose(back.explained, share, rtol=1e-5)
    # The inverse stays exact on the turned plane.
    xy = np.array([[0.3, -1.2]])
    np.testing.assert_allclose(back.transform(back.inverse(xy)), xy, atol=1e-5)
    # fit_projection aligns a PCA refit to the previous plane, whichever way that one faced.
    refit = fit_projection(ProjectionSpec("pca"), z, previous=flipped)
    np.testing.assert_allclose(refit.transform(z), flipped.transform(z), atol=1e-3)


def test_two_latent_axes(data):
    z, _ = data
    axes = fit_projection(ProjectionSpec.parse("axes:3,1"), z)
    assert isinstance(axes, AxesProjection) and axes.name == "axes:3,1"
    np.testing.assert_allclose(axes.transform(z), z[:, [2, 0]], atol=1e-6)
    back = axes.inverse(np.array([1.5, -2.0]))[0]
    assert back[2] == pytest.approx(1.5) and back[0] == pytest.approx(-2.0)
    np.testing.assert_allclose(np.delete(back, [0, 2]), np.delete(z.mean(0), [0, 2]), atol=1e-5)
    assert describe(axes)[:2] == ("z3", "z1")
    with pytest.raises(ConfigError, match="8 latent dimensions"):
        fit_projection(ProjectionSpec.parse("axes:1,9"), z)


@pytest.mark.parametrize("text", ["umapp", "axes", "axes:1", "axes:2,2", "axes:0,3", "axes:a,b", ""])
def test_a_bad_projection_name_is_one_clear_line(text):
    with pytest.raises(ConfigError) as info:
        ProjectionSpec.parse(text)
    assert "\n" not in str(info.value) and "projection" in str(info.value)


def test_projection_names_read_back():
    for text in ("pca", "UMAP", "tsne", "axes:2,7"):
        spec = ProjectionSpec.parse(text)
        assert ProjectionSpec.parse(spec.name) == spec


def test_a_cached_layout_reopens_without_refitting(fitted, data, tmp_path, monkeypatch):
    z, _ = data
    run = tmp_path / "run"
    path = save_layout(run, 5, fitted)
    assert path == layout_path(run, 5, fitted.name) and path.name == f"epoch-0005.{fitted.name}.npz"

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted again")

    monkeypatch.setattr(layout_cache, "fit_projection", no_fit)
    monkeypatch.setattr(projection, "fit_projection", no_fit)
    again = cached_projection(ProjectionSpec(fitted.name), z, run, 5)
    assert again.model is None and again.params == fitted.params
    np.testing.assert_array_equal(again.xy, fitted.xy)
    probe = fitted.xy[:7] + 0.1
    assert again.learned_inverse.kernel.width == fitted.learned_inverse.kernel.width
    np.testing.assert_allclose(again.inverse(probe), fitted.inverse(probe), rtol=1e-5, atol=1e-5)
    # Without the library's model it places new points among their latent neighbours.
    np.testing.assert_allclose(again.transform(z[:3]), fitted.xy[:3], atol=1e-3)


def test_a_cached_layout_of_other_means_is_fitted_again(fitted, data, tmp_path, monkeypatch):
    z, _ = data
    save_layout(tmp_path, 2, fitted)
    assert load_layout(tmp_path, 2, fitted.name, z + 1) is None
    calls = []
    monkeypatch.setattr(layout_cache, "fit_projection",
                        lambda spec, latents, previous=None, **kw: calls.append(spec) or fitted)
    assert cached_projection(ProjectionSpec(fitted.name), z + 1, tmp_path, 2) is fitted
    assert calls == [ProjectionSpec(fitted.name)]


def test_a_damaged_cached_layout_is_an_error_naming_it(fitted, data, tmp_path):
    z, _ = data
    path = save_layout(tmp_path, 1, fitted)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(RunFolderError, match=rf"maps/{path.name}"):
        load_layout(tmp_path, 1, fitted.name, z)
    errors = []
    refit = cached_projection(ProjectionSpec("pca"), z, tmp_path, 1, on_cache_error=errors.append)
    assert refit.name == "pca" and errors == []  # PCA is never cached


def test_the_explorer_places_epochs_while_training_and_lays_out_anew_when_it_stops(data):
    """ExplorerModel's layout bookkeeping (what the map's fitting thread is asked for)."""
    from vaegui.core.explorer import ExplorerModel
    from vaegui.core.latent import EncodedSet

    z, labels = data

    def encoded(latents):
        p = Projection.fit(latents)
        return EncodedSet(latents, p.transform(latents), p, labels, tuple("abcde"),
                          np.zeros((len(latents), 1, 2, 2), np.uint8))

    def layout(latents, fitted=True):
        inverse = LearnedInverse([(np.zeros((2, LATENT)), np.zeros(LATENT))], np.zeros(2), 1.0,
                                 np.zeros(LATENT), np.ones(LATENT))
        p = NonlinearProjection("umap", {}, latents, latents[:, :2] * 2, inverse, model=object())
        p.fitted = fitted
        return p

    m = ExplorerModel()
    first = encoded(z)
    m.set_encoded(first)
    assert m.layout_wanted() is None  # PCA
    m.set_projection("umap")
    assert m.encoded.projection.name == "pca"  # shown until a layout comes
    spec, base, previous = m.layout_wanted()
    assert spec == ProjectionSpec("umap") and base is first and previous is None
    fitted = layout(z)
    m.set_layout(fitted, first)
    assert m.encoded.projection is fitted and m.layout_wanted() is None
    np.testing.assert_array_equal(m.encoded.xy, fitted.xy)

    m.set_training(True)
    second = encoded(z + 0.01)
    m.set_encoded(second)
    # Shown at once at the last layout's positions, and a placement is wanted.
    assert m.encoded.projection is fitted and m.encoded.latents is second.latents
    np.testing.assert_array_equal(m.encoded.xy, fitted.xy)
    _, base, previous = m.layout_wanted()
    assert base is second and previous is fitted
    placed = layout(second.latents, fitted=False)
    m.set_layout(placed, second)
    assert m.encoded.projection is placed and m.layout_wanted() is None  # while training
    m.set_training(False)
    _, base, previous = m.layout_wanted()  # paused or ended: laid out anew, from the placement
    assert base is second and previous is placed
    # A layout for a map since replaced is kept as a start, not shown.
    m.set_layout(layout(z), first)
    assert m.encoded.projection is placed


def test_the_learned_inverse_goes_on_from_the_last_epochs():
    rng = np.random.default_rng(4)
    xy = rng.uniform(-3, 3, (600, 2)).astype(np.float32)
    z = np.stack([np.sin(xy[:, 0]), np.cos(xy[:, 1]), xy[:, 0]], 1).astype(np.float32)
    first = LearnedInverse.fit(xy, z, steps=600)
    moved = z + 0.05
    warm = LearnedInverse.fit(xy, moved, steps=60, start=first)
    cold = LearnedInverse.fit(xy, moved, steps=60)
    error = lambda inv: np.abs(inv(xy) - moved).mean()  # noqa: E731
    assert error(warm) < 0.5 * error(cold) and error(warm) < 0.1
    np.testing.assert_array_equal(warm.frequencies, first.frequencies)
