"""The dark theme: chosen in View > Theme (or following the system), saved, applied to the widgets
and to the plots (backgrounds, axes, legends, curves readable on the dark background), and put
back exactly when going light; light_plots gives an export the light plots."""

from __future__ import annotations

import pyqtgraph as pg
import pytest
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import QApplication

from vaegui.gui import settings as store
from vaegui.gui.main_window import MainWindow
from vaegui.gui.palette import MIN_CONTRAST, contrast, plot_colors, readable
from vaegui.gui.theme import light_plots

TIMEOUT = 60_000


@pytest.fixture
def window(qtbot, settings, train_shapes, tmp_path):
    run = train_shapes(tmp_path / "run", "--latent-dim", "3")
    w = MainWindow(settings)
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.mapUpdated, timeout=TIMEOUT):
        w.open_checkpoint(str(run))
    yield w
    w.set_theme("light")  # the application's palette is shared by the tests that follow
    w.close()


def _backgrounds(w) -> set[str]:
    return {view.backgroundBrush().color().name() for view in w.findChildren(pg.GraphicsView)}


def _curve_pens(w) -> list[QColor]:
    return [pg.mkPen(item.opts["pen"]).color() for view in w.findChildren(pg.GraphicsView)
            for item in view.scene().items() if isinstance(item, pg.PlotDataItem) and item.opts["pen"] is not None]


def test_dark_restyles_widgets_and_plots_and_light_puts_them_back(window, settings):
    light_backgrounds = _backgrounds(window)
    light_pens = [c.name() for c in _curve_pens(window)]
    window.menu_actions.themes["dark"].trigger()  # View > Theme > Dark
    dark = QColor(plot_colors(True).background)
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() < 80
    assert _backgrounds(window) == {dark.name()}
    axis = window.loss_view.plot_widget.getPlotItem().getAxis("left")
    assert axis.textPen().color().lightness() > 200
    pens = _curve_pens(window)
    assert pens and all(contrast(c, dark) >= MIN_CONTRAST for c in pens if c.alpha() > 128)
    assert store.load_theme(settings) == "dark"
    with light_plots(window):  # an export: the plots as the light theme draws them
        assert _backgrounds(window) == light_backgrounds
    assert _backgrounds(window) == {dark.name()}
    window.set_theme("light")
    assert _backgrounds(window) == light_backgrounds
    assert [c.name() for c in _curve_pens(window)] == light_pens
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() > 180
    assert store.load_theme(settings) == "light"


def test_exports_stay_light_under_the_dark_theme(window, tmp_path):
    window.set_theme("dark")
    try:
        path = tmp_path / "losses.png"
        assert window.exporter.export_plot("losses", str(path))
        corner = QImage(str(path)).pixelColor(2, 2)
        assert corner.lightness() > 200, corner.name()  # the light figure, not the window's dark plot
        assert _backgrounds(window) == {plot_colors(True).background}  # the window stays dark
        window.exporter.dark_figures.trigger()  # File > Export > Dark figures: as asked
        assert window.exporter.export_plot("losses", str(path))
        assert QImage(str(path)).pixelColor(2, 2).name() == QColor(plot_colors(True).background).name()
        window.exporter.dark_figures.trigger()
    finally:
        window.set_theme("system")


def test_the_saved_theme_is_used_at_the_next_launch(qtbot, settings):
    store.save_theme(settings, "dark")
    w = MainWindow(settings)
    qtbot.addWidget(w)
    try:
        assert w.theme.mode == "dark" and w.menu_actions.themes["dark"].isChecked()
        assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() < 80
        assert _backgrounds(w) == {plot_colors(True).background}
    finally:
        w.set_theme("system")
        w.close()
    assert w.theme.dark == (QApplication.styleHints().colorScheme().name == "Dark")


def test_readable_lightens_dark_colours_on_a_dark_background():
    background = QColor(plot_colors(True).background)
    indigo = QColor("#332288")  # the first of the map's label colours
    assert contrast(indigo, background) < MIN_CONTRAST
    assert contrast(readable(indigo, background), background) >= MIN_CONTRAST
    assert readable(QColor("#ffcc00"), background) == QColor("#ffcc00")  # already readable: kept
