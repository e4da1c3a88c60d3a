"""The app's colour scheme: the system's (Qt 6.5+ ``styleHints().colorScheme()``), or Light or
Dark as chosen in View > Theme (saved in the settings).

Qt's widgets follow the application palette. pyqtgraph's plots do not: in the dark theme their
background, axes, titles, legends and curves are restyled here (curves too dark to read on the
dark background are lightened, see palette.readable); going back to light puts back exactly what
each view drew. Exported figures are meant to stay light: :func:`light_plots` restyles a
window's plots light for the time of an export.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPalette, QPen
from PySide6.QtWidgets import QApplication, QWidget

from .palette import plot_colors, readable

MODES = ("system", "light", "dark")
# Each restyled item's own look, to put back: item -> {what: value}.
_originals: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_dark_roots: weakref.WeakSet = weakref.WeakSet()  # windows whose plots are dark now
_own_palette: QPalette | None = None


def system_is_dark() -> bool:
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


class Theme(QObject):
    """The window's theme: ``mode`` is one of MODES; ``dark`` is what it comes to now."""

    changed = Signal(bool)  # dark

    def __init__(self, window: QWidget, mode: str = "system"):
        super().__init__(window)
        self.window = window
        self.mode = mode if mode in MODES else "system"
        global _own_palette
        if _own_palette is None:  # the platform's, before any theme changed it (a later window
            _own_palette = QApplication.palette()  # may open while the app is dark)
        self._applying = False
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._on_styleHints_colorSchemeChanged)

    @property
    def dark(self) -> bool:
        return system_is_dark() if self.mode == "system" else self.mode == "dark"

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"theme {mode!r}: not one of {', '.join(MODES)}")
        self.mode = mode
        self.apply()

    def apply(self) -> None:
        if self._applying:
            return
        self._applying = True
        try:
            hints = QGuiApplication.styleHints()
            if hasattr(hints, "setColorScheme"):  # Qt 6.8+: the native style follows the choice
                if self.mode == "system":
                    hints.unsetColorScheme()
                else:
                    hints.setColorScheme(Qt.ColorScheme.Dark if self.mode == "dark" else Qt.ColorScheme.Light)
            dark = self.dark
            QApplication.setPalette(dark_palette() if dark else _own_palette)
            style_plots(self.window, dark)
        finally:
            self._applying = False
        self.changed.emit(dark)

    def restyle(self) -> None:
        """Plots made since the theme was applied (a new run's items) in its colours."""
        if self.dark:
            style_plots(self.window, True)

    def _on_styleHints_colorSchemeChanged(self, scheme) -> None:
        if self.mode == "system":
            self.apply()


def dark_palette() -> QPalette:
    """A dark palette for the Fusion style (and any style that takes its colours from it)."""
    p = QPalette()
    window, base, text = QColor("#2b2e33"), QColor("#1f2226"), QColor("#e6e6e6")
    roles = {QPalette.ColorRole.Window: window, QPalette.ColorRole.WindowText: text,
             QPalette.ColorRole.Base: base, QPalette.ColorRole.AlternateBase: window,
             QPalette.ColorRole.ToolTipBase: base, QPalette.ColorRole.ToolTipText: text,
             QPalette.ColorRole.Text: text, QPalette.ColorRole.Button: window,
             QPalette.ColorRole.ButtonText: text, QPalette.ColorRole.BrightText: QColor("#ff6b6b"),
             QPalette.ColorRole.Highlight: QColor("#3d7fd6"), QPalette.ColorRole.HighlightedText: QColor("#ffffff"),
             QPalette.ColorRole.Link: QColor("#6fb1ff"), QPalette.ColorRole.PlaceholderText: QColor("#9a9da2"),
             QPalette.ColorRole.Light: QColor("#3a3e44"), QPalette.ColorRole.Midlight: QColor("#34383d"),
             QPalette.ColorRole.Mid: QColor("#25282c"), QPalette.ColorRole.Dark: QColor("#181a1d"),
             QPalette.ColorRole.Shadow: QColor("#000000")}
    for role, colour in roles.items():
        p.setColor(role, colour)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7c8086"))
    return p


def style_plots(root: QWidget, dark: bool) -> None:
    """Every pyqtgraph plot under ``root`` in the dark colours, or back to its own (light)."""
    if dark:
        _dark_roots.add(root)
    else:
        _dark_roots.discard(root)
    colors = plot_colors(True)
    for view in root.findChildren(pg.GraphicsView):
        _restyle(view, dark, lambda v: {"background": v.backgroundBrush()},
                 lambda v: v.setBackground(colors.background), lambda v, o: v.setBackground(o["background"]))
        for item in view.scene().items():
            _style_item(item, dark, colors)


def _style_item(item, dark: bool, colors) -> None:
    fg = colors.foreground
    if isinstance(item, pg.AxisItem):
        _restyle(item, dark, lambda a: {"pen": a.pen(), "text": a.textPen()},
                 lambda a: (a.setPen(fg), a.setTextPen(fg)),
                 lambda a, o: (a.setPen(o["pen"]), a.setTextPen(o["text"])))
    elif isinstance(item, pg.LegendItem):
        _restyle(item, dark, lambda g: {"brush": g.brush(), "pen": g.pen(), "text": g.labelTextColor()},
                 lambda g: (g.setBrush(colors.legend_fill), g.setPen(colors.legend_border),
                            _label_color(g, fg)),
                 lambda g, o: (g.setBrush(o["brush"]), g.setPen(o["pen"]), _label_color(g, o["text"])))
    elif isinstance(item, pg.LabelItem) and not _in_legend(item):  # a legend colours its own labels
        _restyle(item, dark, lambda t: {"color": t.opts.get("color")},
                 lambda t: t.setText(t.text, color=fg),
                 lambda t, o: t.setText(t.text, color=o["color"]))
    elif isinstance(item, pg.PlotCurveItem) and isinstance(item.parentItem(), pg.PlotDataItem):
        return  # its PlotDataItem's pen (which it takes again at every setData) is restyled
    elif isinstance(item, (pg.PlotDataItem, pg.PlotCurveItem, pg.InfiniteLine)):
        background = QColor(colors.background)
        _restyle(item, dark, lambda c: {"pen": QPen(_pen_of(c))},
                 lambda c: c.setPen(_recoloured(_pen_of(c), readable(_pen_of(c).color(), background))),
                 lambda c, o: c.setPen(o["pen"]))


def _label_color(legend: pg.LegendItem, color) -> None:
    legend.setLabelTextColor(color)
    for _sample, label in legend.items:  # setLabelTextColor changes the colour, not the drawn text
        label.setText(label.text)


def _in_legend(item) -> bool:
    parent = item.parentItem()
    while parent is not None:
        if isinstance(parent, pg.LegendItem):
            return True
        parent = parent.parentItem()
    return False


def _pen_of(item) -> QPen:
    pen = item.opts["pen"] if isinstance(item, (pg.PlotDataItem, pg.PlotCurveItem)) else item.pen
    return pg.mkPen(pen)


def _recoloured(pen: QPen, color: QColor) -> QPen:
    pen = QPen(pen)
    pen.setColor(color)
    return pen


def _restyle(item, dark: bool, own, to_dark, back) -> None:
    """Remember ``item``'s own look (``own``) and go dark, or put its own look back."""
    if dark:
        if item not in _originals:
            _originals[item] = own(item)
        to_dark(item)
    elif item in _originals:
        back(item, _originals.pop(item))


@contextmanager
def light_plots(root: QWidget) -> Iterator[None]:
    """The plots under ``root`` in their own light colours for the time of the block (an
    export), then as they were."""
    dark = root in _dark_roots
    if dark:
        style_plots(root, False)
    try:
        yield
    finally:
        if dark:
            style_plots(root, True)
