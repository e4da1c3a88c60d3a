"""The window's status bar: what the run model says, its device, the writer of a followed run,
and the files a folder dataset skipped.

A message says its conclusion first. Only its first line is shown, cut at a word with "…" where
the bar is too narrow; the whole message is the bar's tooltip.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QLabel, QMessageBox, QStatusBar, QStyle, QToolButton, QWidget

from vaegui.core.run_model import RunModel

NOTE_MS = 8000  # how long a note (saved, exported, a new runs folder) stays
ELLIPSIS = "…"
MESSAGE_PADDING = 16  # the bar's own margins around its message, and a gap before its widgets


class RunStatusBar(QStatusBar):
    def __init__(self, run: RunModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.run = run
        self.skipped_box: QMessageBox | None = None
        self.device_label = QLabel()
        # Shown when a folder dataset skipped files: opens the list with each file's reason.
        self.skipped_button = QToolButton(autoRaise=True)
        self.skipped_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning))
        self.skipped_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.skipped_button.hide()
        self.skipped_button.clicked.connect(self._on_skipped_button_clicked)
        self.follow_label = QLabel()
        self.follow_label.hide()
        for widget in (self.skipped_button, self.device_label, self.follow_label):
            self.addPermanentWidget(widget)
        e = run.events
        e.message.connect(self._on_run_message)
        e.device.connect(self._on_run_device)
        e.ready.connect(self._on_run_device)
        e.writer.connect(self._on_run_writer)
        e.skipped.connect(self._on_run_skipped)
        self._on_run_device()
        self.full_message = ""  # the message as given; currentMessage() is what fits
        self._timeout = 0
        self.messageChanged.connect(self._on_messageChanged)

    def showMessage(self, text: str, timeout: int = 0) -> None:  # noqa: N802 (Qt's name)
        self.full_message = text
        self._timeout = timeout
        super().showMessage(self._fitted(text), timeout)
        self.setToolTip(text if text and self.currentMessage() != text else "")

    def message_room(self) -> int:
        """The width the message may take: the bar's, less its permanent widgets'."""
        widgets = [w for w in (self.skipped_button, self.device_label, self.follow_label) if not w.isHidden()]
        used = sum(w.sizeHint().width() + self.layout().spacing() for w in widgets)
        return max(0, self.width() - used - MESSAGE_PADDING)

    def _fitted(self, text: str) -> str:
        line = text.split("\n", 1)[0]
        return elide_at_word(line, QFontMetrics(self.font()), self.message_room())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.full_message and self.currentMessage():  # refit what is shown to the new width
            fitted = self._fitted(self.full_message)
            if fitted != self.currentMessage():
                super().showMessage(fitted, self._timeout)

    def _on_messageChanged(self, text: str) -> None:
        if not text:  # the message timed out or was cleared: so is its tooltip
            self.full_message = ""
            self.setToolTip("")

    def note(self, text: str) -> None:
        """A passing message (saved, exported, a new runs folder)."""
        self.showMessage(text, NOTE_MS)

    def _on_run_message(self) -> None:
        self.showMessage(self.run.message, 1000 * self.run.message_seconds)

    def _on_run_device(self) -> None:
        run = self.run
        ready = run.ready and run.device
        self.device_label.setText(f"Device: {run.device}" if ready else "Loading PyTorch…")

    def _on_run_writer(self) -> None:
        alive, info = self.run.writer_alive, self.run.info
        if alive is None:
            self.follow_label.hide()
            return
        name = Path(info.run_dir).name if info is not None and info.run_dir else "run"
        self.follow_label.setText(f"Following {name} · " + ("writer alive" if alive else "writer stopped"))
        self.follow_label.show()

    def _on_run_skipped(self) -> None:
        summary, details = self.run.skipped
        if not details:
            self.skipped_button.hide()
            return
        count = details.count("\n") + 1
        self.skipped_button.setText(f"{count:,} file{'s' * (count > 1)} skipped")
        self.skipped_button.setToolTip(summary)
        self.skipped_button.show()

    def _on_skipped_button_clicked(self) -> None:
        summary, details = self.run.skipped
        self.skipped_box = QMessageBox(QMessageBox.Icon.Information, "Skipped files",
                                       summary.split(": skipped")[0] + ": these files were skipped",
                                       QMessageBox.StandardButton.Ok, self.window())
        self.skipped_box.setInformativeText(summary)
        self.skipped_box.setDetailedText(details)
        self.skipped_box.open()


def elide_at_word(text: str, metrics: QFontMetrics, width: int) -> str:
    """``text`` if it fits in ``width`` pixels, else as many of its words as fit, then "…"."""
    if metrics.horizontalAdvance(text) <= width:
        return text
    words = text.split(" ")
    while len(words) > 1:
        words.pop()
        shown = " ".join(words).rstrip(",;:·-") + ELLIPSIS
        if metrics.horizontalAdvance(shown) <= width:
            return shown
    return metrics.elidedText(text, Qt.TextElideMode.ElideRight, width)  # one long word
