"""An export bundle: one folder with every figure, the data as CSV and NPZ, the settings as JSON,
the checkpoint and a README.md saying what each file is. The app (File > Export bundle) and
`vaegui export` both write it here, from export targets and an explorer model.

Images are decoded at once from the model's state (see core.explorer_images), so a view that was
never shown, or is hidden behind a tab, still exports; what cannot be exported is listed in the
README with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from vaegui.core import explorer_images as images
from vaegui.core import export
from vaegui.core.export import PLOT_FORMATS, PLOT_SCALE
from vaegui.core.explorer import ExplorerModel
from vaegui.core.loss_history import History
from vaegui.core.projection import describe

from .image_figure import write_image_figure
from .plot_export import write_plot
from .targets import ImageTarget, PlotTarget

if TYPE_CHECKING:
    from vaegui.core.decoder import Decoder

README = "README.md"
NO_STEPS = "no training steps yet"
NO_MAP = "no latent map yet (the test set is not encoded)"
CHECKPOINT = "checkpoint.pt"
# A user's own model (vaegui.explore, export_bundle) was trained elsewhere: what it cannot have.
NO_LOSSES = "the model was trained outside vaegui: there are no losses or evaluations of it"
TRAINING_PLOTS = ("losses", "kl_per_dimension")  # export targets that only a vaegui run fills
_OUTSIDE = {"losses.csv": NO_LOSSES, "test_losses.csv": NO_LOSSES,
            "settings.json": "the model was trained outside vaegui: it has no vaegui settings"}
OVERLAY = "manifold_overlay"  # the latent map with the manifold grid's tiles over its points
# What each file is, by its stem (figures) or name (data). A target of a later panel that is
# not listed here is described by its title.
WHAT = {
    "latent_map": "the latent map: the test set's posterior means in the latent (L = 2) plane or "
                  "a projection of it (named in the notes), coloured by label or factor, with its "
                  "legend or colour bar",
    OVERLAY: "the latent map with the manifold grid's decoded images drawn over it as tiles",
    "losses": "the loss curves: training losses per step (smoothed) and test losses per epoch",
    "kl_per_dimension": "KL per latent dimension on the test set (active units in colour)",
    "point": "the image decoded at the picked point",
    "nearest_image": "the real image nearest the picked point",
    "interpolation": "the interpolation strip from end point A to B",
    "interpolation_frame": "the interpolation animation's current frame",
    "traversal": "the traversal grid: one row per latent dimension, by decreasing KL, labelled with "
                 "the dimension and its KL (nats); the columns with their offsets in prior SDs",
    "manifold_grid": "the manifold grid decoded over the map's visible plane",
    "samples": "decoded draws from the prior N(0, I), fixed noise",
    "reconstructions": "test images (top row) and their reconstructions (bottom row)",
    "interpolation.gif": "the interpolation animation, decoded along the path A to B",
    "losses.csv": "training losses per step: step, epoch, recon, kl, neg_elbo (nats per image), kl_weight",
    "test_losses.csv": "test losses per epoch: epoch, step, recon, kl, neg_elbo, bits_per_dim, active_units",
    "latents.csv": "the map's latent codes: index, label, z_1..z_L (posterior means), x, y (the map's "
                   "plane), projection (what made x, y)",
    "latents.npz": "the same as arrays (numpy.load): index, label, z (N, L), x, y, class_names, "
                   "projection; for pca and axes:I,J also projection_mean, projection_components",
    "settings.json": "the run's settings (data, model, training), as saved in the checkpoint",
    CHECKPOINT: "the model: weights, optimizer state and loss history (open it with vaegui)",
}


@dataclass
class Report:
    """What a bundle holds (file name, what it is), what it lacks (name, why), and notes on
    what it shows."""

    folder: Path
    written: list[tuple[str, str]] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, stem: str | None = None) -> None:
        self.written.append((name, WHAT.get(name) or WHAT.get(stem or name) or stem or name))

    def lack(self, name: str, why: str) -> None:
        self.missing.append((name, why))


@dataclass(frozen=True)
class Sources:
    """What a bundle is made from."""

    model: ExplorerModel
    plots: list[PlotTarget]
    canvases: list[ImageTarget] = field(default_factory=list)  # images the model cannot decode
    history: History | None = None
    steps_per_epoch: int = 1
    settings: dict | None = None


def write_bundle(folder: str | os.PathLike, sources: Sources, formats=PLOT_FORMATS,
                 scale: float = PLOT_SCALE, image_factor: int | None = None) -> Report:
    """Everything but the checkpoint and the README (see :func:`finish`); ``scale``: PNG
    pixels per logical pixel of the plots."""
    report = Report(export.make_folder(folder))
    if (position := sources.model.history_position) is not None:
        # What is shown is exported: a past epoch's map and decoder, not the latest ones.
        report.notes.append(f"The map, its latent codes and the decoded images show epoch {position:g} of "
                            "the run's map history (the slider under the map); the losses, the "
                            "settings and the checkpoint are the run's latest.")
    if (encoded := sources.model.encoded) is not None:
        report.notes.append(projection_note(encoded.projection))
    decoder = images.decoder_of(sources.model)
    _figures(report, sources, decoder, formats, scale)
    _images(report, sources, decoder, image_factor, formats)
    _data(report, sources)
    return report


def projection_note(projection) -> str:
    """What the bundle's README says of the map's plane."""
    _, _, title = describe(projection)
    return f"The map's plane: {title} (projection `{export.projection_name(projection)}`)."


def _figures(report: Report, s: Sources, decoder: Decoder | None, formats, scale: float) -> None:
    for target in s.plots:
        for fmt in formats:
            name = f"{target.name}.{fmt}"
            write_plot(target.plot, report.folder / name, fmt, scale, target.title)
            report.add(name, target.name)
    latent_map = next((t for t in s.plots if t.name == "latent_map"), None)
    if latent_map is None:
        return
    with overlay_shown(s.model, decoder) as why:
        if why:
            report.lack(OVERLAY, why)
            return
        for fmt in formats:
            name = f"{OVERLAY}.{fmt}"
            write_plot(latent_map.plot, report.folder / name, fmt, scale, "Manifold overlay")
            report.add(name, OVERLAY)


@contextlib.contextmanager
def overlay_shown(m: ExplorerModel, decoder: Decoder | None):
    """The manifold grid's tiles shown over the map for a while (decoded now when there are none
    yet); yields why not, or ""."""
    if m.grid_image is None or m.grid_image_region is None:
        grid = images.image("manifold_grid", m, decoder)
        if grid.array is None:
            yield grid.why
            return
        m.set_grid_image(grid.array, m.grid_region())
    was = m.grid.overlay
    m.set_grid(overlay=True)
    try:
        yield ""
    finally:
        m.set_grid(overlay=was)


def _images(report: Report, s: Sources, decoder: Decoder | None, factor: int | None, formats) -> None:
    decodable = set(images.IMAGES)
    for name in images.IMAGES:
        image = images.image(name, s.model, decoder)
        if image.array is not None and (image.row_labels or image.column_labels):
            for fmt in formats:  # a labelled grid is a figure: in each of the plots' formats
                write_image_figure(report.folder / f"{name}.{fmt}", image, fmt, factor)
                report.add(f"{name}.{fmt}", name)
        else:
            _image(report, name, image.array, image.why, factor)
    for target in s.canvases:
        if target.name not in decodable:
            _image(report, target.name, target.array(), target.why_empty(), factor)
    frames = images.animation_frames(s.model, decoder) if decoder is not None else None
    if frames is None:
        report.lack("interpolation.gif", images.why_no_animation(decoder))
    else:
        export.write_gif(report.folder / "interpolation.gif", frames, factor, images.frame_ms(s.model))
        report.add("interpolation.gif")


def _image(report: Report, name: str, array, why: str, factor: int | None) -> None:
    if array is None:
        report.lack(f"{name}.png", why)
        return
    export.write_png(report.folder / f"{name}.png", array, factor)
    report.add(f"{name}.png", name)


def _data(report: Report, s: Sources) -> None:
    folder = report.folder
    if s.history is not None and len(s.history.steps):
        export.write_losses_csv(folder / "losses.csv", s.history, s.steps_per_epoch)
        report.add("losses.csv")
    else:
        report.lack("losses.csv", NO_STEPS)
    if s.history is not None and s.history.evals:
        export.write_test_losses_csv(folder / "test_losses.csv", s.history)
        report.add("test_losses.csv")
    else:
        report.lack("test_losses.csv", "no epoch has ended yet")
    encoded = s.model.encoded
    if encoded is None:
        report.lack("latents.csv, latents.npz", NO_MAP)
    else:
        export.write_latents_csv(folder / "latents.csv", encoded)
        export.write_latents_npz(folder / "latents.npz", encoded)
        report.add("latents.csv")
        report.add("latents.npz")
    if s.settings is None:
        report.lack("settings.json", "no run")
    else:
        export.write_json(folder / "settings.json", s.settings)
        report.add("settings.json")


def trained_outside(report: Report, why_no_checkpoint: str) -> None:
    """Say in ``report`` why a user's own model has no checkpoint, losses or settings (its
    bundle is written without the training plots)."""
    report.missing = [(name, _OUTSIDE.get(name, why)) for name, why in report.missing]
    report.lack(CHECKPOINT, why_no_checkpoint)
    report.lack(", ".join(TRAINING_PLOTS) + " (figures)", NO_LOSSES)


def finish(report: Report, title: str = "vaegui export") -> Path:
    """Write README.md last: a folder with one is a complete bundle."""
    return export.write_text(report.folder / README, export.bundle_readme(
        title, report.written, report.missing, report.notes))
