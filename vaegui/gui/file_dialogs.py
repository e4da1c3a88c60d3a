"""The dialogs of the File and Help menus: each asks for a path (or shows a box), then calls the
window's command."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox

from vaegui import __version__

from .actions import Actions

CHECKPOINT_FILTER = "vaegui checkpoints (*.pt *.ckpt);;All files (*)"


class FileDialogs:
    def __init__(self, window: QMainWindow, actions: Actions, runs_dir: Callable[[], Path]):
        """``window`` has the commands (open_checkpoint, follow_run, set_runs_dir,
        save_checkpoint); ``runs_dir`` gives the folder the run dialogs start in."""
        self.window, self._runs_dir = window, runs_dir
        for action, slot in ((actions.open, self._on_open_triggered),
                             (actions.open_run, self._on_open_run_triggered),
                             (actions.follow_run, self._on_follow_run_triggered),
                             (actions.runs_folder, self._on_runs_folder_triggered),
                             (actions.save, self._on_save_triggered),
                             (actions.about, self._on_about_triggered)):
            action.triggered.connect(slot)

    def _on_open_triggered(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open checkpoint", "", CHECKPOINT_FILTER)
        if path:
            self.window.open_checkpoint(path)

    def _on_open_run_triggered(self) -> None:
        path = QFileDialog.getExistingDirectory(self.window, "Open run folder", str(self._runs_dir()))
        if path:
            self.window.open_checkpoint(path)

    def _on_follow_run_triggered(self) -> None:
        path = QFileDialog.getExistingDirectory(self.window, "Follow run folder", str(self._runs_dir()))
        if path:
            self.window.follow_run(path)

    def _on_runs_folder_triggered(self) -> None:
        path = QFileDialog.getExistingDirectory(self.window, "Keep runs in", str(self._runs_dir()))
        if path:
            self.window.set_runs_dir(path)

    def _on_save_triggered(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.window, "Save checkpoint", "model.pt", CHECKPOINT_FILTER)
        if path:
            self.window.save_checkpoint(path)

    def _on_about_triggered(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "About vaegui",
                          f"vaegui {__version__}\nA desktop latent-space explorer for variational "
                          "autoencoders.", QMessageBox.StandardButton.Ok, self.window)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
