"""Per-user folders (no Qt: the CLI and the app share them)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def user_cache_dir() -> Path:
    """``~/.cache/vaegui`` on Linux ($XDG_CACHE_HOME when absolute), the platform's cache folder
    elsewhere; not created."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        # XDG says to ignore a relative $XDG_CACHE_HOME.
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "vaegui"
