"""The base of the explorer's views that show decoded images."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from vaegui.core.explorer import ExplorerModel

from .decode_worker import DecodeWorker


class DecodingView(QWidget):
    """A view whose images come from the decode worker. It asks for them only while it is shown:
    a view in a hidden dock or tab costs nothing, and catches up when it is shown again.

    Subclasses register their channels in ``__init__`` and implement :meth:`_send_requests`;
    they call :meth:`refresh` when the model changes something they show."""

    def __init__(self, model: ExplorerModel, decoder: DecodeWorker, channels: list[str],
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self.decoder = decoder
        self._channels = channels
        self._stale = True

    def wanted(self) -> bool:
        """Whether its images are needed now: while it is shown (a subclass may add reasons)."""
        return self.isVisible()

    def refresh(self) -> None:
        if self.wanted():
            self._stale = False
            self._send_requests()
        else:
            self._stale = True

    def _send_requests(self) -> None:
        raise NotImplementedError

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self.refresh()

    def hideEvent(self, event) -> None:
        super().hideEvent(event)
        if self.wanted():
            return
        self._stale = True
        for channel in self._channels:
            self.decoder.cancel(channel)
