"""Big generated sets are rendered once into a cache file in the user's cache folder and
memory-mapped; a damaged cache is rebuilt, old ones are removed, and without any place for a
cache the images are rendered into memory. The pages the map's encoding read are given back after
it, a training's when it ends, and the images read the same after."""

import dataclasses
import os

import numpy as np
import pytest
import torch

from core_helpers import tiny_config
from vaegui.core import dataset_loader as D
from vaegui.core import image_cache, shapes
from vaegui.core.decoder import encode_means
from vaegui.core.memory import map_images, release_mapped_pages
from vaegui.core.model import VAE
from vaegui.core.config import ModelConfig
from vaegui.core.trainer import Trainer

linux_only = pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="reads the mappings Linux lists")


@pytest.fixture(autouse=True)
def user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    return tmp_path / "user-cache" / "vaegui" / image_cache.GENERATED_DIR


@pytest.fixture
def mapped_from_small(monkeypatch):
    """Shapes of more than 20 KB are mapped (the tests' sets are tiny)."""
    monkeypatch.setattr(D, "SHAPES_MAPPED_FROM", 20_000)


@pytest.fixture
def rendered(monkeypatch):
    """How many images shapes.render has drawn."""
    count = [0]
    real = shapes.render

    def counting(factors, size):
        count[0] += len(factors["x"])
        return real(factors, size)
    monkeypatch.setattr(shapes, "render", counting)
    return count


def in_memory(n_train, n_test, size, seed=0):
    return D.make_shapes(n_train, n_test, image_size=size, seed=seed)


def same(a, b):
    for split in ("train", "test"):
        assert torch.equal(getattr(a, f"{split}_images"), getattr(b, f"{split}_images"))
        assert torch.equal(getattr(a, f"{split}_labels"), getattr(b, f"{split}_labels"))
        for k, v in getattr(a, f"{split}_factors").items():
            np.testing.assert_array_equal(v, getattr(b, f"{split}_factors")[k])


def mapped_file(tensor: torch.Tensor) -> str | None:
    """The file whose mapping holds the tensor's memory, if any (Linux lists mappings in /proc)."""
    for line in open("/proc/self/maps"):
        fields = line.split()
        lo, hi = (int(v, 16) for v in fields[0].split("-"))
        if lo <= tensor.data_ptr() < hi and len(fields) > 5:
            return fields[5]
    return None


def resident_kb(path) -> int:
    """Resident kB of this process's mappings of ``path`` (Linux's /proc/self/smaps)."""
    total, inside = 0, False
    for line in open("/proc/self/smaps"):
        first = line.split()[0]
        if "-" in first and not first.endswith(":"):  # a mapping's header line
            inside = line.rstrip().endswith(str(path))
        elif inside and first == "Rss:":
            total += int(line.split()[1])
    return total


@linux_only
def test_a_big_set_is_rendered_once_into_a_cache_and_memory_mapped(mapped_from_small, rendered, user_cache):
    data = D.make_shapes(300, 100, image_size=12, seed=3)
    assert rendered[0] >= 400
    cache = list(user_cache.glob("shapes-*.bin"))
    assert len(cache) == 1
    for images in (data.train_images, data.test_images):
        assert mapped_file(images) == str(cache[0]) and images.dtype == torch.uint8
    rendered[0] = 0
    again = D.make_shapes(300, 100, image_size=12, seed=3)
    assert rendered[0] <= 2 * 64  # only the first images of each split, for the cache's key
    same(again, data)
    # The same images as rendered into memory, below the threshold.
    D.SHAPES_MAPPED_FROM = 1 << 40
    same(data, in_memory(300, 100, 12, seed=3))
    # Training may index and copy from the mapped set like any tensor.
    assert torch.equal(data.train_images[[5, 1]], in_memory(300, 100, 12, seed=3).train_images[[5, 1]])


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_cache_is_rendered_again_not_trusted(mapped_from_small, rendered, user_cache, damage):
    first = D.make_shapes(200, 50, image_size=12)
    (path,) = user_cache.glob("shapes-*.bin")
    del first
    blob = bytearray(path.read_bytes())
    if damage == "truncate":
        blob = blob[:-100]
    else:
        blob[-100] ^= 0xFF
    path.write_bytes(bytes(blob))
    rendered[0] = 0
    data = D.make_shapes(200, 50, image_size=12)
    assert rendered[0] >= 250
    D.SHAPES_MAPPED_FROM = 1 << 40
    same(data, in_memory(200, 50, 12))


def test_a_different_seed_or_size_is_another_cache_and_only_the_newest_are_kept(mapped_from_small, user_cache):
    sets = {}
    for seed in range(image_cache.KEEP_GENERATED + 2):
        sets[seed] = D.make_shapes(200, 50, image_size=12, seed=seed)
        os.utime(max(user_cache.glob("*.bin"), key=os.path.getmtime), (1000 + seed, 1000 + seed))
    kept = list(user_cache.glob("shapes-*.bin"))
    assert len(kept) == image_cache.KEEP_GENERATED
    # The sets made before their files were removed still read their images.
    assert not torch.equal(sets[0].train_images, sets[1].train_images)
    assert int(sets[0].train_images.sum()) == int(in_memory(200, 50, 12, seed=0).train_images.sum())


def test_without_any_place_for_a_cache_the_images_are_rendered_into_memory(mapped_from_small, user_cache, monkeypatch):
    def no_room(*args, **kwargs):
        raise OSError("no space left on device")
    monkeypatch.setattr(image_cache, "_write", no_room)
    data = D.make_shapes(200, 50, image_size=12)
    assert not list(user_cache.glob("shapes-*.bin"))
    monkeypatch.setattr(D, "SHAPES_MAPPED_FROM", 1 << 40)
    same(data, in_memory(200, 50, 12))


@linux_only
def test_released_pages_leave_the_process_and_read_the_same(tmp_path):
    path = tmp_path / "images.bin"
    content = np.random.default_rng(0).integers(0, 256, 4096 * 128 + 100, dtype=np.uint8)
    path.write_bytes(b"header" + content.tobytes())
    images = map_images(path, 6, (len(content) // 100, 100))
    expected = content[: images.numel()].reshape(images.shape)
    assert int(images.sum()) == int(expected.sum())  # every page read
    assert resident_kb(path) >= 500
    half = len(images) // 2
    release_mapped_pages(images[:half])  # only the pages of those images
    assert 200 <= resident_kb(path) <= 280
    release_mapped_pages(torch.zeros(10, dtype=torch.uint8))  # not mapped: nothing to do
    release_mapped_pages(images[half:])
    assert resident_kb(path) <= 8
    np.testing.assert_array_equal(images.numpy(), expected)


@linux_only
def test_encoding_the_map_and_a_finished_training_give_back_the_pages_they_read(mapped_from_small, user_cache):
    data = D.make_shapes(600, 400, image_size=28)  # 784 kB: far above the mapping's few stray pages
    (path,) = user_cache.glob("shapes-*.bin")
    model = VAE(ModelConfig(family="mlp", latent_dim=2, hidden=8), data.image_shape)
    assert int(data.test_images.sum()) + int(data.train_images.sum()) > 0  # every page read
    assert resident_kb(path) >= 700
    encode_means(model, data.test_images, batch_size=128)
    assert 400 <= resident_kb(path) <= 500  # the training images' pages stay

    config = tiny_config(epochs=2)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, train_limit=600, test_limit=400))
    trainer = Trainer(config, data, report_interval=10.0)
    during, done = [], None
    for p in trainer.run():
        if p.done:
            done = resident_kb(path)
        elif p.eval is not None:
            during.append(resident_kb(path))
    # Kept while training runs (mapping them again at every epoch cost a few % of its time),
    # given back when it ends.
    assert min(during) >= 700 and done <= 16
def test_a_cache_that_would_not_fit_on_disk_is_not_started(mapped_from_small, user_cache, monkeypatch):
    class Usage:
        free = image_cache.DISK_MARGIN + 1000  # less than 250 images of 12 x 12 and their labels
    monkeypatch.setattr(image_cache.shutil, "disk_usage", lambda path: Usage)
    monkeypatch.setattr(image_cache, "_write", lambda *a: pytest.fail("began writing a cache that cannot fit"))
    data = D.make_shapes(200, 50, image_size=12)
    monkeypatch.setattr(D, "SHAPES_MAPPED_FROM", 1 << 40)
    same(data, in_memory(200, 50, 12))
