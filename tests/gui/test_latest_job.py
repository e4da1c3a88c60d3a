"""LatestJob: work runs off the GUI thread, only the newest request's result is delivered, a
failure is reported as a message, and no thread outlives its work."""

import threading

from vaegui.gui.explorer.latest_job import LatestJob


def test_only_the_newest_result_comes_and_on_the_gui_thread(qtbot):
    job = LatestJob("test-job")
    gate = threading.Event()
    results, threads = [], []
    job.done.connect(lambda r: (results.append(r), threads.append(threading.current_thread())))

    def first():
        gate.wait(5)
        return "first"
    job.submit(first)
    job.submit(lambda: "second")  # waits behind the running one and is then overtaken
    job.submit(lambda: threading.current_thread().name)
    gate.set()
    qtbot.waitUntil(lambda: len(results) > 0, timeout=5000)
    job.wait()
    qtbot.waitUntil(lambda: not job.busy(), timeout=5000)
    assert results == ["test-job"]  # ran on the worker thread, delivered on this one
    assert threads == [threading.main_thread()]


def test_a_failure_is_a_message_and_a_cancelled_result_never_comes(qtbot):
    job = LatestJob("test-job")
    errors, results = [], []
    job.failed.connect(errors.append)
    job.done.connect(results.append)
    with qtbot.waitSignal(job.failed, timeout=5000):
        job.submit(lambda: 1 / 0)
    assert errors == ["ZeroDivisionError: division by zero"]
    gate = threading.Event()
    job.submit(lambda: gate.wait(5) and "late")
    job.cancel()
    gate.set()
    job.wait()
    with qtbot.waitSignal(job.done, timeout=5000):
        job.submit(lambda: "after")
    assert results == ["after"]
