"""Losses panel: live per-step training curves, EMA-smoothed, with per-epoch test-set markers.

It draws the loss history of a :class:`~vaegui.core.run_model.RunModel`, which owns the data."""

from __future__ import annotations

import math
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel,
                               QVBoxLayout, QWidget)

from vaegui.core.progress import LOSS_COLUMNS, EvalResult
from vaegui.core.run_model import RunModel
from vaegui.gui.plot_axes import cache_axes, signed_axes, style_axes
from vaegui.gui.plot_legend import PlacedLegend
from vaegui.gui.stepped_view_box import SteppedViewBox

# Okabe-Ito colours (colour-blind safe); the marker shapes differ too, so colour is not the only cue.
_COLOURS = {"recon": "#0072B2", "kl": "#D55E00", "beta_kl": "#E69F00", "neg_elbo": "#222222"}
_LABELS = {"recon": "recon", "kl": "KL", "beta_kl": "β·KL", "neg_elbo": "−ELBO"}
_SYMBOLS = {"recon": "o", "kl": "t", "neg_elbo": "s"}
_TRAIN = ("recon", "kl", "beta_kl", "neg_elbo")
_TEST = ("recon", "kl", "neg_elbo")
# Progress arrives up to ~10 times a second, and redrawing 8 long curves costs the GUI thread
# several ms; on a 2-core machine that time is taken from training (see
# benchmarks/gui_responsiveness.py). Two redraws a second still look live.
REDRAW_INTERVAL_S = 0.5
# Room the view leaves beyond the data (shares of the data's span, below and above), so that the
# axes stay put while the curves grow (see stepped_view_box.py): steps run on to the right, and
# a quarter more of them fit before the x axis steps; losses mostly fall, KL may rise.
X_ROOM = (0.02, 0.25)
Y_ROOM = (0.1, 0.1)
# Where the legend can go (right-click > Legend): by default below the axes, never over a curve.
LEGEND_MODES = {"auto": "Below the plot, or inside when it is short", "outside": "Below the plot",
                "inside": "Inside, in the emptiest corner", "hidden": "Hidden"}


def _ema(y: np.ndarray, factor: float, start: float | None = None) -> np.ndarray:
    """s_i = factor * s_{i-1} + (1 - factor) * y_i, with s_{-1} = start (y_0 when None).

    Vectorised per block: inside a block s_k = a^k (1-a) sum_j y_j a^-j + a^(k+1) s_in. The block
    is short enough that a^-k stays far from overflow; the rounding error stays ~eps * |y| because
    the largest terms of the cumulative sum are the ones that survive the a^k factor.
    """
    y = np.asarray(y, dtype=np.float64)
    out = np.empty_like(y)
    if len(y) == 0:
        return out
    if factor <= 0.0:
        out[:] = y
        return out
    a = float(factor)
    carry = y[0] if start is None else float(start)
    block = max(1, min(len(y), int(300.0 / -math.log10(a))))  # a^-block <= 1e300
    powers = a ** np.arange(block + 1, dtype=np.float64)  # a^0 .. a^block
    for i in range(0, len(y), block):
        seg = y[i:i + block]
        k = len(seg)
        z = (1.0 - a) * powers[:k] * np.cumsum(seg / powers[:k])
        out[i:i + k] = z + powers[1:k + 1] * carry
        carry = out[i + k - 1]
    return out


class _Series:
    """Growable x / raw y / smoothed y buffers: appending costs O(new rows), amortised."""

    def __init__(self):
        self._buf = np.empty((3, 1024))
        self.n = 0

    x = property(lambda self: self._buf[0, :self.n])
    raw = property(lambda self: self._buf[1, :self.n])
    smooth = property(lambda self: self._buf[2, :self.n])

    def append(self, x: np.ndarray, y: np.ndarray, factor: float) -> None:
        m = len(x)
        if self.n + m > self._buf.shape[1]:
            grown = np.empty((3, max(2 * self._buf.shape[1], self.n + m)))
            grown[:, :self.n] = self._buf[:, :self.n]
            self._buf = grown  # plot items keep views of the old buffer until the next setData
        start = self._buf[2, self.n - 1] if self.n else None
        self._buf[0, self.n:self.n + m] = x
        self._buf[1, self.n:self.n + m] = y
        self._buf[2, self.n:self.n + m] = _ema(y, factor, start)
        self.n += m

    def resmooth(self, factor: float) -> None:
        self._buf[2, :self.n] = _ema(self.raw, factor)

    def clear(self) -> None:
        self.n = 0


def _fmt(v: float) -> str:
    return f"{v:.2f}" if abs(v) >= 1 else f"{v:.4g}"


def _nearest(x: np.ndarray, q: float) -> int:
    i = int(np.searchsorted(x, q))
    if i > 0 and (i == len(x) or q - x[i - 1] <= x[i] - q):
        i -= 1
    return i


class LossView(QWidget):
    """Training losses per step (smoothed, raw faintly behind) and test losses per epoch."""

    def __init__(self, run: RunModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.run = run
        self._series = {name: _Series() for name in _TRAIN}
        self._beta_seen = False  # beta*KL is only worth a curve once the KL weight was not 1
        self._evals: list[EvalResult] = []
        self._pending: str | None = None  # what add_progress changed since the last redraw
        self._drawn_at = -math.inf  # time.monotonic() of the last redraw
        self._redraw_timer = QTimer(self, singleShot=True)
        self._redraw_timer.timeout.connect(self.flush)
        self._build_controls()
        self._build_plot()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(self._toolbar)
        layout.addWidget(self.plot_widget, 1)
        layout.addWidget(self.readout_label)
        run.events.progress.connect(self._on_run_progress)
        run.events.history.connect(self._on_run_history)
        self._on_run_history()

    # ---- construction ----------------------------------------------------------------------
    def _build_controls(self) -> None:
        self.smoothing_box = QDoubleSpinBox()
        self.smoothing_box.setRange(0.0, 0.99)
        self.smoothing_box.setSingleStep(0.05)
        self.smoothing_box.setValue(0.9)
        self.smoothing_box.setToolTip("Exponential moving average of the per-step losses "
                                      "(0 = raw values)")
        self.smoothing_box.valueChanged.connect(self._on_smoothing_box_value_changed)
        self.log_check = QCheckBox("log y")
        self.log_check.toggled.connect(self._on_log_check_toggled)
        self.x_axis_combo = QComboBox()
        self.x_axis_combo.addItems(["step", "epoch"])
        self.x_axis_combo.currentTextChanged.connect(self._on_x_axis_combo_text_changed)
        self._toolbar = QHBoxLayout()
        for w in (QLabel("smoothing"), self.smoothing_box, self.log_check, QLabel("x axis"),
                  self.x_axis_combo):
            self._toolbar.addWidget(w)
        self._toolbar.addStretch(1)
        self.readout_label = QLabel()
        self.readout_label.setTextFormat(Qt.TextFormat.RichText)
        self.readout_label.setWordWrap(True)

    def _build_plot(self) -> None:
        self.plot_widget = pg.PlotWidget(background="w", viewBox=SteppedViewBox(X_ROOM, Y_ROOM),
                                         axisItems=signed_axes())
        self.plot_widget.setObjectName("losses")  # its name as an export target
        plot = self.plot_widget.getPlotItem()
        style_axes(plot, {"left": "nats / image", "bottom": "step"})
        cache_axes(plot)
        plot.showGrid(x=True, y=True, alpha=0.15)
        plot.setDownsampling(auto=True, mode="peak")
        plot.setClipToView(True)
        self._raw_items, self._items = {}, {}
        for name in _TRAIN:  # faint raw curves first, so the smoothed ones draw on top
            self._raw_items[name] = plot.plot(pen=pg.mkPen(_COLOURS[name] + "30", width=1))
        # 1-px pens: Qt strokes antialiased wider pens 10-50x slower, too slow for 100k steps at
        # 10 updates/s. A smooth line needs fewer vertices than the peak-downsampled raw one.
        for name in _TRAIN:
            self._items[name] = plot.plot(pen=pg.mkPen(_COLOURS[name], width=1), antialias=True,
                                          autoDownsampleFactor=1.5)
        for name in _TEST:
            self._items["test_" + name] = plot.plot(
                pen=pg.mkPen(_COLOURS[name], width=1, style=Qt.PenStyle.DashLine),
                symbol=_SYMBOLS[name], symbolSize=9, symbolBrush=_COLOURS[name], symbolPen="w")
        for name in _TRAIN:  # a legend click hides a curve; its raw shadow follows
            self._items[name].visibleChanged.connect(self._sync_raw_visibility)
        self.legend = PlacedLegend(plot, self._plotted, "auto", "bottom", entry_px=110, prefer="outside",
                                   labelTextColor="k", colCount=2, brush=(255, 255, 255, 220), pen=(0, 0, 0, 60))
        self._add_legend_menu(plot.getViewBox().menu)
        self._vline = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((0, 0, 0, 90)))
        self._hline = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen((0, 0, 0, 90)))
        for line in (self._vline, self._hline):
            line.setVisible(False)
            plot.addItem(line, ignoreBounds=True)
        plot.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)
        self._clear()

    def _add_legend_menu(self, menu) -> None:
        """Right-click > Legend: below the plot, inside (a drag moves it), or hidden."""
        sub = menu.addMenu("Legend")
        group = QActionGroup(sub)
        self.legend_actions = {}
        for mode, text in LEGEND_MODES.items():
            action = QAction(text, sub, checkable=True, checked=mode == self.legend.mode)
            action.triggered.connect(lambda _=False, m=mode: self.set_legend_mode(m))
            group.addAction(action)
            sub.addAction(action)
            self.legend_actions[mode] = action

    def set_legend_mode(self, mode: str) -> None:
        """"auto", "outside" (below the axes), "inside" (the emptiest corner) or "hidden"."""
        self.legend.set_mode(mode)
        self.legend_actions[mode].setChecked(True)

    def _plotted(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The curves and markers drawn, as drawn (log y applied): what the legend must not cover."""
        items = [*self._items.values(), *self._raw_items.values()]
        data = [item.getData() for item in items if item.isVisible()]
        return [(x, y) for x, y in data if x is not None and len(x)]

    # ---- the run model ---------------------------------------------------------------------
    def _clear(self) -> None:
        for series in self._series.values():
            series.clear()
        self._evals = []
        self._beta_seen = False
        self._items["beta_kl"].setVisible(False)
        self._refresh()
        self._vline.setVisible(False)
        self._hline.setVisible(False)
        self.readout_label.setText("<span style='color:grey'>point at the plot to read the "
                                   "values</span>")

    def _on_run_progress(self) -> None:
        """Take new rows at once; the plot is redrawn at most every REDRAW_INTERVAL_S, always for
        the final snapshot of a run, and not at all while hidden (a closed dock or a tab behind
        another): showing it draws what it has taken meanwhile."""
        progress = self.run.progress
        if progress is None:
            return
        # Markers, legend or visibility changes are rare: most updates only move curves.
        changed = self._append(progress.new_steps, progress.new_losses, progress.new_kl_weights)
        if progress.eval is not None:
            self._evals.append(progress.eval)
            self._evals.sort(key=lambda e: e.step)  # nearest-point look-up needs sorted x
            changed = True
        self._pending = "all" if changed else self._pending or "curves"
        if not self.isVisible():
            return
        wait = REDRAW_INTERVAL_S - (time.monotonic() - self._drawn_at)
        if progress.done or wait <= 0:
            self.flush()
        elif not self._redraw_timer.isActive():
            self._redraw_timer.start(math.ceil(wait * 1000))

    def flush(self) -> None:
        """Draw what :meth:`add_progress` has taken since the last redraw, now."""
        pending, self._pending = self._pending, None
        self._redraw_timer.stop()
        self._drawn_at = time.monotonic()
        if pending == "all":
            self._refresh()
        elif pending == "curves":
            self._refresh_curves()
            self._sync_raw_visibility()  # a legend click may have hidden a curve since
            if self.legend.shown() is self.legend.inside:
                self.legend.place()  # the curves moved: the emptiest corner may have too

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._pending is not None:
            self.flush()

    def _on_run_history(self) -> None:
        """Draw the run's whole history anew (beta*KL only for the steps whose KL weight the
        history kept)."""
        self._clear()
        history = self.run.history
        self._append(history.steps, history.losses, history.kl_weights)
        self._evals = sorted(history.evals, key=lambda e: e.step)
        self._refresh()

    # ---- public API ------------------------------------------------------------------------
    def curve_data(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """x (in the current x-axis unit) and y as plotted; raises KeyError for unknown names."""
        x, y = self._data(name)
        return x * self._x_scale(), y.copy()

    # ---- data ------------------------------------------------------------------------------
    def _data(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """x in steps and y of a curve, from the data (a redraw may be pending): views."""
        if name.startswith("test_"):
            return self._test_data(name[len("test_"):])
        if name == "beta_kl" and not self._beta_seen:
            return np.zeros(0), np.zeros(0)
        series = self._series[name]
        return series.x, series.smooth

    def _append(self, steps: np.ndarray, losses: np.ndarray, kl_weights: np.ndarray) -> bool:
        """Append rows; True when this made the beta*KL curve appear."""
        if not len(steps):
            return False
        factor = self.smoothing_box.value()
        for col, name in enumerate(LOSS_COLUMNS):
            self._series[name].append(steps, losses[:, col], factor)
        known = np.isfinite(kl_weights)  # NaN: a checkpoint that did not record them
        kl = losses[known, LOSS_COLUMNS.index("kl")]
        self._series["beta_kl"].append(steps[known], kl * kl_weights[known], factor)
        if self._beta_seen or not (kl_weights[known] != 1.0).any():
            return False
        self._beta_seen = True
        self._items["beta_kl"].setVisible(True)  # once only: a legend click may hide it
        return True

    def _test_data(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        x = np.array([e.step for e in self._evals], dtype=np.float64)
        return x, np.array([getattr(e, name) for e in self._evals], dtype=np.float64)

    def _x_scale(self) -> float:
        return 1.0 / self.run.steps_per_epoch if self.x_axis_combo.currentText() == "epoch" else 1.0

    def _refresh_curves(self) -> None:
        """Hand the current buffers to the plot items (views, no copies; x stays in steps and
        the epoch axis is a tick scale, so switching units never touches the data)."""
        for name, series in self._series.items():
            self._items[name].setData(series.x, series.smooth)
            self._raw_items[name].setData(series.x, series.raw)
        # Fit the axes now rather than in the paint: pyqtgraph auto-ranges while painting, and a
        # new range re-downsamples the curves, which asks for a second full repaint (two paints
        # per update, measured). The curves are clipped to the view, so the bounds seen before
        # a new range are those of the old one: fit twice (the second costs little when the
        # first changed nothing).
        view = self.plot_widget.getPlotItem().getViewBox()
        view.updateAutoRange()
        view.updateAutoRange()

    def _refresh(self) -> None:
        """Curves, test markers, legend, visibility and axis scale: everything pending."""
        self._redraw_timer.stop()
        self._pending = None
        self._refresh_curves()
        for name in _TEST:
            self._items["test_" + name].setData(*self._test_data(name))
        self._fill_legend()
        self._sync_raw_visibility()
        self.plot_widget.getPlotItem().getAxis("bottom").setScale(self._x_scale())

    def _fill_legend(self) -> None:
        # Two columns filled row by row: training curves on the left, their test markers right.
        names = [n for pair in zip(_TEST, ["test_" + n for n in _TEST]) for n in pair]
        names += ["beta_kl"] if self._beta_seen else []
        if [label.text for _, label in self.legend.items] != [self._label(n) for n in names]:
            self.legend.clear()
            for name in names:
                self.legend.add(self._items[name], self._label(name))
        self.legend.place()

    @staticmethod
    def _label(name: str) -> str:
        return "test " + _LABELS[name[5:]] if name.startswith("test_") else _LABELS[name]

    # ---- slots -----------------------------------------------------------------------------
    def _sync_raw_visibility(self) -> None:
        smoothing = self.smoothing_box.value() > 0
        for name, raw in self._raw_items.items():
            raw.setVisible(smoothing and self._items[name].isVisible())

    def _on_smoothing_box_value_changed(self, factor: float) -> None:
        for series in self._series.values():
            series.resmooth(factor)
        self._refresh()

    def _on_log_check_toggled(self, checked: bool) -> None:
        self.plot_widget.getPlotItem().setLogMode(x=False, y=checked)
        self._refresh_curves()
        self.legend.place()

    def _on_x_axis_combo_text_changed(self, unit: str) -> None:
        self.plot_widget.getPlotItem().getAxis("bottom").setLabel(unit)
        self._refresh()

    def _on_scene_mouse_moved(self, scene_pos: QPointF) -> None:
        view = self.plot_widget.getPlotItem().getViewBox()
        inside = view.sceneBoundingRect().contains(scene_pos)
        self._vline.setVisible(inside)
        self._hline.setVisible(inside)
        if not inside:
            return
        point = view.mapSceneToView(scene_pos)
        self._vline.setPos(point.x())
        self._hline.setPos(point.y())
        self.readout_label.setText(self._readout(point.x()))

    def _readout(self, step: float) -> str:
        """Rich text: the nearest point of every visible curve to the given x (in steps)."""
        unit, scale = self.x_axis_combo.currentText(), self._x_scale()
        parts = [f"<b>{unit} {step * scale:.{2 if unit == 'epoch' else 0}f}</b>"]
        for name in _TRAIN + tuple("test_" + n for n in _TEST):
            x, y = self._data(name)
            if not self._items[name].isVisible() or not len(x):
                continue
            i = _nearest(x, step)
            colour = _COLOURS[name[5:] if name.startswith("test_") else name]
            at = f" @ epoch {self._evals[i].epoch}" if name.startswith("test_") else ""
            parts.append(f"<span style='color:{colour}'>{self._label(name)} {_fmt(y[i])}{at}"
                         f"</span>")
        return " &nbsp; ".join(parts)
