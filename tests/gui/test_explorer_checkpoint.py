"""The whole explorer on a checkpoint written by `vaegui train`: opened in the window, every view
decodes with its weights; the keyboard nudges the point and Space plays the animation."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from vaegui.core.checkpoint import load_checkpoint
from vaegui.core.latent import Snapshot, nearest_index, tile, traversal_order
from vaegui.core.decoder import Decoder

TIMEOUT = 30_000


@pytest.fixture(scope="module")
def trained(tmp_path_factory, train_shapes):
    out = train_shapes(tmp_path_factory.mktemp("run") / "shapes-run", "--train-limit", "256",
                       "--latent-dim", "3", "--batch-size", "64")
    return out / "checkpoint.pt"


def test_every_view_works_on_a_checkpoint_from_vaegui_train(qtbot, open_in_window, trained):
    window = open_in_window(trained, (1600, 1000))
    state = load_checkpoint(trained)
    m = window.explorer
    decoder = Decoder.from_snapshot(Snapshot(m.snapshot.config, m.snapshot.image_shape, state["model"]))
    assert m.encoded.latents.shape == (128, 3) and m.snapshot.has_encoder

    # Point: decoded through the PCA inverse (L = 3), with its nearest real image.
    m.pick_plane(m.encoded.xy[5])
    qtbot.waitUntil(lambda: window.point_view.result is not None
                    and np.array_equal(window.point_view.result.z, m.point), timeout=TIMEOUT)
    np.testing.assert_array_equal(window.point_view.current_image(), decoder.decode(m.point[None])[0])
    assert window.point_view.result.nearest == nearest_index(m.encoded.latents, m.point)[0]
    assert "PCA inverse" in window.point_view.note_label.text()

    # Keyboard: arrows nudge the point in the plane.
    before = m.to_plane(m.point)
    window.latent_map.setFocus()
    qtbot.keyClick(window.latent_map, Qt.Key.Key_Left)
    assert m.to_plane(m.point)[0] < before[0]

    # Interpolation and playback (Space plays and pauses, from anywhere in the window).
    m.set_endpoint("a", m.encoded.latents[0])
    m.set_endpoint("b", m.prior_sample())
    qtbot.waitUntil(lambda: window.interpolation_view.strip_canvas.array() is not None, timeout=TIMEOUT)
    np.testing.assert_allclose(window.interpolation_view.strip_canvas.array(),
                               tile(decoder.decode(m.interpolation_path()), nrow=m.interpolation.steps),
                               atol=1e-6)
    window.menu_actions.play.trigger()
    assert m.playback.playing
    qtbot.waitUntil(lambda: m.playback.position > 0.05, timeout=TIMEOUT)
    qtbot.keyClick(window.latent_map, Qt.Key.Key_Space)
    assert not m.playback.playing

    # Traversal: rows ordered by the checkpoint's last evaluation.
    evaluation = m.evaluation
    assert evaluation is not None and len(evaluation.kl_per_dim) == 3
    qtbot.waitUntil(lambda: window.traversal_view.dims is not None, timeout=TIMEOUT)
    np.testing.assert_array_equal(window.traversal_view.dims,
                                  traversal_order(evaluation.kl_per_dim, evaluation.active))

    # The views behind tabs decode once shown: the manifold grid and the samples.
    window.docks.manifold.raise_()
    window.docks.samples.raise_()
    qtbot.waitUntil(lambda: m.grid_image is not None, timeout=TIMEOUT)
    np.testing.assert_allclose(m.grid_image, tile(decoder.decode(m.grid_latents()), nrow=m.grid.size,
                                                  padding=0), atol=1e-6)
    qtbot.waitUntil(lambda: window.samples_view.samples_canvas.array() is not None
                    and window.samples_view.recon_canvas.array() is not None, timeout=TIMEOUT)
    window.close()
