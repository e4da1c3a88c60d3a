"""The latent map in UMAP (issue 21): the projection chosen in its header is fitted on a thread
and shown, a drag decodes what the learned inverse gives, switching keeps the picked latent, and
the interpolation path is drawn where the projection places its latents. The UMAP layout is
fitted once for the module (numba's compile is tens of seconds); the worker's fit is replaced by
it, so the tests exercise the thread, not umap-learn again."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint

from vaegui.core.explorer import ExplorerModel
from vaegui.core.latent import EncodedSet, Projection, interpolate
from vaegui.core.projection import NonlinearProjection, ProjectionSpec, fit_projection
from vaegui.gui.explorer.decode_worker import DecodeWorker
from vaegui.gui.explorer.latent_map import LatentMap
from vaegui.gui.explorer.point_view import PointView

from test_latent_map import mouse, settle, viewport_pos

CLUSTERS, PER_CLUSTER, LATENT = 4, 50, 6


@pytest.fixture(scope="module")
def base() -> EncodedSet:
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 6, (CLUSTERS, LATENT))
    labels = np.repeat(np.arange(CLUSTERS), PER_CLUSTER)
    z = (centres[labels] + rng.normal(0, 1, (len(labels), LATENT))).astype(np.float32)
    p = Projection.fit(z)
    images = rng.integers(0, 255, (len(z), 1, 8, 8), dtype=np.uint8)
    return EncodedSet(z, p.transform(z), p, labels, tuple("abcd"), images, step=7)


@pytest.fixture(scope="module")
def umap_layout(base) -> NonlinearProjection:
    return fit_projection(ProjectionSpec("umap"), base.latents, seed=0, n_jobs=1)


@pytest.fixture
def umap_map(show_widget, qtbot, base, umap_layout, monkeypatch):
    """A shown LatentMap whose worker 'fits' the module's layout (the real thread, request and
    hand-over; the fit itself is the fixture's)."""
    fits = []

    def fit(spec, latents, run=None, epoch=None, previous=None, **options):
        fits.append(spec)
        assert np.array_equal(latents, base.latents)
        return umap_layout

    monkeypatch.setattr("vaegui.core.layout_cache.cached_projection", fit)
    model = ExplorerModel()
    latent_map = show_widget(LatentMap(model), 640, 520)
    model.set_encoded(base)
    latent_map.fits = fits
    return latent_map


def show_umap(latent_map: LatentMap, qtbot) -> NonlinearProjection:
    m = latent_map.model
    bar = latent_map.projection_bar
    assert bar.isVisible()  # L > 2: the choice is offered
    bar.kind_combo.setCurrentIndex(bar.kind_combo.findData("umap"))
    bar._on_choice_changed()
    qtbot.waitUntil(lambda: getattr(m.encoded.projection, "name", "") == "umap", timeout=30000)
    qtbot.waitUntil(lambda: not bar.worker.busy, timeout=30000)
    settle(latent_map)
    return m.encoded.projection


def test_a_drag_on_a_umap_map_decodes_what_the_inverse_gives(umap_map, qtbot, umap_layout, show_widget):
    m = umap_map.model
    decoder = DecodeWorker(m)
    view = show_widget(PointView(m, decoder), 400, 300)
    try:
        layout = show_umap(umap_map, qtbot)
        assert layout is umap_layout and umap_map.fits == [ProjectionSpec("umap")]
        np.testing.assert_array_equal(m.encoded.xy, umap_layout.xy)
        title = umap_map.plot_widget().getPlotItem().titleLabel.text
        assert "UMAP of the latent means (n_neighbors 15, min_dist 0.1), L = 6" in title
        start = viewport_pos(umap_map, umap_layout.xy[0])
        mouse(umap_map, QEvent.Type.MouseButtonPress, start)
        for step in range(1, 4):
            mouse(umap_map, QEvent.Type.MouseMove, start + QPoint(2 * step, -step))
            xy = m.point_xy
            np.testing.assert_allclose(m.point, umap_layout.inverse(xy)[0], rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(umap_map.marker_xy, xy)  # under the cursor
        mouse(umap_map, QEvent.Type.MouseButtonRelease, start + QPoint(6, -3))
        note = view.note_label.text()
        assert "learned inverse" in note and "neighbour spacings" in note and "extrapolating" not in note
        # Far outside the map: the view says the decoding extrapolates.
        lo, hi = umap_layout.xy.min(0), umap_layout.xy.max(0)
        m.pick_plane(hi + (hi - lo))
        assert "extrapolating" in view.note_label.text()
    finally:
        decoder.shutdown()


def test_switching_projection_keeps_the_picked_latent(umap_map, qtbot, base, umap_layout):
    m = umap_map.model
    z = base.latents[3] + 0.25
    m.pick(z)
    show_umap(umap_map, qtbot)
    np.testing.assert_array_equal(m.point, z)
    np.testing.assert_allclose(umap_map.marker_xy, umap_layout.transform(z)[0], atol=1e-5)
    bar = umap_map.projection_bar
    bar.kind_combo.setCurrentIndex(bar.kind_combo.findData("axes"))
    bar.dim_combos[0].setCurrentIndex(bar.dim_combos[0].findData(4))
    bar.dim_combos[1].setCurrentIndex(bar.dim_combos[1].findData(1))
    bar._on_choice_changed()
    assert m.projection == ProjectionSpec("axes", (4, 1))
    np.testing.assert_array_equal(m.point, z)
    np.testing.assert_allclose(umap_map.marker_xy, z[[4, 1]], atol=1e-6)
    np.testing.assert_allclose(m.encoded.xy, base.latents[:, [4, 1]], atol=1e-6)
    bar.kind_combo.setCurrentIndex(bar.kind_combo.findData("pca"))
    bar._on_choice_changed()
    np.testing.assert_array_equal(m.point, z)
    assert m.encoded.projection.name == "pca" and not bar.worker.busy


def test_the_interpolation_path_is_drawn_at_the_transformed_positions(umap_map, qtbot, base, umap_layout):
    m = umap_map.model
    show_umap(umap_map, qtbot)
    m.set_endpoint("a", base.latents[0])
    m.set_endpoint("b", base.latents[-1])
    x, y = umap_map.overlay.path.getData()
    path = interpolate(base.latents[0], base.latents[-1], np.linspace(0, 1, len(x)), "linear")
    np.testing.assert_allclose(np.stack([x, y], 1), umap_layout.transform(path), atol=1e-5)
    # Its ends sit on the two images' places in the layout.
    np.testing.assert_allclose([x[0], y[0]], umap_layout.xy[0], atol=1e-4)
    np.testing.assert_allclose([x[-1], y[-1]], umap_layout.xy[-1], atol=1e-4)
    # The manifold grid decodes through the learned inverse.
    region = m.grid_region()
    assert region is not None
    grid = m.grid_latents()
    from vaegui.core.latent import grid_points
    np.testing.assert_allclose(grid, umap_layout.inverse(grid_points(region[:2], region[2:], m.grid.size)))


def test_cancel_leaves_pca_shown(show_widget, qtbot, base, monkeypatch):
    """A fit that is cancelled drops its result; PCA stays shown and is not fitted again."""
    import threading

    release = threading.Event()

    def slow_fit(spec, latents, run=None, epoch=None, previous=None, *, should_stop, **options):
        release.wait(10)
        assert should_stop()  # the cancel reached the fitting thread
        from vaegui.core.projection import Cancelled
        raise Cancelled()

    monkeypatch.setattr("vaegui.core.layout_cache.cached_projection", slow_fit)
    model = ExplorerModel()
    latent_map = show_widget(LatentMap(model), 640, 520)
    model.set_encoded(base)
    bar = latent_map.projection_bar
    bar.kind_combo.setCurrentIndex(bar.kind_combo.findData("tsne"))
    bar._on_choice_changed()
    assert bar.worker.busy and bar.cancel_button.isVisible()
    assert model.encoded.projection.name == "pca"  # shown meanwhile
    bar.cancel_button.click()
    release.set()
    qtbot.waitUntil(lambda: not bar.worker.busy, timeout=10000)
    assert model.encoded.projection.name == "pca" and "cancelled" in bar.status.text()
