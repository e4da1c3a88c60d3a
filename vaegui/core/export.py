"""Writing results to files, free of Qt: the loss history and the latent codes as CSV and NPZ,
decoded images as PNG (enlarged by a whole factor, never blurred) and the interpolation as an
animated GIF, the run's settings as JSON, a copy of the checkpoint, and the README.md of an
export bundle.

Every file is written through :func:`~vaegui.core.atomic.atomic_write`: a failed write leaves no
partial file (and the old one, if any), and raises an :class:`ExportError` naming the file and
the reason.
"""

from __future__ import annotations

import csv
import io
import contextlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .atomic import atomic_write
from .errors import VaeguiError, os_reason
from .loss_history import History
from .latent import EncodedSet
from .progress import LOSS_COLUMNS

IMAGE_TARGET_PX = 1024  # images are enlarged by the whole factor that brings them nearest this
# Figures are drawn by the Qt layer; their rules live here, so that the app, the bundle and
# `vaegui export` (whose options are parsed before Qt is imported) agree.
PLOT_FORMATS = ("png", "svg", "pdf")
SCREEN_DPI = 96  # a logical pixel is 1/96 inch (CSS's and Qt's convention)
PLOT_SCALE = 2.0  # PNG pixels per on-screen pixel, by default: twice the on-screen size
PLOT_SCALES = (0.25, 8.0)  # least and most; 8x a 1000 x 800 plot is already a 205 MB image
# Sizes, in logical pixels, of the figures a headless export makes (`vaegui export`,
# vaegui.export_bundle); the app exports its own sizes.
FIGURE_SIZES = {"latent_map": (760, 680), "losses": (900, 480), "kl_per_dimension": (640, 420)}


class ExportError(VaeguiError):
    """A file of an export cannot be written (or there is nothing to put in it)."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"export {self.path}: {reason}")


def write_file(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Write ``path`` atomically with ``write(file)``; every failure is an ExportError naming the
    file, and leaves no partial file."""
    path = Path(path)

    def write_readable(f: BinaryIO) -> None:
        write(f)
        os.chmod(f.fileno(), 0o666 & ~_umask())  # a temporary file is private; an export is not

    try:
        atomic_write(path, write_readable)
    except ExportError:
        raise
    except OSError as exc:
        raise ExportError(path, os_reason(exc)) from None
    except (ValueError, RuntimeError) as exc:  # an encoder refused the data
        raise ExportError(path, f"{type(exc).__name__}: {exc}") from None
    if _written is not None:
        _written.append(path)
    return path


_written: list[Path] | None = None  # the files written since all_or_nothing began


@contextlib.contextmanager
def all_or_nothing(folder: str | os.PathLike):
    """An export that is interrupted (Ctrl-C, SIGTERM) or fails leaves no partial bundle: the
    files it wrote go again, and so does ``folder`` when it made it and it is left empty. Each
    file is atomic already; this makes the bundle so."""
    global _written
    folder = Path(folder)
    made = not folder.exists()
    _written = []
    try:
        yield
    except BaseException:
        for path in reversed(_written):
            with contextlib.suppress(OSError):
                path.unlink()
        if made:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    finally:
        _written = None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return write_file(path, lambda f: f.write(data))


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


# ---- tables ------------------------------------------------------------------------------------
CSV_CHUNK_ROWS = 65_536  # rows turned into text at a time: a million-point map is never one string


def _csv_bytes(header: Sequence[str], columns: Sequence[np.ndarray]) -> bytes:
    out = io.BytesIO()
    _write_csv(out, header, columns)
    return out.getvalue()


def _write_csv(f: BinaryIO, header: Sequence[str], columns: Sequence[np.ndarray]) -> None:
    """Columns of numbers as CSV into ``f``, a chunk of rows at a time; floats written with repr
    precision, so they read back exactly."""
    text = io.TextIOWrapper(f, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    cols = [np.asarray(c) for c in columns]
    for start in range(0, len(cols[0]) if cols else 0, CSV_CHUNK_ROWS):
        rows = zip(*(c[start:start + CSV_CHUNK_ROWS].tolist() for c in cols))
        writer.writerows(["" if isinstance(v, float) and v != v else v for v in row] for row in rows)  # NaN: empty
    text.flush()
    text.detach()  # leaves ``f`` open for its owner


def write_csv(path: str | os.PathLike, header: Sequence[str], columns: Sequence[np.ndarray]) -> Path:
    """Columns of numbers (or strings) as CSV, streamed to the file a chunk of rows at a time."""
    return write_file(path, lambda f: _write_csv(f, header, columns))


def losses_columns(history: History, steps_per_epoch: int) -> tuple[list[str], list[np.ndarray]]:
    """Per training step: step, epoch, the losses (nats per image) and the KL weight."""
    steps = history.steps
    header = ["step", "epoch", *LOSS_COLUMNS, "kl_weight"]
    columns = [steps, steps / max(1, steps_per_epoch),
               *(history.losses[:, k] for k in range(len(LOSS_COLUMNS))), history.kl_weights]
    return header, columns


def test_losses_columns(history: History) -> tuple[list[str], list[np.ndarray]]:
    """Per evaluation (the end of every epoch) on the test set."""
    e = history.evals
    header = ["epoch", "step", *LOSS_COLUMNS, "bits_per_dim", "active_units"]
    columns = [np.array([r.epoch for r in e], np.int64), np.array([r.step for r in e], np.int64),
               *(np.array([getattr(r, name) for r in e], np.float64) for name in LOSS_COLUMNS),
               np.array([r.bits_per_dim for r in e], np.float64),
               np.array([r.active_units for r in e], np.int64)]
    return header, columns


def write_losses_csv(path: str | os.PathLike, history: History, steps_per_epoch: int) -> Path:
    return write_bytes(path, _csv_bytes(*losses_columns(history, steps_per_epoch)))


def write_test_losses_csv(path: str | os.PathLike, history: History) -> Path:
    return write_bytes(path, _csv_bytes(*test_losses_columns(history)))


def latents_columns(encoded: EncodedSet) -> tuple[list[str], list[np.ndarray]]:
    """index, label, z_1..z_L (posterior means), x, y (the map's plane) and the projection that
    made x, y (pca, umap, tsne or axes:I,J; see core/projection.py)."""
    z = np.asarray(encoded.latents)
    header = ["index", "label", *(f"z_{k + 1}" for k in range(z.shape[1])), "x", "y", "projection"]
    columns = [np.arange(len(z)), np.asarray(encoded.labels, np.int64),
               *(z[:, k] for k in range(z.shape[1])), encoded.xy[:, 0], encoded.xy[:, 1],
               np.full(len(z), projection_name(encoded.projection))]
    return header, columns


def projection_name(projection) -> str:
    return getattr(projection, "name", "pca")


def write_latents_csv(path: str | os.PathLike, encoded: EncodedSet) -> Path:
    """Streamed to the file (every point of a big map would be hundreds of MB of text)."""
    header, columns = latents_columns(encoded)
    return write_file(path, lambda f: _write_csv(f, header, columns))


def write_latents_npz(path: str | os.PathLike, encoded: EncodedSet) -> Path:
    """The same as the CSV, as arrays (``z`` is (N, L)), with the class names, the projection's
    name and, for a linear one (pca, axes:I,J), its matrix
    (``xy = (z - projection_mean) @ projection_components.T``)."""
    p = encoded.projection
    arrays = {"index": np.arange(len(encoded.latents)), "label": np.asarray(encoded.labels, np.int64),
              "z": np.asarray(encoded.latents), "x": np.asarray(encoded.xy[:, 0]),
              "y": np.asarray(encoded.xy[:, 1]), "class_names": np.array(encoded.class_names, dtype=str),
              "projection": np.array(projection_name(p)),
              "split": np.array(encoded.split), "step": np.array(encoded.step)}
    if getattr(p, "is_linear", True):
        arrays.update(projection_mean=np.asarray(p.mean), projection_components=np.asarray(p.components))
    return write_file(path, lambda f: np.savez(f, **arrays))


def make_folder(folder: str | os.PathLike) -> Path:
    """The folder, made with its parents if needed."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(folder, f"cannot create the folder: {os_reason(exc)}") from None
    if not folder.is_dir():
        raise ExportError(folder, "not a folder")
    return folder


def check_folder(folder: str | os.PathLike) -> None:
    """Refuse at once, before minutes of work and without making anything, a folder that
    :func:`make_folder` could not make or that could not be written into."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise ExportError(folder, "not a folder" if existing == folder else
                          f"cannot create the folder: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ExportError(folder, f"cannot write into {existing}: Permission denied")


def write_json(path: str | os.PathLike, value) -> Path:
    return write_text(path, json.dumps(value, indent=2) + "\n")


def copy_file(source: str | os.PathLike, path: str | os.PathLike) -> Path:
    """A copy of ``source`` at ``path``, written atomically."""
    try:
        src = open(source, "rb")
    except OSError as exc:
        raise ExportError(source, f"cannot read: {os_reason(exc)}") from None
    with src:
        return write_file(path, lambda f: shutil.copyfileobj(src, f, 1 << 20))


# ---- images ------------------------------------------------------------------------------------
def to_uint8(image: np.ndarray) -> np.ndarray:
    """(C, H, W) float in [0, 1] or uint8 -> uint8 (C, H, W)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    return image


def default_factor(shape: Sequence[int], target: int = IMAGE_TARGET_PX) -> int:
    """The whole enlargement that brings the longer side of a (C, H, W) image nearest ``target``."""
    return max(1, round(target / max(1, *shape[-2:])))


def enlarge(image: np.ndarray, factor: int) -> np.ndarray:
    """(C, H, W) -> (H*f, W*f, C) uint8, every pixel a crisp f x f square (nearest neighbour)."""
    if factor < 1:
        raise ValueError(f"enlargement {factor} is not a whole number >= 1")
    pixels = to_uint8(image).transpose(1, 2, 0)
    return pixels.repeat(factor, 0).repeat(factor, 1)


def _pil(pixels: np.ndarray):
    from PIL import Image  # Pillow comes with torchvision

    return Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels[..., :3])


def write_png(path: str | os.PathLike, image: np.ndarray, factor: int | None = None) -> Path:
    """A (C, H, W) image as PNG, enlarged by a whole ``factor`` (default: to about
    IMAGE_TARGET_PX) without smoothing."""
    factor = default_factor(np.shape(image)) if factor is None else factor
    picture = _pil(enlarge(image, factor))
    return write_file(path, lambda f: picture.save(f, format="PNG"))


def gif_frame_ms(frame_ms: float) -> int:
    """How long a GIF frame of ``frame_ms`` lasts: GIF counts hundredths of a second, and
    browsers slow frames under 20 ms down to 100 ms."""
    return max(20, 10 * round(frame_ms / 10))


def write_gif(path: str | os.PathLike, frames: np.ndarray, factor: int | None = None,
              frame_ms: float = 80) -> Path:
    """Frames (n, C, H, W) as an animated GIF that loops forever, each frame
    ``gif_frame_ms(frame_ms)`` long. (A frame equal to the one before it is merged into it by
    the GIF encoder, which adds its time.)"""
    frames = np.asarray(frames)
    if frames.ndim != 4 or not len(frames):
        raise ExportError(path, f"an animation needs frames (n, C, H, W), got shape {frames.shape}")
    factor = default_factor(frames.shape) if factor is None else factor
    pictures = [_pil(enlarge(frame, factor)) for frame in frames]
    return write_file(path, lambda f: pictures[0].save(
        f, format="GIF", save_all=True, append_images=pictures[1:], duration=gif_frame_ms(frame_ms),
        loop=0, optimize=False))


# ---- the bundle's README -----------------------------------------------------------------------
def bundle_readme(title: str, written: Sequence[tuple[str, str]],
                  missing: Sequence[tuple[str, str]] = (), notes: Sequence[str] = ()) -> str:
    """README.md of a bundle: what each file is (``written``: (file name, what it is)), what
    could not be exported, with the reason (``missing``), and ``notes`` on what it shows."""
    lines = [f"# {title}", ""]
    lines += [line for note in notes for line in (note, "")]
    lines += ["Exported by vaegui. Files:", ""]
    groups: list[tuple[list[str], str]] = []  # one line for the formats of one figure
    for name, what in written:
        if groups and groups[-1][1] == what:
            groups[-1][0].append(name)
        else:
            groups.append(([name], what))
    lines += [f"- {', '.join(f'`{n}`' for n in names)}: {what}" for names, what in groups]
    if missing:
        lines += ["", "Not exported:", ""]
        lines += [f"- {name}: {why}" for name, why in missing]
    return "\n".join(lines) + "\n"
