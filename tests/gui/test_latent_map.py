"""LatentMap: scatter, colouring, axes, picking by click and drag, keys, hover previews, 70,000 points."""

import numpy as np
import pytest
import torch
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from vaegui.core.config import ModelConfig
from vaegui.core.dataset_loader import make_shapes
from vaegui.core.latent import EncodedSet, Projection
from vaegui.core.decoder import encode_set
from vaegui.core.model import VAE
from vaegui.core.explorer import ExplorerModel
from vaegui.gui.explorer.latent_map import HOVER_RADIUS_PX, LatentMap

from layout_checks import axis_labels


@pytest.fixture(scope="module")
def shapes():
    return make_shapes(n_train=200, n_test=100)


def encode(data, latent_dim: int) -> EncodedSet:
    torch.manual_seed(latent_dim)
    model = VAE(ModelConfig(family="mlp", latent_dim=latent_dim, hidden=16), data.image_shape)
    return encode_set(model, data, "test", step=42)


@pytest.fixture(scope="module")
def enc2(shapes):
    return encode(shapes, 2)


@pytest.fixture(scope="module")
def enc5(shapes):
    return encode(shapes, 5)


@pytest.fixture
def latent_map(show_widget):
    return show_widget(LatentMap(ExplorerModel()), 640, 520)


def settle(widget: LatentMap) -> None:
    """Let pending layout changes land, so view <-> widget mappings are current."""
    for _ in range(3):
        QApplication.processEvents()


def viewport_pos(widget: LatentMap, xy) -> QPoint:
    """Widget (viewport) position of the plane point xy."""
    view = widget.plot_widget().getPlotItem().getViewBox()
    scene = view.mapViewToScene(QPointF(float(xy[0]), float(xy[1])))
    return widget.plot_widget().mapFromScene(scene)


def pixel_size(widget: LatentMap) -> np.ndarray:
    return np.array(widget.plot_widget().getPlotItem().getViewBox().viewPixelSize())


def brushes(widget: LatentMap) -> list:
    """Each point's brush."""
    palette = widget.scatter.brushes()
    return [palette[k] for k in widget.scatter.colours()]


def test_exact_map_shows_points_axes_and_readout(latent_map, enc2):
    latent_map.model.set_encoded(enc2)
    item = latent_map.plot_widget().getPlotItem()
    x, y = latent_map.scatter.positions()
    assert np.array_equal(x, enc2.xy[:, 0]) and np.array_equal(y, enc2.xy[:, 1])
    assert item.getAxis("bottom").labelText == "z1" and item.getAxis("left").labelText == "z2"
    assert "L = 2" in item.titleLabel.text
    assert "100 test images" in latent_map.readout.text() and "42" in latent_map.readout.text()
    assert latent_map.encoded is enc2


def test_pca_map_labels_explained_variance(latent_map, enc5):
    latent_map.model.set_encoded(enc5)
    item = latent_map.plot_widget().getPlotItem()
    share = 100 * enc5.projection.explained
    assert item.getAxis("bottom").labelText == f"PC1 ({share[0]:.0f}% var)"
    assert item.getAxis("left").labelText == f"PC2 ({share[1]:.0f}% var)"
    assert "PCA" in item.titleLabel.text and "L = 5" in item.titleLabel.text


def moved(enc: EncodedSet, xy: np.ndarray, step: int) -> EncodedSet:
    """The next epoch's map of the same images: the points at ``xy``."""
    return EncodedSet(xy, xy, Projection.fit(xy), enc.labels, enc.class_names, enc.images, step=step)


@pytest.mark.parametrize("fixture", ["enc2", "enc5"])
def test_the_first_map_finds_room_made_for_its_axis_labels(latent_map, request, fixture):
    """A wider axis would lay the plot out again: the first map would be painted twice."""
    axis = latent_map.plot_widget().getPlotItem().getAxis("left")
    settle(latent_map)
    width = axis.width()
    latent_map.model.set_encoded(request.getfixturevalue(fixture))
    settle(latent_map)
    assert axis.width() == width and axis.labelText.startswith(("z2", "PC2"))


def test_each_epochs_map_keeps_the_range_and_axes_while_its_points_fit(latent_map, enc2):
    """A new map repaints the points, not the axes, unless the points outgrow the view."""
    view = latent_map.plot_widget().getPlotItem().getViewBox()
    bottom = latent_map.plot_widget().getPlotItem().getAxis("bottom")
    latent_map.model.set_encoded(enc2)
    settle(latent_map)
    changes = []
    view.sigRangeChanged.connect(lambda *_: changes.append(1))
    rng = np.random.default_rng(0)
    xy = enc2.xy.astype(np.float32)
    drawing = bottom.picture  # pyqtgraph's cached drawing of the axis, dropped to lay it out again
    assert drawing is not None
    for step in range(1, 6):
        latent_map.model.set_encoded(moved(enc2, xy + 0.005 * rng.standard_normal(xy.shape).astype(np.float32), step))
        settle(latent_map)
    assert not changes and bottom.picture is drawing
    latent_map.model.set_encoded(moved(enc2, 3 * xy, 6))  # points spread out: the view follows
    settle(latent_map)
    (x0, x1), (y0, y1) = view.viewRange()
    assert x0 <= (3 * xy[:, 0]).min() and (3 * xy[:, 0]).max() <= x1
    assert y0 <= (3 * xy[:, 1]).min() and (3 * xy[:, 1]).max() <= y1


def mouse(widget: LatentMap, kind, pos: QPoint, buttons=Qt.MouseButton.LeftButton,
          modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """A real mouse event delivered to the map's viewport through Qt. (QTest.mouseMove sends
    no buttons, so a drag needs its moves made by hand.)"""
    button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else Qt.MouseButton.LeftButton
    if kind == QEvent.Type.MouseButtonRelease:
        buttons = Qt.MouseButton.NoButton
    viewport = widget.plot_widget().viewport()
    event = QMouseEvent(kind, QPointF(pos), QPointF(viewport.mapToGlobal(pos)), button, buttons, modifiers)
    QApplication.sendEvent(viewport, event)


def click(widget: LatentMap, pos: QPoint) -> None:
    mouse(widget, QEvent.Type.MouseButtonPress, pos)
    mouse(widget, QEvent.Type.MouseButtonRelease, pos)


@pytest.mark.parametrize("fixture", ["enc2", "enc5"])
def test_click_picks_latent_of_plane_point(latent_map, request, fixture):
    enc = request.getfixturevalue(fixture)
    latent_map.model.set_encoded(enc)
    settle(latent_map)
    target = enc.xy.mean(0) + 0.1 * enc.xy.std(0)  # a plane point between the data points
    click(latent_map, viewport_pos(latent_map, target))
    z = latent_map.model.point
    assert z.shape == (enc.latents.shape[1],) and z.dtype == np.float32
    # The marker sits where the click landed (whole pixels), and z is exactly its latent vector.
    assert np.all(np.abs(latent_map.marker_xy - target) <= pixel_size(latent_map))
    assert np.allclose(z, enc.projection.inverse(latent_map.marker_xy)[0], atol=1e-5)
    assert latent_map.model.point_on_plane
    if fixture == "enc2":
        assert np.all(np.abs(z - target) <= pixel_size(latent_map))


def test_click_on_a_point_picks_it(latent_map, enc2):
    """A click on a point (not between points) is a pick too."""
    latent_map.model.set_encoded(enc2)
    settle(latent_map)
    click(latent_map, viewport_pos(latent_map, enc2.xy[7]))
    assert np.all(np.abs(latent_map.model.point - enc2.xy[7]) <= pixel_size(latent_map))


def test_click_without_data_or_off_the_plot_does_nothing(latent_map, enc2):
    viewport = latent_map.plot_widget().viewport()
    click(latent_map, viewport.rect().center())
    latent_map.model.set_encoded(enc2)
    settle(latent_map)
    click(latent_map, QPoint(10, viewport.height() // 2))  # on the left axis, outside the view box
    assert latent_map.model.point is None and latent_map.marker_xy is None


def test_drag_moves_the_point_on_every_move(latent_map, enc2):
    latent_map.model.set_encoded(enc2)
    settle(latent_map)
    view = latent_map.plot_widget().getPlotItem().getViewBox()
    before = np.array(view.viewRange())
    start = latent_map.plot_widget().viewport().rect().center()
    seen = []
    latent_map.model.events.point.connect(lambda: seen.append(latent_map.model.point.copy()))
    mouse(latent_map, QEvent.Type.MouseButtonPress, start)
    for step in range(1, 6):
        pos = start + QPoint(12 * step, -5 * step)
        mouse(latent_map, QEvent.Type.MouseMove, pos)
        p = view.mapSceneToView(QPointF(latent_map.plot_widget().mapToScene(pos)))
        np.testing.assert_allclose(latent_map.model.point, [p.x(), p.y()], atol=1e-5)
    mouse(latent_map, QEvent.Type.MouseButtonRelease, start + QPoint(60, -25))
    assert len(seen) == 6  # the press and every move
    assert np.array_equal(np.array(view.viewRange()), before)  # a drag does not pan
    mouse(latent_map, QEvent.Type.MouseMove, start)  # no button held: a hover, not a pick
    assert len(seen) == 6


def test_shift_drag_pans_without_picking(latent_map, enc2, qtbot):
    latent_map.model.set_encoded(enc2)
    settle(latent_map)
    view = latent_map.plot_widget().getPlotItem().getViewBox()
    before = np.array(view.viewRange())
    start = latent_map.plot_widget().viewport().rect().center()
    shift = Qt.KeyboardModifier.ShiftModifier
    mouse(latent_map, QEvent.Type.MouseButtonPress, start, modifiers=shift)
    for step in range(1, 6):
        mouse(latent_map, QEvent.Type.MouseMove, start + QPoint(12 * step, 0), modifiers=shift)
    mouse(latent_map, QEvent.Type.MouseButtonRelease, start + QPoint(60, 0), modifiers=shift)
    assert latent_map.model.point is None
    after = np.array(view.viewRange())
    assert after[0, 0] < before[0, 0]  # dragged right: the view moved left over the plane


def test_interpolation_mode_clicks_set_a_then_b_and_handles_drag(latent_map, enc2):
    m = latent_map.model
    m.set_encoded(enc2)
    settle(latent_map)
    m.set_click_target("a")
    pa, pb = enc2.xy[3], enc2.xy[11]
    click(latent_map, viewport_pos(latent_map, pa))
    click(latent_map, viewport_pos(latent_map, pb))
    px = pixel_size(latent_map)
    assert np.all(np.abs(m.interpolation.a - pa) <= px) and np.all(np.abs(m.interpolation.b - pb) <= px)
    assert m.click_target == "point" and m.point is None
    # The path is drawn between them, and a press on B drags B.
    x, y = latent_map.overlay.path.getData()
    assert np.allclose([x[0], y[0]], m.interpolation.a) and np.allclose([x[-1], y[-1]], m.interpolation.b)
    target = (pa + pb) / 2
    mouse(latent_map, QEvent.Type.MouseButtonPress, viewport_pos(latent_map, m.interpolation.b))
    mouse(latent_map, QEvent.Type.MouseMove, viewport_pos(latent_map, target))
    mouse(latent_map, QEvent.Type.MouseButtonRelease, viewport_pos(latent_map, target))
    assert np.all(np.abs(m.interpolation.b - target) <= px) and m.point is None


def test_keys_nudge_the_point_and_pick_end_points_while_hovering(latent_map, enc2, qtbot):
    m = latent_map.model
    m.set_encoded(enc2)
    settle(latent_map)
    click(latent_map, viewport_pos(latent_map, enc2.xy.mean(0)))
    before = m.point.copy()
    (x0, x1), _ = latent_map.plot_widget().getPlotItem().getViewBox().viewRange()
    qtbot.keyClick(latent_map, Qt.Key.Key_Right)
    qtbot.keyClick(latent_map, Qt.Key.Key_Up)
    np.testing.assert_allclose(m.point - before, [0.01 * (x1 - x0)] * 2, rtol=1e-4)
    index = isolated_point(enc2, latent_map)
    qtbot.mouseMove(latent_map.plot_widget().viewport(), viewport_pos(latent_map, enc2.xy[index]))
    qtbot.waitUntil(latent_map.hover_card.isVisible, timeout=2000)
    qtbot.keyClick(latent_map, Qt.Key.Key_B)
    np.testing.assert_array_equal(m.interpolation.b, enc2.latents[index])


def test_the_grid_region_follows_pan_and_zoom(latent_map, enc2, qtbot):
    latent_map.model.set_encoded(enc2)
    settle(latent_map)
    view = latent_map.plot_widget().getPlotItem().getViewBox()
    view.setRange(xRange=(-1, 1), yRange=(-0.5, 0.5), padding=0)
    qtbot.waitUntil(lambda: latent_map.model.grid.region is not None
                    and np.allclose(latent_map.model.grid.region, np.ravel(view.viewRange())), timeout=2000)


def isolated_point(enc: EncodedSet, widget: LatentMap) -> int:
    """A point with no neighbour within twice the hover radius, in screen pixels."""
    pixels = enc.xy / pixel_size(widget)
    d = np.linalg.norm(pixels[:, None] - pixels[None], axis=2)
    np.fill_diagonal(d, np.inf)
    return int(np.argmax(d.min(1)))


def test_hover_previews_point_image_and_label(latent_map, enc2, qtbot):
    latent_map.model.set_encoded(enc2)
    settle(latent_map)
    index = isolated_point(enc2, latent_map)
    viewport, card = latent_map.plot_widget().viewport(), latent_map.hover_card
    qtbot.mouseMove(viewport, viewport_pos(latent_map, enc2.xy[index]) + QPoint(2, -1))
    qtbot.waitUntil(card.isVisible, timeout=2000)
    name = enc2.class_names[enc2.labels[index]]
    assert name in card.caption.text() and f"#{index}" in card.caption.text()
    preview = card.image.pixmap().toImage()
    assert (preview.width(), preview.height()) == (28 * 4, 28 * 4)
    # Enlarged without smoothing: every 4x4 block is one source pixel.
    grey = np.array([[preview.pixelColor(4 * c + 3, 4 * r).red() for c in range(28)] for r in range(28)])
    assert np.array_equal(grey, enc2.images[index, 0])

    # Far from every point (a corner of the view): the card goes away.
    (x0, _), (_, y1) = latent_map.plot_widget().getPlotItem().getViewBox().viewRange()
    corner = np.array([x0, y1]) + pixel_size(latent_map) * [3, -3]
    assert np.min(np.hypot(*((enc2.xy - corner) / pixel_size(latent_map)).T)) > HOVER_RADIUS_PX
    qtbot.mouseMove(viewport, viewport_pos(latent_map, corner))
    qtbot.waitUntil(lambda: not card.isVisible(), timeout=2000)


def test_colour_by_factor_uses_bounded_palette_and_colour_bar(latent_map, enc2):
    latent_map.model.set_encoded(enc2)
    combo = latent_map.colour_combo
    assert [combo.itemText(i) for i in range(combo.count())] == ["label", "shape", "scale", "rotation", "x", "y"]
    by_label = brushes(latent_map)
    assert len({id(b) for b in by_label}) == 3
    assert [label.text for _, label in latent_map.legend.items] == list(enc2.class_names)
    assert latent_map.legend.isVisible() and not latent_map.colour_bar.isVisible()

    combo.setCurrentText("x")
    by_x = brushes(latent_map)
    assert 10 < len({id(b) for b in by_x}) <= 64
    assert by_x != by_label
    assert latent_map.colour_bar.isVisible() and not latent_map.legend.isVisible()
    x = enc2.factors["x"]
    assert latent_map.colour_bar.levels() == pytest.approx((x.min(), x.max()))
    # Brushes follow the factor: the smallest and largest x get the two ends of the map.
    lo, hi = by_x[int(np.argmin(x))].color(), by_x[int(np.argmax(x))].color()
    assert lo != hi

    combo.setCurrentText("label")
    assert [b.color() for b in brushes(latent_map)] == [b.color() for b in by_label]
    assert latent_map.legend.isVisible() and not latent_map.colour_bar.isVisible()


def test_clicking_a_legend_entry_hides_that_class(latent_map, enc2):
    latent_map.model.set_encoded(enc2)
    settle(latent_map)
    index = isolated_point(enc2, latent_map)
    pos = viewport_pos(latent_map, enc2.xy[index])
    assert latent_map._nearest_point(pos) == index
    sample, _ = latent_map.legend.items[enc2.labels[index]]
    sample.item.setVisible(False)  # what a click on the legend entry does
    visible = latent_map.scatter.shown()
    assert np.array_equal(visible, enc2.labels != enc2.labels[index])
    assert latent_map._nearest_point(pos) is None  # hidden points are not hovered
    latent_map.model.set_encoded(enc2)  # the next epoch's map: that class stays hidden
    np.testing.assert_array_equal(latent_map.scatter.shown(), visible)
    sample.item.setVisible(True)
    assert latent_map.scatter.shown().all()
    sample.item.setVisible(False)
    latent_map.model.clear()
    latent_map.model.set_encoded(enc2)  # a fresh map lists and shows every class
    assert latent_map.scatter.shown().all() and all(s.item.isVisible() for s, _ in latent_map.legend.items)


def test_new_encoding_keeps_user_zoom_unless_the_map_kind_changes(latent_map, enc2, enc5):
    latent_map.model.set_encoded(enc2)
    view = latent_map.plot_widget().getPlotItem().getViewBox()
    view.setRange(xRange=(0.1, 0.2), yRange=(0.1, 0.2), padding=0)
    settle(latent_map)
    zoomed = np.array(view.viewRange())
    latent_map.model.set_encoded(enc2)
    settle(latent_map)
    assert np.allclose(view.viewRange(), zoomed)
    latent_map.model.set_encoded(enc5)
    settle(latent_map)
    assert not np.allclose(view.viewRange(), zoomed)


def test_clear_forgets_points_and_marker(latent_map, enc2):
    latent_map.model.set_encoded(enc2)
    latent_map.model.pick_plane(np.array([0.5, -0.5]))
    assert np.allclose(latent_map.marker_xy, [0.5, -0.5])
    latent_map.model.clear()
    assert latent_map.encoded is None and latent_map.marker_xy is None
    assert len(latent_map.scatter) == 0 and latent_map.colour_combo.count() == 1


def test_seventy_thousand_points(latent_map):
    rng = np.random.default_rng(0)
    n = 70_000
    z = rng.normal(size=(n, 2)).astype(np.float32)
    projection = Projection.fit(z)
    enc = EncodedSet(z, projection.transform(z), projection, rng.integers(0, 10, n),
                     tuple(str(k) for k in range(10)), np.zeros((n, 1, 28, 28), np.uint8), split="train")
    latent_map.model.set_encoded(enc)
    assert len(latent_map.scatter) == n and len(latent_map.scatter.brushes()) == 10
    np.testing.assert_array_equal(latent_map.scatter.colours(), enc.labels)
    assert "70,000 training images" in latent_map.readout.text()
    latent_map.grab()  # renders


def test_negative_ticks_carry_a_true_minus_sign(latent_map, enc2):
    latent_map.model.set_encoded(enc2)
    settle(latent_map)
    plot = latent_map.plot_widget().getPlotItem()
    plot.getViewBox().setRange(xRange=(-3, 3), yRange=(-3, 3), padding=0)
    settle(latent_map)
    for side in ("left", "bottom"):
        texts = [t for _, t in axis_labels(plot.getAxis(side))]
        negative = [t for t in texts if t.startswith("\u2212")]
        assert negative and not any("-" in t for t in texts), texts
        # They read as the numbers they are.
        assert all(float(t.replace("\u2212", "-")) < 0 for t in negative)
