"""The main window's way into comparisons: File > Compare runs…, and a sweep's folder opened as a
run (its summary.json marks it) opens the comparison of its runs. The window only installs this;
the comparison windows live here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow, QMenu

from vaegui.core.sweep import read_summary


class CompareLauncher(QObject):
    def __init__(self, window: QMainWindow, file_menu: QMenu, before: QAction,
                 recent: Callable[[], list[str]], runs_dir: Callable[[], Path | None]):
        super().__init__(window)
        self.window, self._recent, self._runs_dir = window, recent, runs_dir
        self.windows: list = []  # the comparison windows open now
        self.action = QAction("&Compare runs…", window)
        self.action.setStatusTip("Runs side by side: their latent maps linked, curves overlaid, a results table")
        self.action.triggered.connect(self._on_action_triggered)
        file_menu.insertAction(before, self.action)

    def opens(self, path: str) -> bool:
        """Open the comparison of ``path``'s runs when it is a sweep's folder; False otherwise."""
        if not Path(path).is_dir() or read_summary(Path(path)) is None:
            return False
        self.compare([path])
        return True

    def compare(self, paths: list[str]):
        from .compare_window import CompareWindow

        w = CompareWindow(paths)
        w.destroyed.connect(lambda *_, w=w: self.windows.remove(w) if w in self.windows else None)
        self.windows.append(w)
        w.resize(1400, 820)
        w.show()
        return w

    def _on_action_triggered(self) -> None:
        from .run_picker import RunPicker

        picker = RunPicker(self._recent(), self._runs_dir(), self.window)
        if picker.exec() and picker.chosen():
            self.compare(picker.chosen())
