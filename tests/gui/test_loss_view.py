"""LossView and KLDimView, fed with hand-made Progress / EvalResult snapshots (no training)."""

import dataclasses

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF
from PySide6.QtGui import QColor

from vaegui.core.loss_history import History
from vaegui.core.run_model import RunModel
from vaegui.core.progress import EvalResult, Progress
from vaegui.gui.kl_view import KLDimView
from vaegui.gui import loss_view
from vaegui.gui.loss_view import LossView


def make_eval(epoch, step, recon, kl, kl_per_dim=(1.0, 0.5, 0.001, 0.0), active=2):
    return EvalResult(epoch=epoch, step=step, neg_elbo=recon + kl, recon=recon, kl=kl,
                      bits_per_dim=0.0, kl_per_dim=np.asarray(kl_per_dim, dtype=np.float64),
                      active_units=active)


def make_progress(steps, recon, kl, *, spe=100, kl_weight=1.0, eval=None):
    """kl_weight: one for all rows, or one per row."""
    steps = np.asarray(steps, dtype=np.int64)
    recon, kl = np.asarray(recon, dtype=np.float64), np.asarray(kl, dtype=np.float64)
    losses = np.stack([recon, kl, recon + kl], axis=1).reshape(-1, 3)
    weights = np.broadcast_to(np.asarray(kl_weight, dtype=np.float64), steps.shape).copy()
    return Progress(step=int(steps[-1]) if len(steps) else 0, total_steps=10 * spe,
                    steps_per_epoch=spe, epochs=10, new_steps=steps, new_losses=losses,
                    new_kl_weights=weights, kl_weight=float(weights[-1]) if len(weights) else 1.0, images_per_s=0.0, images_seen=0, train_seconds=0.0,
                    seconds_left=None, device="cpu", eval=eval)


def hand_ema(y, a):
    out = [y[0]]
    for v in y[1:]:
        out.append(a * out[-1] + (1 - a) * v)
    return np.array(out)


def fake_run(n_steps, spe, seed=0):
    """A decaying, noisy loss curve like an MNIST VAE's."""
    rng = np.random.default_rng(seed)
    t = np.arange(1, n_steps + 1)
    recon = 90 + 450 * np.exp(-t / 150) + 3 * rng.standard_normal(n_steps)
    kl = 26 - 20 * np.exp(-t / 300) + 0.8 * rng.standard_normal(n_steps)
    return t, recon, kl


@pytest.fixture
def view(show_widget):
    return show_widget(LossView(RunModel()), 700, 400)  # shown: a hidden view does not redraw


def test_chunks_are_appended_in_order(view):
    view.smoothing_box.setValue(0.0)
    t, recon, kl = fake_run(258, 100)
    for a, b in ((0, 1), (1, 201), (201, 201), (201, 258)):  # 1, 200, 0 and 57 rows
        view.run.add_progress(make_progress(t[a:b], recon[a:b], kl[a:b]))
    for name, y in (("recon", recon), ("kl", kl), ("neg_elbo", recon + kl)):
        x, got = view.curve_data(name)
        np.testing.assert_array_equal(x, t)
        np.testing.assert_allclose(got, y)


def test_ema_matches_hand_computation_and_follows_the_factor(view):
    y = np.array([10.0, 20.0, 0.0, 5.0, 5.0, -3.0, 8.0])
    view.smoothing_box.setValue(0.5)
    view.run.add_progress(make_progress([1, 2, 3], y[:3], np.zeros(3)))
    view.run.add_progress(make_progress([4, 5, 6, 7], y[3:], np.zeros(4)))  # continues the EMA
    np.testing.assert_allclose(view.curve_data("recon")[1], hand_ema(y, 0.5))
    view.smoothing_box.setValue(0.8)
    np.testing.assert_allclose(view.curve_data("recon")[1], hand_ema(y, 0.8))
    view.smoothing_box.setValue(0.0)
    np.testing.assert_allclose(view.curve_data("recon")[1], y)


@pytest.mark.parametrize("factor", [0.05, 0.6, 0.99])
def test_ema_of_a_long_series_is_accurate(view, factor):
    t, recon, kl = fake_run(5000, 500)
    view.smoothing_box.setValue(factor)
    view.run.add_progress(make_progress(t[:2500], recon[:2500], kl[:2500]))
    view.run.add_progress(make_progress(t[2500:], recon[2500:], kl[2500:]))
    np.testing.assert_allclose(view.curve_data("recon")[1], hand_ema(recon, factor), rtol=1e-9)
    view.smoothing_box.setValue(0.3)
    view.smoothing_box.setValue(factor)  # full recompute path
    np.testing.assert_allclose(view.curve_data("kl")[1], hand_ema(kl, factor), rtol=1e-9)


def test_epoch_axis_divides_by_steps_per_epoch(view):
    t, recon, kl = fake_run(120, 40)
    view.run.add_progress(make_progress(t, recon, kl, spe=40, eval=make_eval(3, 120, 95.0, 20.0)))
    view.x_axis_combo.setCurrentText("epoch")
    axis = view.plot_widget.getPlotItem().getAxis("bottom")
    np.testing.assert_allclose(view.curve_data("kl")[0], t / 40)
    np.testing.assert_allclose(view.curve_data("test_kl")[0], [3.0])
    assert axis.labelText == "epoch" and axis.scale == pytest.approx(1 / 40)
    view.x_axis_combo.setCurrentText("step")
    np.testing.assert_array_equal(view.curve_data("kl")[0], t)
    assert axis.labelText == "step" and axis.scale == 1.0


def test_log_toggle_sets_the_plot_log_mode(view):
    plot = view.plot_widget.getPlotItem()
    assert not plot.getAxis("left").logMode
    view.log_check.setChecked(True)
    assert plot.getAxis("left").logMode and not plot.getAxis("bottom").logMode
    view.log_check.setChecked(False)
    assert not plot.getAxis("left").logMode


def test_test_markers_at_eval_steps(view):
    t, recon, kl = fake_run(200, 100)
    assert len(view.curve_data("test_recon")[0]) == 0
    view.run.add_progress(make_progress(t[:100], recon[:100], kl[:100],
                                    eval=make_eval(1, 100, 120.0, 15.0)))
    view.run.add_progress(make_progress(t[100:], recon[100:], kl[100:],
                                    eval=make_eval(2, 200, 100.0, 18.0)))
    for name, y in (("recon", [120, 100]), ("kl", [15, 18]), ("neg_elbo", [135, 118])):
        x, got = view.curve_data("test_" + name)
        np.testing.assert_array_equal(x, [100, 200])
        np.testing.assert_allclose(got, y)


def legend_labels(view):
    return [label.text for _, label in view.legend.items]


def test_beta_kl_curve_only_when_the_kl_weight_is_not_one(view):
    view.smoothing_box.setValue(0.0)
    view.run.add_progress(make_progress([1, 2], [50, 50], [4.0, 6.0]))
    assert len(view.curve_data("beta_kl")[0]) == 0 and "β·KL" not in legend_labels(view)
    view.run.add_progress(make_progress([3, 4], [50, 50], [8.0, 10.0], kl_weight=0.25))
    x, y = view.curve_data("beta_kl")
    np.testing.assert_array_equal(x, [1, 2, 3, 4])
    np.testing.assert_allclose(y, [4.0, 6.0, 2.0, 2.5])  # kl * the weight of each chunk
    np.testing.assert_allclose(view.curve_data("kl")[1], [4, 6, 8, 10])  # KL stays unweighted
    view.flush()  # the legend follows at the next redraw
    assert legend_labels(view) == ["recon", "test recon", "KL", "test KL", "−ELBO", "test −ELBO",
                                  "β·KL"]


def test_a_curve_hidden_from_the_legend_stays_hidden_with_its_raw_shadow(view):
    view.run.add_progress(make_progress([1, 2], [50, 50], [4.0, 6.0], kl_weight=0.5))
    items, raw = view._items, view._raw_items
    assert items["beta_kl"].isVisible() and raw["recon"].isVisible()
    items["beta_kl"].setVisible(False)  # what a click on its legend sample does
    items["recon"].setVisible(False)
    view.run.add_progress(make_progress([3, 4], [50, 50], [8.0, 10.0], kl_weight=0.75))
    assert not items["beta_kl"].isVisible() and not raw["recon"].isVisible()
    view.smoothing_box.setValue(0.0)  # raw == smoothed: no faint copy
    assert not raw["kl"].isVisible()


def test_redraws_are_spaced_but_every_row_and_the_final_state_are_drawn(view, qtbot, monkeypatch):
    def plotted(name):
        x, _ = view._items[name].getOriginalDataset()
        return 0 if x is None else len(x)

    monkeypatch.setattr(loss_view, "REDRAW_INTERVAL_S", 60.0)  # no timing luck needed below
    view.run.add_progress(make_progress([1, 2], [50, 50], [4.0, 6.0]))
    assert plotted("recon") == 2  # the first update draws at once
    view.run.add_progress(make_progress([3, 4], [50, 50], [8.0, 10.0]))
    assert len(view.curve_data("recon")[0]) == 4 and plotted("recon") == 2  # taken, drawn later
    assert view._redraw_timer.isActive()
    view.run.add_progress(make_progress([5], [50], [1.0], eval=make_eval(1, 5, 60.0, 2.0)))
    view.run.add_progress(dataclasses.replace(make_progress([6], [50], [1.0]), done=True))
    assert plotted("recon") == 6 and plotted("test_recon") == 1  # the final snapshot draws at once
    assert not view._redraw_timer.isActive()
    monkeypatch.setattr(loss_view, "REDRAW_INTERVAL_S", 0.2)
    view.run.add_progress(make_progress([7], [50], [1.0]))
    qtbot.waitUntil(lambda: plotted("recon") == 7, timeout=3000)  # the timer draws the rest


def test_beta_kl_uses_each_steps_own_weight_live_and_from_a_history(view):
    view.smoothing_box.setValue(0.0)
    steps, kl = np.arange(1, 7), np.full(6, 10.0)
    warmup = np.minimum(1.0, steps / 4) * 0.5  # beta 0.5 ramped over 4 steps, within one chunk
    view.run.add_progress(make_progress(steps, np.full(6, 50.0), kl, kl_weight=warmup))
    np.testing.assert_allclose(view.curve_data("beta_kl")[1], 10.0 * warmup)
    # A checkpoint's history: the same curve; steps whose weight was not recorded are left out.
    weights = np.concatenate([[np.nan, np.nan], warmup[2:]])
    view.run.set_history(History(steps, np.stack([np.full(6, 50.0), kl, kl + 50], 1), [], weights), 6)
    x, y = view.curve_data("beta_kl")
    np.testing.assert_array_equal(x, steps[2:])
    np.testing.assert_allclose(y, 10.0 * warmup[2:])
    assert "β·KL" in legend_labels(view)


def test_set_history_replaces_everything_and_clear_empties(view):
    t, recon, kl = fake_run(300, 100)
    view.run.add_progress(make_progress(t, recon, kl, kl_weight=0.5, eval=make_eval(3, 300, 1, 1)))
    history = History(steps=np.arange(1, 51), losses=np.full((50, 3), 7.0),
                      evals=[make_eval(1, 25, 6.0, 1.0)])
    view.run.set_history(history, steps_per_epoch=25)
    x, y = view.curve_data("neg_elbo")
    np.testing.assert_array_equal(x, np.arange(1, 51))
    np.testing.assert_allclose(y, 7.0)
    np.testing.assert_array_equal(view.curve_data("test_recon")[0], [25])
    assert len(view.curve_data("beta_kl")[0]) == 0  # an old history: no KL weights recorded
    view.x_axis_combo.setCurrentText("epoch")
    assert view.curve_data("recon")[0][-1] == pytest.approx(2.0)
    view.run.clear()
    for name in ("recon", "kl", "beta_kl", "neg_elbo", "test_recon", "test_kl", "test_neg_elbo"):
        assert len(view.curve_data(name)[0]) == len(view.curve_data(name)[1]) == 0


def test_crosshair_reads_out_the_nearest_values(view, qtbot, show_widget):
    view.smoothing_box.setValue(0.0)
    steps = np.arange(1, 11)
    recon = np.linspace(200, 110, 10)
    recon[4] = 123.45
    view.run.add_progress(make_progress(steps, recon, np.full(10, 21.5),
                                    eval=make_eval(1, 10, 150.25, 22.0)))
    show_widget(view, 700, 450)
    vb = view.plot_widget.getPlotItem().getViewBox()
    vb.autoRange()
    scene_pos = vb.mapViewToScene(QPointF(5.1, 123.45))
    target = view.plot_widget.mapFromScene(scene_pos)
    qtbot.mouseMove(view.plot_widget.viewport(), QPoint(target.x(), target.y()))
    qtbot.waitUntil(lambda: "123.45" in view.readout_label.text(), timeout=2000)
    text = view.readout_label.text()
    assert "step 5" in text and "21.50" in text and "144.95" in text and "150.00" not in text
    assert "test −ELBO 172.25 @ epoch 1" in text
    assert view._vline.isVisible() and view._vline.value() == pytest.approx(5.1, abs=0.05)


def colour_pixels(image, hex_colour, tol=40):
    """How many pixels of a QImage are within tol (per channel) of a colour."""
    arr = np.frombuffer(image.convertToFormat(image.Format.Format_RGB32).constBits(),
                        dtype=np.uint8).reshape(image.height(), image.width(), 4)[..., :3]
    c = QColor(hex_colour)
    target = np.array([c.blue(), c.green(), c.red()])  # RGB32 is BGRA in memory
    return int((np.abs(arr.astype(int) - target).max(axis=2) <= tol).sum())


def test_render_loss_view_screenshot(view, show_widget):
    spe = 500
    t, recon, kl = fake_run(5000, spe)
    weight = np.minimum(1.0, t / 1000)  # a KL warm-up over two epochs
    rng = np.random.default_rng(1)
    for a in range(0, 5000, 100):
        b = a + 100
        ev = None
        if b % spe == 0:
            e = b // spe
            ev = make_eval(e, b, float(recon[b - 50:b].mean() + 2 + rng.normal()),
                           float(kl[b - 50:b].mean() - 0.5))
        view.run.add_progress(make_progress(t[a:b], recon[a:b], kl[a:b], spe=spe,
                                        kl_weight=float(weight[b - 1]), eval=ev))
    assert len(view.curve_data("test_neg_elbo")[0]) == 10
    view.flush()
    show_widget(view, 900, 520)
    image = view.grab().toImage()
    image.save("/tmp/loss_view.png")
    assert colour_pixels(image, "#0072B2") > 500 and colour_pixels(image, "#D55E00") > 500


def test_kl_view_bars_and_active_units(qtbot):
    w = KLDimView(RunModel())
    qtbot.addWidget(w)
    assert len(w.bar_heights()) == 0
    kl = np.array([3.0, 0.002, 1.5, 0.0, 0.8])
    w.set_eval(make_eval(4, 400, 90.0, kl.sum(), kl_per_dim=kl, active=3))
    np.testing.assert_array_equal(w.bar_heights(), kl)
    title = w.summary_label.text()
    assert "active units: 3 / 5" in title and "epoch 4" in title
    colours = [b.color().name() for b in w._bars._brushes]
    assert colours == ["#0072b2", "#aaaaaa", "#0072b2", "#aaaaaa", "#0072b2"]
    # Bars are named as the map and the traversal name dimensions: bar 0 is z1.
    axis = w.plot_widget.getPlotItem().getAxis("bottom")
    assert axis.tickStrings([0.0, 1.0, 4.0], 1.0, 1.0) == ["z1", "z2", "z5"]
    w.clear()
    assert len(w.bar_heights()) == 0


def test_kl_view_colours_the_dimensions_the_evaluation_marks_active(qtbot):
    w = KLDimView(RunModel())
    qtbot.addWidget(w)
    kl = np.array([0.5, 2.0, 0.4])
    # Dimension 1 has the largest KL yet is inactive (its posterior mean does not vary).
    result = dataclasses.replace(make_eval(1, 10, 90.0, kl.sum(), kl_per_dim=kl, active=2),
                                 active=np.array([True, False, True]))
    w.set_eval(result)
    assert [b.color().name() for b in w._bars._brushes] == ["#0072b2", "#aaaaaa", "#0072b2"]


@pytest.mark.parametrize("dims", [1, 512])
def test_kl_view_handles_any_latent_size(show_widget, dims):
    w = KLDimView(RunModel())
    kl = np.random.default_rng(dims).exponential(0.5, dims)
    active = (dims + 1) // 2
    w.set_eval(make_eval(1, 10, 90.0, kl.sum(), kl_per_dim=kl, active=active))
    show_widget(w, 500, 300)
    image = w.grab().toImage()
    image.save(f"/tmp/kl_view_{dims}.png")
    np.testing.assert_array_equal(w.bar_heights(), kl)
    assert f"active units: {active} / {dims}" in w.summary_label.text()
    assert colour_pixels(image, "#0072B2", tol=10) > 20


def test_render_kl_view_screenshot(show_widget):
    w = KLDimView(RunModel())
    rng = np.random.default_rng(3)
    kl = np.where(rng.random(20) < 0.4, rng.uniform(0, 0.003, 20), rng.uniform(0.5, 4.0, 20))
    active = int((kl > 0.01).sum())
    w.set_eval(make_eval(10, 5000, 88.0, kl.sum(), kl_per_dim=kl, active=active))
    show_widget(w, 600, 320)
    image = w.grab().toImage()
    image.save("/tmp/kl_view.png")
    assert colour_pixels(image, "#0072B2", tol=10) > 200


def test_the_view_holds_every_visible_curve_as_a_run_grows_and_moves_seldom(view):
    """The axes keep their drawing while the range stays (see stepped_view_box.py)."""
    box = view.plot_widget.getPlotItem().getViewBox()
    changes = []
    box.sigRangeChanged.connect(lambda *_: changes.append(1))
    t, recon, kl = fake_run(2000, 500)
    for a in range(0, 2000, 20):  # 100 redraws
        view.run.add_progress(make_progress(t[a:a + 20], recon[a:a + 20], kl[a:a + 20], spe=500))
        view.flush()
        (x0, x1), (y0, y1) = box.viewRange()
        for name in ("recon", "kl", "neg_elbo"):
            x, y = view._series[name].x, view._series[name].raw  # the faint raw curve is widest
            assert x0 <= x.min() and x.max() <= x1 and y0 <= y.min() and y.max() <= y1, name
    assert len(changes) < 30
    view.log_check.setChecked(True)  # in log mode the view holds the logs
    view.flush()
    (_, _), (y0, y1) = box.viewRange()
    raw = view._series["recon"].raw
    assert y0 <= np.log10(view._series["kl"].raw.min()) and np.log10(raw.max()) <= y1


def test_a_new_run_of_smaller_values_is_fitted_again(view):
    t, recon, kl = fake_run(1000, 500)
    view.run.add_progress(make_progress(t, recon, kl, spe=500))
    view.run.clear()
    view.run.add_progress(make_progress(t[:50], np.full(50, 3.0), np.full(50, 1.0), spe=500))
    view.flush()
    (x0, x1), (y0, y1) = view.plot_widget.getPlotItem().getViewBox().viewRange()
    assert x1 < 100 and y1 < 10  # not the old run's 1000 steps and 500 nats


def test_kl_view_keeps_its_y_range_for_a_small_change_and_holds_every_bar(qtbot):
    w = KLDimView(RunModel())
    qtbot.addWidget(w)
    box = w.plot_widget.getPlotItem().getViewBox()
    w.set_eval(make_eval(1, 10, 90.0, 7.0, kl_per_dim=[3.0, 4.0]))
    first = box.viewRange()[1]
    assert first[0] <= 0 and first[1] >= 4.0
    w.set_eval(make_eval(2, 20, 90.0, 7.2, kl_per_dim=[3.0, 4.2]))
    assert box.viewRange()[1] == first
    w.set_eval(make_eval(3, 30, 90.0, 9.0, kl_per_dim=[3.0, 6.0]))
    assert box.viewRange()[1][1] >= 6.0


def test_a_hidden_view_does_not_redraw_and_catches_up_when_shown(qtbot, show_widget):
    view = LossView(RunModel())
    qtbot.addWidget(view)

    def plotted():
        x, _ = view._items["recon"].getOriginalDataset()
        return 0 if x is None else len(x)

    t, recon, kl = fake_run(300, 100)
    view.run.add_progress(make_progress(t[:100], recon[:100], kl[:100], eval=make_eval(1, 100, 120.0, 15.0)))
    view.run.add_progress(dataclasses.replace(make_progress(t[100:], recon[100:], kl[100:]), done=True))
    assert plotted() == 0 and not view._redraw_timer.isActive()  # taken, not drawn
    assert len(view.curve_data("recon")[0]) == 300
    show_widget(view, 700, 400)
    assert plotted() == 300 and len(view._items["test_recon"].getOriginalDataset()[0]) == 1
