"""What can be exported, found by walking the widgets: every pyqtgraph plot and every
:class:`ImageCanvas` under a window is an export target, named by its object name. A panel added
later gets File > Export, right-click > Export and a place in the bundle by being built from
these two, with an object name (``plot_widget.setObjectName("latent_map")``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from ..explorer.image_canvas import ImageCanvas


@dataclass(frozen=True, eq=False)
class PlotTarget:
    """A plot: written as PNG, SVG or PDF from its PlotItem."""

    name: str  # the file's stem
    widget: pg.PlotWidget

    @property
    def title(self) -> str:
        return title_of(self.name)

    @property
    def plot(self) -> pg.PlotItem:
        return self.widget.getPlotItem()


@dataclass(frozen=True, eq=False)
class ImageTarget:
    """An image view: written as PNG from the image it shows (its array, not its pixels)."""

    name: str
    canvas: ImageCanvas

    @property
    def title(self) -> str:
        return title_of(self.name)

    def array(self) -> np.ndarray | None:
        return self.canvas.array()

    def why_empty(self) -> str:
        hint = self.canvas.hint()
        return hint[0].lower() + hint[1:] if hint else "the panel shows no image (it was never shown)"


# Titles in menus where the name alone says too little; any other name makes its own title.
TITLES = {"point": "Decoded point", "nearest_image": "Nearest test image",
          "interpolation": "Interpolation strip", "interpolation_frame": "Interpolation frame",
          "losses": "Loss curves"}


def title_of(name: str) -> str:
    """"kl_per_dim" -> "KL per dim"; "latent_map" -> "Latent map"."""
    if name in TITLES:
        return TITLES[name]
    text = name.replace("_", " ")
    return re.sub(r"\bkl\b", "KL", text[:1].upper() + text[1:], flags=re.IGNORECASE)


def _name(widget: QWidget, used: set[str]) -> str:
    """The widget's object name, or one made from its panel's class, unique among ``used``."""
    base = widget.objectName()
    if not base:
        owner = widget.parentWidget()
        while owner is not None and type(owner).__module__.startswith("PySide6"):
            owner = owner.parentWidget()
        base = re.sub(r"(?<!^)(?=[A-Z])", "_", type(owner or widget).__name__).lower()
    name, k = base, 2
    while name in used:
        name, k = f"{base}_{k}", k + 1
    used.add(name)
    return name


def find_targets(root: QWidget) -> tuple[list[PlotTarget], list[ImageTarget]]:
    """The plots and image views under ``root``, in the order they were made."""
    used: set[str] = set()
    plots = [PlotTarget(_name(w, used), w) for w in root.findChildren(pg.PlotWidget)]
    images = [ImageTarget(_name(c, used), c) for c in root.findChildren(ImageCanvas)]
    return plots, images
