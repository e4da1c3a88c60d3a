"""File > Compare runs…: pick 2 to 8 runs from the recent runs, the runs folder, or a folder added
(a sweep's folder adds its runs)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QLabel, QListWidget,
                               QListWidgetItem, QPushButton, QVBoxLayout)

from vaegui.core.compare import MAX_RUNS, MIN_RUNS, expand_sweeps
from vaegui.core.run_writer import RUN_JSON


def is_run_folder(path: Path) -> bool:
    return (path / RUN_JSON).is_file() or (path / "checkpoint.pt").is_file()


def candidate_runs(recent: list[str], runs_dir: Path | None) -> list[Path]:
    """The recent runs (folders, or the folder of a recent checkpoint), then the runs folder's
    runs, newest first; each once."""
    found: list[Path] = []
    for r in map(Path, recent):
        folder = r if r.is_dir() else r.parent
        found += expand_sweeps([folder])
    if runs_dir is not None and runs_dir.is_dir():
        try:
            children = sorted((p for p in runs_dir.iterdir() if p.is_dir()),
                              key=lambda p: p.stat().st_mtime, reverse=True)
        except OSError:
            children = []
        for child in children:
            found += expand_sweeps([child])
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return [p for p in unique if is_run_folder(p)]


class RunPicker(QDialog):
    def __init__(self, recent: list[str], runs_dir: Path | None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Compare runs")
        self.list = QListWidget()
        self.list.itemChanged.connect(self._on_list_item_changed)
        add = QPushButton("Add folder…")
        add.clicked.connect(self._on_add_clicked)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.count_label = QLabel()
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Tick {MIN_RUNS} to {MAX_RUNS} runs of one dataset "
                                "(a sweep's folder adds all its runs):"))
        layout.addWidget(self.list, 1)
        layout.addWidget(add)
        layout.addWidget(self.count_label)
        layout.addWidget(self.buttons)
        for path in candidate_runs(recent, runs_dir):
            self.add_run(path, checked=False)
        self._on_list_item_changed()
        self.resize(560, 420)

    def add_run(self, path: Path, checked: bool) -> None:
        for k in range(self.list.count()):
            if self.list.item(k).data(Qt.ItemDataRole.UserRole) == str(path):
                self.list.item(k).setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
                return
        item = QListWidgetItem(f"{path.name}    ({path.parent})")
        item.setData(Qt.ItemDataRole.UserRole, str(path))
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        self.list.addItem(item)  # (adding emits no itemChanged)
        self._on_list_item_changed()

    def add_folder(self, folder: str) -> None:
        """A run folder, or a sweep's folder (all its runs), ticked."""
        for path in expand_sweeps([folder]):
            if is_run_folder(path):
                self.add_run(path.resolve(), checked=True)

    def chosen(self) -> list[str]:
        return [self.list.item(k).data(Qt.ItemDataRole.UserRole) for k in range(self.list.count())
                if self.list.item(k).checkState() == Qt.CheckState.Checked]

    def _on_add_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a run or a sweep folder")
        if folder:
            self.add_folder(folder)

    def _on_list_item_changed(self, *_) -> None:
        n = len(self.chosen())
        self.count_label.setText(f"{n} chosen")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(MIN_RUNS <= n <= MAX_RUNS)
