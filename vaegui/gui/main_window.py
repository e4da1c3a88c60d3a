"""The main window: the one place that wires the worker, the follower, the models and the views.

Two Qt-free models hold the state: :class:`~vaegui.core.run_model.RunModel` (the run shown) and
:class:`~vaegui.core.explorer.ExplorerModel` (what is explored). The views take them in their
constructors and follow their events. This window turns commands (menu, toolbar, panel, tests)
into worker jobs and the worker's and follower's reports into model changes; it reads no view's
state to move another view.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QSettings, QThread, Signal
from PySide6.QtWidgets import QMainWindow, QMessageBox, QWidget

from vaegui.core.config import RunConfig
from vaegui.core.ending import stop_word
from vaegui.core.errors import EXIT_INTERRUPTED, ConfigError
from vaegui.core.explorer import ExplorerModel
from vaegui.core.latent import EncodedSet, Snapshot
from vaegui.core.map_history import MapHistory
from vaegui.core.progress import Progress
from vaegui.core.run_info import RunInfo
from vaegui.core.run_model import RunModel

from . import settings as store
from .actions import Actions
from .after_first_paint import AfterFirstPaint
from .compare.launcher import CompareLauncher
from .dock_layout import EXPLORE, TRAIN, DockLayout, Panel, WorkspaceTabs, default_window_size
from .explorer.decode_worker import DecodeWorker
from .explorer.interpolation_view import InterpolationView
from .explorer.latent_map import LatentMap
from .explorer.manifold_view import ManifoldView
from .explorer.point_view import PointView
from .explorer.samples_view import SamplesView
from .explorer.traversal_view import TraversalView
from .export.export_controller import ExportController
from .file_dialogs import FileDialogs
from .icons import icon
from .kl_view import KLDimView
from .loss_view import LossView
from .recent_runs import RecentRuns
from .run_follower import RunFollower
from .run_reports import RunReports
from .run_status_bar import RunStatusBar
from .torch_threads import one_torch_thread_here
from .training_panel import TrainingPanel
from .theme import Theme
from .training_worker import TrainingWorker, keep_until_finished

CLOSE_WAIT_MS = 1000  # closing waits this long for a training step to end (the app then leaves anyway)


class MainWindow(QMainWindow):
    runFinished = Signal(object)  # the final Progress, or None when the run failed
    mapUpdated = Signal()
    checkpointOpened = Signal()
    errorShown = Signal(str)  # a message the user was shown (scripted runs stop on it)
    followFinished = Signal()
    closed = Signal()  # after closing has stopped the worker thread
    engineReady = Signal()  # torch and the engine are loaded: Start is enabled

    def __init__(self, settings: QSettings | None = None, *, config: RunConfig | None = None,
                 data_dir: str | None = None, torch_threads: int | None = None,
                 source=None, parent: QWidget | None = None):
        """``source``: a user's own model (core.user_model.UserModel) to explore instead of
        runs (see explore_mode.py)."""
        super().__init__(parent)
        self.setWindowTitle("vaegui: VAE latent-space explorer")
        self.setWindowIcon(icon("app"))
        self._settings = settings if settings is not None else QSettings()
        self._data_dir = data_dir
        self._closed = False
        self._close_when_stopped = False  # a close waits for the run to stop and save
        self.interrupted = False  # Ctrl-C came (a second one leaves at once; see app.py)
        self.exit_code: int | None = None  # set by interrupt(): the app's exit code
        self.error_box: QMessageBox | None = None
        self.last_error: str | None = None
        self.run = RunModel()  # the run shown
        self.explorer = ExplorerModel()  # what is explored: one decoding thread for its views
        self._build_views(config or store.load_config(self._settings) or RunConfig())
        self.keep_launch_settings()
        self.menu_actions = Actions(self, self.run)
        self.menu_actions.build_menus(self, self.docks)
        self.toolbar = self.menu_actions.build_toolbar(self)
        self._build_workspace_tabs()
        self.theme = Theme(self, store.load_theme(self._settings))
        self.menu_actions.themes[self.theme.mode].setChecked(True)
        self.recent_runs = RecentRuns(self.menu_actions.recent_menu, self._settings, self.run,
                                      self.open_checkpoint)
        self.exporter = ExportController(self, self._settings, self.explorer, self.run, self.loss_view,
                                         self.save_checkpoint)
        self.exporter.build_menu(self.menu_actions.export_menu)
        self.exporter.install_context_menus()
        # File > Compare runs…, and a sweep's folder opened as a run (see compare/launcher.py).
        self.compare = CompareLauncher(self, self.menuBar().actions()[0].menu(),
                                       self.menu_actions.recent_menu.menuAction(),
                                       lambda: store.load_recent_runs(self._settings), lambda: self.worker.runs_dir)
        self.status_bar = RunStatusBar(self.run)
        self.setStatusBar(self.status_bar)
        self.follower = RunFollower()
        self.worker = TrainingWorker(torch_threads=torch_threads)
        self.worker_thread = QThread()
        self.worker_thread.setObjectName("vaegui-training")
        self.worker.moveToThread(self.worker_thread)
        self.reports = RunReports(self.run, self.worker, self.follower, self)
        self._connect()
        self.worker.set_map_source(*self.training_panel.map_source())
        if runs_dir := store.load_runs_dir(self._settings):
            self.worker.runs_dir = Path(runs_dir)
        self.worker_thread.start()
        self._warming_up = False  # see _warm_up: after the first paint, or at the first command
        if source is None:  # a user's model trains nothing: no engine to warm up
            # torch loads once the window is on screen: loading it on the worker's thread
            # meanwhile would take the GIL from building and painting the window.
            self._first_paint = AfterFirstPaint(self, self._warm_up)
        self._restore_window()
        self.explore_mode = None
        if source is not None:  # after the layout is restored: it hides docks and actions
            from .explore_mode import ExploreMode

            self.explore_mode = ExploreMode(self, source)
        self.theme.apply()

    @property
    def engine_ready(self) -> bool:
        """torch and the engine are loaded on the worker's thread (after the window opened)."""
        return self.run.ready

    # ---- construction ------------------------------------------------------------------------
    def _build_views(self, config: RunConfig) -> None:
        run, explorer = self.run, self.explorer
        self.training_panel = TrainingPanel(run, config)
        self.training_panel.set_map_source(*store.load_map_source(self._settings))
        self.loss_view = LossView(run)
        self.kl_view = KLDimView(run)
        explorer.set_projection(store.load_map_projection(self._settings))
        explorer.events.projection.connect(self._on_explorer_projection)
        self.decode_worker = DecodeWorker(explorer)
        self.latent_map = LatentMap(explorer)
        self.point_view = PointView(explorer, self.decode_worker)
        self.interpolation_view = InterpolationView(explorer, self.decode_worker)
        self.traversal_view = TraversalView(explorer, self.decode_worker)
        self.manifold_view = ManifoldView(explorer, self.decode_worker)
        self.samples_view = SamplesView(explorer, self.decode_worker)
        # The map in the centre; each panel in a dock of its workspace (see dock_layout.py).
        self.docks = DockLayout(self, self.latent_map, [
            Panel("training", "Training", self.training_panel, TRAIN),
            Panel("losses", "Losses", self.loss_view, TRAIN),
            Panel("kl", "KL per dimension", self.kl_view, TRAIN),
            Panel("point", "Point", self.point_view, EXPLORE),
            Panel("interpolation", "Interpolation", self.interpolation_view, EXPLORE),
            Panel("traversal", "Traversal", self.traversal_view, EXPLORE),
            Panel("manifold", "Manifold grid", self.manifold_view, EXPLORE),
            Panel("samples", "Samples", self.samples_view, EXPLORE),
        ])

    def _build_workspace_tabs(self) -> None:
        self.workspace_tabs = WorkspaceTabs(self.docks)
        self.toolbar.addSeparator()
        self.toolbar.addWidget(self.workspace_tabs)
        self.docks.workspaceChanged.connect(self._on_docks_workspaceChanged)

    def show_workspace(self, name: str) -> None:
        """Train (the training panel, losses, KL) or Explore (the point, interpolation,
        traversal, manifold grid, samples), the map in the centre of both."""
        self.docks.switch(name)

    def reset_layout(self) -> None:
        """View > Reset layout: the window's default size for its screen, and every workspace's
        default arrangement for that size."""
        if not (self.isMaximized() or self.isFullScreen()):
            self.resize(default_window_size(self.screen().availableGeometry().size()))
        self.docks.reset()

    def set_window_size(self, width: int, height: int) -> None:
        """The window at ``width`` x ``height``, with the default layout for that size
        (--window-size). Such a size is for this launch only: it is not saved."""
        self.resize(width, height)
        self.docks.reset()
        self._save_geometry = False

    def _connect(self) -> None:
        # Worker and follower signals go to bound methods of this window (never lambdas), so that
        # Qt queues them into the GUI thread; RunReports takes the rest to the run model.
        a, panel, w, f, run = self.menu_actions, self.training_panel, self.worker, self.follower, self.run
        for action, slot in ((a.start, self.start_training), (a.pause, self._on_pause_triggered),
                             (a.stop, self.stop_training), (a.refresh_map, self.refresh_map),
                             (a.export_bundle, self.exporter.bundle_dialog), (a.quit, self.close),
                             (a.reset_layout, self.reset_layout), (a.play, self.explorer.toggle_playing)):
            action.triggered.connect(slot)
        for name, action in a.workspaces.items():
            action.triggered.connect(getattr(self, f"_on_{name.lower()}_workspace_triggered"))
        for action in a.themes.values():
            action.triggered.connect(self._on_theme_triggered)
        self.mapUpdated.connect(self.theme.restyle)  # a new map's items in the theme's colours
        self.explorer.events.point.connect(self._on_explorer_point)
        self.file_dialogs = FileDialogs(self, a, lambda: self.worker.runs_dir)
        self.exporter.exported.connect(self.status_bar.note)
        self.exporter.failed.connect(self.show_error)
        w.checkpointSaved.connect(self.exporter.on_checkpoint_saved)
        w.saveFailed.connect(self.exporter.on_save_failed)
        for signal, slot in (
                (panel.startRequested, self.start_training), (panel.pauseRequested, self.pause_training),
                (panel.resumeRequested, self.resume_training), (panel.stopRequested, self.stop_training),
                (panel.betaChanged, self._on_training_betaChanged),
                (panel.mapSourceChanged, self._on_training_mapSourceChanged),
                (panel.mapRefreshRequested, self.refresh_map),
                (w.ready, self._on_worker_ready), (w.runFinished, self._on_worker_runFinished),
                (w.checkpointOpened, self._on_worker_checkpointOpened), (f.finished, self._on_follower_finished),
                (w.snapshotTaken, self._on_worker_snapshotTaken), (w.mapEncoded, self._on_worker_mapEncoded),
                (f.snapshotTaken, self._on_worker_snapshotTaken), (f.mapEncoded, self._on_worker_mapEncoded)):
            signal.connect(slot)
        run.events.info.connect(self._on_run_info)
        run.events.state.connect(self._on_run_state)
        run.events.writer.connect(self._on_run_state)
        run.events.evaluation.connect(self._on_run_evaluation)
        run.events.error.connect(self._on_run_error)

    def _warm_up(self) -> None:
        """Have the worker load torch and the engine (once); calls queued after this wait for it."""
        if not self._warming_up:
            self._warming_up = True
            self.worker.warm_up()

    # ---- commands (menu, toolbar, panel, tests) ----------------------------------------------
    def start_training(self) -> None:
        if self.run.busy:
            return
        self._warm_up()
        try:
            config = self.training_panel.config()
        except ConfigError as exc:
            self.show_error(str(exc))
            return
        self._remember_config(config)
        self.run.start(config)
        self.worker.start(config)

    def pause_training(self) -> None:
        if self.run.controls().pause and self.run.state == "running":
            self.worker.pause()
            self.run.pause()

    def resume_training(self) -> None:
        if self.run.state == "paused":
            self.worker.resume()
            self.run.resume()

    def follow_run(self, path: str) -> None:
        """Show a run folder that another process writes, as it grows (File > Follow run)."""
        if self.run.busy:
            return
        self.run.follow(str(path))
        self.follower.follow(str(path), self._data_dir)

    def stop_training(self) -> None:
        if self.run.following:
            self.follower.stop()
        elif self.run.training:
            self.worker.stop()
            self.run.stopping()

    def refresh_map(self) -> None:
        if self.run.info is not None:
            self.worker.refresh_map()

    def open_checkpoint(self, path: str, epochs: int | None = None) -> None:
        """Open in the worker; ``epochs`` replaces the checkpoint's planned epochs (to train on)."""
        if self.compare.opens(str(path)):  # a sweep's folder: the comparison of its runs
            return
        self.run.opening(str(path))
        self._warm_up()
        self.worker.open_checkpoint(str(path), self._data_dir, epochs)

    def save_checkpoint(self, path: str) -> None:
        self.worker.save_checkpoint(str(path))

    def set_runs_dir(self, path: str) -> None:
        self.worker.runs_dir = Path(path)
        store.save_runs_dir(self._settings, path)
        self.status_bar.note(f"New runs go to {path}")

    def interrupt(self) -> None:
        """Ctrl-C: stop training (its run folder then holds the last weights), say so in one
        line, and close (exit code 130)."""
        self.interrupted, self.exit_code = True, EXIT_INTERRUPTED
        if self.run.training:
            self._stop_and_close()
        else:
            print(f"vaegui: {stop_word()}", file=sys.stderr)
            self.close()

    def _stop_and_close(self) -> None:
        """Stop within a step; the worker saves the run folder, then the window closes (a failed
        save keeps it open, with the error)."""
        self._close_when_stopped = True
        self.worker.stop(final_map=False)
        self.run.say("Stopping and saving the run…")

    def show_error(self, text: str) -> None:
        """A message box that does not block (tests find it as ``error_box``)."""
        self.last_error = text
        self.errorShown.emit(text)
        self.status_bar.showMessage(text.splitlines()[0], 15000)
        if self.error_box is not None:
            self.error_box.close()
        self.error_box = QMessageBox(QMessageBox.Icon.Warning, "vaegui", text,
                                     QMessageBox.StandardButton.Ok, self)
        self.error_box.open()

    # ---- worker and follower reports -> explorer, window ---------------------------------------------
    def _on_worker_ready(self, device: str) -> None:
        one_torch_thread_here()  # before this thread's first torch work (see gui/torch_threads.py)
        self.run.set_ready(device)
        self.engineReady.emit()

    def _on_worker_snapshotTaken(self, snapshot: Snapshot) -> None:
        if self.run.info is not None:
            self.explorer.set_snapshot(snapshot)

    def _on_worker_mapEncoded(self, encoded: EncodedSet) -> None:
        self.explorer.set_encoded(encoded)
        self.mapUpdated.emit()

    def _on_worker_checkpointOpened(self, info: RunInfo) -> None:
        self.run.opened(info)
        self.show_workspace(EXPLORE)  # a model opened is a model to explore
        self.checkpointOpened.emit()

    def _on_worker_runFinished(self, final: Progress | None) -> None:
        self.run.run_finished(final)
        self.runFinished.emit(final)
        if self._close_when_stopped:
            self._close_when_stopped = False
            if self.run.state == "failed":  # the run could not be saved: keep the window, with the error
                self.interrupted, self.exit_code = False, None
                return
            if self.interrupted:  # no final progress: stopped before its first step, nothing to save
                saved = "" if final is None else f": saved the run in {self.run.info.run_dir}"
                print(f"vaegui: {stop_word()}" + saved, file=sys.stderr)
            self.close()

    def _on_follower_finished(self) -> None:
        self.run.follow_finished(self.follower.stopped_because or self.follower.skipped_note)
        self.followFinished.emit()

    # ---- run model -> explorer model ---------------------------------------------------------
    def _on_run_info(self) -> None:
        """Another run or model: the explorer starts again with its examples and map history."""
        info = self.run.info
        self.explorer.clear()
        if info is None:
            return
        self.explorer.set_examples(info.examples)
        history = MapHistory.of_run(info.run_dir)
        self.explorer.set_history(history)
        if history is not None and history.problem:  # epochs left out of the history, and why
            self.run.say(history.problem, 15)
        self.explorer.set_evaluation(self.run.evaluation)

    def _on_run_state(self) -> None:
        # A map being trained places each epoch's points on its layout and lays out anew at the end.
        self.explorer.set_training(self.run.state == "running" or self.run.following)

    def _on_run_evaluation(self) -> None:
        if self.run.evaluation is not None:
            self.explorer.set_evaluation(self.run.evaluation)

    def _on_run_error(self) -> None:
        self.show_error(self.run.error)

    # ---- panel and dialogs -------------------------------------------------------------------
    def _on_training_betaChanged(self, beta: float) -> None:
        self.worker.set_beta(beta)  # direct call: the worker's event loop is busy training

    def _on_training_mapSourceChanged(self, split: str, limit: int | None) -> None:
        self.worker.set_map_source(split, limit)
        store.save_map_source(self._settings, split, limit)
        self.refresh_map()

    def _on_pause_triggered(self) -> None:
        if self.run.controls().resumes:
            self.resume_training()
        else:
            self.pause_training()

    # ---- workspaces -----------------------------------------------------------------------------
    def _on_train_workspace_triggered(self) -> None:
        self.show_workspace(TRAIN)

    def _on_explore_workspace_triggered(self) -> None:
        self.show_workspace(EXPLORE)

    def _on_docks_workspaceChanged(self, name: str) -> None:
        self.menu_actions.workspaces[name].setChecked(True)

    def set_theme(self, mode: str) -> None:
        """View > Theme: "system", "light" or "dark" (saved)."""
        self.theme.set_mode(mode)
        self.menu_actions.themes[mode].setChecked(True)
        store.save_theme(self._settings, mode)

    def _on_theme_triggered(self) -> None:
        self.set_theme(next(m for m, a in self.menu_actions.themes.items() if a.isChecked()))

    def _on_explorer_point(self) -> None:
        # A point picked on the map is decoded by the Point view, which is in Explore.
        if self.docks.workspace != EXPLORE and not self.docks.point.isVisible():
            self.show_workspace(EXPLORE)

    # ---- persistence and shutdown ------------------------------------------------------------
    def keep_launch_settings(self) -> None:
        """The settings in the panel now came with the launch (the command line, a checkpoint it
        opened): they are not saved unless the user changes them in the window."""
        try:
            self._opened_with = self.training_panel.config()
        except ConfigError:
            self._opened_with = None

    def _remember_config(self, config: RunConfig) -> None:
        if self._opened_with is None:
            store.save_config(self._settings, config)
        else:
            store.save_config_changes(self._settings, self._opened_with, config)

    def _restore_window(self) -> None:
        self._save_geometry = True
        geometry = store.load_window(self._settings)
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(default_window_size(self.screen().availableGeometry().size()))
        self.docks.restore(*store.load_layout(self._settings))

    def _save_settings(self) -> None:
        if self._save_geometry:
            store.save_window(self._settings, self.saveGeometry())
            store.save_layout(self._settings, self.docks.workspace, self.docks.states())
        try:
            self._remember_config(self.training_panel.config())
        except ConfigError:
            pass  # an invalid combination is not worth remembering
        store.save_map_source(self._settings, *self.training_panel.map_source())
        self._settings.sync()

    def shutdown(self, wait_ms: int | None = None) -> bool:
        """Stop training and end the worker thread (a stop lands within one step), waiting at
        most ``wait_ms`` (None: as long as it takes); False if the step had not ended by then."""
        self.explorer.set_playback(playing=False)
        if self.explore_mode is not None:
            self.explore_mode.shutdown()
        self.decode_worker.shutdown()
        self.latent_map.shutdown()
        self.follower.shutdown()
        if self.worker_thread.isRunning():
            self.worker.shutdown()
            self.worker_thread.quit()
            if self.worker_thread.wait() if wait_ms is None else self.worker_thread.wait(wait_ms):
                return True
            keep_until_finished(self.worker_thread, self.worker)
            return False
        return True

    def _on_explorer_projection(self) -> None:
        store.save_map_projection(self._settings, self.explorer.projection)

    def closeEvent(self, event) -> None:
        if self._closed:
            super().closeEvent(event)
            return
        if self.run.training and not self._close_when_stopped:
            event.ignore()  # closes once the run has stopped and saved its folder
            self._stop_and_close()
            return
        # Idle, or a second close while a long step ends: go now (the folder keeps the last
        # epoch's checkpoint; the app leaves without waiting for the step, see app.py).
        self._closed = True
        self._save_settings()
        self.hide()  # at once: a long training step may still have to end
        self.shutdown(wait_ms=CLOSE_WAIT_MS)
        super().closeEvent(event)
        self.closed.emit()
