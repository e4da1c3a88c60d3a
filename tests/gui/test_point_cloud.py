"""PointCloud paints each shown point, in its colour, where the view maps it, and reports the
bounds a ViewBox auto-ranges to."""

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QBrush, QColor

from vaegui.gui.point_cloud import PointCloud

RED, BLUE = QColor("#ff0000"), QColor("#0000ff")


@pytest.fixture
def plot(show_widget):
    return show_widget(pg.PlotWidget(background="w"), 300, 300)


def pixel(plot, image, x, y) -> QColor:
    """The colour the grab shows at data point (x, y)."""
    scene = plot.getPlotItem().getViewBox().mapViewToScene(QPointF(x, y))
    pos = plot.mapFromScene(scene) + plot.viewport().pos()
    dpr = image.devicePixelRatio()  # the grab has device pixels (2 per point on a 2x screen)
    return image.pixelColor(round(pos.x() * dpr), round(pos.y() * dpr))


def test_points_are_drawn_in_their_colours_and_hidden_ones_are_not(plot):
    cloud = PointCloud()
    plot.addItem(cloud)
    x, y = np.array([0.0, 10.0, 0.0, 10.0, np.nan]), np.array([0.0, 0.0, 10.0, 10.0, 5.0])
    cloud.set_data(x, y, np.array([0, 1, 0, 3, 0]), [QBrush(RED), QBrush(BLUE)], size=9)
    plot.getPlotItem().getViewBox().setRange(xRange=(-2, 12), yRange=(-2, 12), padding=0)
    image = plot.grab().toImage()
    x, y = x[:4], y[:4]  # the fifth point, not a number, is not drawn anywhere
    assert [pixel(plot, image, *p) for p in zip(x, y)] == [RED, BLUE, RED, BLUE]  # 3 wraps to 1
    assert pixel(plot, image, 5.0, 5.0) == QColor("white")  # nothing between them
    cloud.set_shown(np.array([True, False, True, True, True]))
    cloud.set_colours(np.array([1, 1, 1, 0, 0]), [QBrush(RED), QBrush(BLUE)])
    image = plot.grab().toImage()
    assert [pixel(plot, image, *p) for p in zip(x, y)] == [BLUE, QColor("white"), BLUE, RED]


def test_bounds_follow_the_shown_points(plot):
    cloud = PointCloud()
    assert cloud.dataBounds(0) == (None, None) and cloud.boundingRect().isNull()
    cloud.set_data(np.array([-1.0, 2.0, 5.0]), np.array([3.0, 4.0, np.nan]), np.zeros(3, int),
                   [QBrush(RED)])
    assert cloud.dataBounds(0) == (-1.0, 2.0) and cloud.dataBounds(1) == (3.0, 4.0)  # NaN left out
    assert cloud.dataBounds(0, orthoRange=(3.5, 10)) == (2.0, 2.0)
    cloud.set_shown(np.array([False, True, True]))
    assert cloud.dataBounds(0) == (2.0, 2.0)
    plot.addItem(cloud)
    plot.getPlotItem().getViewBox().autoRange(padding=0)
    (x0, x1), (y0, y1) = plot.getPlotItem().getViewBox().viewRange()
    assert x0 <= 2.0 <= x1 and y0 <= 4.0 <= y1
    with pytest.raises(ValueError, match="one length"):
        cloud.set_data(np.zeros(3), np.zeros(2), np.zeros(3, int), [QBrush(RED)])


def test_bounding_rect_is_the_points_plus_half_a_point_at_the_current_zoom(plot, qtbot):
    """boundingRect is kept between paints; it must still follow new data, hidden points and zoom."""
    cloud = PointCloud(size=10)
    plot.addItem(cloud)
    cloud.set_data(np.array([0.0, 1.0]), np.array([0.0, 1.0]), np.array([0, 1]), [QBrush(RED), QBrush(BLUE)])
    view = plot.getPlotItem().getViewBox()

    def pad_ok() -> bool:
        r, (px, py) = cloud.boundingRect(), view.viewPixelSize()
        return abs(-r.left() - 6 * px) < 1e-9 and abs(r.right() - 1 - 6 * px) < 1e-9 \
            and abs(-r.top() - 6 * py) < 1e-9 and abs(r.bottom() - 1 - 6 * py) < 1e-9
    view.setRange(xRange=(-1, 2), yRange=(-1, 2), padding=0)
    qtbot.waitUntil(pad_ok)
    view.setRange(xRange=(-10, 20), yRange=(-10, 20), padding=0)  # zoomed out: more data per pixel
    qtbot.waitUntil(pad_ok)
    cloud.set_shown(np.array([True, False]))
    r, (px, py) = cloud.boundingRect(), view.viewPixelSize()
    assert r.right() == pytest.approx(6 * px) and r.bottom() == pytest.approx(6 * py)
    cloud.set_data(np.array([5.0]), np.array([7.0]), np.array([0]), [QBrush(RED), QBrush(BLUE)])
    assert cloud.boundingRect().contains(QPointF(5.0, 7.0)) and not cloud.boundingRect().contains(QPointF(0, 0))
