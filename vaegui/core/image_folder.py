"""Reading a folder of images: one subfolder per class, or the images directly in it.

Each file and folder is visited once however many links lead to it (a symlink loop would
otherwise multiply the images), a link to a folder outside the dataset folder is not followed
(a class folder linked to ``/`` would walk the whole file system), the walk has a budget of
entries and seconds, only regular files are opened (a named pipe called x.png would block the
reader for ever), and every file that cannot be used is kept with the reason, for the user to
see. A link to a single file outside is read: it is one file, opened as an image only.

Pillow is asked for the image formats vaegui lists and no other (``formats=``): a file is
identified by its content, not its name, and some formats Pillow knows (EPS, PS, PDF) are
rendered by an external program, so a PostScript file named ``.png`` would run its code.
:func:`vaegui.core.dataset_loader.load_folder` turns the result into a dataset.
"""

from __future__ import annotations

import os
import stat
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .dataset_catalog import IMAGE_EXTENSIONS, PILLOW_FORMATS
from .errors import DataError

MAX_WALK_ENTRIES = 2_000_000  # files and folders listed while looking for images
MAX_WALK_SECONDS = 120.0


def one_line(exc: BaseException) -> str:
    """An exception's message as one line (Pillow's and torchvision's span several)."""
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def list_images(root: Path, skipped: list[tuple[str, str]]) -> tuple[tuple[str, ...], list[tuple[str, int]]]:
    """Class names and (path, label) pairs; classes are the subfolders that hold images, sorted.
    Files that are not regular files, and links to folders outside ``root``, go to ``skipped``
    with the reason. DataError when the walk is over its budget."""
    walk = _Walk(root, skipped)
    walk.first_visit(root)
    entries = list(os.scandir(root))
    walk.count(len(entries))
    subdirs = sorted(e.name for e in entries if not e.name.startswith(".") and e.is_dir()
                     and walk.visit_dir(os.path.join(root, e.name)))
    per_class = [walk.image_files(root / d, recursive=True) for d in subdirs]
    present = [i for i, files in enumerate(per_class) if files]
    if present:
        # Empty subfolders are not classes, so labels run 0..K-1 without gaps.
        return (tuple(subdirs[i] for i in present),
                [(p, label) for label, i in enumerate(present) for p in per_class[i]])
    return (root.name or str(root),), [(p, 0) for p in walk.image_files(root, recursive=False)]


class _Walk:
    """One walk of a dataset folder: what it has seen, its budget, and what it skipped."""

    def __init__(self, root: Path, skipped: list[tuple[str, str]]):
        self.root, self.skipped = root, skipped
        self.real_root = os.path.realpath(root)
        self.seen: set[tuple[int, int]] = set()
        self.entries = 0
        self.deadline = time.monotonic() + MAX_WALK_SECONDS

    def count(self, n: int) -> None:
        self.entries += n
        if self.entries > MAX_WALK_ENTRIES:
            raise DataError(f"folder {self.root}: more than {MAX_WALK_ENTRIES:,} files and folders "
                            "in it; choose a folder that holds only the dataset")
        if time.monotonic() > self.deadline:
            raise DataError(f"folder {self.root}: still listing its files after {MAX_WALK_SECONDS:.0f} s "
                            f"({self.entries:,} so far); choose a folder that holds only the dataset")

    def first_visit(self, path: str | os.PathLike) -> os.stat_result | None:
        """The file's stat when it is seen for the first time (by device and inode), else None."""
        st = os.stat(path)
        key = (st.st_dev, st.st_ino)
        if key in self.seen:
            return None
        self.seen.add(key)
        return st

    def visit_dir(self, path: str) -> bool:
        """Whether to walk into ``path``: a folder inside the dataset folder, not seen before."""
        real = os.path.realpath(path)
        if real != self.real_root and not real.startswith(self.real_root.rstrip(os.sep) + os.sep):
            self.skipped.append((path, "a link to a folder outside the dataset folder (not followed)"))
            return False
        try:
            return self.first_visit(path) is not None
        except OSError:
            return False

    def image_files(self, folder: Path, recursive: bool) -> list[str]:
        """Image files under ``folder`` in sorted order, following links inside the dataset
        folder but visiting each once."""
        found = []
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
            self.count(len(dirnames) + len(filenames))
            if not recursive:
                filenames, dirnames[:] = filenames + dirnames, []
            else:
                dirnames[:] = [d for d in sorted(dirnames) if self.visit_dir(os.path.join(dirpath, d))]
            for name in sorted(filenames):
                if not name.lower().endswith(IMAGE_EXTENSIONS):
                    continue
                path = os.path.join(dirpath, name)
                try:
                    st = self.first_visit(path)
                except OSError as exc:  # a dangling link, no permission
                    self.skipped.append((path, exc.strerror or "cannot be read"))
                    continue
                if st is None or stat.S_ISDIR(st.st_mode):
                    continue
                if not stat.S_ISREG(st.st_mode):
                    self.skipped.append((path, "not a regular file"))
                    continue
                found.append(path)
        return found


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
                with Image.open(path, formats=PILLOW_FORMATS) as im:
                    # Pillow's resize filters over the whole source footprint, so downscaling is antialiased.
                    small = _eight_bit(_opaque(im)).convert(mode).resize((size, size), Image.Resampling.BILINEAR)
            except Image.UnidentifiedImageError:
                skipped.append((path, f"cannot identify image file as one of the formats vaegui reads "
                                     f"({', '.join(PILLOW_FORMATS)})"))
                continue
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


def _opaque(im: Image.Image) -> Image.Image:
    """A palette image with a transparent colour as RGBA first: converting it straight to L or
    RGB makes Pillow warn on stderr (its transparency is dropped either way)."""
    if im.mode in ("P", "PA") and "transparency" in im.info:
        return im.convert("RGBA")
    return im


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
