"""``vaegui.export_bundle``: the bundle `vaegui export` writes, of a user's own model, headless.

The images are encoded (``latents.npz``'s ``z`` holds their encoder means, in order), the map is
laid out off screen by the window's own LatentMap, and every decoded image comes from the same
functions the app's bundle uses (bundle.py, core/explorer_images.py). There is no checkpoint and
there are no losses: the model was trained outside vaegui, and the README says so.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from vaegui.core import export
from vaegui.core.explorer import ExplorerModel
from vaegui.core.export import FIGURE_SIZES, PLOT_FORMATS, PLOT_SCALE
from vaegui.core.projection import ProjectionSpec
from vaegui.core.user_model import UserModel
from vaegui.core.user_snapshot import WHY_NO_CHECKPOINT, pick_examples, show_model, user_encoded


def export_bundle(model=None, images=None, labels=None, *, out: str | os.PathLike, class_names=None,
                  output: str = "auto", formats=PLOT_FORMATS, projection: str = "pca",
                  scale: float = PLOT_SCALE, image_scale: int | None = None,
                  encode=None, decode=None) -> Path:
    """Write the bundle of ``model`` (or of ``encode=`` and ``decode=`` callables) on ``images``
    into the folder ``out``; returns the folder. ``formats``: of the figures, some of
    ("png", "svg", "pdf"); ``projection``: the map's plane ("pca", "umap", "tsne", "axes:I,J")."""
    from .. import explore_window

    formats = _formats(formats)
    spec = ProjectionSpec.parse(projection)
    export.check_folder(out)
    user = explore_window.user_model(model, images, labels, class_names=class_names, output=output,
                                     encode=encode, decode=decode)
    return write_user_bundle(user, out, formats, spec, scale, image_scale)


def write_user_bundle(user: UserModel, out, formats=PLOT_FORMATS, spec: ProjectionSpec | None = None,
                      scale: float = PLOT_SCALE, image_scale: int | None = None) -> Path:
    from vaegui.core.layout_cache import project_encoded

    spec = spec or ProjectionSpec()
    spec.check_dim(user.latent_dim)
    explorer = ExplorerModel()
    show_model(explorer, user)
    # In the plane asked for, as `vaegui export` draws it (a nonlinear layout is fitted here).
    explorer.set_encoded(project_encoded(user_encoded(user, user.encode_all()), spec))
    pick_examples(explorer)
    _application()

    from PySide6.QtWidgets import QWidget


    from ..explorer.latent_map import LatentMap
    from .bundle import CHECKPOINT, NO_LOSSES, Sources, finish, trained_outside, write_bundle
    from .plot_export import lay_out
    from .targets import find_targets

    holder = QWidget()  # never shown: the map is laid out off screen
    latent_map = LatentMap(explorer, holder)
    try:
        plots, _ = find_targets(holder)
        for target in plots:
            lay_out(target.plot, FIGURE_SIZES.get(target.name))
        with export.all_or_nothing(out):
            report = write_bundle(out, Sources(explorer, plots), formats, scale, image_scale)
            report.notes.insert(0, "Explored model: " + "; ".join(f"{k.lower()} {v}" for k, v in user.description()))
            trained_outside(report, WHY_NO_CHECKPOINT)
            finish(report, f"vaegui export of {user.class_name}")
    finally:
        latent_map.shutdown()
        holder.deleteLater()
    for name, why in report.missing:  # what a user's model could have had, and why not
        if name != CHECKPOINT and why != NO_LOSSES and name != "settings.json":
            print(f"vaegui: not exported: {name}: {why}", file=sys.stderr)
    return report.folder


def _formats(formats) -> tuple[str, ...]:
    chosen = (formats,) if isinstance(formats, str) else tuple(formats)
    bad = [f for f in chosen if f not in PLOT_FORMATS]
    if bad or not chosen:
        raise export.ExportError("formats", f"{chosen!r}: formats are some of {', '.join(PLOT_FORMATS)}")
    return chosen


def _application() -> None:
    """Qt's application, for the off-screen widgets: the offscreen platform when there is no
    display (a server), so that an export never needs one."""
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is not None:
        return
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        from vaegui.cli.options import use_offscreen_qt

        use_offscreen_qt()
    global _app
    _app = QApplication(["vaegui"])


_app = None  # the application made here, kept for the process's life
