"""The main window: the one place that wires the panels and the training worker together."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QSettings, Qt, QThread, QTimer, Signal
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QFrame, QLabel, QMainWindow, QMessageBox,
                               QScrollArea, QSplitter, QStyle, QToolButton, QWidget)

from vaegui import __version__
from vaegui.core.config import RunConfig
from vaegui.core.errors import ConfigError, VaeguiError
from vaegui.core.explorer import ExplorerModel
from vaegui.core.latent import EncodedSet, Snapshot
from vaegui.core.map_history import MapHistory
from vaegui.core.progress import Progress

from . import settings as store
from .actions import Actions
from .compare.launcher import CompareLauncher
from .explorer.decode_worker import DecodeWorker
from .explorer.interpolation_view import InterpolationView
from .explorer.latent_map import LatentMap
from .explorer.manifold_view import ManifoldView
from .explorer.point_view import PointView
from .explorer.samples_view import SamplesView
from .explorer.traversal_view import TraversalView
from .export.export_controller import ExportController
from .run_follower import RunFollower
from .icons import icon
from .kl_view import KLDimView
from .loss_view import LossView
from .training_panel import TrainingPanel
from .threads import one_torch_thread_here
from .training_worker import RunInfo, TrainingWorker

CHECKPOINT_FILTER = "vaegui checkpoints (*.pt *.ckpt);;All files (*)"
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
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("vaegui: VAE latent-space explorer")
        self.setWindowIcon(icon("app"))
        self._settings = settings if settings is not None else QSettings()
        self._data_dir = data_dir
        self._info: RunInfo | None = None  # the model now shown: a run or an opened checkpoint
        self._closed = False
        self._close_when_stopped = False  # a close waits for the run to stop and save
        self._opened_path: str | None = None
        self.interrupted = False  # Ctrl-C came (a second one leaves at once; see app.py)
        self.exit_code: int | None = None  # set by interrupt(): the app's exit code
        self.error_box: QMessageBox | None = None
        self.last_error: str | None = None
        self._epochs_override: int | None = None
        self.engine_ready = False  # torch loads on the worker's thread after the window opens

        self.training_panel = TrainingPanel(config or store.load_config(self._settings) or RunConfig())
        self.training_panel.set_map_source(*store.load_map_source(self._settings))
        self.loss_view = LossView()
        self.kl_view = KLDimView()
        # The explorer: one Qt-free model, one decoding thread, and views of the model.
        self.explorer = ExplorerModel()
        self.decode_worker = DecodeWorker(self.explorer)
        self.latent_map = LatentMap(self.explorer)
        self.point_view = PointView(self.explorer, self.decode_worker)
        self.interpolation_view = InterpolationView(self.explorer, self.decode_worker)
        self.traversal_view = TraversalView(self.explorer, self.decode_worker)
        self.manifold_view = ManifoldView(self.explorer, self.decode_worker)
        self.samples_view = SamplesView(self.explorer, self.decode_worker)
        self._build_docks()
        self.menu_actions = Actions(self)
        self.menu_actions.build_menus(self, self.docks)
        self.toolbar = self.menu_actions.build_toolbar(self)
        self.exporter = ExportController(self, self._settings, self.explorer, self.loss_view,
                                         self._run_settings, self.save_checkpoint)
        self.exporter.build_menu(self.menu_actions.export_menu)
        self.exporter.install_context_menus()
        # File > Compare runs…, and a sweep's folder opened as a run (see compare/launcher.py).
        self.compare = CompareLauncher(self, self.menuBar().actions()[0].menu(), self.menu_actions.recent_menu.menuAction(),
                                       lambda: store.load_recent_runs(self._settings), lambda: self.worker.runs_dir)
        self.device_label = QLabel("Loading PyTorch…")
        # Shown when a folder dataset skipped files: opens the list with each file's reason.
        self.skipped_button = QToolButton(autoRaise=True)
        self.skipped_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning))
        self.skipped_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.skipped_button.hide()
        self.skipped_button.clicked.connect(self._on_skipped_button_clicked)
        self._skipped: tuple[str, str] = ("", "")
        self.statusBar().addPermanentWidget(self.skipped_button)
        self.statusBar().addPermanentWidget(self.device_label)

        self.follower = RunFollower()
        self._following = False
        self.follow_label = QLabel()
        self.statusBar().addPermanentWidget(self.follow_label)
        self.follow_label.hide()
        self.worker = TrainingWorker(torch_threads=torch_threads)
        self.worker_thread = QThread()
        self.worker_thread.setObjectName("vaegui-training")
        self.worker.moveToThread(self.worker_thread)
        self._connect()
        self.worker.set_map_source(*self.training_panel.map_source())
        if runs_dir := store.load_runs_dir(self._settings):
            self.worker.runs_dir = Path(runs_dir)
        self._fill_recent_menu(store.load_recent_runs(self._settings))
        self.worker_thread.start()
        self._warming_up = False  # see _warm_up: after the first paint, or at the first command
        # torch loads once the window is on screen: loading it on the worker's thread meanwhile
        # would take the GIL from building and painting the window.
        self._first_paint = _AfterFirstPaint(self, self._warm_up)
        self.training_panel.set_ready(False)
        self._restore_window()
        self._sync_actions()

    # ---- construction ------------------------------------------------------------------------
    def _build_docks(self) -> None:
        self.losses_splitter = losses = QSplitter(Qt.Orientation.Horizontal)
        losses.addWidget(self.loss_view)
        losses.addWidget(self.kl_view)
        losses.setStretchFactor(0, 1)
        losses.setStretchFactor(1, 0)
        losses.setSizes([600, 360])
        self.dock_training = self._dock("Training", self.training_panel)
        self.dock_map = self._dock("Latent map", self.latent_map)
        self.dock_point = self._dock("Point", _scrolled(self.point_view))
        self.dock_interpolation = self._dock("Interpolation", _scrolled(self.interpolation_view))
        self.dock_traversal = self._dock("Traversal", _scrolled(self.traversal_view))
        self.dock_manifold = self._dock("Manifold grid", _scrolled(self.manifold_view))
        self.dock_samples = self._dock("Samples", _scrolled(self.samples_view))
        self.dock_losses = self._dock("Losses", losses)
        self.docks = [self.dock_training, self.dock_losses, self.dock_map, self.dock_point,
                      self.dock_interpolation, self.dock_traversal, self.dock_manifold, self.dock_samples]
        self.setDockNestingEnabled(True)
        self.reset_layout()

    def _dock(self, title: str, widget: QWidget) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName("dock_" + title.lower().replace(" ", "_"))  # saveState needs names
        dock.setWidget(widget)
        return dock

    def reset_layout(self) -> None:
        """Training left; the map large in the centre with Losses below it; on the right, full
        height, the Point view above Interpolation (Manifold grid behind it) and Traversal
        (Samples behind it)."""
        for dock in self.docks:
            dock.setFloating(False)
            dock.show()
        left = Qt.DockWidgetArea.LeftDockWidgetArea
        self.addDockWidget(left, self.dock_training)
        self.splitDockWidget(self.dock_training, self.dock_map, Qt.Orientation.Horizontal)
        self.splitDockWidget(self.dock_map, self.dock_point, Qt.Orientation.Horizontal)
        self.splitDockWidget(self.dock_map, self.dock_losses, Qt.Orientation.Vertical)
        self.splitDockWidget(self.dock_point, self.dock_interpolation, Qt.Orientation.Vertical)
        self.splitDockWidget(self.dock_interpolation, self.dock_traversal, Qt.Orientation.Vertical)
        self.tabifyDockWidget(self.dock_interpolation, self.dock_manifold)
        self.tabifyDockWidget(self.dock_traversal, self.dock_samples)
        self.dock_interpolation.raise_()
        self.dock_traversal.raise_()
        self.resizeDocks([self.dock_training, self.dock_map, self.dock_point], [290, 620, 380],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([self.dock_map, self.dock_losses], [520, 260], Qt.Orientation.Vertical)
        self.resizeDocks([self.dock_point, self.dock_interpolation, self.dock_traversal], [270, 330, 300],
                         Qt.Orientation.Vertical)

    def _connect(self) -> None:
        # Worker signals go to bound methods of this window (never lambdas), so that Qt queues
        # them into the GUI thread.
        a, panel, w = self.menu_actions, self.training_panel, self.worker
        a.start.triggered.connect(self.start_training)
        a.pause.triggered.connect(self._on_pause_triggered)
        a.stop.triggered.connect(self.stop_training)
        a.refresh_map.triggered.connect(self.refresh_map)
        a.open.triggered.connect(self._on_open_triggered)
        a.open_run.triggered.connect(self._on_open_run_triggered)
        a.runs_folder.triggered.connect(self._on_runs_folder_triggered)
        a.save.triggered.connect(self._on_save_triggered)
        a.export_bundle.triggered.connect(self.exporter.bundle_dialog)
        self.exporter.exported.connect(self._on_exporter_exported)
        self.exporter.failed.connect(self.show_error)
        self.worker.checkpointSaved.connect(self.exporter.on_checkpoint_saved)
        self.worker.saveFailed.connect(self.exporter.on_save_failed)
        a.quit.triggered.connect(self.close)
        a.reset_layout.triggered.connect(self.reset_layout)
        a.about.triggered.connect(self._on_about_triggered)
        a.play.triggered.connect(self.explorer.toggle_playing)
        panel.startRequested.connect(self.start_training)
        panel.pauseRequested.connect(self.pause_training)
        panel.resumeRequested.connect(self.resume_training)
        panel.stopRequested.connect(self.stop_training)
        panel.betaChanged.connect(self._on_training_betaChanged)
        panel.mapSourceChanged.connect(self._on_training_mapSourceChanged)
        panel.mapRefreshRequested.connect(self.refresh_map)
        w.ready.connect(self._on_worker_ready)
        w.runStarted.connect(self._on_worker_runStarted)
        w.progressed.connect(self._on_worker_progressed)
        w.snapshotTaken.connect(self._on_worker_snapshotTaken)
        w.mapEncoded.connect(self._on_worker_mapEncoded)
        w.checkpointOpened.connect(self._on_worker_checkpointOpened)
        w.checkpointSaved.connect(self._on_worker_checkpointSaved)
        w.statusChanged.connect(self.statusBar().showMessage)
        w.failed.connect(self._on_worker_failed)
        w.dataSkipped.connect(self._on_worker_dataSkipped)
        f = self.follower
        a.follow_run.triggered.connect(self._on_follow_run_triggered)
        f.started.connect(self._on_follower_started)
        f.progressed.connect(self._on_worker_progressed)  # the same shapes as a local run's
        f.snapshotTaken.connect(self._on_worker_snapshotTaken)
        f.mapEncoded.connect(self._on_worker_mapEncoded)
        f.writerChanged.connect(self._on_follower_writerChanged)
        f.failed.connect(self._on_worker_failed)
        f.finished.connect(self._on_follower_finished)
        w.runFinished.connect(self._on_worker_runFinished)

    def _warm_up(self) -> None:
        """Have the worker load torch and the engine (once); calls queued after this wait for it."""
        if not self._warming_up:
            self._warming_up = True
            self.worker.warm_up()

    # ---- commands (menu, toolbar, panel, tests) ----------------------------------------------
    def start_training(self) -> None:
        if self.training_panel.state != "idle" or self._following:
            return
        self._warm_up()
        try:
            config = self.training_panel.config()
        except ConfigError as exc:
            self.show_error(str(exc))
            return
        store.save_config(self._settings, config)
        self.training_panel.set_state("running")
        self._sync_actions()
        self.statusBar().showMessage(f"Starting: {config.data.dataset}, {config.model.family}, "
                                     f"L = {config.model.latent_dim}")
        self.worker.start(config)

    def pause_training(self) -> None:
        if self.training_panel.state == "running":
            self.worker.pause()
            self.training_panel.set_state("paused")
            self._sync_actions()
            self.statusBar().showMessage("Paused: the map, decoder and saving still work")

    def resume_training(self) -> None:
        if self.training_panel.state == "paused":
            self.worker.resume()
            self.training_panel.set_state("running")
            self._sync_actions()
            self.statusBar().showMessage("Training")

    def follow_run(self, path: str) -> None:
        """Show a run folder that another process writes, as it grows (File > Follow run)."""
        if self.training_panel.state != "idle" or self._following:
            return
        self._following = True
        self._sync_actions()
        self.statusBar().showMessage(f"Following {path}…")
        self.follower.follow(str(path), self._data_dir)

    def stop_training(self) -> None:
        if self._following:
            self.follower.stop()
        elif self.training_panel.state != "idle":
            self.worker.stop()
            self.statusBar().showMessage("Stopping…")

    def refresh_map(self) -> None:
        if self._info is not None:
            self.worker.refresh_map()

    def open_checkpoint(self, path: str, epochs: int | None = None) -> None:
        """Open in the worker; ``epochs`` replaces the checkpoint's planned epochs (to train on)."""
        if self.compare.opens(str(path)):  # a sweep's folder: the comparison of its runs
            return
        self._epochs_override = epochs
        self._opened_path = str(path)
        self.statusBar().showMessage(f"Opening {path}…")
        self._warm_up()
        self.worker.open_checkpoint(str(path), self._data_dir)

    def save_checkpoint(self, path: str) -> None:
        self.worker.save_checkpoint(str(path))


    def interrupt(self) -> None:
        """Ctrl-C: stop training (its run folder then holds the last weights), say so in one
        line, and close (exit code 130)."""
        self.interrupted, self.exit_code = True, 130
        if self.training_panel.state != "idle":
            self._stop_and_close()
        else:
            print("vaegui: interrupted", file=sys.stderr)
            self.close()

    def _stop_and_close(self) -> None:
        """Stop within a step; the worker saves the run folder, then the window closes (a failed
        save keeps it open, with the error)."""
        self._close_when_stopped = True
        self.worker.stop(final_map=False)
        self.statusBar().showMessage("Stopping and saving the run…")

    def show_error(self, text: str) -> None:
        """A message box that does not block (tests find it as ``error_box``)."""
        self.last_error = text
        self.errorShown.emit(text)
        self.statusBar().showMessage(text.splitlines()[0], 15000)
        if self.error_box is not None:
            self.error_box.close()
        self.error_box = QMessageBox(QMessageBox.Icon.Warning, "vaegui", text,
                                     QMessageBox.StandardButton.Ok, self)
        self.error_box.open()

    # ---- worker events -----------------------------------------------------------------------
    def _on_worker_ready(self, device: str) -> None:
        one_torch_thread_here()  # before this thread's first torch work (see gui/threads.py)
        self.engine_ready = True
        self.training_panel.set_ready(True)
        if self.training_panel.state == "idle":  # a run shows its own device
            self.device_label.setText(f"Device: {device}")
        self._sync_actions()
        self.engineReady.emit()

    def _on_worker_runStarted(self, info: RunInfo) -> None:
        self._show_model(info)
        self._remember_run(info.run_dir)

    def _show_model(self, info: RunInfo) -> None:
        self._info = info
        self.explorer.clear()
        self.explorer.set_examples(info.examples)
        self.explorer.set_history(_history_of(info.run_dir))
        if info.history is not None and info.history.evals:
            self.explorer.set_evaluation(info.history.evals[-1])
        if len(info.history.steps) or info.history.evals:
            self.loss_view.set_history(info.history, info.steps_per_epoch)
        else:
            self.loss_view.clear()
        self.kl_view.clear()
        if info.history.evals:
            self.kl_view.set_eval(info.history.evals[-1])
        self._sync_actions()

    def _on_worker_progressed(self, p: Progress) -> None:
        self.loss_view.add_progress(p)
        self.training_panel.show_progress(p)
        if p.eval is not None:
            self.kl_view.set_eval(p.eval)
            self.explorer.set_evaluation(p.eval)
        self.device_label.setText(f"Device: {p.device}")

    def _on_worker_snapshotTaken(self, snapshot: Snapshot) -> None:
        if self._info is not None:
            self.explorer.set_snapshot(snapshot)

    def _on_worker_mapEncoded(self, encoded: EncodedSet) -> None:
        self.explorer.set_encoded(encoded)
        self.mapUpdated.emit()

    def _on_worker_checkpointOpened(self, info: RunInfo) -> None:
        config = info.config
        if self._epochs_override:
            config = config.replace(train={"epochs": self._epochs_override})
        self.training_panel.set_config(config)
        self._show_model(info)
        self._remember_run(info.run_dir or self._opened_path)
        epoch = info.step / info.steps_per_epoch
        self.statusBar().showMessage(f"Opened a model trained {info.step:,} steps ({epoch:g} epochs) "
                                     f"on {config.data.dataset}: Start continues its training")
        self.checkpointOpened.emit()

    def _on_worker_checkpointSaved(self, path: str) -> None:
        self.statusBar().showMessage(f"Saved {path}", 8000)

    def _on_follower_started(self, info: RunInfo) -> None:
        self.training_panel.set_config(info.config)
        self._show_model(info)
        self._remember_run(info.run_dir)

    def _on_follower_writerChanged(self, alive: bool) -> None:
        run = Path(self._info.run_dir).name if self._info is not None and self._info.run_dir else "run"
        self.follow_label.setText(f"Following {run} · " + ("writer alive" if alive else "writer stopped"))
        self.follow_label.show()

    def _on_follower_finished(self) -> None:
        self._following = False
        self.follow_label.hide()
        self._sync_actions()
        self.statusBar().showMessage("Stopped following", 8000)
        self.followFinished.emit()

    def _on_worker_dataSkipped(self, summary: str, details: str) -> None:
        self._skipped = (summary, details)
        if not details:
            self.skipped_button.hide()
            return
        count = details.count("\n") + 1
        self.skipped_button.setText(f"{count:,} file{'s' * (count > 1)} skipped")
        self.skipped_button.setToolTip(summary)
        self.skipped_button.show()

    def _on_skipped_button_clicked(self) -> None:
        summary, details = self._skipped
        self.skipped_box = QMessageBox(QMessageBox.Icon.Information, "Skipped files",
                                       summary.split(": skipped")[0] + ": these files were skipped",
                                       QMessageBox.StandardButton.Ok, self)
        self.skipped_box.setInformativeText(summary)
        self.skipped_box.setDetailedText(details)
        self.skipped_box.open()

    def _on_worker_failed(self, message: str) -> None:
        self.show_error(message)

    def _on_worker_runFinished(self, final: Progress | None) -> None:
        self.training_panel.set_state("idle")
        self._sync_actions()
        if final is not None:
            self.training_panel.show_progress(final)
            word = "stopped" if final.stopped else "finished"
            self.statusBar().showMessage(f"Training {word} at step {final.step:,}", 10000)
        self.runFinished.emit(final)
        if self._close_when_stopped:
            self._close_when_stopped = False
            if final is None:  # the run could not be saved: keep the window, with the error
                self.interrupted, self.exit_code = False, None
                return
            if self.interrupted:
                print(f"vaegui: interrupted: saved the run in {self._info.run_dir}", file=sys.stderr)
            self.close()

    # ---- panel events ------------------------------------------------------------------------
    def _on_training_betaChanged(self, beta: float) -> None:
        self.worker.set_beta(beta)  # direct call: the worker's event loop is busy training

    def _on_training_mapSourceChanged(self, split: str, limit: int | None) -> None:
        self.worker.set_map_source(split, limit)
        store.save_map_source(self._settings, split, limit)
        self.refresh_map()

    def _on_pause_triggered(self) -> None:
        if self.training_panel.state == "paused":
            self.resume_training()
        else:
            self.pause_training()

    def _on_open_triggered(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open checkpoint", "", CHECKPOINT_FILTER)
        if path:
            self.open_checkpoint(path)

    def _on_open_run_triggered(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open run folder", str(self.worker.runs_dir))
        if path:
            self.open_checkpoint(path)

    def _on_runs_folder_triggered(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Keep runs in", str(self.worker.runs_dir))
        if path:
            self.set_runs_dir(path)

    def set_runs_dir(self, path: str) -> None:
        self.worker.runs_dir = Path(path)
        store.save_runs_dir(self._settings, path)
        self.statusBar().showMessage(f"New runs go to {path}", 8000)

    def _remember_run(self, path: str | None) -> None:
        if path:
            self._fill_recent_menu(store.add_recent_run(self._settings, path))

    def _fill_recent_menu(self, runs: list[str]) -> None:
        menu = self.menu_actions.recent_menu
        menu.clear()
        for run in runs:
            menu.addAction(run, lambda run=run: self.open_checkpoint(run))
        menu.setEnabled(bool(runs))

    def _on_follow_run_triggered(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Follow run folder", str(self.worker.runs_dir))
        if path:
            self.follow_run(path)

    def _on_save_triggered(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save checkpoint", "model.pt", CHECKPOINT_FILTER)
        if path:
            self.save_checkpoint(path)

    def _on_exporter_exported(self, message: str) -> None:
        self.statusBar().showMessage(message, 8000)

    def _run_settings(self) -> dict | None:
        """The settings of the model shown, for an export."""
        return None if self._info is None else self._info.config.to_dict()

    def _on_about_triggered(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "About vaegui",
                          f"vaegui {__version__}\nA desktop latent-space explorer for variational "
                          "autoencoders.", QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def _sync_actions(self) -> None:
        state, a = self.training_panel.state, self.menu_actions
        idle = state == "idle" and not self._following
        a.start.setEnabled(idle and self.engine_ready)
        a.pause.setEnabled(state != "idle")
        a.pause.setText("&Resume" if state == "paused" else "&Pause")
        a.pause.setIcon(icon("play" if state == "paused" else "pause"))
        a.stop.setEnabled(not idle)
        for action in (a.open, a.open_run, a.follow_run, a.recent_menu.menuAction()):
            action.setEnabled(idle)
        a.save.setEnabled(self._info is not None)
        a.refresh_map.setEnabled(self._info is not None)
        self.training_panel.refresh_button.setEnabled(self._info is not None)

    # ---- persistence and shutdown ------------------------------------------------------------
    def _restore_window(self) -> None:
        geometry, state = store.load_window(self._settings)
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1280, 800)
        if state is not None:
            self.restoreState(state)

    def _save_settings(self) -> None:
        store.save_window(self._settings, self.saveGeometry(), self.saveState())
        try:
            store.save_config(self._settings, self.training_panel.config())
        except ConfigError:
            pass  # an invalid combination is not worth remembering
        store.save_map_source(self._settings, *self.training_panel.map_source())
        self._settings.sync()

    def shutdown(self, wait_ms: int | None = None) -> bool:
        """Stop training and end the worker thread (a stop lands within one step), waiting at
        most ``wait_ms`` (None: as long as it takes); False if the step had not ended by then."""
        self.explorer.set_playback(playing=False)
        self.decode_worker.shutdown()
        self.follower.shutdown()
        if self.worker_thread.isRunning():
            self.worker.shutdown()
            self.worker_thread.quit()
            if self.worker_thread.wait() if wait_ms is None else self.worker_thread.wait(wait_ms):
                return True
            _keep_until_finished(self.worker_thread, self.worker)
            return False
        return True

    def closeEvent(self, event) -> None:
        if self._closed:
            super().closeEvent(event)
            return
        if self.training_panel.state != "idle" and not self._close_when_stopped:
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


# Worker threads a close left running (a long training step): Qt aborts the process when a
# running QThread is destroyed, which the window's garbage collection would do.
_LEFT_RUNNING: list[tuple[QThread, QObject]] = []


def _keep_until_finished(thread: QThread, worker: QObject) -> None:
    _LEFT_RUNNING[:] = [(t, w) for t, w in _LEFT_RUNNING if t.isRunning()]  # the ended ones go
    _LEFT_RUNNING.append((thread, worker))


def _history_of(run_dir: str | None) -> MapHistory | None:
    """The map history a run folder keeps (None for a bare checkpoint or an unreadable folder:
    the map then has no history, nothing else changes)."""
    if run_dir is None:
        return None
    try:
        from vaegui.core.run_reader import RunReader  # torch: imported after the window opened

        return MapHistory(RunReader(run_dir))
    except VaeguiError:
        return None


def _scrolled(view: QWidget) -> QScrollArea:
    """The view in a scroll area: on a small screen its dock shrinks and scrolls, rather than
    forcing the whole window to the views' minimum sizes."""
    area = QScrollArea()
    area.setWidget(view)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    return area


class _AfterFirstPaint(QObject):
    """Calls ``then`` once, after ``widget``'s first paint, and stops watching its events (an
    event filter, not an override of event(), so that no later event passes through Python)."""

    def __init__(self, widget: QWidget, then):
        super().__init__(widget)
        self.widget, self.then = widget, then
        widget.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.widget.removeEventFilter(self)
            QTimer.singleShot(0, self.then)
        return False
