"""The explorer model (no Qt): events, the picked point, interpolation and playback, traversal
order, the manifold grid, fixed samples, nearest neighbours and reconstructions."""

import gc

import numpy as np
import pytest
import torch

from vaegui.core.config import ModelConfig
from vaegui.core.errors import ConfigError
from vaegui.core.events import Event
from vaegui.core.explorer import MAX_ANIMATION_FRAMES, PASS_SECONDS, ExplorerModel
from vaegui.core.latent import EncodedSet, Projection, Snapshot, example_indices, interpolate, nearest_index, traversal_order
from vaegui.core.decoder import Decoder
from vaegui.core.model import VAE, model_state
from vaegui.core.progress import EvalResult


def make_snapshot(latent_dim=2, shape=(1, 8, 8), step=0, seed=0) -> Snapshot:
    torch.manual_seed(seed)
    config = ModelConfig(latent_dim=latent_dim, hidden=16)
    return Snapshot(config, shape, model_state(VAE(config, shape)), step)


def make_encoded(latent_dim=2, n=200, seed=0) -> EncodedSet:
    rng = np.random.default_rng(seed)
    z = (rng.normal(size=(n, latent_dim)) * np.linspace(3, 0.5, latent_dim)).astype(np.float32)
    proj = Projection.fit(z)
    return EncodedSet(latents=z, xy=proj.transform(z), projection=proj, labels=np.arange(n) % 5,
                      class_names=tuple("abcde"), images=np.zeros((n, 1, 8, 8), np.uint8))


def explorer(latent_dim=2) -> ExplorerModel:
    m = ExplorerModel()
    m.set_snapshot(make_snapshot(latent_dim))
    m.set_encoded(make_encoded(latent_dim))
    return m


class Listener:
    def __init__(self):
        self.calls = 0

    def on_event(self):
        self.calls += 1


def test_events_call_listeners_and_forget_dead_ones():
    event, listener = Event("x"), Listener()
    event.connect(listener.on_event)
    seen = []
    event.connect(lambda: seen.append(1))
    event.emit()
    assert listener.calls == 1 and seen == [1]
    with event.blocked():
        event.emit()
    assert listener.calls == 1
    del listener
    gc.collect()
    event.emit()  # a bound method is held weakly: its object is gone, it is not called
    assert len(event) == 1 and seen == [1, 1]


def test_picking_validates_and_emits():
    m = explorer(3)
    listener = Listener()
    m.events.point.connect(listener.on_event)
    m.pick([1, 2, 3])
    assert listener.calls == 1 and m.point.dtype == np.float32
    with pytest.raises(ValueError, match="2 latent values for a 3-D model"):
        m.pick([1, 2])
    with pytest.raises(ValueError, match="finite"):
        m.pick([1, np.nan, 3])
    # A point of the plane goes back through the PCA inverse and projects onto itself.
    m.pick_plane([0.5, -1.0])
    assert m.point_on_plane
    np.testing.assert_allclose(m.to_plane(m.point), [0.5, -1.0], atol=1e-5)


def test_clicks_set_the_point_or_the_end_points_a_then_b():
    m = explorer(2)
    m.click_plane([1.0, 2.0])
    np.testing.assert_allclose(m.point, [1, 2])
    m.set_click_target("a")
    m.click_plane([3.0, 4.0])
    assert m.click_target == "b"
    m.click_plane([5.0, 6.0])
    assert m.click_target == "point"
    np.testing.assert_allclose(m.interpolation.a, [3, 4])
    np.testing.assert_allclose(m.interpolation.b, [5, 6])
    np.testing.assert_allclose(m.point, [1, 2])  # the end points leave the picked point alone


def test_nudge_moves_in_the_plane_and_keeps_the_off_plane_part():
    m = explorer(4)
    z = np.array([1.0, -2.0, 0.5, 3.0], np.float32)
    m.pick(z)
    before = m.to_plane(m.point)
    m.nudge(0.25, -0.5)
    np.testing.assert_allclose(m.to_plane(m.point) - before, [0.25, -0.5], atol=1e-5)
    residual = lambda v: v - m.encoded.projection.inverse(m.to_plane(v))[0]  # noqa: E731
    np.testing.assert_allclose(residual(m.point), residual(z), atol=1e-5)


def test_a_model_of_another_latent_dimension_drops_the_points():
    m = explorer(2)
    m.pick([0.1, 0.2])
    m.set_endpoint("a", [1, 1])
    m.set_snapshot(make_snapshot(2, step=5))  # same model, newer weights: points stay
    assert m.point is not None and m.interpolation.a is not None
    m.set_snapshot(make_snapshot(3))
    assert m.point is None and m.interpolation.a is None and m.encoded is None
    with pytest.raises(ValueError, match="2-D latents for a 3-D model"):
        m.set_encoded(make_encoded(2))


def test_interpolation_path_has_the_end_points_and_the_chosen_length():
    m = explorer(3)
    a, b = np.array([3.0, 0, 0], np.float32), np.array([0, 0, 3.0], np.float32)
    m.set_endpoint("a", a)
    m.set_endpoint("b", b)
    for steps in (2, 7, 64):
        for method in ("linear", "spherical"):
            m.set_interpolation(steps=steps, method=method)
            path = m.interpolation_path()
            assert path.shape == (steps, 3)
            np.testing.assert_allclose(path[0], a, atol=1e-6)
            np.testing.assert_allclose(path[-1], b, atol=1e-6)
    # Spherical interpolation between latents of equal norm keeps that norm at every step,
    # and at any fraction the animation can ask for.
    m.set_interpolation(steps=13, method="spherical")
    np.testing.assert_allclose(np.linalg.norm(m.interpolation_path(), axis=1), 3.0, atol=1e-5)
    for t in np.random.default_rng(0).uniform(size=20):
        assert np.linalg.norm(interpolate(a, b, t, "spherical")) == pytest.approx(3.0, abs=1e-5)
    assert m.path_curve(50).shape == (50, 2)
    for bad in ({"steps": 1}, {"steps": 65}, {"method": "cubic"}):
        with pytest.raises(ConfigError):
            m.set_interpolation(**bad)


def test_playback_loops_and_bounces():
    m = explorer(2)
    m.set_playback(playing=True)
    assert not m.playback.playing  # nothing to play along yet
    m.set_endpoint("a", [0, 0])
    m.set_endpoint("b", [1, 0])
    m.set_playback(playing=True, mode="loop", speed=1.0)
    m.advance(PASS_SECONDS * 0.75)
    assert m.playback.position == pytest.approx(0.75)
    m.advance(PASS_SECONDS * 0.5)
    assert m.playback.position == pytest.approx(0.25)  # wrapped round
    np.testing.assert_allclose(m.animation_latent(), [0.25, 0], atol=1e-6)
    m.set_playback(mode="bounce", position=0.0, direction=1, speed=2.0)
    m.advance(PASS_SECONDS * 0.4)  # 0.8 of the way
    m.advance(PASS_SECONDS * 0.2)  # 0.4 further: past b by 0.2, so back at 0.8, heading to a
    assert m.playback.position == pytest.approx(0.8) and m.playback.direction == -1
    m.toggle_playing()
    m.advance(10.0)
    assert m.playback.position == pytest.approx(0.8)  # paused: nothing moves


def test_animation_frames_are_one_per_frame_of_a_pass_at_the_speed():
    m = explorer(2)
    assert m.animation_frames(0.025) is None  # no path yet
    m.set_endpoint("a", [0, 0])
    m.set_endpoint("b", [1, 0])
    m.set_playback(speed=1.0)
    frames = m.animation_frames(0.025)  # a pass of 3 s at 40 frames a second
    assert frames.shape == (121, 2)
    np.testing.assert_allclose(frames[:, 0], np.linspace(0, 1, 121), atol=1e-6)
    m.set_playback(speed=4.0)
    assert len(m.animation_frames(0.025)) == 31
    m.set_playback(speed=0.01)  # 12,000 frames a pass: bounded
    assert len(m.animation_frames(0.025)) == MAX_ANIMATION_FRAMES
    m.set_playback(position=0.3)
    assert m.frame_index(121) == 36 and m.frame_index(2) == 0
    m.set_playback(position=0.7)
    assert m.frame_index(2) == 1


def test_traversal_rows_are_sorted_by_kl_active_first_and_vary_one_dimension():
    m = explorer(5)
    kl = np.array([0.5, 3.0, 0.01, 2.0, 0.02])
    active = np.array([True, True, False, True, True])
    m.set_evaluation(EvalResult(epoch=1, step=10, neg_elbo=1, recon=1, kl=1, bits_per_dim=1,
                                kl_per_dim=kl, active_units=4, active=active))
    z = np.array([0.1, 0.2, 0.3, 0.4, 0.5], np.float32)
    m.pick(z)
    m.set_traversal(rows=4, columns=5, span=2.0)
    dims, latents, row_kl = m.traversal_plan()
    np.testing.assert_array_equal(dims, [1, 3, 0, 4])  # active by KL, then inactive dimension 2 is cut
    np.testing.assert_allclose(row_kl, kl[dims])
    assert latents.shape == (4 * 5, 5)
    grid = latents.reshape(4, 5, 5)
    for r, d in enumerate(dims):
        np.testing.assert_allclose(grid[r, :, d], z[d] + np.linspace(-2, 2, 5), atol=1e-6)
        others = np.delete(grid[r], d, axis=1)
        np.testing.assert_array_equal(others, np.delete(np.tile(z, (5, 1)), d, axis=1))
    np.testing.assert_array_equal(traversal_order(kl, None), [1, 3, 0, 4, 2])


def test_manifold_grid_covers_the_region_it_is_given():
    m = explorer(3)
    m.set_grid(size=4, region=(-2.0, 2.0, -1.0, 1.0))
    z = m.grid_latents()
    assert z.shape == (16, 3)
    xy = m.to_plane(z)
    np.testing.assert_allclose(xy[0], [-1.5, 0.75], atol=1e-5)  # centre of the top-left cell
    np.testing.assert_allclose(xy[-1], [1.5, -0.75], atol=1e-5)
    m.set_grid(region=None)  # no view yet: the map's extent
    x0, x1, y0, y1 = m.grid_region()
    assert x0 == pytest.approx(m.encoded.xy[:, 0].min()) and y1 == pytest.approx(m.encoded.xy[:, 1].max())
    with pytest.raises(ConfigError):
        m.set_grid(size=31)
    with pytest.raises(ConfigError):
        m.set_grid(region=(1.0, 0.0, 0.0, 1.0))


def test_samples_are_fixed_until_the_noise_changes():
    m = explorer(2)
    first = m.sample_latents()
    m.set_snapshot(make_snapshot(2, step=100))
    np.testing.assert_array_equal(m.sample_latents(), first)
    m.set_samples(seed=m.samples.seed + 1)
    assert not np.array_equal(m.sample_latents(), first)
    assert m.sample_latents().shape == (16, 2)


@pytest.mark.parametrize("dim", [2, 6, 16])  # column by column up to 8, a whole-row sum beyond
def test_nearest_index_is_the_true_nearest_neighbour(dim):
    rng = np.random.default_rng(dim)
    latents = rng.normal(size=(5000, dim)).astype(np.float32)
    for _ in range(20):
        z = rng.normal(size=dim).astype(np.float32)
        brute = min(range(len(latents)), key=lambda i: float(np.sum((latents[i] - z) ** 2)))
        index, distance = nearest_index(latents, z)
        assert index == brute
        assert distance == pytest.approx(np.linalg.norm(latents[brute] - z), rel=1e-5)


def test_example_indices_spread_over_the_classes():
    labels = np.array([0, 0, 1, 2, 1, 0, 2, 2])
    idx = example_indices(labels, 5)
    np.testing.assert_array_equal(labels[idx], [0, 1, 2, 0, 1])
    assert len(set(idx)) == 5


def test_reconstruction_from_a_full_snapshot_matches_the_model():
    snapshot = make_snapshot(2)
    decoder = Decoder.from_snapshot(snapshot)
    model = VAE(snapshot.config, snapshot.image_shape)
    model.load_state_dict(snapshot.state)
    images = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    with torch.no_grad():
        mu, _ = model.encode(images.float() / 255)
        expected = torch.sigmoid(model.decode(mu)).numpy()
    np.testing.assert_allclose(decoder.reconstruct(images.numpy()), expected, atol=1e-6)
    decoder_only = {k: v for k, v in snapshot.state.items() if not k.startswith("encoder.")}
    with pytest.raises(ValueError, match="no encoder"):
        Decoder(snapshot.config, snapshot.image_shape, decoder_only).reconstruct(images.numpy())
