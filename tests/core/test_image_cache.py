"""Image folders are decoded once into a cache file: a second load reads the cache (and gives the
same images), a folder that changed or a damaged cache is rebuilt, and a folder that cannot be
written is left untouched (the cache goes to the user's cache folder)."""

import os
import stat

import numpy as np
import pytest
import torch
from PIL import Image

from vaegui.core import dataset_loader as D
from vaegui.core import image_cache
from vaegui.core.image_folder import read_images


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "pics"
    rng = np.random.default_rng(0)
    for k, cls in enumerate(("cats", "dogs")):
        (root / cls).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(rng.integers(0, 256, (10, 14), dtype=np.uint8), "L").save(root / cls / f"{i:02d}.png")
    (root / "dogs" / "broken.png").write_bytes(b"not a png")
    return root


@pytest.fixture
def decodes(monkeypatch):
    """How many images load_folder has decoded."""
    count = [0]
    real = D.read_images

    def counting(samples, *args):
        count[0] += len(samples)
        return real(samples, *args)
    monkeypatch.setattr(D, "read_images", counting)
    return count


@pytest.fixture(autouse=True)
def user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    return tmp_path / "user-cache"


def same(a, b):
    for split in ("train", "test"):
        assert torch.equal(getattr(a, f"{split}_images"), getattr(b, f"{split}_images"))
        assert torch.equal(getattr(a, f"{split}_labels"), getattr(b, f"{split}_labels"))
    assert a.skipped == b.skipped and a.skip_reasons == b.skip_reasons


def files_in(root):
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs + ["."])


def test_a_second_load_reads_the_cache_and_gives_the_same_images(folder, decodes):
    first = D.load_folder(folder, image_size=8, test_fraction=0.25)
    assert decodes[0] == 25 and (folder / ".vaegui-cache" / "images-8px-1ch.bin").is_file()
    second = D.load_folder(folder, image_size=8, test_fraction=0.25)
    assert decodes[0] == 25  # nothing decoded again
    same(first, second)
    assert len(second.train_images) + len(second.test_images) == 24
    assert [os.path.basename(p) for p in second.skipped] == ["broken.png"]
    # The same as decoding without a cache: the split and the order are the folder's own.
    skipped = []
    names, samples = D.list_images(folder, skipped)
    plain = image_cache.in_memory(samples, 8, 1, 0.25, 0, skipped, read_images, D._split)
    assert torch.equal(plain.train_images, second.train_images) and torch.equal(plain.test_labels, second.test_labels)
    # Other settings are another cache.
    D.load_folder(folder, image_size=12, test_fraction=0.25)
    assert decodes[0] == 50
    again = D.load_folder(folder, image_size=8, test_fraction=0.5)  # another split: rebuilt
    assert decodes[0] == 75 and len(again.test_images) == 12


def test_a_folder_that_changed_is_decoded_again(folder, decodes):
    D.load_folder(folder, image_size=8)
    Image.new("L", (5, 5), 255).save(folder / "cats" / "new.png")
    added = D.load_folder(folder, image_size=8)
    assert decodes[0] == 25 + 26 and len(added.train_images) + len(added.test_images) == 25
    # A file rewritten (same name and size, new content and time) is seen too.
    path = folder / "cats" / "new.png"
    Image.new("L", (5, 5), 0).save(path)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    changed = D.load_folder(folder, image_size=8)
    assert decodes[0] == 25 + 26 * 2
    all_images = torch.cat([changed.train_images, changed.test_images])
    assert (all_images.flatten(1) == 0).all(1).any() and not (all_images.flatten(1) == 255).all(1).any()


@pytest.mark.parametrize("damage", [
    lambda p: p.write_bytes(p.read_bytes()[:-100]),  # truncated
    lambda p: p.write_bytes(p.read_bytes()[:-50] + bytes(b ^ 0xFF for b in p.read_bytes()[-50:])),  # corrupted
    lambda p: p.write_bytes(b"garbage" * 10),
    lambda p: p.write_bytes(p.read_bytes() + b"\0"),  # too long
])
def test_a_damaged_cache_is_rebuilt_not_trusted(folder, decodes, damage):
    first = D.load_folder(folder, image_size=8)
    # A copy: the damage below rewrites the mapped file in place (a rebuild replaces it).
    first = D.ImageData(**{k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in vars(first).items()})
    cache = folder / ".vaegui-cache" / "images-8px-1ch.bin"
    damage(cache)
    rebuilt = D.load_folder(folder, image_size=8)
    assert decodes[0] == 50
    same(first, rebuilt)
    D.load_folder(folder, image_size=8)
    assert decodes[0] == 50  # and the rebuilt cache is used


def test_nothing_is_written_inside_a_folder_that_cannot_be_written(folder, decodes, user_cache, monkeypatch):
    before = files_in(folder)
    # As a read-only mount: the probe for a writable folder fails (root may write anywhere, so
    # a test run as root cannot make the folder read-only with permissions).
    monkeypatch.setattr(image_cache, "_can_write", lambda root, inside: False)
    first = D.load_folder(folder, image_size=8)
    second = D.load_folder(folder, image_size=8)
    assert decodes[0] == 25 and files_in(folder) == before
    same(first, second)
    assert list(user_cache.rglob("images-8px-1ch.bin"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders (the test above covers it)")
def test_a_read_only_folder_by_permissions(folder, decodes, user_cache):
    before = files_in(folder)
    modes = {}
    for d, _, _ in os.walk(folder):
        modes[d] = os.stat(d).st_mode
        os.chmod(d, stat.S_IRUSR | stat.S_IXUSR)
    try:
        D.load_folder(folder, image_size=8)
        D.load_folder(folder, image_size=8)
    finally:
        for d, mode in modes.items():
            os.chmod(d, mode)
    assert decodes[0] == 25 and files_in(folder) == before
    assert list(user_cache.rglob("images-8px-1ch.bin"))


def test_without_any_place_for_a_cache_the_images_are_decoded_into_memory(folder, monkeypatch, decodes):
    def no_place(*args):
        raise OSError("no space left on device")
    monkeypatch.setattr(image_cache, "cache_path", no_place)
    data = D.load_folder(folder, image_size=8)
    assert len(data.train_images) + len(data.test_images) == 24 and decodes[0] == 25


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="reads the mappings Linux lists")
def test_cached_images_are_a_memory_map_of_the_cache_file(folder):
    skipped = []
    names, samples = D.list_images(folder, skipped)
    c = image_cache.load(folder, samples, 8, 1, 0.1, 0, skipped, D.read_images, D._split)
    assert c.built and not image_cache.load(folder, samples, 8, 1, 0.1, 0, skipped, D.read_images, D._split).built
    # The tensors' memory is a mapping of the cache file (Linux lists mappings in /proc).
    maps = open("/proc/self/maps").read().splitlines()
    mapped = [tuple(int(v, 16) for v in line.split()[0].split("-")) for line in maps if line.endswith(str(c.path))]
    for t in (c.train_images, c.test_images):
        assert any(lo <= t.data_ptr() < hi for lo, hi in mapped)
