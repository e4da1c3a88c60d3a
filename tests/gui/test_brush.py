"""Brushing on the latent map: Ctrl-drag lassos, Ctrl-Shift-drag draws a rectangle, a plain drag
still decodes; the selection is drawn (also over the density image), survives zoom, and the bar
under the map counts it, shows its images and exports it."""

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from vaegui.core.explorer import ExplorerModel
from vaegui.core.latent import EncodedSet, Projection
from vaegui.core.selection import inside_polygon
from vaegui.gui.explorer.brush import HIGHLIGHT_COLOUR
from vaegui.gui.explorer.latent_map import LatentMap

CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier


@pytest.fixture(scope="module")
def enc():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 3000)
    z = (rng.normal(size=(3000, 2)) + labels[:, None]).astype(np.float32)
    images = rng.integers(0, 256, (3000, 1, 6, 6), dtype=np.uint8)
    return EncodedSet(latents=z, xy=z, projection=Projection.fit(z), labels=labels,
                      class_names=("circle", "square", "triangle"), images=images)


@pytest.fixture
def latent_map(show_widget, enc):
    widget = show_widget(LatentMap(ExplorerModel()), 640, 520)
    widget.model.set_encoded(enc)
    for _ in range(3):
        QApplication.processEvents()
    return widget


def mouse(widget, kind, pos: QPoint, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else Qt.MouseButton.LeftButton
    buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else Qt.MouseButton.LeftButton
    viewport = widget.plot_widget().viewport()
    QApplication.sendEvent(viewport, QMouseEvent(kind, QPointF(pos), QPointF(viewport.mapToGlobal(pos)),
                                                 button, buttons, modifiers))


def drag(widget, points, modifiers=Qt.KeyboardModifier.NoModifier) -> np.ndarray:
    """Drag through viewport points; returns the plane points they fell on."""
    view = widget.plot_widget().getPlotItem().getViewBox()
    kinds = [QEvent.Type.MouseButtonPress] + [QEvent.Type.MouseMove] * (len(points) - 2) + [QEvent.Type.MouseButtonRelease]
    plane = []
    for kind, p in zip(kinds, points):
        if kind != QEvent.Type.MouseButtonRelease:
            q = view.mapSceneToView(QPointF(widget.plot_widget().mapToScene(p)))
            plane.append((q.x(), q.y()))
        mouse(widget, kind, p, modifiers)
    return np.array(plane)


def lasso_points(widget) -> list[QPoint]:
    """A non-convex outline around the middle of the plot, in viewport pixels."""
    c = widget.plot_widget().viewport().rect().center()
    offsets = [(-90, -60), (-20, -80), (0, -20), (30, -85), (100, -40), (80, 50), (-10, 90), (-100, 40), (-95, -55)]
    return [c + QPoint(dx, dy) for dx, dy in offsets]


def test_ctrl_drag_selects_the_points_in_the_lasso_and_does_not_decode(latent_map, enc):
    plane = drag(latent_map, lasso_points(latent_map), CTRL)
    sel = latent_map.brush.selection
    # The outline went through every point of the drag (the release lies on the last move).
    assert np.allclose(sel.outline, plane, atol=1e-6)
    expected = np.flatnonzero(inside_polygon(enc.xy[:, 0], enc.xy[:, 1], plane))
    assert len(expected) > 100 and np.array_equal(sel.indices, expected)
    assert latent_map.model.point is None  # no decode
    # The bar counts it by class; the highlight draws it.
    text = latent_map.selection_bar.summary.text()
    assert latent_map.selection_bar.isVisible() and text.startswith(f"{len(expected):,} selected")
    for k, name in enumerate(enc.class_names):
        n = int(np.sum(enc.labels[expected] == k))
        if n:
            assert f"{name} {n:,}" in text
    x, _ = latent_map.brush.points.positions()
    assert np.array_equal(x, enc.xy[expected, 0])


def test_plain_drag_still_decodes_and_selects_nothing(latent_map):
    drag(latent_map, lasso_points(latent_map)[:4])
    assert latent_map.model.point is not None
    assert latent_map.brush.selection is None and not latent_map.selection_bar.isVisible()


def test_ctrl_shift_drag_selects_a_rectangle(latent_map, enc):
    c = latent_map.plot_widget().viewport().rect().center()
    plane = drag(latent_map, [c + QPoint(-60, -40), c + QPoint(0, 0), c + QPoint(70, 50)], CTRL | SHIFT)
    (x0, x1), (y0, y1) = np.sort(plane[[0, -1], 0]), np.sort(plane[[0, -1], 1])
    expected = np.flatnonzero((enc.xy[:, 0] >= x0) & (enc.xy[:, 0] <= x1) & (enc.xy[:, 1] >= y0) & (enc.xy[:, 1] <= y1))
    assert len(expected) > 50 and np.array_equal(latent_map.brush.selection.indices, expected)


def test_selection_survives_zoom_and_escape_clears_it(latent_map, qtbot):
    drag(latent_map, lasso_points(latent_map), CTRL)
    sel = latent_map.brush.selection
    outline = latent_map.brush.outline.getData()
    view = latent_map.plot_widget().getPlotItem().getViewBox()
    view.scaleBy((0.5, 0.5))
    view.translateBy(x=0.3)
    QApplication.processEvents()
    assert latent_map.brush.selection is sel
    assert np.array_equal(latent_map.brush.outline.getData()[0], outline[0])
    assert len(latent_map.brush.points) == len(sel.indices)
    qtbot.keyClick(latent_map, Qt.Key.Key_Escape)
    assert latent_map.brush.selection is None and len(latent_map.brush.points) == 0
    assert latent_map.brush.outline.getData()[0] is None or not len(latent_map.brush.outline.getData()[0])
    assert not latent_map.selection_bar.isVisible()


def test_selection_is_drawn_over_the_density_image(latent_map, qtbot, enc):
    latent_map.draw_combo.setCurrentText("density")
    qtbot.waitUntil(lambda: latent_map.density.image_item.isVisible(), timeout=5000)
    drag(latent_map, lasso_points(latent_map), CTRL)
    sel = latent_map.brush.selection
    assert len(sel.indices) > 100
    for item in (latent_map.brush.points, latent_map.brush.outline):
        assert item.isVisible() and item.zValue() > latent_map.density.image_item.zValue()
    # The highlight is on screen: the selected point's pixel is the highlight's colour, which
    # the density image alone does not give it.
    view = latent_map.plot_widget().getPlotItem().getViewBox()
    x, y = enc.xy[sel.indices[len(sel.indices) // 2]]
    pos = latent_map.plot_widget().mapFromScene(view.mapViewToScene(QPointF(float(x), float(y))))
    with_highlight = latent_map.plot_widget().grab().toImage().pixelColor(pos)
    latent_map.brush.points.setVisible(False)
    without = latent_map.plot_widget().grab().toImage().pixelColor(pos)
    assert with_highlight.name() == HIGHLIGHT_COLOUR and without.name() != HIGHLIGHT_COLOUR
    latent_map.density.wait()



def test_bar_exports_the_indices_and_shows_images(latent_map, enc, tmp_path):
    drag(latent_map, lasso_points(latent_map), CTRL)
    sel = latent_map.brush.selection
    bar = latent_map.selection_bar
    with np.load(bar.export_to(tmp_path / "picked.npz")) as f:
        assert np.array_equal(f["index"], sel.indices)
    grid = bar.grid_image()
    assert grid.shape[0] == 1 and grid.max() <= 1.0
    # The first tile is the first selected image.
    np.testing.assert_allclose(grid[0, 2:8, 2:8], enc.images[sel.indices[0], 0] / 255.0, atol=1e-6)
    bar.images_button.click()
    assert bar.images_dialog is not None and bar.images_dialog.isVisible()
    bar.images_dialog.close()


def test_next_epochs_map_keeps_the_selected_images_and_another_set_clears_them(latent_map, enc):
    drag(latent_map, lasso_points(latent_map), CTRL)
    sel = latent_map.brush.selection
    moved = enc.xy * 0.5 + 1.0  # the same images, encoded by later weights
    latent_map.model.set_encoded(EncodedSet(latents=moved, xy=moved, projection=enc.projection, labels=enc.labels,
                                            class_names=enc.class_names, images=enc.images, step=7))
    kept = latent_map.brush.selection
    assert np.array_equal(kept.indices, sel.indices) and len(kept.outline) == 0  # the old outline is gone
    x, y = latent_map.brush.points.positions()
    assert np.array_equal(x, moved[sel.indices, 0]) and np.array_equal(y, moved[sel.indices, 1])
    assert latent_map.selection_bar.isVisible()
    fewer = moved[:100]
    latent_map.model.set_encoded(EncodedSet(latents=fewer, xy=fewer, projection=enc.projection,
                                            labels=enc.labels[:100], class_names=enc.class_names,
                                            images=enc.images[:100]))
    assert latent_map.brush.selection is None and not latent_map.selection_bar.isVisible()


def test_a_big_selection_halos_an_even_share_of_its_points(latent_map, enc, monkeypatch):
    from vaegui.gui.explorer import brush

    monkeypatch.setattr(brush, "HIGHLIGHT_MAX", 40)
    drag(latent_map, lasso_points(latent_map), CTRL)
    sel = latent_map.brush.selection
    assert len(sel.indices) > 400  # all selected, counted and exported ...
    x, y = latent_map.brush.points.positions()
    assert len(x) == 40  # ... but 40 halos, from the first selected point to the last
    assert (x[0], y[0]) == tuple(enc.xy[sel.indices[0]]) and (x[-1], y[-1]) == tuple(enc.xy[sel.indices[-1]])
