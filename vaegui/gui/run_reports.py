"""The training worker's and the run follower's reports, as changes of the run model."""

from __future__ import annotations

from PySide6.QtCore import QObject

from vaegui.core.progress import Progress
from vaegui.core.run_info import RunInfo
from vaegui.core.run_model import RunModel

from .run_follower import RunFollower
from .training_worker import TrainingWorker


class RunReports(QObject):
    """A QObject of the GUI thread: Qt queues the reports, emitted in the worker's and the
    follower's threads, to its slots, so the run model only ever changes in the GUI thread.
    The follower sends what the worker sends, with the same shapes.

    The reports the window acts on itself (ready, a run finished, a model opened, following
    ended) are the window's: see MainWindow."""

    def __init__(self, run: RunModel, worker: TrainingWorker, follower: RunFollower,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.run = run
        w, f = worker, follower
        for signal, slot in ((w.runStarted, self._on_worker_runStarted),
                             (w.progressed, self._on_worker_progressed),
                             (w.statusChanged, self._on_worker_statusChanged),
                             (w.failed, self._on_worker_failed),
                             (w.dataSkipped, self._on_worker_dataSkipped),
                             (w.checkpointSaved, self._on_worker_checkpointSaved),
                             (f.started, self._on_follower_started),
                             (f.progressed, self._on_worker_progressed),
                             (f.writerChanged, self._on_follower_writerChanged),
                             (f.statusChanged, self._on_worker_statusChanged),
                             (f.failed, self._on_worker_failed)):
            signal.connect(slot)

    def _on_worker_runStarted(self, info: RunInfo) -> None:
        self.run.run_started(info)

    def _on_worker_progressed(self, p: Progress) -> None:
        self.run.add_progress(p)

    def _on_worker_statusChanged(self, message: str) -> None:
        self.run.say(message)

    def _on_worker_failed(self, message: str) -> None:
        self.run.report_error(message)

    def _on_worker_dataSkipped(self, summary: str, details: str) -> None:
        self.run.set_skipped(summary, details)

    def _on_worker_checkpointSaved(self, path: str) -> None:
        self.run.say(f"Saved {path}", 8)

    def _on_follower_started(self, info: RunInfo) -> None:
        self.run.follow_started(info)

    def _on_follower_writerChanged(self, alive: bool) -> None:
        self.run.set_writer_alive(alive)
