"""stepped_range and SteppedViewBox: a live view's range moves in steps and always holds the data."""

import numpy as np
import pyqtgraph as pg
import pytest

from vaegui.gui.stepped_view_box import SteppedViewBox, stepped_range


def test_a_range_that_holds_the_data_well_is_kept():
    assert stepped_range((0.0, 10.0), 1.0, 9.5, 0.1, 0.1) == (0.0, 10.0)
    assert stepped_range((0.0, 10.0), 0.0, 10.0, 0.1, 0.1) == (0.0, 10.0)  # touching is inside


@pytest.mark.parametrize("lo, hi", [(1.0, 10.5), (-0.5, 9.0), (-3.0, 12.0)])
def test_data_outside_get_a_new_range_with_room_on_each_side(lo, hi):
    a, b = stepped_range((0.0, 10.0), lo, hi, 0.1, 0.25)
    span = hi - lo
    assert (a, b) == pytest.approx((lo - 0.1 * span, hi + 0.25 * span))


def test_data_filling_too_little_of_the_range_are_fitted_again():
    a, b = stepped_range((0.0, 100.0), 10.0, 40.0, 0.0, 0.0, min_fill=0.5)  # fill 0.3
    assert (a, b) == (10.0, 40.0)
    assert stepped_range((0.0, 100.0), 10.0, 70.0, 0.0, 0.0, min_fill=0.5) == (0.0, 100.0)


def test_a_single_value_gets_room_around_it():
    a, b = stepped_range((0.0, 1.0), 5.0, 5.0, 0.1, 0.1)
    assert a < 5.0 < b
    assert stepped_range((a, b), 5.0, 5.0, 0.1, 0.1) == (a, b)  # and keeps it
    a0, b0 = stepped_range((1.0, 2.0), 0.0, 0.0, 0.1, 0.1)
    assert a0 < 0.0 < b0


def test_a_growing_series_moves_the_range_seldom_and_always_holds_it(qtbot):
    view = SteppedViewBox((0.02, 0.25), (0.1, 0.1))
    widget = pg.PlotWidget(viewBox=view)
    qtbot.addWidget(widget)
    curve = widget.plot()
    changes = []
    view.sigRangeChanged.connect(lambda *_: changes.append(1))
    x = np.arange(1, 2001, dtype=float)
    y = 100 + 400 * np.exp(-x / 200)
    for n in range(20, 2001, 20):  # 100 updates
        curve.setData(x[:n], y[:n])
        view.updateAutoRange()
        (x0, x1), (y0, y1) = view.viewRange()
        assert x0 <= x[0] and x[n - 1] <= x1 and y0 <= y[:n].min() and y[:n].max() <= y1
    assert len(changes) < 30  # exact auto-range moves it at each of the 100 updates


def test_a_users_zoom_stands_until_auto_range_is_asked_for_again(qtbot):
    view = SteppedViewBox((0.0, 0.25), (0.1, 0.1))
    widget = pg.PlotWidget(viewBox=view)
    qtbot.addWidget(widget)
    curve = widget.plot(np.arange(10.0), np.arange(10.0))
    view.updateAutoRange()
    view.setRange(xRange=(2, 3), yRange=(2, 3), padding=0)  # a zoom: auto-range off, as by mouse
    curve.setData(np.arange(100.0), np.arange(100.0))
    view.updateAutoRange()
    assert view.viewRange() == [[2, 3], [2, 3]]
    view.enableAutoRange()
    view.updateAutoRange()
    (x0, x1), (y0, y1) = view.viewRange()
    assert x0 <= 0 and x1 >= 99 and y0 <= 0 and y1 >= 99
