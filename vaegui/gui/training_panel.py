"""The Training panel: run controls, progress, the final results, and every setting of a run.

It shows a :class:`~vaegui.core.run_model.RunModel` and follows its events; the run model's
``controls()`` says which buttons and settings are enabled."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox,
                               QHBoxLayout, QLabel, QProgressBar, QPushButton, QScrollArea,
                               QSpinBox, QVBoxLayout, QWidget)

# Every range is the engine's own bound (core.config): a checkpoint's settings are never clamped.
from vaegui.core.config import (DEVICES, KL_FORMS, LIKELIHOODS, MAX_BATCH_SIZE, MAX_BETA, MAX_EPOCHS,
                                MAX_IMAGE_SIZE, MAX_LATENT_DIM, MAX_LR, MAX_STEPS, MAX_THREADS,
                                MODEL_FAMILIES, THREADS_AUTO, RunConfig)
from vaegui.core.dataset_catalog import DATASET_TITLES, FOLDER_PREFIX
from vaegui.core.progress import Progress, format_duration
from vaegui.core.run_model import RunModel, describe_results

from .icons import icon

CHOOSE_FOLDER = "<choose folder>"  # item data of the "Folder…" entry


class SciSpinBox(QDoubleSpinBox):
    """A spin box that shows and accepts numbers like 1e-3; the arrows halve and double."""

    def __init__(self, minimum: float, maximum: float, parent: QWidget | None = None):
        super().__init__(parent)
        self.setDecimals(12)
        self.setRange(minimum, maximum)

    def textFromValue(self, value: float) -> str:
        return f"{value:g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        try:
            ok = self.minimum() <= float(text) <= self.maximum()
        except ValueError:
            ok = False
        return (QValidator.State.Acceptable if ok else QValidator.State.Intermediate), text, pos

    def stepBy(self, steps: int) -> None:
        self.setValue(self.value() * 2.0 ** steps)


class TrainingPanel(QWidget):
    startRequested = Signal()
    pauseRequested = Signal()
    resumeRequested = Signal()
    stopRequested = Signal()
    betaChanged = Signal(float)
    mapSourceChanged = Signal(str, object)  # split, limit (None = all)
    mapRefreshRequested = Signal()

    def __init__(self, run: RunModel, config: RunConfig | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.run = run
        self._base = config or RunConfig()  # keeps the settings this panel has no widget for
        # Replaced in tests; a real dialog otherwise.
        self.ask_folder = lambda: QFileDialog.getExistingDirectory(self, "Choose an image folder")
        self._build()
        self.set_config(self._base)
        e = run.events
        e.state.connect(self._on_run_state)
        e.progress.connect(self._on_run_progress)
        e.results.connect(self._on_run_results)
        e.device.connect(self._on_run_device)
        e.info.connect(self._on_run_info)
        self._on_run_state()
        self._on_run_results()

    # ---- building ----------------------------------------------------------------------------
    def _build(self) -> None:
        body = QWidget()
        column = QVBoxLayout(body)
        column.setSpacing(6)
        column.setContentsMargins(6, 6, 6, 6)
        column.addWidget(self._build_run())
        column.addWidget(self._build_data())
        column.addWidget(self._build_model())
        column.addWidget(self._build_training())
        column.addWidget(self._build_map())
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    def _build_run(self) -> QGroupBox:
        box = QGroupBox("Run")
        self.start_button = QPushButton(icon("play"), "Start")
        self.pause_button = QPushButton(icon("pause"), "Pause")
        self.stop_button = QPushButton(icon("stop"), "Stop")
        self.start_button.clicked.connect(self.startRequested)
        self.pause_button.clicked.connect(self._on_pause_clicked)
        self.stop_button.clicked.connect(self.stopRequested)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.pause_button, self.stop_button):
            buttons.addWidget(b)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(False)
        self.progress_label = QLabel("Not started")
        self.progress_label.setWordWrap(True)
        self.results_label = QLabel()  # the final test figures of the run shown
        self.results_label.setWordWrap(True)
        self.device_label = QLabel("Device in use: –")
        self.device_label.setWordWrap(True)
        layout = QVBoxLayout(box)
        layout.setSpacing(4)
        layout.setContentsMargins(8, 4, 8, 6)
        layout.addLayout(buttons)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.results_label)
        layout.addWidget(self.device_label)
        return box

    def _build_data(self) -> QGroupBox:
        self.dataset_combo = QComboBox()
        for name, text in DATASET_TITLES.items():
            self.dataset_combo.addItem(text, name)
        self.dataset_combo.addItem("Folder…", CHOOSE_FOLDER)
        self._last_dataset_index = 0
        self.dataset_combo.activated.connect(self._on_dataset_activated)
        self.dataset_combo.currentIndexChanged.connect(self._update_enabled)
        self.image_size_spin = _spin(8, MAX_IMAGE_SIZE)
        self.channels_combo = QComboBox()
        self.channels_combo.addItem("Grayscale", 1)
        self.channels_combo.addItem("RGB", 3)
        return _form("Data", [("Dataset", self.dataset_combo), ("Image size", self.image_size_spin),
                              ("Channels", self.channels_combo)])

    def _build_model(self) -> QGroupBox:
        self.family_combo = _combo(MODEL_FAMILIES)
        self.latent_spin = _spin(1, MAX_LATENT_DIM)
        self.likelihood_combo = _combo(LIKELIHOODS)
        return _form("Model", [("Family", self.family_combo), ("Latent dim", self.latent_spin),
                               ("Likelihood", self.likelihood_combo)])

    def _build_training(self) -> QGroupBox:
        self.kl_combo = _combo(KL_FORMS)
        self.beta_spin = QDoubleSpinBox()
        self.beta_spin.setRange(0.0, MAX_BETA)
        self.beta_spin.setDecimals(3)
        self.beta_spin.setSingleStep(0.1)
        self.beta_spin.valueChanged.connect(self.betaChanged)
        # Whole numbers in a double spin box: QSpinBox stops at 2**31 - 1, short of MAX_STEPS.
        self.warmup_spin = QDoubleSpinBox(decimals=0, minimum=0, maximum=MAX_STEPS, singleStep=100)
        self.lr_spin = SciSpinBox(1e-12, MAX_LR)
        self.batch_spin = _spin(1, MAX_BATCH_SIZE, step=32)
        self.epochs_spin = _spin(1, MAX_EPOCHS)
        self.device_combo = _combo(DEVICES)
        # 0 shows as "auto": the count is then tuned while training runs (core.thread_governor).
        self.threads_spin = _spin(0, MAX_THREADS)
        self.threads_spin.setSpecialValueText(THREADS_AUTO)
        self.threads_spin.setToolTip("CPU threads of training: auto tunes the count to the measured "
                                     "speed (fewer on a busy machine); a fixed count reproduces a "
                                     "run bit for bit")
        return _form("Training", [
            ("KL form", self.kl_combo), ("Beta", self.beta_spin), ("Warm-up steps", self.warmup_spin),
            ("Learning rate", self.lr_spin), ("Batch size", self.batch_spin),
            ("Epochs", self.epochs_spin), ("Device", self.device_combo),
            ("CPU threads", self.threads_spin)])

    def _build_map(self) -> QGroupBox:
        self.map_split_combo = QComboBox()
        self.map_split_combo.addItem("Test set", "test")
        self.map_split_combo.addItem("Training images", "train")
        self.map_limit_spin = _spin(0, 10_000_000, step=1000)
        self.map_limit_spin.setSpecialValueText("All")  # 0: every training image
        self.map_limit_spin.setValue(10_000)
        self.map_limit_spin.setGroupSeparatorShown(True)
        self.refresh_button = QPushButton(icon("refresh"), "Refresh map")
        self.refresh_button.clicked.connect(self.mapRefreshRequested)
        self.map_split_combo.currentIndexChanged.connect(self._on_map_source_edited)
        self.map_limit_spin.editingFinished.connect(self._on_map_source_edited)
        return _form("Latent map", [("Points", self.map_split_combo), ("How many", self.map_limit_spin),
                                    ("", self.refresh_button)])

    # ---- settings ----------------------------------------------------------------------------
    def config(self) -> RunConfig:
        """The run the widgets describe (raises ConfigError for an invalid combination)."""
        data = {"dataset": self.dataset_combo.currentData(), "image_size": self.image_size_spin.value(),
                "channels": self.channels_combo.currentData()}
        if data["dataset"] != self._base.data.dataset:  # image limits belong to their dataset
            data.update(train_limit=None, test_limit=None)
        return self._base.replace(
            data=data,
            model={"family": self.family_combo.currentText(), "latent_dim": self.latent_spin.value(),
                   "likelihood": self.likelihood_combo.currentText()},
            train={"kl": self.kl_combo.currentText(), "beta": self.beta_spin.value(),
                   "warmup_steps": int(self.warmup_spin.value()), "lr": self.lr_spin.value(),
                   "batch_size": self.batch_spin.value(), "epochs": self.epochs_spin.value(),
                   "device": self.device_combo.currentText(),
                   "threads": self.threads_spin.value() or THREADS_AUTO})

    def set_config(self, cfg: RunConfig) -> None:
        self._base = cfg
        self._select_dataset(cfg.data.dataset)
        self.image_size_spin.setValue(cfg.data.image_size)
        self.channels_combo.setCurrentIndex(self.channels_combo.findData(cfg.data.channels))
        self.family_combo.setCurrentText(cfg.model.family)
        self.latent_spin.setValue(cfg.model.latent_dim)
        self.likelihood_combo.setCurrentText(cfg.model.likelihood)
        self.kl_combo.setCurrentText(cfg.train.kl)
        self.beta_spin.blockSignals(True)  # a new config is not a change to the running beta
        self.beta_spin.setValue(cfg.train.beta)
        self.beta_spin.blockSignals(False)
        self.warmup_spin.setValue(cfg.train.warmup_steps)
        self.lr_spin.setValue(cfg.train.lr)
        self.batch_spin.setValue(cfg.train.batch_size)
        self.epochs_spin.setValue(cfg.train.epochs)
        self.device_combo.setCurrentText(cfg.train.device)
        self.threads_spin.setValue(0 if cfg.train.threads == THREADS_AUTO else cfg.train.threads)

    def map_source(self) -> tuple[str, int | None]:
        split = self.map_split_combo.currentData()
        return split, ((self.map_limit_spin.value() or None) if split == "train" else None)

    def set_map_source(self, split: str, limit: int | None) -> None:
        self.map_split_combo.setCurrentIndex(max(0, self.map_split_combo.findData(split)))
        if limit or split == "train":
            self.map_limit_spin.setValue(limit or 0)  # None: all of them
        self._update_enabled()

    def _select_dataset(self, name: str) -> None:
        index = self.dataset_combo.findData(name)
        if index < 0 and name.startswith(FOLDER_PREFIX):
            path = name[len(FOLDER_PREFIX):]
            index = self.dataset_combo.count() - 1  # just before "Folder…"
            self.dataset_combo.insertItem(index, f"Folder: {os.path.basename(path) or path}", name)
            self.dataset_combo.setItemData(index, path, Qt.ItemDataRole.ToolTipRole)
        self.dataset_combo.setCurrentIndex(max(index, 0))
        self._last_dataset_index = self.dataset_combo.currentIndex()

    def _on_dataset_activated(self, index: int) -> None:
        if self.dataset_combo.itemData(index) != CHOOSE_FOLDER:
            self._last_dataset_index = index
            return
        path = self.ask_folder()
        if path:
            self._select_dataset(FOLDER_PREFIX + os.path.abspath(path))
        else:
            self.dataset_combo.setCurrentIndex(self._last_dataset_index)

    def _on_map_source_edited(self, *_args) -> None:
        self._update_enabled()
        self.mapSourceChanged.emit(*self.map_source())

    def _on_pause_clicked(self) -> None:
        (self.resumeRequested if self.run.controls().resumes else self.pauseRequested).emit()

    # ---- the run model -----------------------------------------------------------------------
    def _on_run_state(self) -> None:
        c = self.run.controls()
        self.start_button.setEnabled(c.start)
        self.start_button.setToolTip("" if self.run.ready else "Loading PyTorch…")
        self.pause_button.setEnabled(c.pause)
        self.stop_button.setEnabled(c.stop)
        self.pause_button.setText("Resume" if c.resumes else "Pause")
        self.pause_button.setIcon(icon("play" if c.resumes else "pause"))
        self.refresh_button.setEnabled(c.model)
        self._update_enabled()
        self._on_run_progress()  # the line ends with the state

    def _on_run_progress(self) -> None:
        if self.run.progress is not None:
            self.show_progress(self.run.progress)
            return
        self.progress_bar.setValue(0)
        self.progress_label.setText("Starting…" if self.run.busy else
                                    "Failed" if self.run.state == "failed" else "Not started")

    def _on_run_results(self) -> None:
        results = self.run.results
        self.results_label.setText("" if results is None else "Final " + describe_results(results))
        self.results_label.setVisible(results is not None)

    def _on_run_device(self) -> None:
        self.show_device(self.run.device)

    def _on_run_info(self) -> None:
        info = self.run.info
        if info is not None and info.source != "train":  # an opened or followed run's settings
            self.set_config(info.config)

    def _update_enabled(self, *_args) -> None:
        idle = self.run.controls().settings
        # Beta and the map's source stay editable: they apply to the running trainer / next map.
        for w in (self.dataset_combo, self.family_combo, self.latent_spin, self.likelihood_combo,
                  self.kl_combo, self.warmup_spin, self.lr_spin, self.batch_spin, self.epochs_spin,
                  self.device_combo, self.threads_spin):
            w.setEnabled(idle)
        dataset = self.dataset_combo.currentData() or ""
        folder = dataset.startswith(FOLDER_PREFIX)
        self.image_size_spin.setEnabled(idle and (folder or dataset == "shapes"))
        self.channels_combo.setEnabled(idle and folder)
        self.map_limit_spin.setEnabled(self.map_split_combo.currentData() == "train")

    def show_progress(self, p: Progress) -> None:
        self.progress_bar.setValue(round(1000 * p.fraction))
        parts = [f"Epoch {p.shown_epoch}/{p.epochs}", f"step {p.step:,}/{p.total_steps:,}"]
        if p.images_per_s > 0:
            parts.append(f"{p.images_per_s:,.0f} img/s")
        if p.threads:
            parts.append(f"{p.threads} thread{'s' * (p.threads != 1)}")
        if outcome := self.run.outcome():
            parts.append(outcome)
        elif p.seconds_left is not None and not p.done:
            parts.append(f"{format_duration(p.seconds_left)} left")
        self.progress_label.setText(" · ".join(parts))

    def show_device(self, device: str) -> None:
        self.device_label.setText(f"Device in use: {device}")


def _spin(minimum: int, maximum: int, step: int = 1) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(minimum, maximum)
    spin.setSingleStep(step)
    return spin


def _combo(items) -> QComboBox:
    combo = QComboBox()
    combo.addItems(list(items))
    return combo


def _form(title: str, rows) -> QGroupBox:
    box = QGroupBox(title)
    form = QFormLayout(box)
    form.setVerticalSpacing(4)  # compact: the whole panel should fit a 800-pixel-high window
    form.setContentsMargins(8, 4, 8, 6)
    for label, widget in rows:
        form.addRow(label, widget)
    return box
