"""Named datasets -> in-memory uint8 tensors with labels, class names and image shape.

Every dataset is held whole in memory as uint8 (MNIST is 47 MB, CIFAR-10 180 MB); conversion to
float happens per batch in the trainer, so no float copy of a full set is ever made here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import image_cache, shapes
from .config import DataConfig
from .dataset_catalog import (CLASS_NAMES, DATASET_NAMES, ENV_VAR, FOLDER_PREFIX, IMAGE_EXTENSIONS, TORCHVISION,
                       check_fits_in_memory, dataset_available, dataset_key, download_problem,
                       expected_files, folder_path, image_shape_of, resolve_data_dir, unknown_dataset)
from .errors import DataError
from .image_folder import list_images, one_line, read_images

# The catalog's names, for the callers that load (the catalog itself is in .datasets).
__all__ = ["DATASET_NAMES", "ENV_VAR", "FOLDER_PREFIX", "ImageData", "check_fits_in_memory",
           "dataset_available", "dataset_key", "download_problem", "image_shape_of", "load_dataset",
           "load_folder", "make_shapes", "resolve_data_dir"]
# Size of the generated shapes dataset (train, test).
_SHAPES_SIZES = (20000, 5000)
SHAPES_MAPPED_FROM = 256 << 20  # bytes of shapes above which they are memory-mapped (make_shapes)


@dataclass(frozen=True, eq=False)
class ImageData:
    """A dataset held in memory; images are uint8 0..255."""

    name: str  # e.g. "mnist", "shapes", "folder:/abs/path"
    train_images: torch.Tensor  # (N, C, H, W) uint8, contiguous, CPU
    train_labels: torch.Tensor  # (N,) int64
    test_images: torch.Tensor  # (M, C, H, W) uint8
    test_labels: torch.Tensor  # (M,) int64
    class_names: tuple[str, ...]
    # Per-image generating factors (shapes only), each (N,) / (M,) float32.
    train_factors: dict[str, np.ndarray] = field(default_factory=dict)
    test_factors: dict[str, np.ndarray] = field(default_factory=dict)
    # Paths of files that could not be read (folder datasets), and why, one reason per path.
    skipped: tuple[str, ...] = ()
    skip_reasons: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for images, labels in ((self.train_images, self.train_labels), (self.test_images, self.test_labels)):
            if images.dtype != torch.uint8 or images.dim() != 4 or len(images) != len(labels):
                raise ValueError(f"{self.name}: images must be (N, C, H, W) uint8 with N labels")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        c, h, w = self.train_images.shape[1:]
        return int(c), int(h), int(w)

    @property
    def data_dim(self) -> int:
        c, h, w = self.image_shape
        return c * h * w

    def skipped_summary(self, shown: int = 3) -> str:
        """"skipped 5 files: a.png (reason), b.png (reason), c.png (reason) and 2 more", or ""."""
        if not self.skipped:
            return ""
        reasons = self.skip_reasons or ("unreadable",) * len(self.skipped)
        listed = ", ".join(f"{os.path.basename(p)} ({r})" for p, r in zip(self.skipped[:shown], reasons))
        more = f" and {len(self.skipped) - shown} more" if len(self.skipped) > shown else ""
        return f"{self.name}: skipped {len(self.skipped)} file{'s' * (len(self.skipped) > 1)}: {listed}{more}"


def load_dataset(cfg: DataConfig, download: bool = True) -> ImageData:
    """Load ``cfg.dataset`` whole, keeping the first ``train_limit`` / ``test_limit`` images."""
    name = cfg.dataset.strip()
    if name.startswith(FOLDER_PREFIX):
        data = load_folder(folder_path(name), cfg.image_size, cfg.channels, seed=cfg.seed)
    elif name.lower() == "shapes":
        # Shapes are generated image by image, so generating only the kept prefix gives the same
        # images; a limit above the default size generates that many (a million for big maps).
        n_train, n_test = (limit or n for n, limit in zip(_SHAPES_SIZES, (cfg.train_limit, cfg.test_limit)))
        data = make_shapes(n_train, n_test, image_size=cfg.image_size, seed=cfg.seed)
    elif name.lower() in TORCHVISION:
        data = _load_torchvision(name.lower(), resolve_data_dir(cfg.data_dir), download)
    else:
        raise unknown_dataset(name)
    return _limit(data, cfg.train_limit, cfg.test_limit)


def _limit(data: ImageData, train_limit: int | None, test_limit: int | None) -> ImageData:
    """First N images of each split; a copy, so the full set's memory can be freed."""
    changes = {}
    for split, limit in (("train", train_limit), ("test", test_limit)):
        images = getattr(data, f"{split}_images")
        if limit is None or limit >= len(images):
            continue
        changes[f"{split}_images"] = images[:limit].clone()
        changes[f"{split}_labels"] = getattr(data, f"{split}_labels")[:limit].clone()
        changes[f"{split}_factors"] = {k: v[:limit].copy() for k, v in getattr(data, f"{split}_factors").items()}
    return dataclasses.replace(data, **changes) if changes else data


# --- torchvision datasets -------------------------------------------------------------------------


def _tv_class(name: str) -> type:
    # torchvision only here, when one of its datasets is loaded: importing it costs 3 s.
    from torchvision import datasets as tv_datasets

    return getattr(tv_datasets, TORCHVISION[name])


def _load_torchvision(name: str, root: Path, download: bool) -> ImageData:
    folder, files = expected_files(name, root)
    if not all((folder / f).is_file() for f in files):
        _download(_tv_class(name), root, name, folder, files, download)
    if name == "cifar10":
        try:
            train, test = (_tv_class(name)(root=str(root), train=split, download=False)
                           for split in (True, False))
        except Exception as exc:  # noqa: BLE001 - RuntimeError (md5, size), UnpicklingError...
            raise DataError(f"{name}: cannot read the files in {folder}: {one_line(exc)}; "
                            "delete them to download again") from None
        classes = tuple(train.classes)
        train_images, train_labels = _tensors(train)
        test_images, test_labels = _tensors(test)
    else:
        # The MNIST family is read here, not through torchvision: importing torchvision and its
        # reader took 1.7 s of a 3-epoch `vaegui train` run; numpy reads the files in 50 ms.
        classes = CLASS_NAMES[name]
        train_images, train_labels, test_images, test_labels = (
            torch.from_numpy(_read_idx(name, folder / f)) for f in files)
        for f, images, labels in ((files[0], train_images, train_labels),
                                  (files[2], test_images, test_labels)):
            if images.shape[1:] != (28, 28) or len(images) != len(labels):
                raise DataError(f"{name}: {folder / f}: {' x '.join(map(str, images.shape))} images "
                                f"with {len(labels):,} labels, expected N x 28 x 28 with N labels; "
                                "delete the files to download again")
        train_images, test_images = train_images.unsqueeze(1), test_images.unsqueeze(1)
        train_labels, test_labels = train_labels.long(), test_labels.long()
    for split, labels in (("training", train_labels), ("test", test_labels)):
        if len(labels) and not (0 <= int(labels.min()) and int(labels.max()) < len(classes)):
            raise DataError(f"{name}: the {split} labels in {folder} run from {int(labels.min())} to "
                            f"{int(labels.max())}, outside 0..{len(classes) - 1}")
    return ImageData(name, train_images, train_labels, test_images, test_labels, classes)


# The IDX format of the MNIST family (http://yann.lecun.com/exdb/mnist/): a big-endian magic
# number 0x0000080N (unsigned bytes, N dimensions), N big-endian sizes, then the bytes.
_IDX_DIMS = {"images": 3, "labels": 1}


def _read_idx(name: str, path: Path) -> np.ndarray:
    """The array in IDX file ``path`` (images (N, H, W), labels (N,), uint8); a DataError naming
    it when it is not the IDX file its name promises."""
    kind = "labels" if "labels" in path.name else "images"
    dims = _IDX_DIMS[kind]
    try:
        with open(path, "rb") as f:
            header = f.read(4 + 4 * dims)
        size = path.stat().st_size
    except OSError as exc:
        raise DataError(f"{name}: {path}: cannot read it: {exc.strerror or exc}") from None
    expected_magic = 0x800 + dims
    magic = int.from_bytes(header[:4], "big") if len(header) >= 4 else None
    if magic != expected_magic:
        found = "too short for a header" if magic is None else f"its magic number is 0x{magic:08x}"
        raise DataError(f"{name}: {path}: not an IDX {kind} file ({found}, expected "
                        f"0x{expected_magic:08x}); delete it to download again")
    if len(header) < 4 + 4 * dims:
        raise DataError(f"{name}: {path}: truncated header; delete it to download again")
    shape = [int.from_bytes(header[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    promised = 4 + 4 * dims + int(np.prod(shape, dtype=object))
    if size != promised:
        raise DataError(f"{name}: {path}: {size:,} bytes, but its header promises {promised:,} "
                        f"({' x '.join(map(str, shape))} {kind}); delete it to download again")
    try:
        return np.fromfile(path, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)
    except (OSError, ValueError) as exc:  # changed since its size was read
        raise DataError(f"{name}: {path}: cannot read it: {one_line(exc)}") from None


def _download(cls: type, root: Path, name: str, folder: Path, files: list[str], download: bool) -> None:
    """Fetch the missing files through torchvision, or say in one line what to put where."""
    problem = f"{name}: files not found in {folder} (expected {', '.join(files)})"
    if not download:
        raise DataError(f"{problem}; downloading is off")
    try:
        # torchvision prints every attempt and mirror; the error below says what matters.
        with contextlib.redirect_stdout(io.StringIO()):
            cls(root=str(root), train=True, download=True)  # fetches both splits
    except Exception as exc:  # noqa: BLE001 - URLError, RuntimeError (all mirrors failed), tar/md5 errors...
        raise DataError(f"{problem}; the download failed ({one_line(exc)}): put the files "
                        "there by hand") from None


def _tensors(ds) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C, H, W) uint8 images and (N,) int64 labels of torchvision's CIFAR-10, without
    per-image work: its data is (N, H, W, C), itself a transposed view of (N, C, H, W)."""
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
    return images, torch.as_tensor(ds.targets, dtype=torch.int64)


# --- generated shapes -----------------------------------------------------------------------------


def make_shapes(n_train: int = 20000, n_test: int = 5000, image_size: int = 28, seed: int = 0) -> ImageData:
    """Squares, ellipses and triangles from random factors (see :mod:`vaegui.core.shapes`).
    A set of more than :data:`SHAPES_MAPPED_FROM` bytes is rendered once into a cache file and
    memory-mapped (see :func:`image_cache.load_generated`): a million 28 x 28 shapes take half a
    minute to render and 784 MB, which then need not stay in the process's memory."""
    images_bytes = (n_train + n_test) * image_size ** 2
    factor_bytes = (n_train + n_test) * shapes.FACTOR_BYTES
    # The factors are drawn in memory either way: refused, like images, before any is.
    check_fits_in_memory("shapes", factor_bytes, "generating factors")
    # Separate streams so train and test are different draws, and each is a prefix-stable sequence.
    rngs = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    factors = {split: shapes.draw_factors(rng, n, image_size)
               for split, rng, n in zip(("train", "test"), rngs, (n_train, n_test))}
    labels = {split: f["shape"].astype(np.int64) for split, f in factors.items()}

    def render(split: str, start: int, stop: int) -> np.ndarray:
        return shapes.render({k: v[start:stop] for k, v in factors[split].items()}, image_size)

    images = None
    if images_bytes > SHAPES_MAPPED_FROM:
        # The key covers every factor and a rendering of the first images of each split, so a
        # change to either the draws or the drawing makes a new cache, never a stale one.
        key = hashlib.sha256(json.dumps(["shapes", n_train, n_test, image_size, seed]).encode())
        for split in ("train", "test"):
            for k in sorted(factors[split]):
                key.update(factors[split][k].tobytes())
            key.update(render(split, 0, min(64, len(labels[split]))).tobytes())
        try:
            c = image_cache.load_generated("shapes", key.hexdigest(), (1, image_size, image_size),
                                           labels["train"], labels["test"], render)
            images = c.train_images, c.test_images
        except OSError:  # no room or no place for a cache: rendered into memory, if it fits
            pass
    if images is None:
        check_fits_in_memory("shapes", images_bytes + factor_bytes)
        images = tuple(torch.from_numpy(render(split, 0, len(labels[split]))) for split in ("train", "test"))
    return ImageData("shapes", images[0], torch.from_numpy(labels["train"]), images[1],
                     torch.from_numpy(labels["test"]), shapes.SHAPE_NAMES, factors["train"], factors["test"])


# --- image folders --------------------------------------------------------------------------------


def load_folder(
    path: str | os.PathLike, image_size: int = 28, channels: int = 1, test_fraction: float = 0.1, seed: int = 0
) -> ImageData:
    """Images in one subfolder per class (or directly in ``path``: one class), resized to a square."""
    root = Path(os.path.abspath(Path(path).expanduser()))
    if not root.is_dir():
        raise DataError(f"folder {root}: not found or not a folder")
    if not 0 <= test_fraction < 1:
        raise DataError(f"test_fraction: {test_fraction} is not in [0, 1)")
    if channels not in (1, 3):
        raise DataError(f"channels: {channels} is not 1 or 3")
    skipped: list[tuple[str, str]] = []
    try:
        class_names, samples = list_images(root, skipped)
    except OSError as exc:
        raise DataError(f"folder {root}: cannot list it: {exc.strerror or exc}") from None
    if not samples:
        raise DataError(f"folder {root}: no image files ({' '.join(IMAGE_EXTENSIONS)}) in it or in its subfolders")
    try:  # decoded once into a memory-mapped cache file (see image_cache.py)
        c = image_cache.load(root, samples, image_size, channels, test_fraction, seed, skipped, read_images, _split)
    except OSError:  # no room or no place for a cache: decode into memory, if it fits
        check_fits_in_memory(f"folder {root}", len(samples) * image_size * image_size * channels)
        c = image_cache.in_memory(samples, image_size, channels, test_fraction, seed, skipped, read_images, _split)
    skipped = c.skipped
    if len(c.train_images) + len(c.test_images) == 0:
        raise DataError(f"folder {root}: none of its {len(samples)} image files could be read "
                        f"(first: {os.path.basename(skipped[0][0])}: {skipped[0][1]})")
    name = f"{FOLDER_PREFIX}{root}"
    return ImageData(name, c.train_images, c.train_labels, c.test_images, c.test_labels, class_names,
                     skipped=tuple(p for p, _ in skipped), skip_reasons=tuple(r for _, r in skipped))


def _split(n: int, test_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffled train / test indices; at least one test image when there are two or more."""
    order = torch.from_numpy(np.random.default_rng(seed).permutation(n))
    n_test = round(n * test_fraction)
    if test_fraction > 0 and n >= 2:
        n_test = min(max(n_test, 1), n - 1)
    return order[n_test:], order[:n_test]
