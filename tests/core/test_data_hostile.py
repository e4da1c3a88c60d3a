"""Hostile and unusual dataset files: each is read correctly, skipped with its reason, or refused
in one error naming the file. Nothing hangs, multiplies or leaks warnings."""

from __future__ import annotations

import os
import signal
import warnings
from contextlib import contextmanager

import numpy as np
import pytest
import torchvision
from PIL import Image

from vaegui.core import dataset_loader as D
from vaegui.core.config import DataConfig
from vaegui.core.errors import DataError

from test_data import write_mnist_like, write_png


@contextmanager
def deadline(seconds):
    if not hasattr(signal, "SIGALRM"):  # no alarm here (Windows): run without a deadline
        yield
        return

    """Fail instead of hanging (a blocked open() is interrupted by the alarm)."""
    def expired(*_):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_symlink_loops_and_repeated_links_read_each_file_once(tmp_path):
    for i in range(5):
        write_png(tmp_path / "cats" / f"c{i}.png", 40 * i)
    (tmp_path / "cats" / "loop").symlink_to(tmp_path / "cats")  # cats/loop/loop/... for ever
    (tmp_path / "cats" / "up").symlink_to(tmp_path)  # and back up to the root
    (tmp_path / "cats" / "again.png").symlink_to(tmp_path / "cats" / "c0.png")
    with deadline(20):
        data = D.load_folder(tmp_path, image_size=8, test_fraction=0.2)
    assert len(data.train_images) + len(data.test_images) == 5
    assert data.class_names == ("cats",) and data.skipped == ()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_is_skipped_not_waited_on(tmp_path):
    for i in range(3):
        write_png(tmp_path / "cats" / f"c{i}.png", 100)
    os.mkfifo(tmp_path / "cats" / "x.png")
    os.mkfifo(tmp_path / "flat.png")
    with deadline(20):
        data = D.load_folder(tmp_path, image_size=8)
        flat = D.load_folder(tmp_path / "cats", image_size=8)
    assert data.skipped == (str(tmp_path / "cats" / "x.png"),)
    assert data.skip_reasons == ("not a regular file",)
    assert flat.skipped == (str(tmp_path / "cats" / "x.png"),)
    assert "x.png (not a regular file)" in data.skipped_summary()


def test_16_bit_grey_images_are_scaled_by_their_bit_depth(tmp_path):
    for i, value in enumerate((0, 16384, 32768, 65535)):
        Image.fromarray(np.full((10, 10), value, np.uint16)).save(tmp_path / f"{i}.png")
    Image.fromarray(np.full((10, 10), 128, np.uint8)).save(tmp_path / "8bit.png")
    data = D.load_folder(tmp_path, image_size=8, test_fraction=0)
    values = sorted(int(v) for v in data.train_images[:, 0, 0, 0])
    assert values == [0, 64, 128, 128, 255]
    rgb = D.load_folder(tmp_path, image_size=8, channels=3, test_fraction=0)
    assert sorted(int(v) for v in rgb.train_images[:, 1, 4, 4]) == [0, 64, 128, 128, 255]


@pytest.mark.parametrize("limit,kind", [(300, "warning"), (100, "error")])
def test_decompression_bombs_are_skipped_with_the_reason_and_no_warning(tmp_path, monkeypatch, limit, kind):
    write_png(tmp_path / "big.png", 10, size=(20, 20))  # 400 pixels
    write_png(tmp_path / "small.png", 10, size=(10, 10))
    write_png(tmp_path / "small2.png", 10, size=(10, 10))
    # Pillow warns above MAX_IMAGE_PIXELS and refuses above twice it.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = D.load_folder(tmp_path, image_size=8)
    assert not caught
    assert data.skipped == (str(tmp_path / "big.png"),)
    assert data.skip_reasons[0].startswith("too large, a possible decompression bomb")


def test_an_mnist_file_with_a_bad_magic_number_is_named(tmp_path):
    write_mnist_like(tmp_path, "KMNIST", np.random.default_rng(0))
    path = tmp_path / "KMNIST" / "raw" / "train-labels-idx1-ubyte"
    raw = bytearray(path.read_bytes())
    raw[:4] = b"\x00\x00\x08\x03"  # an image file's magic in the labels file
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError) as info:
        D.load_dataset(DataConfig(dataset="kmnist", data_dir=str(tmp_path)), download=False)
    assert str(info.value) == (f"kmnist: {path}: not an IDX labels file (its magic number is "
                               "0x00000803, expected 0x00000801); delete it to download again")


def test_mnist_files_of_another_shape_or_count_are_named(tmp_path):
    from test_data import write_idx

    write_mnist_like(tmp_path, "KMNIST", np.random.default_rng(0))
    raw = tmp_path / "KMNIST" / "raw"
    write_idx(raw / "t10k-images-idx3-ubyte", np.zeros((3, 14, 14), np.uint8))  # valid IDX, wrong size
    with pytest.raises(DataError) as info:
        D.load_dataset(DataConfig(dataset="kmnist", data_dir=str(tmp_path)), download=False)
    assert str(info.value) == (f"kmnist: {raw / 't10k-images-idx3-ubyte'}: 3 x 14 x 14 images with 3 "
                               "labels, expected N x 28 x 28 with N labels; delete the files to "
                               "download again")
    write_idx(raw / "t10k-images-idx3-ubyte", np.zeros((4, 28, 28), np.uint8))  # one image too many
    with pytest.raises(DataError, match="4 x 28 x 28 images with 3 labels"):
        D.load_dataset(DataConfig(dataset="kmnist", data_dir=str(tmp_path)), download=False)


def test_labels_outside_the_classes_are_refused(tmp_path):
    arrays = write_mnist_like(tmp_path, "KMNIST", np.random.default_rng(0))
    path = tmp_path / "KMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    raw = bytearray(path.read_bytes())
    raw[-1] = 200
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"the test labels in .* run from \d+ to 200, outside 0..9"):
        D.load_dataset(DataConfig(dataset="kmnist", data_dir=str(tmp_path)), download=False)
    assert len(arrays) == 4


def test_a_failed_download_is_one_line_and_prints_nothing(tmp_path, monkeypatch, capsys):
    def noisy_failure(self):
        print("Downloading http://example/train-images-idx3-ubyte.gz")
        print("Failed to download (trying next):")
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried http://a/, got:\n"
                           "<urlopen error no network>\nTried http://b/, got:\n<urlopen error no network>\n")

    monkeypatch.setattr(torchvision.datasets.KMNIST, "download", noisy_failure)
    with pytest.raises(DataError) as info:
        D.load_dataset(DataConfig(dataset="kmnist", data_dir=str(tmp_path)), download=True)
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "KMNIST" / "raw") in message
    assert "t10k-labels-idx1-ubyte" in message and "put the files there by hand" in message
    assert capsys.readouterr().out == ""


def test_images_that_cannot_fit_in_memory_are_refused_before_allocation(monkeypatch):
    monkeypatch.setattr(np, "empty", lambda *a, **k: pytest.fail("allocated"))
    with pytest.raises(DataError, match="would not fit in memory"):
        D.load_dataset(DataConfig(dataset="shapes", image_size=1024, train_limit=10**9))


def test_image_shape_is_known_before_loading(tmp_path):
    assert D.image_shape_of(DataConfig(dataset="mnist")) == (1, 28, 28)
    assert D.image_shape_of(DataConfig(dataset="cifar10")) == (3, 32, 32)
    assert D.image_shape_of(DataConfig(dataset="shapes", image_size=16)) == (1, 16, 16)
    assert D.image_shape_of(DataConfig(dataset=f"folder:{tmp_path}", channels=3, image_size=20)) == (3, 20, 20)
    assert D.load_dataset(DataConfig(dataset="shapes", image_size=16, train_limit=4,
                                     test_limit=2)).image_shape == (1, 16, 16)


# An EPS file (PostScript that would write a file if run) named like an image.
EPS_PAYLOAD = b"""%!PS-Adobe-3.0 EPSF-3.0
%%BoundingBox: 0 0 10 10
(/tmp/vaegui-eps-ran) (w) file closefile
showpage
"""


def test_an_eps_file_named_png_is_skipped_and_no_program_runs(tmp_path, monkeypatch):
    import subprocess

    def refuse(*args, **kwargs):
        raise AssertionError(f"an external program was started: {args[:1]}")

    for name in ("Popen", "run", "call", "check_call", "check_output"):
        monkeypatch.setattr(subprocess, name, refuse)
    for i in range(3):
        write_png(tmp_path / "cats" / f"c{i}.png", 100)
    (tmp_path / "cats" / "payload.png").write_bytes(EPS_PAYLOAD)
    (tmp_path / "cats" / "payload2.jpg").write_bytes(b"%PDF-1.4\n%" + b"x" * 100)
    data = D.load_folder(tmp_path, image_size=8, test_fraction=0)
    assert len(data.train_images) == 3
    assert sorted(data.skipped) == [str(tmp_path / "cats" / "payload.png"), str(tmp_path / "cats" / "payload2.jpg")]
    assert all(r.startswith("cannot identify image file as one of the formats vaegui reads (PNG") for r in data.skip_reasons)
    assert "payload.png" in data.skipped_summary()


def test_a_link_to_the_root_of_the_file_system_is_not_followed(tmp_path):
    for i in range(3):
        write_png(tmp_path / "cats" / f"c{i}.png", 100)
    (tmp_path / "everything").symlink_to("/")  # a class folder
    (tmp_path / "cats" / "deeper").symlink_to("/")  # and a folder inside one
    (tmp_path / "cats" / "inside").symlink_to(tmp_path / "cats")  # inside the dataset: once
    with deadline(20):
        data = D.load_folder(tmp_path, image_size=8, test_fraction=0)
    assert data.class_names == ("cats",) and len(data.train_images) == 3
    assert sorted(data.skipped) == sorted([str(tmp_path / "everything"), str(tmp_path / "cats" / "deeper")])
    assert all("outside the dataset folder" in r for r in data.skip_reasons)


def test_a_walk_over_its_budget_is_one_clear_error(tmp_path, monkeypatch):
    from vaegui.core import image_folder

    for i in range(5):
        write_png(tmp_path / "cats" / f"c{i}.png", 100)
    monkeypatch.setattr(image_folder, "MAX_WALK_ENTRIES", 3)
    with pytest.raises(DataError, match=r"more than 3 files and folders in it"):
        D.load_folder(tmp_path, image_size=8)
    monkeypatch.setattr(image_folder, "MAX_WALK_ENTRIES", 10**6)
    monkeypatch.setattr(image_folder, "MAX_WALK_SECONDS", -1.0)
    with pytest.raises(DataError, match=r"still listing its files after"):
        D.load_folder(tmp_path, image_size=8)


def test_a_palette_png_with_transparency_gives_no_warning(tmp_path):
    im = Image.new("P", (10, 10), 1)
    im.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    for i in range(2):
        im.save(tmp_path / f"p{i}.png", transparency=b"\x00\xff" + b"\xff" * 254)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = D.load_folder(tmp_path, image_size=8, test_fraction=0)
    assert len(data.train_images) == 2 and data.skipped == ()
