"""What the window remembers between runs, stored through a QSettings given by the caller (the
user's settings in the app, a temporary file in tests)."""

from __future__ import annotations

import json

from PySide6.QtCore import QByteArray, QSettings

from vaegui.core.config import RunConfig
from vaegui.core.errors import ConfigError

ORGANIZATION = "vaegui"
APPLICATION = "vaegui"
_CONFIG = "training/config"
_MAP_SPLIT = "map/split"
_MAP_LIMIT = "map/limit"
_MAP_PROJECTION = "map/projection"
_RUNS_DIR = "runs/dir"
_RECENT_RUNS = "runs/recent"
_EXPORT_DIR = "export/dir"
RECENT_RUNS = 8  # File > Recent runs lists this many
_GEOMETRY = "window/geometry"
_THEME = "view/theme"
_DARK_EXPORTS = "export/dark_figures"
# Each workspace's docks (dock_layout.py). Not "window/state": that held the one layout of
# earlier versions, with the map in a dock.
_WORKSPACE = "layout/workspace"
_LAYOUTS = "layout/workspaces"


def load_config(settings: QSettings) -> RunConfig | None:
    """The last-used run settings, or None when there are none (or they no longer parse)."""
    text = settings.value(_CONFIG)
    if not text:
        return None
    try:
        return RunConfig.from_dict(json.loads(str(text)))
    except (ValueError, ConfigError, AttributeError):
        return None  # written by another version: start from defaults rather than fail


def save_config(settings: QSettings, config: RunConfig) -> None:
    # Image limits are no setting of the window (they come with tests and opened checkpoints):
    # remembered, they would silently shrink every later run.
    config = config.replace(data={"train_limit": None, "test_limit": None})
    settings.setValue(_CONFIG, json.dumps(config.to_dict()))


def save_config_changes(settings: QSettings, opened_with: RunConfig, now: RunConfig) -> None:
    """Remember the settings the user changed in the window: those of ``now`` that differ from
    the ones the window ``opened_with``, on top of the saved ones. A setting given on the
    command line is for that launch only: unchanged in the window, it is not saved."""
    before, after = opened_with.to_dict(), now.to_dict()
    changes = {section: {k: v for k, v in values.items() if before[section].get(k) != v}
               for section, values in after.items()}
    if not any(changes.values()):
        return
    saved = load_config(settings) or RunConfig()
    try:
        merged = saved.replace(**{section: c for section, c in changes.items() if c})
    except ConfigError:  # the saved ones no longer combine with the change: the window's, whole
        merged = now
    save_config(settings, merged)


def load_map_source(settings: QSettings) -> tuple[str, int | None]:
    split = str(settings.value(_MAP_SPLIT, "test"))
    try:
        limit = int(settings.value(_MAP_LIMIT, 0)) or None
    except (TypeError, ValueError):
        limit = None
    return (split if split in ("test", "train") else "test"), limit


def save_map_source(settings: QSettings, split: str, limit: int | None) -> None:
    settings.setValue(_MAP_SPLIT, split)
    settings.setValue(_MAP_LIMIT, int(limit or 0))


def load_map_projection(settings: QSettings):
    """The map's last projection (core.projection.ProjectionSpec); PCA if none or unreadable."""
    from vaegui.core.projection import ProjectionSpec

    try:
        return ProjectionSpec.parse(str(settings.value(_MAP_PROJECTION, "pca")))
    except ConfigError:
        return ProjectionSpec()


def save_map_projection(settings: QSettings, spec) -> None:
    settings.setValue(_MAP_PROJECTION, spec.name)


def load_runs_dir(settings: QSettings) -> str | None:
    """The runs folder the user chose, or None for the default."""
    value = settings.value(_RUNS_DIR)
    return str(value) if value else None


def save_runs_dir(settings: QSettings, path: str) -> None:
    settings.setValue(_RUNS_DIR, path)


def load_export_dir(settings: QSettings) -> str | None:
    """The folder of the last export (file dialogs start there)."""
    value = settings.value(_EXPORT_DIR)
    return str(value) if value else None


def save_export_dir(settings: QSettings, path: str) -> None:
    settings.setValue(_EXPORT_DIR, path)


def load_recent_runs(settings: QSettings) -> list[str]:
    """Run folders (or checkpoints) opened or trained last, newest first."""
    try:
        value = json.loads(str(settings.value(_RECENT_RUNS, "[]")))
    except ValueError:
        return []
    return [str(v) for v in value if isinstance(v, str)][:RECENT_RUNS] if isinstance(value, list) else []


def add_recent_run(settings: QSettings, path: str) -> list[str]:
    runs = [path] + [r for r in load_recent_runs(settings) if r != path]
    settings.setValue(_RECENT_RUNS, json.dumps(runs[:RECENT_RUNS]))
    return runs[:RECENT_RUNS]


def load_window(settings: QSettings) -> QByteArray | None:
    """The window's geometry as saved by QMainWindow.saveGeometry."""
    return _bytes(settings.value(_GEOMETRY))


def save_window(settings: QSettings, geometry: QByteArray) -> None:
    settings.setValue(_GEOMETRY, geometry)


def load_layout(settings: QSettings) -> tuple[str | None, dict[str, bytes]]:
    """The workspace shown last and each workspace's dock arrangement (QMainWindow.saveState)."""
    workspace = settings.value(_WORKSPACE)
    states = {}
    settings.beginGroup(_LAYOUTS)
    for name in settings.childKeys():
        if (state := _bytes(settings.value(name))) is not None:
            states[name] = bytes(state.data())
    settings.endGroup()
    return (str(workspace) if workspace else None), states


def save_layout(settings: QSettings, workspace: str, states: dict[str, bytes]) -> None:
    settings.setValue(_WORKSPACE, workspace)
    settings.remove(_LAYOUTS)
    for name, state in states.items():
        settings.setValue(f"{_LAYOUTS}/{name}", QByteArray(state))


def _bytes(value) -> QByteArray | None:
    if isinstance(value, QByteArray) and not value.isEmpty():
        return value
    if isinstance(value, (bytes, bytearray)) and value:
        return QByteArray(bytes(value))
    return None


def load_theme(settings: QSettings) -> str:
    """View > Theme: "system" (the default), "light" or "dark"."""
    value = str(settings.value(_THEME, "system"))
    return value if value in ("system", "light", "dark") else "system"


def save_theme(settings: QSettings, mode: str) -> None:
    settings.setValue(_THEME, mode)


def load_dark_exports(settings: QSettings) -> bool:
    """File > Export > Dark figures: exported plots as a dark window draws them (default: light)."""
    return str(settings.value(_DARK_EXPORTS, "false")).lower() == "true"


def save_dark_exports(settings: QSettings, dark: bool) -> None:
    settings.setValue(_DARK_EXPORTS, "true" if dark else "false")
