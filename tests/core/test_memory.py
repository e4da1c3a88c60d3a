"""Handing freed heap pages back: found on glibc, harmless everywhere."""

import platform
import sys

import numpy as np

from vaegui.core import memory


def test_release_free_memory_finds_malloc_trim_on_glibc_and_never_fails():
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert memory._trim() is not None
    big = np.ones(4_000_000)  # 32 MB, freed before the trim
    del big
    memory.release_free_memory()
    memory.release_free_memory()  # again: the library is looked up once
