"""DecoderPanel: decodes picked latents with the current decoder snapshot and draws them crisp."""

import numpy as np
import pytest
import torch

from vaegui.core.config import ModelConfig
from vaegui.core.latent import Decoder
from vaegui.core.model import VAE, decoder_state
from vaegui.gui.decoder_panel import HINT_NO_DECODER, HINT_NO_POINT, DecoderPanel, format_latent


def make_decoder(latent_dim=2, image_shape=(1, 28, 28), seed=0) -> Decoder:
    torch.manual_seed(seed)
    config = ModelConfig(family="mlp", latent_dim=latent_dim, hidden=16)
    return Decoder(config, image_shape, decoder_state(VAE(config, image_shape)))


@pytest.fixture
def panel(show_widget):
    return show_widget(DecoderPanel(), 300, 340)


def test_hints_before_a_decoder_and_a_point(panel, qtbot):
    assert panel.current_image() is None and panel.canvas.hint() == HINT_NO_DECODER
    panel.show_latent(np.array([0.5, -1.0], np.float32))
    assert panel.current_image() is None and panel.canvas.hint() == HINT_NO_DECODER
    panel.set_decoder(make_decoder())  # the waiting point is decoded as soon as a decoder comes
    assert panel.current_image() is not None
    panel.set_decoder(None)
    assert panel.current_image() is None and panel.canvas.hint() == HINT_NO_DECODER
    fresh = DecoderPanel()
    qtbot.addWidget(fresh)
    fresh.set_decoder(make_decoder())
    assert fresh.current_image() is None and fresh.canvas.hint() == HINT_NO_POINT


def test_shows_exactly_the_decoded_image(panel):
    decoder = make_decoder()
    z = np.array([0.5, -1.25], np.float32)
    panel.set_decoder(decoder)
    panel.show_latent(z)
    image = panel.current_image()
    assert image.shape == (1, 28, 28) and image.dtype == np.float32
    assert np.array_equal(image, decoder.decode(z[None])[0])
    assert np.array_equal(panel.current_latent(), z)
    assert panel.latent_label.text() == "z = [0.50, -1.25]"


def test_new_decoder_weights_redecode_the_current_point(panel):
    z = np.array([1.0, 2.0], np.float32)
    first, second = make_decoder(seed=0), make_decoder(seed=1)
    panel.set_decoder(first)
    panel.show_latent(z)
    before = panel.current_image()
    panel.set_decoder(second)
    assert not np.array_equal(panel.current_image(), before)
    assert np.array_equal(panel.current_image(), second.decode(z[None])[0])
    # The same Decoder object with a newer snapshot loaded, handed over again.
    first.load_state(decoder_state(VAE(first.config, first.image_shape)))
    panel.set_decoder(first)
    assert np.array_equal(panel.current_image(), first.decode(z[None])[0])


def test_decoder_of_another_latent_size_drops_the_point(panel):
    panel.set_decoder(make_decoder(latent_dim=2))
    panel.show_latent(np.zeros(2, np.float32))
    panel.set_decoder(make_decoder(latent_dim=5))
    assert panel.current_latent() is None and panel.current_image() is None
    assert panel.canvas.hint() == HINT_NO_POINT
    panel.show_latent(np.zeros(3, np.float32))  # a caller's mistake is shown, not raised
    assert panel.current_image() is None and "expects 5" in panel.canvas.hint()


def test_rgb_image_is_drawn_large_with_nearest_neighbour_scaling(panel, qtbot):
    decoder = make_decoder(latent_dim=3, image_shape=(3, 32, 32))
    z = np.array([0.3, -0.7, 1.1], np.float32)
    panel.set_decoder(decoder)
    panel.show_latent(z)
    image = panel.current_image()
    assert image.shape == (3, 32, 32)
    assert np.array_equal(image, decoder.decode(z[None])[0])

    rect = panel.canvas.image_rect()
    assert rect.width() == rect.height() >= 0.9 * min(panel.canvas.width(), panel.canvas.height())
    shot = panel.canvas.grab().toImage()
    source = {tuple(c) for c in np.round(image * 255).astype(int).reshape(3, -1).T}
    step = max(1, rect.width() // 50)
    drawn = {shot.pixelColor(x, y).getRgb()[:3]
             for x in range(rect.left(), rect.right() + 1, step)
             for y in range(rect.top(), rect.bottom() + 1, step)}
    # Nearest neighbour: only source colours appear (smoothing would blend new ones in).
    assert drawn <= source and len(drawn) > 20


def test_canvas_follows_the_panel_size(panel, qtbot):
    panel.set_decoder(make_decoder())
    panel.show_latent(np.zeros(2, np.float32))
    small = panel.canvas.image_rect().width()
    panel.resize(600, 640)
    qtbot.waitUntil(lambda: panel.canvas.image_rect().width() > 1.5 * small, timeout=2000)


def test_long_latents_are_elided():
    text = format_latent(np.arange(32, dtype=np.float32))
    assert text.startswith("z = [0.00, 1.00,") and "..., 31.00]" in text and "(L = 32)" in text
    assert format_latent(np.array([0.1234, -5.0])) == "z = [0.12, -5.00]"
