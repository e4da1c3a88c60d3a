"""The explorer's views working together on one model: a drag made of real mouse events decodes
under the cursor; the interpolation strip, playback, traversal grid, manifold grid (and its
overlay), reconstructions and samples show what the model and the weights say."""

import numpy as np
import pytest
import torch
from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QHBoxLayout, QVBoxLayout, QWidget

from vaegui.core.config import ModelConfig
from vaegui.core.dataset_loader import make_shapes
from vaegui.core.explorer import ExplorerModel
from vaegui.core.latent import Snapshot, letterbox_tiles, tile
from vaegui.core.decoder import Decoder, encode_set
from vaegui.core.model import VAE, model_state
from vaegui.core.progress import EvalResult
from vaegui.gui.explorer.decode_worker import DecodeWorker
from vaegui.gui.explorer.interpolation_view import FRAME_INTERVAL_MS, InterpolationView
from vaegui.gui.explorer.latent_map import LatentMap
from vaegui.gui.explorer.manifold_view import ManifoldView
from vaegui.gui.explorer.map_overlay import TILE_MARGIN
from vaegui.gui.explorer.point_view import PointView
from vaegui.gui.explorer.samples_view import SamplesView
from vaegui.gui.explorer.traversal_view import TraversalView


@pytest.fixture(scope="module")
def shapes():
    return make_shapes(n_train=100, n_test=200, image_size=16)


def trained_like(shapes, latent_dim=2, seed=0):
    """A random model of the right shape, its snapshot and its map of the test set."""
    torch.manual_seed(seed)
    config = ModelConfig(latent_dim=latent_dim, hidden=16)
    model = VAE(config, shapes.image_shape)
    # Spread the means out, so the map has room to drag in.
    with torch.no_grad():
        model.encoder.head.weight.mul_(20)
    return Snapshot(config, shapes.image_shape, model_state(model), step=3), encode_set(model, shapes)


class Explorer(QWidget):
    """The app's explorer views on one model, without the rest of the window."""

    def __init__(self):
        super().__init__()
        self.model = ExplorerModel()
        self.worker = DecodeWorker(self.model)
        self.map = LatentMap(self.model)
        self.point = PointView(self.model, self.worker)
        self.interpolation = InterpolationView(self.model, self.worker)
        self.traversal = TraversalView(self.model, self.worker)
        self.manifold = ManifoldView(self.model, self.worker)
        self.samples = SamplesView(self.model, self.worker)
        right = QVBoxLayout()
        for view in (self.point, self.interpolation, self.traversal, self.manifold, self.samples):
            right.addWidget(view)
        layout = QHBoxLayout(self)
        layout.addWidget(self.map, 2)
        layout.addLayout(right, 1)

    def closeEvent(self, event):
        self.worker.shutdown()
        super().closeEvent(event)


@pytest.fixture
def ex(show_widget, shapes):
    widget = show_widget(Explorer(), 1000, 1400)
    snapshot, encoded = trained_like(shapes)
    widget.model.set_snapshot(snapshot)
    widget.model.set_encoded(encoded)
    widget.model.set_examples(shapes.test_images.numpy()[:8])
    for _ in range(3):
        QApplication.processEvents()
    yield widget
    widget.worker.shutdown()


def decoder_of(ex) -> Decoder:
    return Decoder.from_snapshot(ex.model.snapshot)


def send_mouse(ex, kind, pos: QPoint) -> None:
    viewport = ex.map.plot_widget().viewport()
    button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else Qt.MouseButton.LeftButton
    buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else Qt.MouseButton.LeftButton
    QApplication.sendEvent(viewport, QMouseEvent(kind, QPointF(pos), QPointF(viewport.mapToGlobal(pos)),
                                                 button, buttons, Qt.KeyboardModifier.NoModifier))


def plane_at(ex, pos: QPoint) -> np.ndarray:
    view = ex.map.plot_widget().getPlotItem().getViewBox()
    p = view.mapSceneToView(QPointF(ex.map.plot_widget().mapToScene(pos)))
    return np.array([p.x(), p.y()], np.float32)


class _LayoutRequests(QObject):
    """Counts the LayoutRequest events a widget receives."""

    def __init__(self, widget):
        super().__init__()
        self.count = 0
        widget.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:
        self.count += event.type() == QEvent.Type.LayoutRequest
        return False


def test_a_drag_lays_out_neither_the_point_view_nor_the_interpolation_view(ex, qtbot):
    """Their texts and buttons follow every move (60 a second); their layouts stay."""
    start = ex.map.plot_widget().viewport().rect().center()
    send_mouse(ex, QEvent.Type.MouseButtonPress, start)
    qtbot.waitUntil(lambda: ex.point.result is not None, timeout=5000)
    QApplication.processEvents()
    requests = [_LayoutRequests(ex.point), _LayoutRequests(ex.interpolation)]
    for step in range(1, 5):
        send_mouse(ex, QEvent.Type.MouseMove, start + QPoint(25 * step, -15 * step))
        qtbot.waitUntil(lambda: np.allclose(ex.point.result.z, ex.model.point), timeout=5000)
    send_mouse(ex, QEvent.Type.MouseButtonRelease, start + QPoint(100, -60))
    QApplication.processEvents()
    assert "distance" in ex.point.nearest_label.text() and ex.interpolation.a_from_point.isEnabled()
    assert [r.count for r in requests] == [0, 0]


def test_a_drag_decodes_the_latent_under_the_cursor_on_every_move(ex, qtbot):
    start = ex.map.plot_widget().viewport().rect().center()
    shown = []
    ex.point.imageShown.connect(lambda: shown.append(ex.point.current_image().copy()))
    send_mouse(ex, QEvent.Type.MouseButtonPress, start)
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=5000)
    decoder = decoder_of(ex)
    for step in range(1, 5):
        pos = start + QPoint(25 * step, -15 * step)
        send_mouse(ex, QEvent.Type.MouseMove, pos)
        qtbot.waitUntil(lambda: len(shown) == step + 1, timeout=5000)
        z = plane_at(ex, pos)  # L = 2: the plane is the latent space
        np.testing.assert_allclose(ex.model.point, z, atol=1e-5)
        np.testing.assert_allclose(shown[-1], decoder.decode(ex.model.point[None])[0], atol=1e-6)
        assert not np.array_equal(shown[-1], shown[-2])  # the image changed with the move
    send_mouse(ex, QEvent.Type.MouseButtonRelease, start + QPoint(100, -60))


def test_interpolation_strip_has_the_chosen_length_and_decoded_end_points(ex, qtbot):
    m, enc = ex.model, ex.model.encoded
    m.set_interpolation(steps=7, method="spherical")
    m.set_endpoint("a", enc.latents[0])
    m.set_endpoint("b", enc.latents[1])
    h, w = ex.model.snapshot.image_shape[1:]
    qtbot.waitUntil(lambda: ex.interpolation.strip_canvas.array() is not None
                    and ex.interpolation.strip_canvas.array().shape[2] == 7 * (w + 2) + 2, timeout=5000)
    strip = ex.interpolation.strip_canvas.array()
    decoder = decoder_of(ex)
    ends = decoder.decode(np.stack([enc.latents[0], enc.latents[1]]))
    first = strip[:, 2:2 + h, 2:2 + w]
    last = strip[:, 2:2 + h, 6 * (w + 2) + 2:6 * (w + 2) + 2 + w]
    np.testing.assert_allclose(first, ends[0], atol=1e-6)
    np.testing.assert_allclose(last, ends[1], atol=1e-6)
    np.testing.assert_allclose(strip, tile(decoder.decode(m.interpolation_path()), nrow=7), atol=1e-6)
    # Dragging an end point afterwards: the strip follows.
    m.set_endpoint("b", enc.latents[2])
    expected = tile(decoder.decode(m.interpolation_path()), nrow=7)
    qtbot.waitUntil(lambda: np.allclose(ex.interpolation.strip_canvas.array(), expected, atol=1e-6), timeout=5000)


def test_playback_animates_frames_and_space_plays_and_pauses(ex, qtbot):
    m, enc = ex.model, ex.model.encoded
    m.set_endpoint("a", enc.latents[0])
    m.set_endpoint("b", enc.latents[5])
    frames = []
    ex.interpolation.frameShown.connect(lambda: frames.append(m.playback.position))
    ex.interpolation.play_button.click()
    assert m.playback.playing
    qtbot.waitUntil(lambda: len(set(frames)) >= 5, timeout=5000)
    ex.interpolation.play_button.click()
    assert not m.playback.playing
    position = m.playback.position
    np.testing.assert_allclose(ex.interpolation.frame_canvas.array(),
                               decoder_of(ex).decode(m.animation_latent()[None])[0], atol=1e-6)
    moving = ex.map.overlay.moving
    assert moving.isVisible()
    assert (moving.pos().x(), moving.pos().y()) == pytest.approx(tuple(m.to_plane(m.animation_latent())), abs=1e-5)
    qtbot.wait(100)
    assert m.playback.position == position  # paused


def test_playing_shows_frames_decoded_ahead_and_follows_new_weights(ex, qtbot, shapes):
    m, enc, view = ex.model, ex.model.encoded, ex.interpolation
    m.set_endpoint("a", enc.latents[0])
    m.set_endpoint("b", enc.latents[5])
    m.set_interpolation(method="spherical")
    shown = []  # (position, frame) as each frame goes on screen
    view.frameShown.connect(lambda: shown.append((m.playback.position, view.frame_canvas.array().copy())))
    m.set_playback(playing=True, mode="loop", speed=2.0)
    qtbot.waitUntil(lambda: view._frames is not None, timeout=5000)
    latents = m.animation_frames(FRAME_INTERVAL_MS / 1000)
    # One pass at speed 2 is 1.5 s: 60 frames of 25 ms, end points included.
    assert latents.shape == (61, m.latent_dim)
    np.testing.assert_allclose(latents[[0, -1]], [enc.latents[0], enc.latents[5]], atol=1e-5)
    decodes = ex.worker.executed
    del shown[:]
    qtbot.waitUntil(lambda: len(shown) >= 10, timeout=5000)
    # Each frame is the decoded latent nearest the playback position, and playing decoded nothing.
    expected = decoder_of(ex).decode(latents)
    for position, frame in shown:
        np.testing.assert_allclose(frame, expected[round(position * 60)], atol=1e-6)
    assert len({p for p, _ in shown}) >= 5 and ex.worker.executed == decodes
    # New weights: the frames are decoded again with them.
    snapshot, _ = trained_like(shapes, seed=1)
    m.set_snapshot(snapshot)
    expected = Decoder.from_snapshot(snapshot).decode(latents)
    del shown[:]
    qtbot.waitUntil(lambda: len(shown) >= 3 and np.allclose(
        shown[-1][1], expected[round(shown[-1][0] * 60)], atol=1e-6), timeout=5000)
    # A new path: frames are decoded one by one (exact) until its batch is there.
    m.set_endpoint("b", enc.latents[7])
    qtbot.waitUntil(lambda: view._frames[0][0] is m.interpolation, timeout=5000)
    m.set_playback(playing=False)
    qtbot.waitUntil(lambda: np.allclose(view.frame_canvas.array(), Decoder.from_snapshot(snapshot).decode(
        m.animation_latent()[None])[0], atol=1e-6), timeout=5000)


def test_traversal_grid_shape_and_row_order_by_kl(ex, qtbot):
    m = ex.model
    kl = np.array([0.3, 2.5])
    m.set_evaluation(EvalResult(epoch=1, step=3, neg_elbo=1, recon=1, kl=1, bits_per_dim=1,
                                kl_per_dim=kl, active_units=2, active=np.array([True, True])))
    m.set_traversal(columns=5, rows=2, span=2.0)
    m.pick([0.1, -0.2])
    h, w = m.snapshot.image_shape[1:]
    dims, latents, _ = m.traversal_plan()
    np.testing.assert_array_equal(dims, [1, 0])
    assert latents.shape == (2 * 5, 2)
    expected = tile(decoder_of(ex).decode(latents), nrow=5, padding=1)
    assert expected.shape == (1, 2 * (h + 1) + 1, 5 * (w + 1) + 1)
    qtbot.waitUntil(lambda: ex.traversal.canvas.array() is not None
                    and ex.traversal.canvas.array().shape == expected.shape
                    and np.allclose(ex.traversal.canvas.array(), expected, atol=1e-6), timeout=5000)
    np.testing.assert_array_equal(ex.traversal.dims, [1, 0])
    assert ex.traversal.canvas._row_labels == ["z2  KL 2.50", "z1  KL 0.30"]


def test_manifold_grid_follows_the_view_and_overlays_the_map(ex, qtbot):
    m = ex.model
    ex.manifold.size.setValue(6)
    view = ex.map.plot_widget().getPlotItem().getViewBox()
    view.setRange(xRange=(-1, 1), yRange=(-1, 1), padding=0)
    h, w = m.snapshot.image_shape[1:]
    # The locked aspect widens the range asked for; the grid covers what the view shows.
    qtbot.waitUntil(lambda: m.grid_image_region is not None
                    and np.allclose(m.grid_image_region, np.ravel(view.viewRange()))
                    and m.grid_image_region[:2] == (-1.0, 1.0)
                    and m.grid_image.shape == (1, 6 * h, 6 * w), timeout=5000)
    region = m.grid_image_region
    np.testing.assert_allclose(m.grid_image, tile(decoder_of(ex).decode(m.grid_latents()), nrow=6, padding=0),
                               atol=1e-6)
    np.testing.assert_array_equal(ex.manifold.canvas.array(), m.grid_image)
    assert not ex.map.overlay.tiles.isVisible()
    ex.manifold.overlay.setChecked(True)
    tiles = ex.map.overlay.tiles
    x0, x1, y0, y1 = region
    assert abs((x1 - x0) / (y1 - y0) - 1) > 0.1  # the view is not square: nor are the grid's cells
    expected = letterbox_tiles(m.grid_image, (h, w), (x1 - x0) / (y1 - y0), TILE_MARGIN)
    assert tiles.isVisible() and tiles.image.shape == (expected.shape[1], expected.shape[2], 4)
    rect = tiles.mapRectToParent(tiles.boundingRect())
    assert (rect.left(), rect.right(), rect.top(), rect.bottom()) == pytest.approx(
        (x0, x1, y0, y1), abs=1e-6)
    # Row 0 of the grid (the top of the region) is drawn at the top: the image is flipped for y-up.
    np.testing.assert_array_equal(
        tiles.image, np.round(255 * expected.transpose(1, 2, 0)[::-1]).astype(np.uint8))
    # Each tile keeps its shape on the map (whose axes have equal units), not the cell's.
    rows, cols = tiles.image.shape[0] // 6, tiles.image.shape[1] // 6
    first_cell = tiles.image[:rows, :cols, 3] > 0
    tile_width = first_cell.any(0).sum() * (x1 - x0) / tiles.image.shape[1]
    tile_height = first_cell.any(1).sum() * (y1 - y0) / tiles.image.shape[0]
    assert tile_width / tile_height == pytest.approx(w / h, rel=0.05)
    # A new opacity changes the opacity, not the tiles.
    built = tiles.image
    m.set_grid(opacity=0.3)
    assert tiles.image is built and tiles.opacity() == pytest.approx(0.3)



def test_the_overlay_hides_a_grid_of_another_models_images(ex):
    m = ex.model
    h, w = m.snapshot.image_shape[1:]
    m.set_grid(overlay=True)
    m.set_grid_image(np.zeros((1, 3 * (h + 1), 3 * w), np.float32), (-1.0, 1.0, -1.0, 1.0))
    assert not ex.map.overlay.tiles.isVisible()  # not tiles of this model's images: not drawn
    m.set_grid_image(np.zeros((1, 3 * h, 3 * w), np.float32), (-1.0, 1.0, -1.0, 1.0))
    assert ex.map.overlay.tiles.isVisible()

def test_reconstructions_and_fixed_samples_refresh_with_new_weights(ex, shapes, qtbot):
    m = ex.model
    m.set_samples(count=4)
    h, w = m.snapshot.image_shape[1:]
    qtbot.waitUntil(lambda: ex.samples.samples_canvas.array() is not None
                    and ex.samples.samples_canvas.array().shape == (1, 2 * (h + 1) + 1, 2 * (w + 1) + 1)
                    and ex.samples.recon_canvas.array() is not None
                    and ex.samples.recon_canvas.array().shape == (1, 2 * (h + 1) + 1, 4 * (w + 1) + 1),
                    timeout=5000)
    recon = ex.samples.recon_canvas.array()
    images = m.examples[:4]
    np.testing.assert_allclose(recon[:, 1:1 + h, 1:1 + w], images[0] / 255.0, atol=1e-6)  # the original
    np.testing.assert_allclose(recon[:, h + 2:2 * h + 2, 1:1 + w],
                               decoder_of(ex).reconstruct(images)[0], atol=1e-6)  # below it, its reconstruction
    before = ex.samples.samples_canvas.array().copy()
    snapshot, _ = trained_like(shapes, seed=1)
    m.set_snapshot(snapshot)
    expected = tile(Decoder.from_snapshot(snapshot).decode(m.sample_latents()), nrow=2, padding=1)
    qtbot.waitUntil(lambda: np.allclose(ex.samples.samples_canvas.array(), expected, atol=1e-6), timeout=5000)
    assert not np.allclose(before, expected)


def test_hidden_views_ask_for_nothing(ex, qtbot):
    ex.traversal.hide()
    qtbot.waitUntil(ex.worker.idle, timeout=5000)
    executed = ex.worker.executed
    ex.model.set_traversal(columns=4)
    ex.model.set_traversal(columns=6)
    qtbot.waitUntil(ex.worker.idle, timeout=5000)
    assert ex.worker.executed == executed
    ex.traversal.show()  # shown again, it catches up
    qtbot.waitUntil(lambda: ex.traversal.canvas.array() is not None
                    and ex.traversal.canvas.array().shape[2] == 6 * (16 + 1) + 1, timeout=5000)
