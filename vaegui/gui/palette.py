"""Colours of the latent views: categorical and continuous brush palettes for big scatters (a
point holds an index into a few pre-made brushes, never a brush of its own).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QBrush, QColor

# Paul Tol's "muted" scheme (https://personal.sron.nl/~pault/, 2021): nine colours told apart by
# the common forms of colour blindness, on a white background. A tenth class gets a mid grey
# (Tol's own pale grey #DDDDDD all but vanishes on white); more classes cycle.
LABEL_COLORS = ("#332288", "#88CCEE", "#44AA99", "#117733", "#999933",
                "#DDCC77", "#CC6677", "#882255", "#AA4499", "#999999")
# Perceptually uniform and readable by colour-blind viewers (Nuñez et al. 2018).
FACTOR_COLORMAP = "cividis"
FACTOR_LEVELS = 64  # continuous values are binned into this many pre-made brushes
BACKGROUND = "w"
POINT_ALPHA = 220  # slightly translucent, so dense regions read darker than lone points


def label_color(index: int) -> QColor:
    return QColor(LABEL_COLORS[index % len(LABEL_COLORS)])


class BrushPalette:
    """A fixed list of QBrush objects; points index into it (indices wrap around)."""

    def __init__(self, colors: list[QColor], alpha: int = POINT_ALPHA):
        self.brushes = []
        for color in colors:
            color = QColor(color)
            color.setAlpha(alpha)
            self.brushes.append(QBrush(color))

    def __len__(self) -> int:
        return len(self.brushes)


def label_palette() -> BrushPalette:
    return BrushPalette([QColor(c) for c in LABEL_COLORS])


def factor_colormap() -> pg.ColorMap:
    return pg.colormap.get(FACTOR_COLORMAP)


def factor_palette(levels: int = FACTOR_LEVELS) -> BrushPalette:
    table = factor_colormap().getLookupTable(nPts=levels, alpha=False)  # (levels, 3) uint8
    return BrushPalette([QColor(int(r), int(g), int(b)) for r, g, b in table])


def quantise(values: np.ndarray, levels: int = FACTOR_LEVELS) -> tuple[np.ndarray, float, float]:
    """Bin indices 0..levels-1 of ``values`` over their own range, and that range (lo, hi)."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    bins = np.floor((np.nan_to_num(values, nan=lo) - lo) / span * levels)
    return np.clip(bins, 0, levels - 1).astype(np.int64), lo, hi


@dataclass(frozen=True)
class PlotColors:
    """The colours of a plot's frame: background, axes and text, grid, legend box."""
    background: str
    foreground: str
    legend_fill: tuple[int, int, int, int]
    legend_border: tuple[int, int, int, int]


_LIGHT = PlotColors(background="#ffffff", foreground="#000000",
                    legend_fill=(255, 255, 255, 220), legend_border=(0, 0, 0, 60))
# Not black: a dark grey keeps the darkest curve colours (Tol's indigo, #332288) told apart from
# the background once they are lightened (see readable()).
_DARK = PlotColors(background="#1f2226", foreground="#e6e6e6",
                   legend_fill=(31, 34, 38, 220), legend_border=(255, 255, 255, 70))
MIN_CONTRAST = 3.0  # WCAG's ratio for graphics; a curve below it on the background is lightened


def plot_colors(dark: bool) -> PlotColors:
    """The plot colours of the light or the dark theme (exported figures use the light ones)."""
    return _DARK if dark else _LIGHT


def contrast(a: QColor, b: QColor) -> float:
    """WCAG 2 contrast ratio of two colours (1 to 21)."""
    def luminance(c: QColor) -> float:
        channels = [v / 255 for v in (c.red(), c.green(), c.blue())]
        r, g, b = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in channels]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def readable(color: QColor, background: QColor) -> QColor:
    """``color`` mixed step by step towards white (on a dark background) or black (on a light
    one) until it stands out from ``background`` by MIN_CONTRAST; its alpha kept."""
    color = QColor(color)
    target = 1.0 if background.lightness() < 128 else 0.0
    for _ in range(12):
        if contrast(color, background) >= MIN_CONTRAST:
            break
        r, g, b, a = color.getRgbF()
        color = QColor.fromRgbF(*(v + 0.25 * (target - v) for v in (r, g, b)), a)
    return color
