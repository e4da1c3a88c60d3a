"""The export bundle's folder chooser: an existing folder, or the name of a new one, which it
makes (Qt's folder dialog refuses a folder that does not exist yet, and a bundle usually goes
into a new one)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from vaegui.core.export import ExportError, make_folder


class BundleFolderDialog(QFileDialog):
    """Qt's own (not the system's) folder dialog, whose accept makes a folder that is not there
    yet; one that cannot be made is said in a message naming it and the reason, and the dialog
    stays open."""

    def __init__(self, parent: QWidget | None, start: str):
        super().__init__(parent, "Export bundle into folder (a new name makes it)", start)
        # The system's dialog would not call accept() below.
        self.setOption(QFileDialog.Option.DontUseNativeDialog)
        self.setOption(QFileDialog.Option.ShowDirsOnly)
        self.setFileMode(QFileDialog.FileMode.Directory)
        self.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        self.setLabelText(QFileDialog.DialogLabel.Accept, "Export here")
        self.error = ""  # why the last folder could not be made

    def folder(self) -> str:
        files = self.selectedFiles()
        return files[0] if files else ""

    def accept(self) -> None:
        folder = self.folder()
        if folder and not Path(folder).exists():
            try:
                make_folder(folder)
            except ExportError as exc:
                self.error = str(exc)
                QMessageBox.warning(self, "Cannot make the folder", self.error)
                return
        super().accept()


def choose_bundle_folder(parent: QWidget | None, start: str) -> str:
    """The folder the user chose (made if new), or "" if they cancelled."""
    dialog = BundleFolderDialog(parent, start)
    return dialog.folder() if dialog.exec() == QFileDialog.DialogCode.Accepted else ""
