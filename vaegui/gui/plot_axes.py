"""How the app's plots draw their axes: plain dark labels, and a pixmap cache for repaints."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QGraphicsItem


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
