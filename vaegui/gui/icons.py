"""Icons from resources/icons (SVG), with the style's standard icons as a fallback when the
resources folder is not shipped or the SVG plugin is missing."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QStyle

RESOURCES = Path(__file__).resolve().parents[2] / "resources"

_FALLBACK = {
    "play": QStyle.StandardPixmap.SP_MediaPlay,
    "pause": QStyle.StandardPixmap.SP_MediaPause,
    "stop": QStyle.StandardPixmap.SP_MediaStop,
    "open": QStyle.StandardPixmap.SP_DialogOpenButton,
    "save": QStyle.StandardPixmap.SP_DialogSaveButton,
    "refresh": QStyle.StandardPixmap.SP_BrowserReload,
    "app": QStyle.StandardPixmap.SP_ComputerIcon,
}


@cache
def icon(name: str) -> QIcon:
    path = RESOURCES / "icons" / f"{name}.svg"
    if path.is_file():
        loaded = QIcon(str(path))
        if not loaded.pixmap(16, 16).isNull():
            return loaded
    return QApplication.style().standardIcon(_FALLBACK[name])
