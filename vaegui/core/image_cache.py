"""A folder of images decoded once into a uint8 cache file, memory-mapped on every later load;
the same for big generated sets (:func:`load_generated`), rendered once into the user's cache.

Decoding 100,000 PNGs takes minutes and a folder can hold more images than memory. The first
load decodes them a chunk at a time into a cache file, in the order of the train/test split
(test images first), so both splits are views of one memory map: a second load reads a header
and checks a checksum, the pages come from disk as training and the map touch them, and the
kernel can drop them again under memory pressure.

The cache lives in ``.vaegui-cache/`` in the data folder, or in the user's cache folder when the
data folder cannot be written (nothing is then written inside it). It is rebuilt, never trusted,
when the folder changed (its file list, sizes or modification times), when the settings that
shape the images differ, and when the file is truncated or its checksum does not match. A rebuild replaces the file (a new
one renamed over it), never rewrites it, so the images of a dataset loaded before stay valid.

File layout: MAGIC, an 8-byte little-endian header length, the header (JSON), the labels
(K int64, split order), the images (K, C, H, W) uint8. The header holds the fingerprint of the
folder and settings, the image count, the number of test images, the skipped files and their
reasons, and the CRC-32 of labels and images together.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_write
from .memory import map_images
from .paths import user_cache_dir

MAGIC = b"vaegui image cache\n"
FORMAT = 1
CACHE_DIR = ".vaegui-cache"
CHUNK = 4096  # images decoded, and copied into split order, at a time
_READ = 1 << 24  # bytes per read while checking the checksum (read, not mapped: RSS stays low)

# read_images(samples, size, channels, skipped) -> (images (K, C, S, S) uint8, labels (K,))
ReadImages = Callable[[list[tuple[str, int]], int, int, list[tuple[str, str]]], tuple[torch.Tensor, torch.Tensor]]
# split(count, test_fraction, seed) -> (train indices, test indices)
Split = Callable[[int, float, int], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True, eq=False)
class CachedImages:
    train_images: torch.Tensor  # views of one memory map
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    skipped: list[tuple[str, str]]  # (path, reason) of the files that could not be used
    path: Path  # the cache file
    built: bool  # decoded now (False: read from the cache)


def load(root: Path, samples: list[tuple[str, int]], size: int, channels: int, test_fraction: float,
         seed: int, skipped: list[tuple[str, str]], read_images: ReadImages, split: Split) -> CachedImages:
    """The folder's images from its cache, built first when missing, stale or damaged.
    ``skipped`` holds what listing the folder skipped; the result's ``skipped`` adds the files
    that could not be decoded."""
    fingerprint = folder_fingerprint(root, samples, size, channels, test_fraction, seed)
    path = cache_path(root, size, channels)
    shape = (channels, size, size)
    cached = _open(path, fingerprint, shape, skipped)
    if cached is not None:
        return cached
    listed = skipped
    skipped = _build(path, fingerprint, samples, size, channels, test_fraction, seed, skipped, read_images, split)
    cached = _open(path, fingerprint, shape, listed)
    if cached is None:
        if path.exists():
            raise OSError(f"image cache {path}: unreadable just after it was written")
        # Not one image could be decoded: nothing was cached, and the caller says why.
        empty = torch.zeros((0, *shape), dtype=torch.uint8)
        none = torch.zeros(0, dtype=torch.int64)
        return CachedImages(empty, none, empty, none, skipped, path, built=True)
    return CachedImages(**{**cached.__dict__, "built": True})


def folder_fingerprint(root: Path, samples: list[tuple[str, int]], size: int, channels: int,
                       test_fraction: float, seed: int) -> str:
    """A hash of the file list (paths, labels, sizes, modification times) and the settings."""
    h = hashlib.sha256(json.dumps([FORMAT, str(root), size, channels, test_fraction, seed]).encode())
    for p, label in samples:
        st = os.stat(p)
        h.update(f"{os.path.relpath(p, root)}\0{label}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def cache_path(root: Path, size: int, channels: int) -> Path:
    """Where the folder's cache for these settings lives: inside the folder when it can be
    written, else in the user's cache folder under a hash of the folder's path."""
    name = f"images-{size}px-{channels}ch.bin"
    inside = root / CACHE_DIR
    if _can_write(root, inside):
        return inside / name
    outside = user_cache_dir() / "folders" / hashlib.sha256(str(root).encode()).hexdigest()[:20]
    outside.mkdir(parents=True, exist_ok=True)
    return outside / name


GENERATED_DIR = "generated"  # in the user's cache folder
KEEP_GENERATED = 2  # generated sets kept there (a million 28 x 28 shapes is 784 MB); the rest go
GENERATED_CHUNK = 16384  # images rendered at a time while building
DISK_MARGIN = 1 << 30  # bytes a generated set's cache leaves free on its disk


def load_generated(kind: str, fingerprint: str, shape: tuple[int, int, int], train_labels: np.ndarray,
                   test_labels: np.ndarray, render: Callable[[str, int, int], np.ndarray]) -> CachedImages:
    """A generated set's images from its cache in the user's cache folder, rendered into it
    first (``render(split, start, stop)`` -> uint8 images) when missing or damaged.
    ``fingerprint`` must change whenever the images would. The :data:`KEEP_GENERATED` most
    recently used sets are kept. Raises OSError where no cache can be written."""
    folder = user_cache_dir() / GENERATED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind}-{fingerprint[:24]}.bin"
    cached = _open(path, fingerprint, shape, [])
    if cached is None:
        count = len(train_labels) + len(test_labels)
        needed = count * (8 + int(np.prod(shape)))
        free = shutil.disk_usage(folder).free
        if needed + DISK_MARGIN > free:  # refused at once, not after writing most of it
            raise OSError(f"image cache {path}: needs {needed / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free")

        def blocks() -> Iterator[np.ndarray]:
            for split, n in (("test", len(test_labels)), ("train", len(train_labels))):
                for start in range(0, n, GENERATED_CHUNK):
                    yield render(split, start, min(n, start + GENERATED_CHUNK))

        _write(path, fingerprint, shape, len(test_labels), [], np.concatenate([test_labels, train_labels]),
               blocks())
        cached = _open(path, fingerprint, shape, [])
        if cached is None:
            raise OSError(f"image cache {path}: unreadable just after it was written")
        cached = CachedImages(**{**cached.__dict__, "built": True})
    try:
        os.utime(path)  # used now: kept before older sets
    except OSError:  # a cache that cannot be touched is still whole
        pass
    _prune(folder, KEEP_GENERATED)
    return cached


def _prune(folder: Path, keep: int) -> None:
    """Remove all but the ``keep`` most recently used caches in ``folder``. A process that maps
    a removed file keeps reading it; where the system refuses (Windows), it stays."""
    def used(p: Path) -> float:
        try:
            return p.stat().st_mtime
        except OSError:
            return 0.0

    for old in sorted(folder.glob("*.bin"), key=used, reverse=True)[keep:]:
        try:
            old.unlink()
        except OSError:
            pass


def _can_write(root: Path, folder: Path) -> bool:
    """Whether a file can be made in ``folder`` (made inside ``root`` if missing). Tried, not
    asked: permissions say nothing of a read-only mount, and root may write anywhere."""
    try:
        if not folder.is_dir():
            if not os.access(root, os.W_OK):
                return False
            folder.mkdir(exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


# ---- reading ---------------------------------------------------------------------------------
def _open(path: Path, fingerprint: str, shape: tuple[int, int, int],
          listed: list[tuple[str, str]]) -> CachedImages | None:
    """The cache at ``path`` if it is whole, for this fingerprint and undamaged, else None;
    its skipped files are those ``listed`` and those its build could not decode."""
    try:
        with open(path, "rb") as f:
            if f.read(len(MAGIC)) != MAGIC:
                return None
            (length,) = struct.unpack("<Q", f.read(8))
            if length > 1 << 30:
                return None
            header = json.loads(f.read(length).decode())
            offset = len(MAGIC) + 8 + length
            count, n_test = int(header["count"]), int(header["test"])
            if header.get("fingerprint") != fingerprint or tuple(header["shape"]) != shape:
                return None
            payload = count * 8 + count * int(np.prod(shape))
            if os.fstat(f.fileno()).st_size != offset + payload or not 0 <= n_test <= count:
                return None
            if _crc(f, payload) != int(header["crc32"]):
                return None
            skipped = list(listed) + [(str(p), str(r)) for p, r in header["skipped"]]
    except (OSError, ValueError, KeyError, TypeError, struct.error, UnicodeDecodeError):
        return None
    labels = torch.from_numpy(np.fromfile(path, np.int64, count, offset=offset))
    images = map_images(path, offset + 8 * count, (count, *shape))
    return CachedImages(images[n_test:], labels[n_test:], images[:n_test], labels[:n_test], skipped,
                        path, built=False)


def _crc(f, size: int) -> int:
    crc = 0
    while size > 0:
        block = f.read(min(_READ, size))
        if not block:
            return -1
        crc = zlib.crc32(block, crc)
        size -= len(block)
    return crc


# ---- building --------------------------------------------------------------------------------
def _build(path: Path, fingerprint: str, samples: list[tuple[str, int]], size: int, channels: int,
           test_fraction: float, seed: int, skipped: list[tuple[str, str]], read_images: ReadImages,
           split: Split) -> list[tuple[str, str]]:
    """Decode every image a chunk at a time into a scratch file beside the cache, then write
    the cache in split order from it (atomically: a killed build leaves no half cache)."""
    listed = len(skipped)
    skipped = list(skipped)
    shape = (channels, size, size)
    per_image = int(np.prod(shape))
    labels: list[torch.Tensor] = []
    with tempfile.TemporaryFile(dir=path.parent, prefix=".decoding.") as scratch:
        for start in range(0, len(samples), CHUNK):
            images, chunk_labels = read_images(samples[start:start + CHUNK], size, channels, skipped)
            scratch.write(images.numpy().tobytes())
            labels.append(chunk_labels)
        scratch.flush()
        label_array = torch.cat(labels).numpy() if labels else np.zeros(0, np.int64)
        count = len(label_array)
        if count == 0:
            path.unlink(missing_ok=True)
            return skipped  # nothing to cache: load_folder reports why
        train, test = split(count, test_fraction, seed)
        order = torch.cat([test, train]).numpy()
        decoded = np.memmap(scratch, np.uint8, "r", 0, (count, per_image))
        blocks = (decoded[order[start:start + CHUNK]] for start in range(0, count, CHUNK))
        _write(path, fingerprint, shape, len(test), skipped[listed:], label_array[order], blocks)
        del decoded
    return skipped


def _write(path: Path, fingerprint: str, shape: tuple[int, int, int], n_test: int,
           skipped: list[tuple[str, str]], labels: np.ndarray, blocks: Iterable[np.ndarray]) -> None:
    """Write a cache of ``labels`` and the images ``blocks`` give, in split order (test first),
    atomically: a killed build leaves no half cache."""
    labels = np.ascontiguousarray(labels, np.int64)

    def write(f) -> None:
        # The checksum is known only at the end: its place in the header is filled last.
        header = json.dumps({"format": FORMAT, "fingerprint": fingerprint, "count": len(labels),
                             "test": n_test, "shape": list(shape), "crc32": _CRC_BLANK,
                             "skipped": skipped}).encode()
        f.write(MAGIC + struct.pack("<Q", len(header)) + header)
        # A JSON key in quotes appears only as itself: inside strings quotes are escaped.
        crc_at = len(MAGIC) + 8 + header.index(b'"crc32": "') + len('"crc32": "')
        raw = labels.tobytes()
        f.write(raw)
        crc = zlib.crc32(raw)
        written = 0
        for block in blocks:
            block = np.ascontiguousarray(block, np.uint8).tobytes()
            crc = zlib.crc32(block, crc)
            f.write(block)
            written += len(block)
        if written != len(labels) * int(np.prod(shape)):
            raise ValueError(f"image cache {path}: {written} bytes of images for {len(labels)} labels")
        f.seek(crc_at)
        f.write(f"{crc:0{len(_CRC_BLANK)}d}".encode())

    atomic_write(path, write)


_CRC_BLANK = "0" * 10  # a CRC-32 in decimal digits, written over once known


def in_memory(samples: list[tuple[str, int]], size: int, channels: int, test_fraction: float, seed: int,
              skipped: list[tuple[str, str]], read_images: ReadImages, split: Split) -> CachedImages:
    """The images decoded into memory, without a cache (where none can be written)."""
    skipped = list(skipped)
    images, labels = read_images(samples, size, channels, skipped)
    train, test = split(len(images), test_fraction, seed) if len(images) else (labels, labels)
    return CachedImages(images[train], labels[train], images[test], labels[test], skipped, Path(), built=True)
