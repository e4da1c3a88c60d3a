"""Shared test set-up: Qt offscreen, and where the real MNIST lives (never downloaded in tests)."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """$VAEGUI_DATA_DIR when it holds MNIST, else ../shared/data beside the repository."""
    for candidate in (os.environ.get("VAEGUI_DATA_DIR"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
            return Path(candidate)
    return None


@pytest.fixture
def mnist_dir() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("real MNIST not found: set VAEGUI_DATA_DIR or put it in ../shared/data")
    return path


@pytest.fixture(autouse=True)
def one_cpu_for_auto_threads(monkeypatch):
    """The thread governor sees one CPU, so "auto" runs in-process at one fixed count: the thread
    count changes the last bits of some matrix products, and tests compare runs bit for bit.
    tests/core/test_thread_governor.py drives the governor itself with explicit counts."""
    from vaegui.core import thread_governor as threads

    monkeypatch.setattr(threads, "available_cpus", lambda: 1)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every test runs offline: a download or a reachability probe fails as on a machine without
    a network (the list records what was attempted)."""
    import urllib.error
    import urllib.request

    attempts = []

    def offline(request, *args, **kwargs):
        attempts.append(getattr(request, "full_url", request))
        raise urllib.error.URLError("tests never use the network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    return attempts
