"""The datasets vaegui knows, where their files live, and what is known before loading them.

Apart from :func:`download_problem`, nothing here imports torch or torchvision (together 5 s):
the app answers "which dataset, is it on disk" before its window opens, and loads with
:mod:`.dataset_loader` later. The file lists of torchvision's datasets are written out below rather than
read from its classes for that reason; a test holds them equal to torchvision's.
"""

from __future__ import annotations

import difflib
import os
import urllib.request
from pathlib import Path

from . import limits
from .config import DataConfig
from .errors import DataError
from .paths import user_cache_dir

# The named datasets and how the app titles them; with "folder:PATH", every dataset there is.
DATASET_TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "kmnist": "KMNIST",
                  "cifar10": "CIFAR-10", "shapes": "Shapes (generated)"}
DATASET_NAMES = tuple(DATASET_TITLES)
ENV_VAR = "VAEGUI_DATA_DIR"
FOLDER_PREFIX = "folder:"

# vaegui name -> torchvision class name (looked up at call time, so tests can patch the class).
TORCHVISION = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST", "cifar10": "CIFAR10"}
_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                "t10k-labels-idx1-ubyte")
# The folder under the data directory that torchvision reads each dataset from, and the files it
# needs there (see its datasets' _check_exists).
TORCHVISION_FILES = {
    "mnist": ("MNIST/raw", _MNIST_FILES),
    "fashion-mnist": ("FashionMNIST/raw", _MNIST_FILES),
    "kmnist": ("KMNIST/raw", _MNIST_FILES),
    "cifar10": ("cifar-10-batches-py", ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                                        "data_batch_5", "test_batch", "batches.meta")),
}
# The class names of the MNIST family, which vaegui reads itself (torchvision's ``classes``; a
# test holds them equal). CIFAR-10's come from its own meta file.
CLASS_NAMES = {
    "mnist": ("0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six",
              "7 - seven", "8 - eight", "9 - nine"),
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"),
    "kmnist": ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
}
# The file names a folder dataset reads (torchvision's IMG_EXTENSIONS; a test holds them equal).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
# The Pillow formats those files may hold, and the only ones Pillow is asked to open: a file is
# identified by its content, and formats such as EPS, PS and PDF run an external program
# (Ghostscript). A camera's multi-picture JPEG opens as JPEG (Pillow's JPEG reader hands it on).
PILLOW_FORMATS = ("PNG", "JPEG", "PPM", "BMP", "TIFF", "WEBP")


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Explicit argument, else $VAEGUI_DATA_DIR, else the per-user cache directory; not created."""
    chosen = data_dir if data_dir not in (None, "") else os.environ.get(ENV_VAR) or user_cache_dir() / "data"
    return Path(os.path.abspath(Path(chosen).expanduser()))


def dataset_key(name: str) -> str:
    """A dataset name in one spelling, to tell whether two names mean the same dataset."""
    name = name.strip()
    if name.startswith(FOLDER_PREFIX):
        return FOLDER_PREFIX + str(folder_path(name))
    return name.lower()


def image_shape_of(cfg: DataConfig) -> tuple[int, int, int]:
    """(C, H, W) of the images ``cfg`` loads, known before loading them."""
    name = dataset_key(cfg.dataset)
    if name == "cifar10":
        return 3, 32, 32
    if name in TORCHVISION:
        return 1, 28, 28
    if name == "shapes":
        return 1, cfg.image_size, cfg.image_size
    if name.startswith(FOLDER_PREFIX):
        return cfg.channels, cfg.image_size, cfg.image_size
    raise unknown_dataset(cfg.dataset)


def check_fits_in_memory(what: str, nbytes: int, kind: str = "images") -> None:
    """DataError when ``nbytes`` of ``kind`` would take more than half of this machine's memory,
    checked before allocating them."""
    ok, budget = limits.fits(nbytes)
    if not ok:
        raise DataError(f"{what}: {limits.gib(nbytes)} of {kind} would not fit in memory "
                        f"({budget} may be used here); use a smaller image size or fewer images")


def expected_files(name: str, root: Path) -> tuple[Path, list[str]]:
    """The folder torchvision reads dataset ``name`` from under ``root``, and the files it needs."""
    folder, files = TORCHVISION_FILES[name]
    return root / folder, list(files)


def dataset_available(name: str, data_dir: str | os.PathLike | None = None) -> bool:
    """Whether ``name`` can be loaded without a download (files present; checksums are not verified)."""
    name = name.strip()
    if name.startswith(FOLDER_PREFIX):
        return folder_path(name).is_dir()
    if name.lower() == "shapes":
        return True
    if name.lower() not in TORCHVISION:
        raise unknown_dataset(name)
    folder, files = expected_files(name.lower(), resolve_data_dir(data_dir))
    return all((folder / f).is_file() for f in files)


def download_problem(name: str, timeout: float = 2.0) -> str | None:
    """None when a download server of torchvision dataset ``name`` answers (a HEAD request for
    its first file, at most ``timeout`` seconds a server), else why not, in a few words."""
    from torchvision import datasets as tv_datasets  # the addresses are torchvision's

    cls = getattr(tv_datasets, TORCHVISION[name.lower()])
    if hasattr(cls, "mirrors"):  # the MNIST family: one file name, several mirrors
        urls = [mirror + cls.resources[0][0] for mirror in cls.mirrors]
    else:
        urls = [cls.url]
    problem = "no download address"
    for url in urls:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
                return None
        except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts are all OSErrors
            problem = f"{url}: {getattr(exc, 'reason', None) or exc}"
    return problem


def unknown_dataset(name: str) -> DataError:
    """The error for a dataset name that is none of DATASET_NAMES, with the nearest one when a
    name is close (a typo: "mnsit")."""
    close = difflib.get_close_matches(name.strip().lower(), DATASET_NAMES, n=1, cutoff=0.6)
    guess = f"did you mean {close[0]!r}? " if close else ""
    return DataError(f"dataset: {name!r} is unknown; {guess}use one of {', '.join(DATASET_NAMES)} "
                     f"or {FOLDER_PREFIX}PATH")


def folder_path(name: str) -> Path:
    """The folder of a ``folder:PATH`` dataset name, absolute."""
    path = name[len(FOLDER_PREFIX) :].strip()
    if not path:
        raise DataError(f"dataset: {name!r} names no folder; write folder:PATH")
    return Path(os.path.abspath(Path(path).expanduser()))
