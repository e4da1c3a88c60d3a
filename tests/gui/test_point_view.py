"""PointView: decodes the picked point through the decode worker, shows the nearest real image,
says when a point came through the PCA inverse, and follows new weights."""

import dataclasses

import numpy as np
import pytest
import torch

from vaegui.core.config import ModelConfig
from vaegui.core.explorer import ExplorerModel
from vaegui.core.latent import EncodedSet, Projection, Snapshot, nearest_index
from vaegui.core.decoder import Decoder
from vaegui.core.model import VAE, model_state
from vaegui.gui.explorer.decode_worker import DecodeWorker
from vaegui.gui.explorer.point_view import HINT_NO_DECODER, HINT_NO_POINT, PointView, format_latent


def make_snapshot(latent_dim=2, image_shape=(1, 28, 28), seed=0, step=0) -> Snapshot:
    torch.manual_seed(seed)
    config = ModelConfig(family="mlp", latent_dim=latent_dim, hidden=16)
    return Snapshot(config, image_shape, model_state(VAE(config, image_shape)), step)


def make_encoded(latent_dim=2, n=300) -> EncodedSet:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(n, latent_dim)).astype(np.float32)
    proj = Projection.fit(z)
    images = rng.integers(0, 256, size=(n, 1, 28, 28), dtype=np.uint8)
    return EncodedSet(latents=z, xy=proj.transform(z), projection=proj, labels=np.arange(n) % 3,
                      class_names=("zero", "one", "two"), images=images)


@pytest.fixture
def explorer(qtbot):
    model = ExplorerModel()
    worker = DecodeWorker(model)
    yield model, worker
    worker.shutdown()


@pytest.fixture
def view(explorer, show_widget):
    model, worker = explorer
    return show_widget(PointView(model, worker), 360, 360)


def test_hints_before_weights_and_a_point(view, explorer, qtbot):
    model, _ = explorer
    assert view.current_image() is None and view.canvas.hint() == HINT_NO_DECODER
    model.pick([0.5, -1.0])  # a point waiting for weights is decoded as soon as they come
    assert view.current_image() is None and view.canvas.hint() == HINT_NO_DECODER
    model.set_snapshot(make_snapshot())
    qtbot.waitUntil(lambda: view.current_image() is not None, timeout=5000)
    model.clear()
    assert view.current_image() is None and view.canvas.hint() == HINT_NO_DECODER
    model.set_snapshot(make_snapshot())
    assert view.canvas.hint() == HINT_NO_POINT


def test_shows_exactly_the_decoded_image_and_the_nearest_real_one(view, explorer, qtbot):
    model, _ = explorer
    snapshot, encoded = make_snapshot(), make_encoded()
    model.set_snapshot(snapshot)
    model.set_encoded(encoded)
    z = np.array([0.5, -1.25], np.float32)
    with qtbot.waitSignal(view.imageShown, timeout=5000):
        model.pick(z)
    image = view.current_image()
    assert image.shape == (1, 28, 28) and image.dtype == np.float32
    np.testing.assert_array_equal(image, Decoder.from_snapshot(snapshot).decode(z[None])[0])
    np.testing.assert_array_equal(view.canvas.array(), image)
    index, _ = nearest_index(encoded.latents, z)
    assert view.result.nearest == index
    np.testing.assert_array_equal(view.nearest_canvas.array(), encoded.images[index])
    assert f"#{index}" in view.nearest_label.text()
    assert encoded.class_names[encoded.labels[index]] in view.nearest_label.text()
    assert view.latent_label.text() == "z = [0.50, -1.25]"
    assert view.note_label.text() == ""  # L = 2: the plane is the latent space


def test_the_nearest_image_follows_the_point_and_a_new_map(view, explorer, qtbot):
    model, _ = explorer
    encoded = make_encoded()
    model.set_snapshot(make_snapshot())
    model.set_encoded(encoded)
    for index in (7, 7, 12, 7):  # the same nearest image twice in a row, as along a drag
        with qtbot.waitSignal(view.imageShown, timeout=5000):
            model.pick(encoded.latents[index] + 1e-4)
        np.testing.assert_array_equal(view.nearest_canvas.array(), encoded.images[index])
    # A new map whose image 7 differs: the same index shows the new set's image.
    other = dataclasses.replace(encoded, images=255 - encoded.images)
    model.set_encoded(other)
    with qtbot.waitSignal(view.imageShown, timeout=5000):
        model.pick(encoded.latents[7] + 2e-4)
    np.testing.assert_array_equal(view.nearest_canvas.array(), other.images[7])


def test_new_weights_redecode_the_current_point(view, explorer, qtbot):
    model, _ = explorer
    z = np.array([1.0, 2.0], np.float32)
    model.set_snapshot(make_snapshot(seed=0))
    with qtbot.waitSignal(view.imageShown, timeout=5000):
        model.pick(z)
    before = view.current_image()
    second = make_snapshot(seed=1, step=5)
    with qtbot.waitSignal(view.imageShown, timeout=5000):
        model.set_snapshot(second)
    np.testing.assert_array_equal(view.current_image(), Decoder.from_snapshot(second).decode(z[None])[0])
    assert not np.array_equal(view.current_image(), before)


def test_a_plane_point_of_a_high_dimensional_model_says_it_went_through_the_pca_inverse(view, explorer, qtbot):
    model, _ = explorer
    model.set_snapshot(make_snapshot(latent_dim=5))
    model.set_encoded(make_encoded(latent_dim=5))
    with qtbot.waitSignal(view.imageShown, timeout=5000):
        model.pick_plane([0.3, 0.1])
    assert "PCA inverse" in view.note_label.text() and "L = 5" in view.note_label.text()
    assert view.latent_label.text().startswith("z = [") and "(L = 5)" not in view.latent_label.text()
    model.pick(np.arange(5, dtype=np.float32))
    assert view.note_label.text() == ""


def test_long_latents_are_elided():
    assert format_latent(np.arange(12, dtype=np.float32)).endswith("(L = 12)")
