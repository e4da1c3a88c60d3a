"""Latent tools: projection inverse, interpolation, traversal, grids, decoding snapshots."""

import numpy as np
import pytest
import torch

from vaegui.core.config import DataConfig, ModelConfig, RunConfig
from vaegui.core.dataset_loader import load_dataset
from vaegui.core.evaluate import evaluate
from vaegui.core.latent import Projection, encoded_set, grid_points, letterbox_tiles, lerp, slerp, tile, traversal
from vaegui.core.decoder import Decoder, encode_means, encode_set
from vaegui.core.model import VAE, decoder_state


def test_pca_inverse_round_trips():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(500, 6)) * np.array([5, 3, 1, 0.5, 0.2, 0.1])
    proj = Projection.fit(z)
    assert not proj.is_exact
    assert proj.explained[0] > proj.explained[1] > 0
    p = rng.normal(size=(50, 2))
    np.testing.assert_allclose(proj.transform(proj.inverse(p)), p, atol=1e-5)
    # A latent vector inside the projection plane survives the trip back exactly.
    z_in_plane = proj.inverse(p)
    np.testing.assert_allclose(proj.inverse(proj.transform(z_in_plane)), z_in_plane, atol=1e-5)
    # The leading axis is the direction of largest variance (dimension 0 here).
    assert abs(proj.components[0, 0]) > 0.99


@pytest.mark.parametrize("latent", [1, 2])
def test_low_dimensional_projection_is_exact(latent):
    z = np.random.default_rng(0).normal(size=(10, latent)).astype(np.float32)
    proj = Projection.fit(z)
    assert proj.is_exact
    np.testing.assert_allclose(proj.inverse(proj.transform(z)), z, atol=1e-6)


def test_interpolation_end_points_and_shape():
    a, b = np.array([1.0, 0.0, 2.0]), np.array([-1.0, 3.0, 0.5])
    for f in (lerp, slerp):
        path = f(a, b, 7)
        assert path.shape == (7, 3)
        np.testing.assert_allclose(path[0], a, atol=1e-6)
        np.testing.assert_allclose(path[-1], b, atol=1e-6)
    np.testing.assert_allclose(lerp(a, b, 3)[1], (a + b) / 2)
    # slerp between equal-norm vectors keeps the norm along the path.
    u, v = np.array([3.0, 0.0]), np.array([0.0, 3.0])
    np.testing.assert_allclose(np.linalg.norm(slerp(u, v, 9), axis=1), 3.0, atol=1e-6)


def test_traversal_and_grid():
    z = np.array([0.5, -0.5, 1.0])
    out = traversal(z, [1, 2], span=2.0, columns=3).reshape(2, 3, 3)  # (rows, columns, L)
    np.testing.assert_array_equal(out[0, :, 1], [-2.5, -0.5, 1.5])  # row 0 moves dimension 1
    np.testing.assert_array_equal(out[1, :, 2], [-1.0, 1.0, 3.0])  # row 1 moves dimension 2
    np.testing.assert_array_equal(out[0, :, [0, 2]], [[0.5] * 3, [1.0] * 3])  # the others stay
    np.testing.assert_array_equal(out[1, :, [0, 1]], [[0.5] * 3, [-0.5] * 3])
    g = grid_points((-1, 2), (-3, 3), 3)  # cells 1 wide and 2 high
    assert g.shape == (9, 2)
    np.testing.assert_allclose(g[0], [-0.5, 2])  # centre of the top-left cell
    np.testing.assert_allclose(g[-1], [1.5, -2])  # bottom right


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("cell_aspect", [2.5, 0.4, 1.0])
def test_letterboxed_tiles_keep_their_shape_in_cells_of_another(channels, cell_aspect):
    rng = np.random.default_rng(0)
    h, w, rows, cols = 4, 6, 2, 3
    images = rng.random((rows * cols, channels, h, w)).astype(np.float32)
    out = letterbox_tiles(tile(images, nrow=cols, padding=0), (h, w), cell_aspect)
    ch, cw = out.shape[1] // rows, out.shape[2] // cols
    assert out.shape == (4, rows * ch, cols * cw)
    # Each cell has the asked shape (to a pixel) and holds its tile whole, unscaled, centred.
    assert cw / ch == pytest.approx(cell_aspect, abs=1 / min(ch, cw) + 1e-9)
    assert (ch == h) if cell_aspect >= w / h else (cw == w)
    top, left = (ch - h) // 2, (cw - w) // 2
    for k, image in enumerate(images):
        r, c = divmod(k, cols)
        cell = out[:, r * ch:(r + 1) * ch, c * cw:(c + 1) * cw]
        rgb = image if channels == 3 else np.repeat(image, 3, axis=0)
        np.testing.assert_array_equal(cell[:3, top:top + h, left:left + w], rgb)
        assert (cell[3, top:top + h, left:left + w] == 1).all()
        assert cell[3].sum() == h * w  # the rest is transparent


def test_letterboxing_says_what_does_not_fit():
    with pytest.raises(ValueError, match="not made of 4 x 4 tiles"):
        letterbox_tiles(np.zeros((1, 10, 8)), (4, 4), 1.0)
    with pytest.raises(ValueError, match="cell aspect"):
        letterbox_tiles(np.zeros((1, 8, 8)), (4, 4), 0.0)
    wide = letterbox_tiles(np.zeros((1, 4, 4)), (4, 4), 1e6)  # an extreme region stays bounded
    assert wide.shape[2] <= 8 * 4

def test_decoder_snapshot_is_independent_of_the_live_model():
    torch.manual_seed(0)
    model = VAE(ModelConfig(latent_dim=2, hidden=16), (1, 6, 6))
    dec = Decoder(model.config, model.image_shape, decoder_state(model))
    z = np.array([[0.3, -0.2]], dtype=np.float32)
    with torch.no_grad():
        direct = torch.sigmoid(model.decode(torch.from_numpy(z))).numpy()
    np.testing.assert_array_equal(dec.decode(z), direct)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    np.testing.assert_array_equal(dec.decode(z), direct)  # the snapshot did not move
    grid = dec.decode_grid(np.zeros((4, 2), np.float32), nrow=2, padding=1)
    assert grid.shape == (1, 2 * 6 + 3, 2 * 6 + 3)


def test_encode_means_in_batches_matches_one_batch():
    torch.manual_seed(0)
    model = VAE(ModelConfig(latent_dim=3, hidden=16), (1, 6, 6))
    images = torch.randint(0, 256, (25, 1, 6, 6), dtype=torch.uint8)
    with torch.no_grad():
        mu, _ = model.encode(images.float() / 255)
    np.testing.assert_allclose(encode_means(model, images, batch_size=7), mu.numpy(), atol=1e-6)


def test_evaluation_fills_the_means_it_computes_and_checks_their_shape():
    torch.manual_seed(0)
    model = VAE(ModelConfig(latent_dim=3, hidden=16), (1, 6, 6))
    images = torch.randint(0, 256, (300, 1, 6, 6), dtype=torch.uint8)  # more than one batch
    means = np.full((300, 3), np.nan, np.float32)
    evaluate(model, images, means_out=means)
    np.testing.assert_allclose(means, encode_means(model, images), atol=1e-6)
    with pytest.raises(ValueError, match=r"\(300, 3\)"):
        evaluate(model, images, means_out=np.empty((299, 3), np.float32))


def test_an_encoded_set_from_given_means_matches_encoding_and_checks_the_count():
    config = RunConfig(DataConfig(dataset="shapes", train_limit=64, test_limit=40),
                       ModelConfig(latent_dim=3, hidden=16))
    data = load_dataset(config.data)
    model = VAE(config.model, data.image_shape)
    encoded = encode_set(model, data, "train", 30, step=7)
    given = encoded_set(data, encoded.latents, "train", 30, step=7)
    np.testing.assert_array_equal(given.xy, encoded.xy)
    np.testing.assert_array_equal(given.labels, encoded.labels)
    assert given.factors.keys() == encoded.factors.keys() and given.step == 7
    with pytest.raises(ValueError, match="30 latent vectors for 40 test images"):
        encoded_set(data, encoded.latents, "test")


def small_decoder() -> Decoder:
    torch.manual_seed(0)
    config = ModelConfig(latent_dim=2, hidden=8)
    return Decoder(config, (1, 6, 6), VAE(config, (1, 6, 6)).state_dict())


def run_chunks(job) -> tuple[int, np.ndarray]:
    """Drive a chunked job to its end: (the pauses it made, its result)."""
    pauses = 0
    try:
        while True:
            next(job)
            pauses += 1
    except StopIteration as done:
        return pauses, done.value


@pytest.mark.parametrize("n", [1, 5, 7])
def test_decoding_in_chunks_gives_the_images_of_one_decode(n):
    decoder = small_decoder()
    z = np.random.default_rng(n).normal(size=(n, 2)).astype(np.float32)
    pauses, images = run_chunks(decoder.decode_in_chunks(z, chunk=3))
    assert pauses == (n - 1) // 3  # a chance for other work between chunks, none after the last
    np.testing.assert_allclose(images, decoder.decode(z), atol=1e-6)


def test_a_grid_decoded_in_chunks_is_the_tile_of_one_decode():
    decoder = small_decoder()
    z = np.random.default_rng(1).normal(size=(70, 2)).astype(np.float32)  # three chunks of 32
    pauses, grid = run_chunks(decoder.tile_in_chunks(z, nrow=10, padding=1))
    assert pauses == 2
    np.testing.assert_allclose(grid, tile(decoder.decode(z), 10, 1), atol=1e-6)
