"""DecodeWorker: only the newest request of a channel runs and arrives; new weights re-run the
last request of every channel; a cancelled channel gets nothing."""

import threading

import numpy as np
import pytest
import torch

from vaegui.core.config import ModelConfig
from vaegui.core.latent import Snapshot
from vaegui.core.model import VAE, model_state
from vaegui.gui.explorer.decode_worker import DecodeFailure, DecodeWorker


def snapshot(seed: int) -> Snapshot:
    torch.manual_seed(seed)
    config = ModelConfig(latent_dim=2, hidden=8)
    return Snapshot(config, (1, 6, 6), model_state(VAE(config, (1, 6, 6))), step=seed)


@pytest.fixture
def worker():
    w = DecodeWorker()
    yield w
    w.shutdown()


def blocker(worker: DecodeWorker) -> threading.Event:
    """Occupy the decoding thread until the returned event is set."""
    release, running = threading.Event(), threading.Event()
    worker.register("block", lambda result: None, priority=0)

    def job(decoder):
        running.set()
        release.wait(10)
    worker.request("block", job)
    assert running.wait(10)
    return release


def test_only_the_newest_waiting_request_runs(worker, qtbot):
    results = []
    worker.register("c", results.append)
    worker.set_snapshot(snapshot(0))
    release = blocker(worker)
    ran = []
    for k in range(10):
        worker.request("c", lambda d, k=k: ran.append(k) or k)
    release.set()
    qtbot.waitUntil(lambda: results == [9], timeout=5000)
    qtbot.waitUntil(worker.idle, timeout=5000)
    assert ran == [9] and worker.dropped == 9


def test_a_result_overtaken_while_running_is_not_delivered(worker, qtbot):
    results = []
    worker.register("c", results.append)
    worker.set_snapshot(snapshot(0))
    started, release = threading.Event(), threading.Event()

    def slow(decoder):
        started.set()
        release.wait(10)
        return "old"
    worker.request("c", slow)
    assert started.wait(10)
    worker.request("c", lambda d: "new")
    release.set()
    qtbot.waitUntil(lambda: results == ["new"], timeout=5000)
    qtbot.wait(50)  # the old result has long arrived in the GUI thread by now; it was dropped
    assert results == ["new"]


def test_new_weights_rerun_the_last_request_of_every_channel(worker, qtbot):
    points, strips = [], []
    worker.register("point", points.append, priority=0)
    worker.register("strip", strips.append, priority=2)
    z = np.array([[0.5, -1.0]], np.float32)
    worker.request("point", lambda d: d.decode(z)[0])
    worker.request("strip", lambda d: d.decode(np.zeros((3, 2), np.float32)))
    worker.set_snapshot(snapshot(0))  # requests wait for weights
    qtbot.waitUntil(lambda: len(points) == 1 and len(strips) == 1, timeout=5000)
    worker.set_snapshot(snapshot(1))
    qtbot.waitUntil(lambda: len(points) == 2 and len(strips) == 2, timeout=5000)
    assert not np.array_equal(points[0], points[1])
    torch.manual_seed(1)
    expected = torch.sigmoid(VAE(ModelConfig(latent_dim=2, hidden=8), (1, 6, 6)).decode(torch.from_numpy(z)))
    np.testing.assert_allclose(points[1], expected.detach().numpy()[0], atol=1e-6)


def test_cancelled_channels_get_nothing_and_failures_arrive_as_values(worker, qtbot):
    got, failures = [], []
    worker.register("c", got.append)
    worker.register("bad", failures.append)
    worker.set_snapshot(snapshot(0))
    release = blocker(worker)
    worker.request("c", lambda d: "never")
    worker.cancel("c")
    worker.request("bad", lambda d: 1 / 0)
    release.set()
    qtbot.waitUntil(lambda: len(failures) == 1, timeout=5000)
    assert isinstance(failures[0], DecodeFailure) and "ZeroDivisionError" in failures[0].message
    assert got == []


def test_weights_of_another_model_drop_the_old_requests(worker, qtbot):
    got = []
    worker.register("point", got.append)
    worker.set_snapshot(snapshot(0))
    worker.request("point", lambda d: d.decode(np.zeros((1, 2), np.float32)))
    qtbot.waitUntil(lambda: len(got) == 1, timeout=5000)
    config = ModelConfig(latent_dim=3, hidden=8)
    other = Snapshot(config, (1, 6, 6), model_state(VAE(config, (1, 6, 6))), step=0)
    worker.set_snapshot(other)  # a 2-D request would fail on a 3-D decoder: it is dropped
    qtbot.waitUntil(worker.idle, timeout=5000)
    qtbot.wait(50)
    assert len(got) == 1


def test_no_weights_then_another_model_drop_the_old_requests(worker, qtbot):
    """The explorer clears (no weights) before a new model's weights come: the old model's
    requests must not run on the new model either."""
    got = []
    worker.register("point", got.append)
    worker.set_snapshot(snapshot(0))
    worker.request("point", lambda d: d.decode(np.zeros((1, 2), np.float32)))
    qtbot.waitUntil(lambda: len(got) == 1, timeout=5000)
    config = ModelConfig(latent_dim=3, hidden=8)
    worker.set_snapshot(None)
    worker.set_snapshot(Snapshot(config, (1, 6, 6), model_state(VAE(config, (1, 6, 6))), step=0))
    qtbot.waitUntil(worker.idle, timeout=5000)  # an old request kept would run now, and fail
    worker.request("point", lambda d: d.decode(np.zeros((1, 3), np.float32)))  # the view asks anew
    qtbot.waitUntil(lambda: len(got) == 2, timeout=5000)  # after anything queued before it
    assert worker.failures == [] and not isinstance(got[1], DecodeFailure) and worker.executed == 2


def chunked(name: str, log: list, gates: list[threading.Event], z: np.ndarray | None = None):
    """A job of len(gates) chunks (as views write big ones), each waiting for its gate; it logs
    (name, chunk) as each chunk starts and returns name, or the images of z decoded chunk by chunk."""
    def job(decoder):
        parts = []
        for k, gate in enumerate(gates):
            log.append((name, k))
            assert gate.wait(10)
            if z is not None:
                parts.append(decoder.decode(z[k:k + 1]))
            if k < len(gates) - 1:
                yield
        return name if z is None else np.concatenate(parts)
    return job


def test_a_point_request_runs_between_the_chunks_of_a_big_job(worker, qtbot):
    log, got = [], []
    worker.register("point", got.append, priority=0)
    worker.register("grid", got.append, priority=4)
    worker.set_snapshot(snapshot(0))
    gates = [threading.Event() for _ in range(3)]
    worker.request("grid", chunked("grid", log, gates))
    qtbot.waitUntil(lambda: log == [("grid", 0)], timeout=5000)
    worker.request("point", lambda d: log.append("point") or "point")  # a click while the grid decodes
    gates[0].set()
    qtbot.waitUntil(lambda: got == ["point"], timeout=5000)  # before the grid's second chunk ends
    assert not gates[1].is_set()
    gates[1].set()
    gates[2].set()
    qtbot.waitUntil(lambda: got == ["point", "grid"], timeout=5000)
    assert log == [("grid", 0), "point", ("grid", 1), ("grid", 2)]
    assert worker.idle()


def test_a_newer_request_drops_the_rest_of_a_chunked_job(worker, qtbot):
    log, got = [], []
    worker.register("grid", got.append)
    worker.set_snapshot(snapshot(0))
    gates = [threading.Event() for _ in range(3)]
    worker.request("grid", chunked("old", log, gates))
    qtbot.waitUntil(lambda: log == [("old", 0)], timeout=5000)
    new_gates = [threading.Event() for _ in range(2)]
    worker.request("grid", chunked("new", log, new_gates))
    gates[0].set()
    qtbot.waitUntil(lambda: ("new", 0) in log, timeout=5000)
    open_gate = threading.Event()
    open_gate.set()
    worker.request("grid", chunked("newest", log, [open_gate, open_gate]))
    new_gates[0].set()
    qtbot.waitUntil(lambda: got == ["newest"], timeout=5000)
    assert ("old", 1) not in log and ("new", 1) not in log  # the replaced jobs went no further
    qtbot.waitUntil(worker.idle, timeout=5000)


def test_new_weights_restart_a_chunked_job_so_no_image_mixes_two_snapshots(worker, qtbot):
    log, got = [], []
    worker.register("grid", got.append)
    worker.set_snapshot(snapshot(0))
    gate = threading.Event()
    z = np.array([[0.5, -1.0], [-0.3, 0.8]], np.float32)
    worker.request("grid", chunked("grid", log, [gate, gate], z))
    qtbot.waitUntil(lambda: log == [("grid", 0)], timeout=5000)
    worker.set_snapshot(snapshot(1))  # arrives while the first chunk runs on snapshot 0
    gate.set()
    qtbot.waitUntil(lambda: len(got) == 1, timeout=5000)
    assert log == [("grid", 0), ("grid", 0), ("grid", 1)]  # started again from its first chunk
    torch.manual_seed(1)
    expected = torch.sigmoid(VAE(ModelConfig(latent_dim=2, hidden=8), (1, 6, 6)).decode(torch.from_numpy(z)))
    np.testing.assert_allclose(got[0], expected.detach().numpy(), atol=1e-6)
