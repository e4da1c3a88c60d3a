"""The density layer: the map switches from points to the density image above the threshold of
points in view and back below it, the image counts the points in its rectangle and takes their
label colours, and the latent map's toggle, legend and hover keep working with it."""

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint, QPointF
from PySide6.QtGui import QBrush, QColor

from vaegui.core import spatial_index
from vaegui.core.latent import EncodedSet, Projection
from vaegui.core.explorer import ExplorerModel
from vaegui.gui.explorer.density_layer import DensityLayer
from vaegui.gui.explorer.latent_map import LatentMap
from vaegui.gui.point_cloud import PointCloud

RED, BLUE = np.array([255, 0, 0], np.uint8), np.array([0, 0, 255], np.uint8)


@pytest.fixture
def layer(show_widget, qtbot):
    plot = show_widget(pg.PlotWidget(background="w"), 300, 300)
    scatter = PointCloud(size=3)
    plot.getPlotItem().addItem(scatter)
    # A row of points at x = 0, 1, ..., 999: a view from -0.5 to k - 0.5 holds exactly k of them.
    x, y = np.arange(1000, dtype=np.float32), np.zeros(1000, np.float32)
    labels = (x >= 500).astype(np.int64)  # left half red, right half blue
    scatter.set_data(x, y, labels, [QBrush(QColor("red")), QBrush(QColor("blue"))])
    density = DensityLayer(plot.getPlotItem(), scatter, threshold=300)
    density.set_points(x, y, {"labels": labels, "label_colors": np.stack([RED, BLUE])})
    yield plot, scatter, density
    density.wait()


def show_range(plot, x0, x1):
    view = plot.getPlotItem().getViewBox()
    view.setRange(xRange=(x0, x1), yRange=(-1, 1), padding=0)


def test_the_switch_happens_at_the_threshold_in_both_directions(layer, qtbot):
    plot, scatter, density = layer
    show_range(plot, -0.5, 299.5)  # 300 points: not more than the threshold
    assert density.count_in_view() == 300 and not density.showing_density and scatter.opacity() == 1
    with qtbot.waitSignal(density.imageShown, timeout=5000):
        show_range(plot, -0.5, 300.5)  # 301
    assert density.showing_density and scatter.opacity() == 0 and density.image_item.isVisible()
    show_range(plot, -0.5, 299.5)
    assert not density.showing_density and scatter.opacity() == 1 and not density.image_item.isVisible()
    # With the index built, the count reads it and agrees.
    density.set_index(spatial_index.SpatialIndex(np.stack([scatter.positions()[0], scatter.positions()[1]], 1)))
    show_range(plot, 99.5, 400.6)
    assert density.count_in_view() == 301 and density.showing_density
    # Points hidden through the legend do not count.
    density.set_allowed(np.arange(1000) % 2 == 0)
    assert density.count_in_view() == 151 and not density.showing_density  # 100, 102, ..., 400


def test_the_image_counts_the_points_in_its_rectangle_in_their_colours(layer, qtbot):
    plot, scatter, density = layer
    with qtbot.waitSignal(density.imageShown, timeout=5000):
        show_range(plot, -10, 1010)
    image = density.image
    x, y = scatter.positions()
    x0, x1, y0, y1 = image.rect
    assert x0 < -10 and x1 > 1010  # the view and a margin
    h, w = image.counts.shape
    hist, _, _ = np.histogram2d(x, y, bins=(w, h), range=((x0, x1), (y0, y1)))
    np.testing.assert_array_equal(image.counts, hist.T)
    filled = image.counts > 0
    cols = np.nonzero(filled)[1]
    centres = x0 + (cols + 0.5) * (x1 - x0) / w
    colours = image.rgba[filled][:, :3]
    assert np.all(colours[centres < 490] == RED) and np.all(colours[centres > 510] == BLUE)
    # On screen: the image is drawn where the points are, in their colour.
    grab = plot.grab().toImage()
    view = plot.getPlotItem().getViewBox()
    for px, colour in ((100.0, (255, 0, 0)), (900.0, (0, 0, 255))):
        pos = plot.mapFromScene(view.mapViewToScene(QPointF(px, 0.0)))
        near = [grab.pixelColor(pos.x() + dx, pos.y() + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
        rgb = min((np.array([c.red(), c.green(), c.blue()]) for c in near), key=lambda c: c.sum())
        # Blended over white by its strength: the colour's channel stays, the others drop.
        assert rgb[np.argmax(colour)] >= 200 and rgb.min() < 200, rgb


def test_the_toggle_forces_points_or_density(layer, qtbot):
    plot, scatter, density = layer
    show_range(plot, -10, 1010)
    assert density.showing_density
    density.set_mode("points")
    assert not density.showing_density and scatter.opacity() == 1
    show_range(plot, 0, 10)
    with qtbot.waitSignal(density.imageShown, timeout=5000):
        density.set_mode("density")
    assert density.showing_density
    with pytest.raises(ValueError, match="not one of"):
        density.set_mode("tiles")


def big_map(n: int) -> EncodedSet:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, n)
    latents = (rng.normal(size=(n, 2)) + 4 * labels[:, None]).astype(np.float32)
    projection = Projection.fit(latents)
    images = np.zeros((n, 1, 8, 8), np.uint8)
    images[:, 0, 0, 0] = np.arange(n) % 256
    return EncodedSet(latents=latents, xy=projection.transform(latents), projection=projection,
                      labels=labels, class_names=("a", "b", "c"), images=images)


def test_latent_map_draws_density_when_crowded_and_keeps_legend_hover_and_toggle(show_widget, qtbot):
    latent_map = show_widget(LatentMap(ExplorerModel()), 640, 520)
    latent_map.density.threshold = 2000
    enc = big_map(5000)
    with qtbot.waitSignal(latent_map.density.imageShown, timeout=5000):
        latent_map.model.set_encoded(enc)
    assert latent_map.density.showing_density and latent_map.legend.isVisible()
    assert latent_map.density.image.points == 5000
    # The index comes from a worker; hover then finds the point under the cursor through it.
    qtbot.waitUntil(lambda: spatial_index.plane_index(enc, build=False) is not None, timeout=5000)
    assert latent_map._nearest_point(QPoint(-100, -100)) is None
    view = latent_map.plot_widget().getPlotItem().getViewBox()
    i = int(np.argmax(enc.xy[:, 0]))  # the rightmost point: no other within the hover radius there? any is fine
    pos = latent_map.plot_widget().mapFromScene(view.mapViewToScene(QPointF(*map(float, enc.xy[i]))))
    found = latent_map._nearest_point(pos)
    d = np.hypot(*((enc.xy - enc.xy[found]) / np.array(view.viewPixelSize())).T)
    assert found is not None and d[i] <= 2 * 6
    # Zoomed in on a few points: points again.
    view.setRange(xRange=(-0.2, 0.2), yRange=(-0.2, 0.2), padding=0)
    assert not latent_map.density.showing_density and latent_map.scatter.opacity() == 1
    latent_map.draw_combo.setCurrentText("density")
    assert latent_map.density.showing_density
    latent_map.draw_combo.setCurrentText("points")
    view.autoRange()
    assert not latent_map.density.showing_density
    latent_map.density.wait()


def test_a_density_map_exports_to_png_svg_and_pdf(show_widget, qtbot, tmp_path):
    from xml.etree import ElementTree

    from PySide6.QtGui import QImage

    from vaegui.gui.export.plot_export import pdf_bytes, png_bytes, svg_bytes

    latent_map = show_widget(LatentMap(ExplorerModel()), 640, 520)
    latent_map.density.threshold = 2000
    with qtbot.waitSignal(latent_map.density.imageShown, timeout=5000):
        latent_map.model.set_encoded(big_map(5000))
    item = latent_map.plot_widget().getPlotItem()
    png = QImage.fromData(png_bytes(item, 1.0))
    assert not png.isNull() and png.width() > 300
    # The first class's colour (Tol's #332288) is in the figure: the density image was drawn.
    pixels = [png.pixelColor(x, y) for x in range(0, png.width(), 3) for y in range(0, png.height(), 3)]
    assert any(c.blue() > 120 and c.red() < 120 and c.green() < 90 for c in pixels)
    svg = ElementTree.fromstring(svg_bytes(item, "density"))
    tags = [e.tag.rsplit("}", 1)[-1] for e in svg.iter()]
    assert tags.count("image") >= 1  # the density, embedded
    assert "text" in tags or "path" in tags  # the axes, as vectors
    assert tags.count("ellipse") + tags.count("circle") < 100  # not the 5,000 points
    pdf = pdf_bytes(item, "density")
    assert pdf.startswith(b"%PDF") and b"/Subtype /Image" in pdf and pdf.rstrip().endswith(b"%%EOF")
    latent_map.density.wait()


def test_maps_that_follow_each_other_quickly_build_only_the_last_ones_index(show_widget, qtbot):
    import dataclasses

    latent_map = show_widget(LatentMap(ExplorerModel()), 400, 300)
    base = big_map(3000)
    # As the history's playback: a new map (moved points) every frame.
    maps = [dataclasses.replace(base, xy=base.xy + k * 0.01, latents=base.latents + k * 0.01) for k in range(5)]
    for enc in maps:
        latent_map.model.set_encoded(enc)
    qtbot.waitUntil(lambda: spatial_index.plane_index(maps[-1], build=False) is not None, timeout=5000)
    assert all(spatial_index.plane_index(enc, build=False) is None for enc in maps[:-1])
    latent_map.wait_for_workers()
