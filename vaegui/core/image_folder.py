"""Reading a folder of images: one subfolder per class, or the images directly in it.

Each file and folder is visited once however many links lead to it (a symlink loop would
otherwise multiply the images), only regular files are opened (a named pipe called x.png would
block the reader for ever), and every file that cannot be used is kept with the reason, for the
user to see. :func:`vaegui.core.dataset_loader.load_folder` turns the result into a dataset.
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .dataset_catalog import IMAGE_EXTENSIONS


def one_line(exc: BaseException) -> str:
    """An exception's message as one line (Pillow's and torchvision's span several)."""
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def list_images(root: Path, skipped: list[tuple[str, str]]) -> tuple[tuple[str, ...], list[tuple[str, int]]]:
    """Class names and (path, label) pairs; classes are the subfolders that hold images, sorted.
    Files that are not regular files go to ``skipped`` with the reason."""
    seen: set[tuple[int, int]] = set()
    _first_visit(root, seen)
    subdirs = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    per_class = [_image_files(root / d, seen, skipped, recursive=True) for d in subdirs]
    present = [i for i, files in enumerate(per_class) if files]
    if present:
        # Empty subfolders are not classes, so labels run 0..K-1 without gaps.
        return (tuple(subdirs[i] for i in present),
                [(p, label) for label, i in enumerate(present) for p in per_class[i]])
    return (root.name or str(root),), [(p, 0) for p in _image_files(root, seen, skipped, recursive=False)]


def _first_visit(path: str | os.PathLike, seen: set[tuple[int, int]]) -> os.stat_result | None:
    """The file's stat when it is seen for the first time (by device and inode), else None."""
    st = os.stat(path)
    key = (st.st_dev, st.st_ino)
    if key in seen:
        return None
    seen.add(key)
    return st


def _image_files(folder: Path, seen: set[tuple[int, int]], skipped: list[tuple[str, str]],
                 recursive: bool) -> list[str]:
    """Image files under ``folder`` in sorted order, following links but visiting each once."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        if not recursive:
            filenames, dirnames[:] = filenames + dirnames, []
        else:
            dirnames[:] = [d for d in sorted(dirnames) if _visit_dir(os.path.join(dirpath, d), seen)]
        for name in sorted(filenames):
            if not name.lower().endswith(IMAGE_EXTENSIONS):
                continue
            path = os.path.join(dirpath, name)
            try:
                st = _first_visit(path, seen)
            except OSError as exc:  # a dangling link, no permission
                skipped.append((path, exc.strerror or "cannot be read"))
                continue
            if st is None or stat.S_ISDIR(st.st_mode):
                continue
            if not stat.S_ISREG(st.st_mode):
                skipped.append((path, "not a regular file"))
                continue
            found.append(path)
    return found


def _visit_dir(path: str, seen: set[tuple[int, int]]) -> bool:
    try:
        return _first_visit(path, seen) is not None
    except OSError:
        return False


def read_images(samples: list[tuple[str, int]], size: int, channels: int,
                 skipped: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoded, resized images (K, C, size, size) uint8 and their labels; the files that cannot
    be read go to ``skipped`` with the reason."""
    mode = "L" if channels == 1 else "RGB"
    pixels = np.empty((len(samples), size, size, channels), np.uint8)
    labels = []
    with warnings.catch_warnings():
        # Pillow only warns about an image over its pixel limit (and refuses one over twice it):
        # either way it is skipped, with the reason, instead of a warning on stderr.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        for path, label in samples:
            try:
                with Image.open(path) as im:
                    # Pillow's resize filters over the whole source footprint, so downscaling is antialiased.
                    small = _eight_bit(im).convert(mode).resize((size, size), Image.Resampling.BILINEAR)
            except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
                skipped.append((path, f"too large, a possible decompression bomb ({one_line(exc)[:80]})"))
                continue
            except (OSError, SyntaxError, ValueError, EOFError) as exc:  # how Pillow reports broken files
                skipped.append((path, one_line(exc)[:120]))
                continue
            pixels[len(labels)] = np.asarray(small).reshape(size, size, channels)
            labels.append(label)
    images = torch.from_numpy(pixels[: len(labels)]).permute(0, 3, 1, 2).contiguous()
    return images, torch.tensor(labels, dtype=torch.int64)


def _eight_bit(im: Image.Image) -> Image.Image:
    """Grey images of more than 8 bits (16-bit PNG and TIFF) scaled by their bit depth to 8 bits;
    Pillow's own conversion clips them, so nearly every pixel comes out white."""
    if im.mode not in ("I", "I;16", "I;16L", "I;16B", "I;16N"):
        return im
    values = np.asarray(im).astype(np.float64)
    if im.mode.startswith("I;16"):
        top = 65535.0
    else:  # 32-bit integers: take the smallest depth that holds the values
        peak = float(values.max()) if values.size else 0.0
        top = 255.0 if peak <= 255 else 65535.0 if peak <= 65535 else 2.0**32 - 1
    return Image.fromarray(np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8), "L")
