"""Datasets: torchvision sets from files in their real on-disk formats, shapes, folders. No network."""

from __future__ import annotations

import os
import pickle
import struct
import sys
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from vaegui.core import dataset_loader as D
from vaegui.core import shapes as shapes_mod
from vaegui.core.config import DataConfig
from vaegui.core.errors import DataError

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


# --- helpers writing the real file formats -------------------------------------------------------


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX (the MNIST format): magic 0x00 0x00 0x08 (ubyte) ndim, then big-endian int32 dims, then bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist_like(root: Path, class_name: str, rng: np.random.Generator, n_train=5, n_test=3) -> dict:
    raw = root / class_name / "raw"
    raw.mkdir(parents=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        write_idx(raw / name, array)
    return arrays


def write_cifar(root: Path, rng: np.random.Generator) -> tuple[np.ndarray, list, np.ndarray, list]:
    """cifar-10-batches-py/: pickled dicts; rows of `data` are 3072 bytes, R then G then B planes.

    The real files are Python 2 pickles whose str keys torchvision reads back as str (encoding
    "latin1"), so str keys here give the same result.
    """
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train_x, train_y = [], []
    for i in range(1, 6):
        x = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
        y = [int(v) for v in rng.integers(0, 10, 2)]
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps({"data": x, "labels": y}, protocol=2))
        train_x.append(x)
        train_y += y
    test_x = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
    test_y = [1, 2, 3]
    (folder / "test_batch").write_bytes(pickle.dumps({"data": test_x, "labels": test_y}, protocol=2))
    names = [f"class{i}" for i in range(10)]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}, protocol=2))
    return np.concatenate(train_x), train_y, test_x, test_y


def write_png(path: Path, value, size=(30, 20), mode="L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)


# --- torchvision datasets --------------------------------------------------------------------------


def test_real_mnist(mnist_dir):  # the fixture (tests/conftest.py) skips when MNIST is absent
    assert D.dataset_available("mnist", mnist_dir)
    data = D.load_dataset(DataConfig(dataset="mnist", data_dir=str(mnist_dir)), download=False)
    assert data.train_images.shape == (60000, 1, 28, 28) and data.train_images.dtype == torch.uint8
    assert data.test_images.shape == (10000, 1, 28, 28) and data.train_images.is_contiguous()
    assert data.train_labels.dtype == torch.int64
    assert set(data.train_labels.tolist()) == set(range(10)) == set(data.test_labels.tolist())
    assert data.class_names == tuple(torchvision.datasets.MNIST.classes)
    assert (data.image_shape, data.data_dim, data.name) == ((1, 28, 28), 784, "mnist")
    # vaegui reads the IDX files itself: the same tensors as torchvision's reader.
    for split, images, labels in ((True, data.train_images, data.train_labels),
                                  (False, data.test_images, data.test_labels)):
        tv = torchvision.datasets.MNIST(str(mnist_dir), train=split, download=False)
        assert torch.equal(images[:, 0], tv.data) and torch.equal(labels, tv.targets)

    cfg = DataConfig(dataset="mnist", data_dir=str(mnist_dir), train_limit=1000, test_limit=10)
    small = D.load_dataset(cfg, download=False)
    assert small.train_images.shape[0] == 1000 and small.test_labels.shape == (10,)
    assert torch.equal(small.train_images, data.train_images[:1000])
    assert torch.equal(small.test_labels, data.test_labels[:10])


@pytest.mark.parametrize("name, class_name", [("fashion-mnist", "FashionMNIST"), ("kmnist", "KMNIST")])
def test_mnist_family_from_idx_files(tmp_path, name, class_name):
    arrays = write_mnist_like(tmp_path, class_name, np.random.default_rng(0))
    assert D.dataset_available(name, tmp_path)
    data = D.load_dataset(DataConfig(dataset=name, data_dir=str(tmp_path)), download=False)
    assert data.train_images.shape == (5, 1, 28, 28) and data.test_images.shape == (3, 1, 28, 28)
    assert np.array_equal(data.train_images[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    assert np.array_equal(data.test_images[:, 0].numpy(), arrays["t10k-images-idx3-ubyte"])
    assert np.array_equal(data.train_labels.numpy(), arrays["train-labels-idx1-ubyte"])
    assert np.array_equal(data.test_labels.numpy(), arrays["t10k-labels-idx1-ubyte"])
    assert data.class_names == tuple(getattr(torchvision.datasets, class_name).classes)


def test_cifar10_from_batch_files(tmp_path, monkeypatch):
    train_x, train_y, test_x, test_y = write_cifar(tmp_path, np.random.default_rng(1))
    # torchvision checks the md5 of every CIFAR file (batches and meta) through this one function;
    # our small stand-in files cannot match the real checksums, so check only that they exist.
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))
    data = D.load_dataset(DataConfig(dataset="cifar10", data_dir=str(tmp_path), test_limit=2), download=False)
    assert data.train_images.shape == (10, 3, 32, 32) and data.train_images.is_contiguous()
    assert torch.equal(data.train_images, torch.from_numpy(train_x.reshape(-1, 3, 32, 32)))
    assert data.train_labels.tolist() == train_y
    assert torch.equal(data.test_images, torch.from_numpy(test_x.reshape(-1, 3, 32, 32))[:2])
    assert data.test_labels.tolist() == test_y[:2]
    assert data.class_names == tuple(f"class{i}" for i in range(10))
    assert data.image_shape == (3, 32, 32)


def test_missing_files_without_download(tmp_path):
    assert not D.dataset_available("kmnist", tmp_path)
    with pytest.raises(DataError) as info:
        D.load_dataset(DataConfig(dataset="kmnist", data_dir=str(tmp_path)), download=False)
    message = str(info.value)
    assert str(tmp_path / "KMNIST" / "raw") in message
    assert all(f in message for f in MNIST_FILES)


def test_failed_download_is_a_data_error(tmp_path, monkeypatch):
    def no_network(self):
        raise URLError("no network")

    monkeypatch.setattr(torchvision.datasets.KMNIST, "download", no_network)
    with pytest.raises(DataError, match="download failed.*no network") as info:
        D.load_dataset(DataConfig(dataset="kmnist", data_dir=str(tmp_path)), download=True)
    assert "t10k-images-idx3-ubyte" in str(info.value)


def test_download_is_used_when_files_are_missing(tmp_path, monkeypatch):
    def fake_download(self):
        write_mnist_like(Path(self.root), "KMNIST", np.random.default_rng(2))

    monkeypatch.setattr(torchvision.datasets.KMNIST, "download", fake_download)
    data = D.load_dataset(DataConfig(dataset="kmnist", data_dir=str(tmp_path)), download=True)
    assert data.train_images.shape == (5, 1, 28, 28)


def test_damaged_file_is_a_data_error(tmp_path):
    write_mnist_like(tmp_path, "FashionMNIST", np.random.default_rng(3))
    path = tmp_path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match=f"{path}: 100 bytes, but its header promises 3,936"):
        D.load_dataset(DataConfig(dataset="fashion-mnist", data_dir=str(tmp_path)), download=False)


def test_unknown_dataset():
    with pytest.raises(DataError, match="nope.*mnist.*shapes"):
        D.load_dataset(DataConfig(dataset="nope"))
    with pytest.raises(DataError):
        D.dataset_available("nope")


# --- shapes ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shapes_data():
    return D.make_shapes(n_train=600, n_test=100, seed=3)


def test_shapes_are_deterministic(shapes_data):
    again = D.make_shapes(n_train=600, n_test=100, seed=3)
    other = D.make_shapes(n_train=600, n_test=100, seed=4)
    assert torch.equal(again.train_images, shapes_data.train_images)
    assert torch.equal(again.test_images, shapes_data.test_images)
    assert not torch.equal(other.train_images, shapes_data.train_images)
    # Train and test are different draws.
    assert not torch.equal(shapes_data.train_images[:100], shapes_data.test_images)


def test_shapes_layout(shapes_data):
    d = shapes_data
    assert d.train_images.shape == (600, 1, 28, 28) and d.train_images.dtype == torch.uint8
    assert d.class_names == ("square", "ellipse", "triangle")
    splits = ((d.train_images, d.train_labels, d.train_factors), (d.test_images, d.test_labels, d.test_factors))
    for images, labels, factors in splits:
        assert set(factors) == {"shape", "scale", "rotation", "x", "y"}
        assert all(v.dtype == np.float32 and v.shape == (len(images),) for v in factors.values())
        assert np.array_equal(labels.numpy(), factors["shape"].astype(np.int64))
    assert set(d.train_labels.tolist()) == {0, 1, 2}
    # Whole shapes: the outermost ring of pixels stays blank; antialiased: grey levels in between.
    img = d.train_images[:, 0]
    assert img[:, 0].max() == img[:, -1].max() == img[:, :, 0].max() == img[:, :, -1].max() == 0
    assert 0 < ((img > 0) & (img < 255)).float().mean() < 0.2


def test_shapes_factors_match_pixels(shapes_data):
    d, size = shapes_data, 28
    f = d.train_factors
    w = d.train_images[:, 0].double().numpy()  # (N, H, W)
    centres = (np.arange(size) + 0.5) * 2 / size - 1  # normalised pixel-centre coordinates
    mass = w.sum((1, 2))
    cx = (w.sum(1) * centres).sum(1) / mass
    cy = (w.sum(2) * centres).sum(1) / mass
    pixel = 2 / size
    assert np.abs(cx - f["x"]).max() < 0.5 * pixel and np.abs(cy - f["y"]).max() < 0.5 * pixel

    # Inked area (in pixels) is the shape's area at that scale.
    ink = mass / 255
    expected = np.array(shapes_mod.SHAPE_AREAS)[f["shape"].astype(int)] * (f["scale"] / pixel) ** 2
    assert np.all(np.abs(ink / expected - 1) < 0.1)
    for kind in range(3):
        sel = f["shape"] == kind
        assert np.corrcoef(f["scale"][sel], ink[sel])[0, 1] > 0.95

    # Ellipses: the principal axis of the pixel mass lies along the rotation factor (mod pi).
    sel = f["shape"] == 1
    dx = centres[None, None, :] - cx[sel, None, None]
    dy = centres[None, :, None] - cy[sel, None, None]
    ws = w[sel]
    mu20, mu02, mu11 = (ws * dx * dx).sum((1, 2)), (ws * dy * dy).sum((1, 2)), (ws * dx * dy).sum((1, 2))
    axis = 0.5 * np.arctan2(2 * mu11, mu20 - mu02)
    diff = np.angle(np.exp(2j * (axis - f["rotation"][sel]))) / 2  # difference mod pi, in (-pi/2, pi/2]
    assert np.abs(diff).max() < 0.1


def test_shapes_limits_are_prefixes_and_size_is_used():
    full = D.make_shapes(n_train=50, n_test=20, image_size=16, seed=0)
    cfg = DataConfig(dataset="shapes", image_size=16, train_limit=30, test_limit=5, seed=0)
    small = D.load_dataset(cfg)
    assert small.image_shape == (1, 16, 16)
    assert torch.equal(small.train_images, full.train_images[:30])
    assert torch.equal(small.test_images, full.test_images[:5])
    assert np.array_equal(small.train_factors["x"], full.train_factors["x"][:30])
    assert D.dataset_available("shapes")


# --- folders ---------------------------------------------------------------------------------------


def make_class_folder(root: Path) -> Path:
    for i in range(4):
        write_png(root / "cats" / f"c{i}.png", 40)
        write_png(root / "dogs" / f"d{i}.png", 200)
    (root / "dogs" / "note.txt").write_text("not an image: ignored, not skipped")
    (root / "empty").mkdir()
    bad = root / "dogs" / "broken.png"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes())
    return bad


def test_folder_with_classes(tmp_path):
    bad = make_class_folder(tmp_path / "pets")
    data = D.load_dataset(DataConfig(dataset=f"folder:{tmp_path / 'pets'}", image_size=12, seed=1))
    assert data.name == f"folder:{tmp_path / 'pets'}"
    assert data.class_names == ("cats", "dogs")
    assert data.skipped == (str(bad),)
    assert len(data.train_images) + len(data.test_images) == 8 and len(data.test_images) >= 1
    assert data.image_shape == (1, 12, 12)
    for images, labels in ((data.train_images, data.train_labels), (data.test_images, data.test_labels)):
        # Every image is flat grey: its value tells its class.
        assert torch.equal(images[:, 0, 0, 0] == 200, labels == 1)
        assert torch.all(images == images[:, :1, :1, :1])


def test_folder_rgb_split_and_flat_layout(tmp_path):
    for i in range(10):
        write_png(tmp_path / "flat" / f"{i}.png", (255, 0, i), mode="RGB")
    data = D.load_folder(tmp_path / "flat", image_size=8, channels=3, test_fraction=0.2, seed=0)
    assert data.class_names == ("flat",) and data.image_shape == (3, 8, 8)
    assert (len(data.train_images), len(data.test_images)) == (8, 2)
    assert data.train_images[:, 0].eq(255).all() and data.train_images[:, 1].eq(0).all()
    blues = sorted(torch.cat([data.train_images, data.test_images])[:, 2, 0, 0].tolist())
    assert blues == list(range(10))
    again = D.load_folder(tmp_path / "flat", image_size=8, channels=3, test_fraction=0.2, seed=0)
    assert torch.equal(again.test_images, data.test_images)


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="missing"):
        D.load_dataset(DataConfig(dataset=f"folder:{tmp_path / 'missing'}"))
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(DataError, match="no image files"):
        D.load_folder(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="could be read"):
        D.load_folder(tmp_path / "bad")
    assert D.dataset_available(f"folder:{tmp_path}") and not D.dataset_available(f"folder:{tmp_path / 'missing'}")


# --- data directory --------------------------------------------------------------------------------


def test_resolve_data_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv(D.ENV_VAR, str(tmp_path / "env"))
    assert D.resolve_data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert D.resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv(D.ENV_VAR)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert D.resolve_data_dir() == tmp_path / "xdg" / "vaegui" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert D.resolve_data_dir() == tmp_path / "home" / ".cache" / "vaegui" / "data"
    assert D.resolve_data_dir("~/d") == tmp_path / "home" / "d"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert D.resolve_data_dir() == tmp_path / "home" / "Library" / "Caches" / "vaegui" / "data"


def test_download_probe_asks_each_mirror_with_head_until_one_answers(monkeypatch):
    import urllib.error
    import urllib.request

    import torchvision.datasets as tv

    asked = []

    class Answer:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def urlopen(request, timeout):
        asked.append((request.get_method(), request.full_url, timeout))
        if len(asked) == 1:
            raise urllib.error.URLError("connection refused")
        return Answer()

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    assert D.download_problem("mnist", timeout=1.5) is None
    first = tv.MNIST.resources[0][0]
    assert asked == [("HEAD", m + first, 1.5) for m in tv.MNIST.mirrors[:2]]


def test_download_probe_says_why_no_server_answered(no_network):
    problem = D.download_problem("cifar10")
    assert "cifar-10-python.tar.gz" in problem and "tests never use the network" in problem
    assert no_network == ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"]
