"""The comparison's results: one row per run, the summary's columns, sortable by any column
(numbers sort as numbers)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QTableWidget, QTableWidgetItem

from .compare_figure import run_color


class ResultsTable(QTableWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSortingEnabled(True)
        self.verticalHeader().hide()
        self.columns: list[str] = []

    def set_rows(self, columns: list[str], rows: list[dict[str, Any]]) -> None:
        """Fill the table; the sort the user chose stays."""
        self.setSortingEnabled(False)
        self.columns = list(columns)
        self.setColumnCount(len(columns))
        self.setHorizontalHeaderLabels(columns)
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, name in enumerate(columns):
                self.setItem(r, c, _item(row.get(name), run_color(r) if name == "run" else None))
        self.setSortingEnabled(True)
        self.resizeColumnsToContents()

    def column_values(self, name: str) -> list[Any]:
        """A column's values in the order shown (for tests and the CSV of the current sort)."""
        c = self.columns.index(name)
        return [self.item(r, c).data(Qt.ItemDataRole.UserRole) for r in range(self.rowCount())]


def _item(value: Any, colour: QColor | None) -> QTableWidgetItem:
    item = QTableWidgetItem()
    if isinstance(value, float):
        item.setData(Qt.ItemDataRole.DisplayRole, float(f"{value:.5g}"))
        item.setToolTip(repr(value))
    elif isinstance(value, int) and not isinstance(value, bool):
        item.setData(Qt.ItemDataRole.DisplayRole, value)
    else:
        item.setText("–" if value is None else str(value))
    item.setData(Qt.ItemDataRole.UserRole, value)
    if colour is not None:
        item.setForeground(colour)
    return item
