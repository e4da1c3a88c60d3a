"""How the app's plots draw their axes: plain dark labels, a true minus sign, and a pixmap cache
for repaints."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QGraphicsItem

from vaegui.core.explorer_images import MINUS

from .minus_sign import has_minus


class SignedAxis(pg.AxisItem):
    """Tick labels with the minus sign of typeset figures (U+2212, as wide as a plus, and the
    sign the images' labels use), not a hyphen, where the tick font has it."""

    def tickStrings(self, values, scale, spacing):
        strings = super().tickStrings(values, scale, spacing)
        if not has_minus(QFontMetrics(self.style["tickFont"] or self.font())):
            return strings
        return [text.replace("-", MINUS) for text in strings]


def signed_axes() -> dict[str, SignedAxis]:
    """The left and bottom axes of a new plot (``axisItems=``)."""
    return {side: SignedAxis(side) for side in ("left", "bottom")}


def style_axes(plot: pg.PlotItem, labels: dict[str, str]) -> None:
    """Dark axes with plain labels on a white plot. Automatic SI prefixes stay off: "step (x1000)"
    or "latent dimension (x0.001)" only confuse."""
    for side, text in labels.items():
        axis = plot.getAxis(side)
        axis.setPen("k")
        axis.setTextPen("k")
        axis.setLabel(text)
        axis.enableAutoSIPrefix(False)


def cache_axes(plot: pg.PlotItem) -> None:
    """Keep each axis's drawing (with the grid it draws across the plot) in a pixmap until the
    view's range or size changes: a repaint for a moving curve or marker then blits it, where
    pyqtgraph would replay its ticks, labels and grid lines (about 3 ms a paint here). Exports
    draw uncached (export/plot_export.py), so figures keep vector axes."""
    for side in ("left", "bottom"):
        plot.getAxis(side).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
