"""Icons from resources/icons (SVG), with the style's standard icons as a fallback when the
resources cannot be found or the SVG plugin is missing."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QStyle

_HERE = Path(__file__).resolve()
# Installed from a wheel, resources/ lies inside the package; in a source checkout (and an
# editable install) it is the repository's top-level folder.
RESOURCES = next((p for p in (_HERE.parents[1] / "resources", _HERE.parents[2] / "resources")
                  if (p / "icons").is_dir()), _HERE.parents[2] / "resources")

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
