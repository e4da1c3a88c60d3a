"""The explorer's images decoded at once from its state, free of Qt: what each image view shows,
for an export (the bundle, `vaegui export`) that cannot wait for the views' decoding thread, nor
for a view that was never shown. Each is the same decode the view asks its thread for.

Every function takes an :class:`~vaegui.core.explorer.ExplorerModel` and a
:class:`~vaegui.core.decoder.Decoder` made from its snapshot, and returns an :class:`Image`:
a (C, H, W) array in [0, 1], or None with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import math
from dataclasses import dataclass

import numpy as np

from .explorer import PASS_SECONDS, ExplorerModel
from .latent import dimension_name, interpolate, tile

if TYPE_CHECKING:
    from .decoder import Decoder

GIF_FRAMES = 32  # frames of one pass of the interpolation animation
NO_MODEL = "no model: train one or open a checkpoint"
NO_ENDS = "end points A and B are not set"
# A real minus sign, as wide as the plus: "-1.5" beside "+1.5" reads as a dash. (A view whose
# font lacks it draws '-', see ImageCanvas.)
MINUS = "\u2212"


@dataclass(frozen=True, eq=False)
class Image:
    array: np.ndarray | None  # (C, H, W) in [0, 1]
    why: str = ""  # when there is no image: the reason, for the user
    # A grid's labels: one per row of tiles (left), one per column (above); a figure draws them.
    row_labels: tuple[str, ...] = ()
    column_labels: tuple[str, ...] = ()

    @classmethod
    def missing(cls, why: str) -> "Image":
        return cls(None, why)


def originals_and_reconstructions(decoder: Decoder, images: np.ndarray) -> np.ndarray:
    """Two rows: the uint8 images, and below each its reconstruction."""
    both = np.concatenate([images.astype(np.float32) / 255.0, decoder.reconstruct(images)])
    return tile(both, nrow=len(images), padding=1)


def point(m: ExplorerModel, decoder: Decoder) -> Image:
    if m.point is None:
        return Image.missing("no point picked on the map")
    return Image(decoder.decode(m.point[None])[0])


def interpolation_strip(m: ExplorerModel, decoder: Decoder) -> Image:
    path = m.interpolation_path()
    if path is None:
        return Image.missing(NO_ENDS)
    return Image(tile(decoder.decode(path), nrow=len(path)))


def animation_positions(m: ExplorerModel, frames: int = GIF_FRAMES) -> np.ndarray:
    """Fractions of the way from A to B of the animation's frames: one pass, and for "bounce"
    the way back too (the ends once each, so the loop does not stutter)."""
    t = np.linspace(0.0, 1.0, frames)
    return np.concatenate([t, t[-2:0:-1]]) if m.playback.mode == "bounce" else t


def animation_frames(m: ExplorerModel, decoder: Decoder, frames: int = GIF_FRAMES) -> np.ndarray | None:
    """The interpolation animation's frames (n, C, H, W), or None without end points."""
    i = m.interpolation
    if not i.ready:
        return None
    return decoder.decode(interpolate(i.a, i.b, animation_positions(m, frames), i.method))


def frame_ms(m: ExplorerModel, frames: int = GIF_FRAMES) -> int:
    """How long a frame lasts, for the animation to play at the app's speed."""
    return round(1000 * PASS_SECONDS / m.playback.speed / max(1, frames - 1))


def signed(value: float, digits: int = 1) -> str:
    """"+1.5", "−1.5" (with MINUS), and "0.0" for zero, which has no sign."""
    text = f"{value:+.{digits}f}"
    return f"{0:.{digits}f}" if float(text) == 0 else text.replace("-", MINUS)


def traversal_labels(m: ExplorerModel, dims: np.ndarray, kl: np.ndarray | None) -> tuple[list[str], list[str]]:
    """The traversal grid's labels, on screen and in a figure: per row its dimension and KL (nats),
    per column its offset in prior SDs."""
    rows = [dimension_name(d) + ("" if kl is None else f"  KL {kl[k]:.2f}") for k, d in enumerate(dims)]
    t = m.traversal
    return rows, [signed(v) for v in np.linspace(-t.span, t.span, t.columns)]


def traversal(m: ExplorerModel, decoder: Decoder) -> Image:
    plan = m.traversal_plan()
    if plan is None:
        return Image.missing(NO_MODEL)
    dims, latents, kl = plan
    rows, columns = traversal_labels(m, dims, kl)
    return Image(tile(decoder.decode(latents), nrow=m.traversal.columns, padding=1),
                 row_labels=tuple(rows), column_labels=tuple(columns))


def manifold_grid(m: ExplorerModel, decoder: Decoder) -> Image:
    latents = m.grid_latents()
    if latents is None:
        return Image.missing("the grid needs a map: encode the test set first")
    return Image(tile(decoder.decode(latents), nrow=m.grid.size, padding=0))


def samples(m: ExplorerModel, decoder: Decoder) -> Image:
    z = m.sample_latents()
    if z is None:
        return Image.missing(NO_MODEL)
    return Image(tile(decoder.decode(z), nrow=math.ceil(math.sqrt(len(z))), padding=1))


def reconstructions(m: ExplorerModel, decoder: Decoder) -> Image:
    if m.examples is None or not len(m.examples):
        return Image.missing("reconstructions need the test images (the data was not loaded)")
    if not decoder.has_encoder:
        return Image.missing("reconstructions need the encoder's weights")
    return Image(originals_and_reconstructions(decoder, m.examples[:m.samples.count]))


# What each image view shows, by the name its file gets in a bundle.
IMAGES = {"point": point, "interpolation": interpolation_strip, "traversal": traversal,
          "manifold_grid": manifold_grid, "samples": samples, "reconstructions": reconstructions}


def decoder_of(m: ExplorerModel) -> Decoder | None:
    from .decoder import decoder_for  # torch: only when something is exported

    return None if m.snapshot is None else decoder_for(m.snapshot)


def image(name: str, m: ExplorerModel, decoder: Decoder | None) -> Image:
    """What the image view ``name`` (a key of IMAGES) shows, or why it shows nothing."""
    return IMAGES[name](m, decoder) if decoder is not None else Image.missing(NO_MODEL)


def why_no_animation(decoder: Decoder | None) -> str:
    """Why :func:`animation_frames` gave None."""
    return NO_MODEL if decoder is None else NO_ENDS
