"""Every explorer view on a nonlinear map (issue 21): on a t-SNE layout of a model with L = 4, a
drag's latent (the learned inverse's) is what the traversal grid moves around, hover cards
find the points where the layout put them, and the manifold grid and its overlay decode the
inverse over the visible region. The layout is one real openTSNE fit for the module (200
points: a second); the map's fitting thread is handed it, as in test_projection_map."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint
from PySide6.QtWidgets import QApplication

from vaegui.core.latent import grid_points, tile
from vaegui.core.projection import NonlinearProjection, ProjectionSpec, fit_projection
from vaegui.core.progress import EvalResult

from test_explorer_views import Explorer, decoder_of, send_mouse, trained_like
from test_latent_map import isolated_point, pixel_size, viewport_pos

LATENT = 4


@pytest.fixture(scope="module")
def model_and_map():
    from vaegui.core.dataset_loader import make_shapes

    return trained_like(make_shapes(n_train=100, n_test=200, image_size=16), latent_dim=LATENT)


@pytest.fixture(scope="module")
def tsne_layout(model_and_map) -> NonlinearProjection:
    _, encoded = model_and_map
    return fit_projection(ProjectionSpec("tsne"), encoded.latents, seed=0, n_jobs=1)


@pytest.fixture
def ex(show_widget, qtbot, model_and_map, tsne_layout, monkeypatch):
    """The explorer's views on the model, its map shown in the module's t-SNE layout."""
    snapshot, encoded = model_and_map

    def fit(spec, latents, run=None, epoch=None, previous=None, **options):
        assert spec == ProjectionSpec("tsne") and np.array_equal(latents, encoded.latents)
        return tsne_layout

    monkeypatch.setattr("vaegui.core.layout_cache.cached_projection", fit)
    widget = show_widget(Explorer(), 1000, 1400)
    m = widget.model
    m.set_snapshot(snapshot)
    m.set_encoded(encoded)
    m.set_projection("tsne")
    qtbot.waitUntil(lambda: m.encoded.projection is tsne_layout, timeout=10000)
    qtbot.waitUntil(lambda: not widget.map.projection_bar.worker.busy, timeout=10000)
    for _ in range(3):
        QApplication.processEvents()
    yield widget
    widget.worker.shutdown()


def test_the_traversal_moves_around_the_latent_a_drag_picks(ex, qtbot, tsne_layout):
    m = ex.model
    m.set_evaluation(EvalResult(epoch=1, step=3, neg_elbo=1, recon=1, kl=1, bits_per_dim=1,
                                kl_per_dim=np.array([0.1, 2.0, 0.5, 1.0]), active_units=4,
                                active=np.ones(LATENT, bool)))
    m.set_traversal(columns=4, rows=3, span=1.5)
    start = viewport_pos(ex.map, tsne_layout.xy[7])
    send_mouse(ex, QEvent.Type.MouseButtonPress, start)
    send_mouse(ex, QEvent.Type.MouseMove, start + QPoint(5, 3))
    send_mouse(ex, QEvent.Type.MouseButtonRelease, start + QPoint(5, 3))
    np.testing.assert_allclose(m.point, tsne_layout.inverse(m.point_xy)[0], rtol=1e-6, atol=1e-6)
    dims, latents, _ = m.traversal_plan()
    np.testing.assert_array_equal(dims, [1, 3, 2])  # by KL, whatever the map's projection
    # Each row moves its one dimension around the picked latent; the others stay at it.
    rows = latents.reshape(3, 4, LATENT)
    for row, d in zip(rows, dims):
        others = np.delete(row, d, axis=1)
        np.testing.assert_allclose(others, np.broadcast_to(np.delete(m.point, d), others.shape), atol=1e-6)
        np.testing.assert_allclose(row[:, d].mean(), m.point[d], atol=1e-5)
    expected = tile(decoder_of(ex).decode(latents), nrow=4, padding=1)
    qtbot.waitUntil(lambda: ex.traversal.canvas.array() is not None
                    and ex.traversal.canvas.array().shape == expected.shape
                    and np.allclose(ex.traversal.canvas.array(), expected, atol=1e-6), timeout=5000)


def test_hover_cards_find_points_where_the_layout_put_them(ex, qtbot, model_and_map, tsne_layout):
    _, encoded = model_and_map
    m = ex.model
    np.testing.assert_array_equal(m.encoded.xy, tsne_layout.xy)
    # The point the layout isolates is not where PCA would have drawn it: the card would not
    # find it there if the map hovered in the wrong plane.
    index = isolated_point(m.encoded, ex.map)
    pca_xy = encoded.projection.transform(encoded.latents[index:index + 1])[0]
    assert np.linalg.norm((pca_xy - tsne_layout.xy[index]) / pixel_size(ex.map)) > 20
    viewport, card = ex.map.plot_widget().viewport(), ex.map.hover_card
    qtbot.mouseMove(viewport, viewport_pos(ex.map, tsne_layout.xy[index]) + QPoint(1, -1))
    qtbot.waitUntil(card.isVisible, timeout=3000)
    assert f"#{index}" in card.caption.text()
    assert encoded.class_names[encoded.labels[index]] in card.caption.text()


def test_the_manifold_grid_and_its_overlay_decode_the_inverse(ex, qtbot, tsne_layout):
    m = ex.model
    ex.manifold.size.setValue(5)
    view = ex.map.plot_widget().getPlotItem().getViewBox()
    (x0, y0), (x1, y1) = np.percentile(tsne_layout.xy.astype(np.float64), [20, 80], axis=0)
    view.setRange(xRange=(float(x0), float(x1)), yRange=(float(y0), float(y1)), padding=0)
    h, w = m.snapshot.image_shape[1:]
    qtbot.waitUntil(lambda: m.grid_image_region is not None
                    and np.allclose(m.grid_image_region, np.ravel(view.viewRange()))
                    and m.grid_image.shape == (1, 5 * h, 5 * w), timeout=5000)
    region = m.grid_image_region
    latents = tsne_layout.inverse(grid_points(region[:2], region[2:], 5))
    np.testing.assert_allclose(m.grid_latents(), latents, rtol=1e-6)
    np.testing.assert_allclose(m.grid_image, tile(decoder_of(ex).decode(latents), nrow=5, padding=0), atol=1e-6)
    assert "t-SNE plane (learned inverse)" in ex.manifold.caption.text()
    ex.manifold.overlay.setChecked(True)
    tiles = ex.map.overlay.tiles
    assert tiles.isVisible()
    rect = tiles.mapRectToParent(tiles.boundingRect())
    assert (rect.left(), rect.right(), rect.top(), rect.bottom()) == pytest.approx(region, abs=1e-6)
    # The tiles are the grid's images: each cell's alpha-covered pixels hold a decoded tile.
    assert tiles.image.shape[2] == 4 and tiles.image[..., 3].any()
