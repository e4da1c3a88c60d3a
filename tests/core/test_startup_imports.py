"""Start-up stays light: the window's modules never import torch (it loads on the worker's
thread after the window is painted), the command line answers --help and argument errors
without it, torchvision comes only with a torchvision dataset, and the tables written out to
avoid importing it agree with torchvision's own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vaegui.core.dataset_catalog import CLASS_NAMES, IMAGE_EXTENSIONS, TORCHVISION, TORCHVISION_FILES
from vaegui.core.latent import tile

REPO = Path(__file__).resolve().parents[2]


def modules_after(code: str) -> set[str]:
    """The heavy modules loaded once ``code`` has run in a fresh interpreter."""
    probe = code + "\nimport sys\nprint('loaded:', *(m for m in ('torch', 'torchvision') if m in sys.modules))\n"
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                            cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.splitlines()[-1].split()[1:])


def test_the_window_and_the_app_entry_import_no_torch():
    assert modules_after("import vaegui.gui.app, vaegui.gui.main_window, vaegui.cli") == set()


def test_the_window_is_built_and_painted_without_torch(tmp_path):
    """Up to the point where the window asks its worker to load torch (held off here), no
    thread of the window imports it: not the decoding thread, not the follower."""
    code = (
        "import time\nfrom PySide6.QtCore import QSettings\nfrom PySide6.QtWidgets import QApplication\n"
        "from vaegui.gui.main_window import MainWindow\n"
        "MainWindow._warm_up = lambda self: None\n"
        "app = QApplication([])\n"
        f"window = MainWindow(QSettings({str(tmp_path / 's.ini')!r}, QSettings.Format.IniFormat))\n"
        "window.show()\nend = time.monotonic() + 1.0\n"
        "while time.monotonic() < end:\n    app.processEvents()\n    time.sleep(0.01)\n"
        "painted = window.grab().width() > 0\n")
    assert modules_after(code + "assert painted\n" + "import os, sys\nprint('loaded:', *(m for m in ('torch', 'torchvision') if m in sys.modules), flush=True)\nos._exit(0)\n") == set()


def test_help_and_argument_errors_answer_without_torch():
    code = ("from vaegui.cli import main\n"
            "for argv in (['train', '--help'], ['train', '--epochs', 'x'], ['gui', '--epochs', '0']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n")
    assert modules_after(code) == set()


def test_the_mnist_family_loads_without_torchvision(tmp_path):
    from test_data import write_mnist_like

    write_mnist_like(tmp_path, "KMNIST", np.random.default_rng(0))
    code = ("from vaegui.core.config import DataConfig\nfrom vaegui.core.dataset_loader import load_dataset\n"
            f"load_dataset(DataConfig(dataset='kmnist', data_dir={str(tmp_path)!r}), download=False)\n")
    assert modules_after(code) == {"torch"}


def test_shapes_and_folder_datasets_load_without_torchvision(tmp_path):
    from PIL import Image

    for k in range(4):
        Image.new("L", (8, 8), 40 * k).save(tmp_path / f"{k}.png")
    code = ("from vaegui.core.config import DataConfig\nfrom vaegui.core.dataset_loader import load_dataset\n"
            "load_dataset(DataConfig(dataset='shapes', train_limit=10, test_limit=10))\n"
            f"load_dataset(DataConfig(dataset='folder:{tmp_path}', image_size=8))\n")
    assert modules_after(code) == {"torch"}


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_the_file_table_is_torchvision_s(name):
    import torchvision.datasets as tv

    cls = getattr(tv, TORCHVISION[name])
    folder, files = TORCHVISION_FILES[name]
    if issubclass(cls, tv.CIFAR10):
        assert (folder, list(files)) == (cls.base_folder, [f for f, _ in cls.train_list + cls.test_list]
                                         + [cls.meta["filename"]])
    else:
        assert folder == f"{cls.__name__}/raw"
        assert list(files) == [os.path.splitext(os.path.basename(f))[0] for f, _ in cls.resources]


@pytest.mark.parametrize("name", sorted(CLASS_NAMES))
def test_the_class_names_are_torchvision_s(name):
    import torchvision.datasets as tv

    assert CLASS_NAMES[name] == tuple(getattr(tv, TORCHVISION[name]).classes)


def test_image_extensions_are_torchvision_s():
    from torchvision.datasets.folder import IMG_EXTENSIONS

    assert set(IMAGE_EXTENSIONS) == set(IMG_EXTENSIONS)


@pytest.mark.parametrize("n, nrow, channels, padding", [(1, 8, 1, 2), (5, 3, 1, 2), (12, 4, 3, 1),
                                                         (7, 10, 1, 0), (9, 3, 3, 2)])
def test_tile_is_make_grid(n, nrow, channels, padding):
    from torchvision.utils import make_grid

    images = np.random.default_rng(n).random((n, channels, 5, 6), dtype=np.float32)
    expected = make_grid(torch.from_numpy(images), nrow=nrow, padding=padding, pad_value=1.0)[:channels]
    np.testing.assert_array_equal(tile(images, nrow, padding), expected.numpy())
