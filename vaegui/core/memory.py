"""Giving the C heap's free pages back to the system after big temporary arrays.

glibc's malloc keeps what a thread frees in that thread's arena, and after a big block is freed
it raises its threshold for mapping blocks of their own, so the next temporaries of a million
points come from the heap and stay counted in the process's memory after they are freed. A
million-point map's density images, computed on a worker at each pause of a pan, left 77 MB of
such free pages within a few dozen pans; ``malloc_trim`` hands them back. Elsewhere (macOS,
Windows, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import functools


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
