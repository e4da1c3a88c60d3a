"""Posterior-collapse view: the test-set KL of each latent dimension, and the active units, of
the latest evaluation of a :class:`~vaegui.core.run_model.RunModel`."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF
from PySide6.QtGui import QCursor, QFontMetrics
from PySide6.QtWidgets import QLabel, QToolTip, QVBoxLayout, QWidget

from vaegui.core.progress import EvalResult
from vaegui.core.latent import dimension_name
from vaegui.core.run_model import RunModel
from vaegui.gui.plot_axes import cache_axes, style_axes
from vaegui.gui.stepped_view_box import stepped_range

_ACTIVE = "#0072B2"  # Okabe-Ito blue, as the reconstruction curve
_INACTIVE = "#AAAAAA"
# Room above the tallest bar (a share of its height): the y axis then stays put, and keeps its
# cached drawing, while the KL changes a little from one epoch to the next.
Y_ROOM = (0.05, 0.15)


LABEL_GAP_PX = 8  # least room between two tick labels


class _IndexAxis(pg.AxisItem):
    """Ticks only at whole dimension indices, however far the user zooms in, named as every
    view names dimensions (bar 0 is z1): every dimension when their labels fit side by side,
    else every k-th, k the least that keeps the labels apart (hover a bar for the rest)."""

    def tickSpacing(self, minVal, maxVal, size):
        if size <= 0 or maxVal <= minVal:
            return [(1.0, 0.0)]
        font = self.style.get("tickFont") or self.font()
        widest = QFontMetrics(font).horizontalAdvance(dimension_name(max(0, int(maxVal))))
        step = max(1, math.ceil((widest + LABEL_GAP_PX) * (maxVal - minVal) / size))
        return [(float(step), 0.0)]

    def tickStrings(self, values, scale, spacing):
        return [dimension_name(int(round(v))) for v in values]


class KLDimView(QWidget):
    """Bars of KL per latent dimension after each evaluation; collapsed dimensions in grey."""

    def __init__(self, run: RunModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.run = run
        self.plot_widget = pg.PlotWidget(background="w",
                                         axisItems={"bottom": _IndexAxis("bottom")})
        self.plot_widget.setObjectName("kl_per_dimension")  # its name as an export target
        plot = self.plot_widget.getPlotItem()
        style_axes(plot, {"left": "KL (nats)", "bottom": "latent dimension"})
        cache_axes(plot)
        plot.showGrid(y=True, alpha=0.15)
        plot.setMouseEnabled(x=True, y=False)
        # The first and last labels stand half outside the bars' span: let them (z1 was hidden).
        plot.getAxis("bottom").setStyle(hideOverlappingLabels=15)
        plot.disableAutoRange()  # set_eval sets both ranges
        # Pre-made pens and brushes, shared by all bars of a kind. The 1-px cosmetic outline keeps
        # bars visible when 512 of them share a few hundred pixels.
        self._brushes = (pg.mkBrush(_INACTIVE), pg.mkBrush(_ACTIVE))
        self._pens = (pg.mkPen(_INACTIVE), pg.mkPen(_ACTIVE))
        self._bars = pg.BarGraphItem(x=np.zeros(0), height=np.zeros(0), width=0.8)
        plot.addItem(self._bars)
        plot.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)
        # The summary lives in a wrapping label, not the plot title: a long title would set the
        # plot's minimum width and get the panel clipped in a narrow dock.
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.plot_widget)
        self._heights = np.zeros(0)
        self._active = np.zeros(0, bool)
        run.events.evaluation.connect(self._on_run_evaluation)
        self._on_run_evaluation()

    def _on_run_evaluation(self) -> None:
        if self.run.evaluation is None:
            self.clear()
        else:
            self.set_eval(self.run.evaluation)

    def clear(self) -> None:
        self._heights = np.zeros(0)
        self._active = np.zeros(0, bool)
        self._bars.setOpts(x=np.zeros(0), height=self._heights, brushes=None, pens=None)
        self._set_title("KL per latent dimension: shown after the first epoch")

    def set_eval(self, result: EvalResult) -> None:
        kl = np.asarray(result.kl_per_dim, dtype=np.float64)  # (L,)
        dims = len(kl)
        mask = result.active if result.active is not None else self._active_mask(kl, result.active_units)
        active = [bool(a) for a in mask]
        self._heights = kl.copy()
        self._active = np.array(active, bool)
        self._bars.setOpts(x=np.arange(dims), height=self._heights,
                           width=0.8 if dims <= 64 else 1.0,
                           brushes=[self._brushes[a] for a in active],
                           pens=[self._pens[a] for a in active])
        plot = self.plot_widget.getPlotItem()
        plot.setXRange(-0.6, dims - 0.4, padding=0)
        top = max(float(kl.max(initial=0.0)), 1e-3)
        y_range = tuple(plot.getViewBox().viewRange()[1])
        plot.setYRange(*stepped_range(y_range, 0.0, top, *Y_ROOM), padding=0)
        self._set_title(f"<b>active units: {result.active_units} / {dims}</b> · epoch "
                        f"{result.epoch} · total KL {kl.sum():.2f} nats")

    def bar_heights(self) -> np.ndarray:
        return self._heights.copy()

    def bar_text(self, index: int) -> str:
        """What hovering bar ``index`` says: its dimension, KL and whether it is active."""
        state = "active" if self._active[index] else "inactive (collapsed)"
        return f"{dimension_name(index)}: KL {self._heights[index]:.3f} nats, {state}"

    def text_at(self, scene_pos: QPointF) -> str:
        """The bar under a scene position (its whole column, so a short bar is easy to hover)."""
        view = self.plot_widget.getPlotItem().getViewBox()
        if not len(self._heights) or not view.sceneBoundingRect().contains(scene_pos):
            return ""
        index = round(view.mapSceneToView(scene_pos).x())
        return self.bar_text(index) if 0 <= index < len(self._heights) else ""

    def _on_scene_mouse_moved(self, scene_pos: QPointF) -> None:
        text = self.text_at(scene_pos)
        if text != self.plot_widget.toolTip():
            self.plot_widget.setToolTip(text)
            QToolTip.showText(QCursor.pos(), text, self.plot_widget) if text else QToolTip.hideText()

    @staticmethod
    def _active_mask(kl: np.ndarray, active_units: int) -> np.ndarray:
        """For results saved without a per-dimension mask: colour the `active_units` dimensions of
        largest KL (a collapsed dimension has both ~0 covariance and ~0 KL)."""
        mask = np.zeros(len(kl), dtype=bool)
        mask[np.argsort(-kl, kind="stable")[:max(0, active_units)]] = True
        return mask

    def _set_title(self, text: str) -> None:
        self.summary_label.setText(text)
