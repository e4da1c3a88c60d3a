"""The window gives each view room: at 1280x800, 1920x1080 and 2560x1440, and at a device pixel
ratio of 2, no view is clipped, no dock scrolls both ways and every view of a workspace shows.
Screenshots of both workspaces are taken on the way (and looked at when the layout changes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QSize
from PySide6.QtWidgets import QApplication

from vaegui.gui.dock_layout import EXPLORE, TRAIN, default_plan, default_window_size
from vaegui.gui.explorer.image_canvas import ImageCanvas
from vaegui.gui.main_window import MainWindow

from layout_checks import layout_problems, readability_problems
from layout_probe import fill_views

TIMEOUT = 60_000
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run_l8(tmp_path_factory, train_shapes):
    """A tiny shapes model with 8 latent dimensions (the point view's vector is at its longest)
    at 28x28, whose images the explorer views tile."""
    return train_shapes(tmp_path_factory.mktemp("runs") / "l8", "--latent-dim", "8", "--image-size", "28")


def _open(qtbot, settings, run_dir, width: int, height: int) -> MainWindow:
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.set_window_size(width, height)
    window.show()
    qtbot.waitExposed(window)
    with qtbot.waitSignal(window.mapUpdated, timeout=TIMEOUT):
        window.open_checkpoint(str(run_dir))
    fill_views(window)
    qtbot.waitUntil(lambda: window.point_view.current_image() is not None, timeout=TIMEOUT)
    return window


@pytest.mark.parametrize("width, height", [(1280, 800), (1920, 1080), (2560, 1440)])
def test_every_view_has_room(qtbot, settings, run_l8, tmp_path, width, height):
    window = _open(qtbot, settings, run_l8, width, height)
    assert window.docks.workspace == EXPLORE  # an opened model is shown for exploring
    for workspace in (EXPLORE, TRAIN):
        window.show_workspace(workspace)
        qtbot.waitUntil(lambda: all(window.docks.docks[k].isVisible()
                                    for k in window.docks.keys_of(workspace)), timeout=5000)
        assert layout_problems(window, QApplication.processEvents) == [], workspace
        assert readability_problems(window) == [], workspace
        if workspace == EXPLORE:  # the images were there to check
            drawn = [c for c in window.findChildren(ImageCanvas) if c.isVisible() and c.display_scale >= 1]
            assert len(drawn) >= 3, drawn
        shot = window.grab()
        assert (shot.width(), shot.height()) == (width, height)
        assert shot.save(str(tmp_path / f"{workspace}-{width}x{height}.png"))
        # The other workspace's docks are out of the way.
        others = [k for k in window.docks.panels if k not in window.docks.keys_of(workspace)]
        assert not any(window.docks.docks[k].isVisible() for k in others)
    window.close()


def test_the_loss_plot_and_the_explorer_views_get_a_fair_share(qtbot, settings, run_l8):
    """The complaints that started it: a 230x120 loss plot, the interpolation's animation frame
    below the fold, the point's latent vector cut off at L = 8."""
    window = _open(qtbot, settings, run_l8, 1280, 800)
    interpolation = window.interpolation_view
    window.docks.interpolation.raise_()
    qtbot.waitUntil(interpolation.isVisible, timeout=5000)
    area = window.docks.interpolation.widget()
    assert not area.verticalScrollBar().isVisible() and not area.horizontalScrollBar().isVisible()
    vector = window.point_view.latent_label
    assert vector.text().startswith("z = [") and vector.text().count(",") == 7
    assert vector.width() >= vector.sizeHint().width()  # all eight numbers show
    window.show_workspace(TRAIN)
    plot = window.loss_view.plot_widget
    qtbot.waitUntil(lambda: window.loss_view.isVisible(), timeout=5000)
    assert plot.width() >= 400 and plot.height() >= 250
    window.close()


def test_workspaces_switch_by_tab_and_shortcut_and_remember_their_docks(qtbot, settings, run_l8):
    window = _open(qtbot, settings, run_l8, 1280, 800)
    window.workspace_tabs.setCurrentIndex(0)
    assert window.docks.workspace == TRAIN and window.menu_actions.workspaces[TRAIN].isChecked()
    window.menu_actions.workspaces[EXPLORE].trigger()  # Ctrl+2
    assert window.docks.workspace == EXPLORE and window.workspace_tabs.currentIndex() == 1
    assert window.menu_actions.workspaces[EXPLORE].shortcut().toString() == "Ctrl+2"
    window.docks.samples.hide()
    window.show_workspace(TRAIN)
    window.docks.kl.hide()
    window.show_workspace(EXPLORE)
    assert window.docks.samples.isHidden() and not window.docks.point.isHidden()
    window.show_workspace(TRAIN)
    assert window.docks.kl.isHidden() and not window.docks.losses.isHidden()
    window.reset_layout()  # every workspace back to its default
    assert not window.docks.kl.isHidden()
    window.show_workspace(EXPLORE)
    assert not window.docks.samples.isHidden()
    window.close()


def test_picking_a_point_in_train_shows_it_in_explore(qtbot, settings, run_l8):
    window = _open(qtbot, settings, run_l8, 1280, 800)
    window.show_workspace(TRAIN)
    window.explorer.pick(window.explorer.encoded.latents[5])
    assert window.docks.workspace == EXPLORE and window.point_view.isVisible()
    window.close()


def test_the_default_layout_follows_the_screen(qtbot, settings):
    window = MainWindow(settings)  # nothing saved: the screen decides
    qtbot.addWidget(window)
    available = window.screen().availableGeometry().size()
    assert window.size() == default_window_size(available)
    assert default_window_size(QSize(1280, 800)) == QSize(1280, 800)
    assert default_window_size(QSize(2560, 1440)) == QSize(2304, 1296)
    # More room, fewer tabs: every explorer dock in its own place on a large screen.
    tabbed = {size: sum(len(keys) > 1 for column in default_plan(EXPLORE, QSize(*size)) for keys, _ in column)
              for size in ((1280, 800), (1920, 1080), (2304, 1296))}
    assert tabbed[(1280, 800)] >= tabbed[(1920, 1080)] > tabbed[(2304, 1296)] == 0
    window.close()


def test_no_view_is_clipped_at_device_pixel_ratio_2(run_l8, tmp_path):
    """In a subprocess: Qt's scale factor is read once, when the application starts."""
    env = {**os.environ, "QT_SCALE_FACTOR": "2", "QT_QPA_PLATFORM": "offscreen",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, str(REPO / "tests/gui/layout_probe.py"), str(run_l8), "1280x800",
                          str(tmp_path / "dpr2"), str(tmp_path / "s.ini")],
                         env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["dpr"] == 2.0
    assert report["problems"] == {"Explore": [], "Train": []}
    for path, width, height in report["shots"].values():
        assert (width, height) == (2560, 1600) and Path(path).stat().st_size > 20_000
