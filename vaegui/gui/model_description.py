"""What the window shows in place of the training panel when it explores a user's own model:
the model's class, size, latent, images, device and decoder output, and the map's encoding."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

from vaegui.core.user_model import UserModel

INTRO = ("A model trained outside vaegui. Everything in the explorer works on it; there is "
         "nothing to train here.")


class ModelDescription(QWidget):
    def __init__(self, model: UserModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("model_description")
        intro = QLabel(INTRO)
        intro.setWordWrap(True)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.values: dict[str, QLabel] = {}
        for what, value in model.description():
            label = QLabel(value)
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.values[what] = label
            form.addRow(what + ":", label)
        self.progress = QProgressBar()
        self.progress.setRange(0, len(model.images.inputs))
        self.progress.setFormat("Encoding the map: %v of %m images")
        self.state_label = QLabel("")
        self.state_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.state_label)
        layout.addStretch(1)

    def set_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def set_state(self, text: str) -> None:
        """The map's encoding is done, or failed (the reason)."""
        self.progress.hide()
        self.state_label.setText(text)
