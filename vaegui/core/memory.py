"""Giving memory back to the system: the C heap's free pages after big temporary arrays, and the
pages of memory-mapped image files once a pass over them is done.

glibc's malloc keeps what a thread frees in that thread's arena, and after a big block is freed
it raises its threshold for mapping blocks of their own, so the next temporaries of a million
points come from the heap and stay counted in the process's memory after they are freed. A
million-point map's density images, computed on a worker at each pause of a pan, left 77 MB of
such free pages within a few dozen pans; ``malloc_trim`` hands them back. Elsewhere (macOS,
Windows, musl) it does nothing.

Image sets too big to keep in memory (a folder's cache, a million generated shapes) are
memory-mapped files (:func:`map_images`). Every page a pass touches stays mapped into the process
afterwards and counts in its resident memory, 784 MB for a million 28 x 28 images, although the
kernel keeps it in its page cache either way. :func:`release_mapped_pages` unmaps a tensor's
pages (``madvise(MADV_DONTNEED)``): the next read maps them again from the page cache. Encoding
the map gives its images' pages back at once, training its split's when it ends, not at every
epoch, which would then fault every page in again.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import os
import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@functools.cache
def _trim():
    # The symbols the process has loaded already (libc's among them): no library search, which
    # in ctypes.util runs ldconfig in a subprocess, a fork of the whole GUI process.
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)
    except OSError:
        return None


def release_free_memory() -> None:
    """Return free heap pages to the system (glibc's ``malloc_trim(0)``); a no-op elsewhere."""
    trim = _trim()
    if trim is not None:
        trim(0)


_mapped: weakref.WeakKeyDictionary[mmap.mmap, int] = weakref.WeakKeyDictionary()  # -> its address
_mapped_lock = threading.Lock()


def map_images(path: str | os.PathLike, offset: int, shape: tuple[int, ...]) -> torch.Tensor:
    """The uint8 array of ``shape`` at byte ``offset`` of ``path``, memory-mapped copy-on-write
    (a writable array for torch, whose writes never reach the file), its pages released by
    :func:`release_mapped_pages`."""
    import numpy as np
    import torch  # here: the window imports this module before it needs torch

    with open(path, "rb") as f:
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    whole = np.frombuffer(mapping, np.uint8)  # the tensor keeps it, and it the mapping
    with _mapped_lock:
        _mapped[mapping] = whole.ctypes.data
    count = int(np.prod(shape))
    return torch.from_numpy(whole[offset:offset + count].reshape(shape))


def release_mapped_pages(images: torch.Tensor) -> None:
    """Unmap the pages ``images`` spans where it views a file :func:`map_images` mapped (a
    no-op for other tensors); the data stays in the kernel's page cache, and the next read maps
    it again. Safe while other threads read them (they fault the pages back in). A write to a
    mapped image would be undone: images are only read."""
    advice = getattr(mmap, "MADV_DONTNEED", None)
    if advice is None or images.numel() == 0:  # Windows: no madvise (it trims working sets itself)
        return
    extent = 1 + sum((n - 1) * step for n, step in zip(images.shape, images.stride()))
    lo = images.data_ptr()
    hi = lo + extent * images.element_size()
    with _mapped_lock:
        mappings = list(_mapped.items())
    for mapping, base in mappings:
        start, stop = max(lo, base) - base, min(hi, base + len(mapping)) - base
        if start >= stop:
            continue
        start -= start % mmap.PAGESIZE  # madvise starts on a page; the neighbour's share refaults
        try:
            mapping.madvise(advice, start, stop - start)
        except (OSError, ValueError):  # closed meanwhile
            pass
