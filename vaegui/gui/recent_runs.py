"""File > Recent runs: the runs and checkpoints shown lately, newest first; choosing one opens it."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMenu

from vaegui.core.run_model import RunModel

from . import settings as store


class RecentRuns:
    """Fills ``menu`` from the settings, and adds every run the run model shows."""

    def __init__(self, menu: QMenu, settings: QSettings, run: RunModel, open_run: Callable[[str], None]):
        self.menu, self._settings, self.run, self._open_run = menu, settings, run, open_run
        run.events.info.connect(self._on_run_info)
        self._fill(store.load_recent_runs(settings))

    def _on_run_info(self) -> None:
        info = self.run.info
        if info is not None and info.path:
            self._fill(store.add_recent_run(self._settings, info.path))

    def _fill(self, runs: list[str]) -> None:
        self.menu.clear()
        for path in runs:
            self.menu.addAction(path, lambda path=path: self._open_run(path))
        self.menu.setEnabled(bool(runs))
