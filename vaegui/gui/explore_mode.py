"""The main window in explore mode: a user's own model (see core/user_model.py) in place of a
run. The explorer and all its views are the window's own and work unchanged; this wires the
model to them, puts the model's description where the training panel was, hides what trains,
saves or opens runs, and encodes the images for the map on a thread of its own."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from vaegui.core.user_model import UserModel
from vaegui.core.user_snapshot import show_model, user_encoded

from .dock_layout import EXPLORE
from .map_encoder import MapEncoder
from .model_description import ModelDescription

STATUS_SECONDS = 30  # how long the status bar says what the decoder's output was taken for


class ExploreMode(QObject):
    mapEncoded = Signal()  # the images are on the map
    failed = Signal(str)  # the map could not be encoded (the window shows why, too)

    def __init__(self, window, model: UserModel):
        """``window``: the MainWindow (its docks, actions, run and explorer models)."""
        super().__init__(window)
        self.window, self.model = window, model
        self.description = ModelDescription(model)
        # The training panel is kept by the window (hidden), for the window's settings.
        window.docks.set_widget("training", self.description, title="Model")
        self._hide_training(window)
        window.setWindowTitle(f"vaegui: exploring {model.class_name}")
        window.run.set_ready(str(model.device))  # nothing to load: the status bar shows the model's device
        show_model(window.explorer, model)
        window.run.say(f"Decoder output taken as {model.output_reason}", STATUS_SECONDS)
        self.encoder = MapEncoder(model, self)
        self.encoder.progressed.connect(self._on_encoder_progressed)
        self.encoder.finished.connect(self._on_encoder_finished)
        self.encoder.failed.connect(self._on_encoder_failed)
        self.encoder.start()

    @staticmethod
    def _hide_training(window) -> None:
        a = window.menu_actions
        for action in (a.start, a.pause, a.stop, a.refresh_map, a.save, a.open, a.open_run,
                       a.follow_run, a.runs_folder, a.recent_menu.menuAction()):
            action.setVisible(False)
        for action in window.menuBar().actions():
            if action.text().replace("&", "") == "Train":
                action.setVisible(False)
        window.docks.leave_out("losses")  # the model was trained elsewhere (View shows it if asked)
        window.show_workspace(EXPLORE)

    def shutdown(self) -> None:
        self.encoder.shutdown()

    def _on_encoder_progressed(self, done: int, total: int) -> None:
        self.description.set_progress(done, total)

    def _on_encoder_finished(self, latents: np.ndarray) -> None:
        w = self.window
        w.explorer.set_encoded(user_encoded(self.model, latents))
        self.description.set_state(f"The map shows all {len(latents):,} images.")
        self.mapEncoded.emit()
        w.mapUpdated.emit()

    def _on_encoder_failed(self, message: str) -> None:
        self.description.set_state(f"The map could not be made: {message}")
        self.failed.emit(message)
        self.window.show_error(f"The map could not be made: {message}")
