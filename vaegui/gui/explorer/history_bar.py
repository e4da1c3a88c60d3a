"""The map history bar: scrub the latent map through the epochs its run folder kept, or play
them, the points moving smoothly from each epoch's place to the next; Live goes back to the
training's own map."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QWidget

from vaegui.core.explorer import ExplorerModel

EPOCHS_PER_SECOND = 2.0  # playing speed
FRAME_MS = 33


class HistoryBar(QWidget):
    def __init__(self, model: ExplorerModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self.play_button = QPushButton("▶", checkable=True, toolTip="Play the map through the epochs")
        self.play_button.setFixedWidth(32)
        self.slider = QSlider(Qt.Orientation.Horizontal, toolTip="Scrub the map through the run's epochs")
        self.live_button = QPushButton("Live", checkable=True,
                                       toolTip="Show the latest map and weights (they follow training)")
        self.label = QLabel()
        self.label.setMinimumWidth(110)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("History"))
        layout.addWidget(self.play_button)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.label)
        layout.addWidget(self.live_button)
        self._timer = QTimer(self, interval=FRAME_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._last_frame = 0.0
        self.slider.valueChanged.connect(self._on_slider_valueChanged)
        self.live_button.clicked.connect(self._on_live_button_clicked)
        self.play_button.toggled.connect(self._on_play_button_toggled)
        model.events.history.connect(self._sync)
        model.events.encoded.connect(self._sync)
        self._sync()

    def _epochs(self) -> list[int]:
        return self.model.history.epochs if self.model.history is not None else []

    def _sync(self) -> None:
        epochs, position = self._epochs(), self.model.history_position
        why = self.model.history_usable() if self.model.history is not None else "no run folder"
        self.setEnabled(not why)
        self.setToolTip(why)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(epochs) - 1))
        if position is None:
            self.slider.setValue(self.slider.maximum())
        else:
            self.slider.setValue(min(range(len(epochs)), key=lambda k: abs(epochs[k] - position)))
        self.slider.blockSignals(False)
        self.live_button.setChecked(position is None)
        # What the history left out of a damaged run folder (see core.map_history), said here.
        problem = self.model.history.problem if self.model.history is not None else ""
        self.label.setToolTip(problem)
        self.label.setStyleSheet("color: #b35900" if problem and not why else "")
        if why:
            self.label.setText("–")
        elif position is None:
            self.label.setText(f"live · {len(epochs)} epoch{'s' * (len(epochs) != 1)}"
                               + (" · files skipped" if problem else ""))
        else:
            self.label.setText(f"epoch {position:.1f}" if position % 1 else f"epoch {int(position)} of {epochs[-1]}")

    def _on_slider_valueChanged(self, index: int) -> None:
        epochs = self._epochs()
        if epochs:
            self.play_button.setChecked(False)
            self.model.show_history(float(epochs[index]))

    def _on_live_button_clicked(self) -> None:
        self.play_button.setChecked(False)
        self.model.show_history(None)

    def _on_play_button_toggled(self, on: bool) -> None:
        epochs = self._epochs()
        if on and epochs:
            position = self.model.history_position
            if position is None or position >= epochs[-1]:
                self.model.show_history(float(epochs[0]))  # from the start
            self._last_frame = time.perf_counter()
            self._timer.start()
        else:
            self._timer.stop()

    def _on_timer_timeout(self) -> None:
        now = time.perf_counter()
        seconds, self._last_frame = now - self._last_frame, now
        epochs, position = self._epochs(), self.model.history_position
        if not epochs or position is None:
            self.play_button.setChecked(False)
            return
        position = min(position + EPOCHS_PER_SECOND * min(seconds, 0.25), float(epochs[-1]))
        self.model.show_history(position)
        if position >= epochs[-1]:
            self.play_button.setChecked(False)
