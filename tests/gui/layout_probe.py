"""Opens a run folder in the main window at a given size, checks the layout of both workspaces
(layout_checks.py) and saves a screenshot of each; prints the problems as JSON.

Run in a subprocess by test_layout_sizes.py, for a device pixel ratio of 2 (QT_SCALE_FACTOR=2):
    python tests/gui/layout_probe.py RUN_DIR WIDTHxHEIGHT OUT_PREFIX SETTINGS_INI
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PySide6.QtCore import QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication

sys.path.insert(0, str(Path(__file__).parent))
from layout_checks import layout_problems  # noqa: E402

DECODE_WAIT_MS = 30_000


def main(run_dir: str, size: str, out: str, ini: str) -> dict:
    app = QApplication.instance() or QApplication([])
    from vaegui.gui.main_window import MainWindow

    window = MainWindow(QSettings(ini, QSettings.Format.IniFormat))
    width, height = (int(v) for v in size.split("x"))
    window.set_window_size(width, height)
    window.show()
    loop = QEventLoop()
    window.mapUpdated.connect(loop.quit)
    QTimer.singleShot(DECODE_WAIT_MS, loop.quit)
    window.open_checkpoint(run_dir)
    loop.exec()
    fill_views(window)
    wait_until(lambda: window.point_view.current_image() is not None)
    report = {"dpr": window.devicePixelRatio(), "problems": {}, "shots": {}}
    for workspace in ("Explore", "Train"):
        window.show_workspace(workspace)
        wait_ms(300)
        report["problems"][workspace] = layout_problems(window, app.processEvents)
        shot = window.grab()
        path = f"{out}_{workspace.lower()}.png"
        shot.save(path)
        report["shots"][workspace] = [path, shot.width(), shot.height()]
    window.close()
    return report


def fill_views(window) -> None:
    """A point picked and an interpolation between two examples, as a user would."""
    explorer = window.explorer
    latents = explorer.encoded.latents
    explorer.pick(latents[0])
    explorer.set_endpoint("a", latents[1])
    explorer.set_endpoint("b", latents[2])


def wait_ms(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def wait_until(condition, timeout_ms: int = DECODE_WAIT_MS) -> None:
    waited = 0
    while not condition() and waited < timeout_ms:
        wait_ms(50)
        waited += 50


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:5])))
