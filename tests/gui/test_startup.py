"""The window opens before torch is loaded: Start waits, disabled, until the worker has loaded
the engine, then says which device training will use. A Start pressed from code meanwhile (a
scripted run) waits for it too."""

from __future__ import annotations

import os
import sys
import threading

import pytest

import torch

from vaegui.core.config import RunConfig
from vaegui.gui import training_worker
from vaegui.gui.main_window import MainWindow
from vaegui.gui.torch_threads import TRAINING_NICE, one_torch_thread_here

TIMEOUT = 60_000


def test_start_is_enabled_once_the_engine_is_loaded(qtbot, settings, monkeypatch):
    loading = threading.Event()  # holds the worker's loading until the test has looked
    real_warm_up = training_worker.TrainingWorker._warm_up

    def held_warm_up(self):
        loading.wait(TIMEOUT / 1000)
        real_warm_up(self)

    monkeypatch.setattr(training_worker.TrainingWorker, "_warm_up", held_warm_up)
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    assert not window.engine_ready
    assert not window.menu_actions.start.isEnabled() and not window.training_panel.start_button.isEnabled()
    assert window.status_bar.device_label.text() == "Loading PyTorch…"
    assert window.menu_actions.open.isEnabled()  # opening waits for the engine on the worker's thread
    with qtbot.waitSignal(window.engineReady, timeout=TIMEOUT):
        loading.set()
    assert window.menu_actions.start.isEnabled() and window.training_panel.start_button.isEnabled()
    assert window.status_bar.device_label.text() == "Device: cpu"
    assert torch.get_num_threads() == 1  # the GUI thread's own torch work never starts a pool


def test_a_start_before_the_engine_is_loaded_trains_once_it_is(qtbot, settings, monkeypatch, tiny_config):
    loading = threading.Event()
    real_warm_up = training_worker.TrainingWorker._warm_up
    monkeypatch.setattr(training_worker.TrainingWorker, "_warm_up",
                        lambda self: (loading.wait(TIMEOUT / 1000), real_warm_up(self)))
    window = MainWindow(settings, config=tiny_config(epochs=1))
    qtbot.addWidget(window)
    finished = []
    window.runFinished.connect(finished.append)
    window.start_training()  # queued behind the loading
    loading.set()
    qtbot.waitUntil(lambda: bool(finished), timeout=TIMEOUT)
    assert finished[0] is not None and finished[0].done and window.engine_ready


def test_the_worker_trains_with_its_thread_s_own_count_not_the_gui_thread_s_one(qtbot, settings):
    one_torch_thread_here()  # the GUI thread, as after start-up
    fresh = []  # what a new thread has: torch's default
    probe = threading.Thread(target=lambda: fresh.append(torch.get_num_threads()))
    probe.start()
    probe.join()
    window = MainWindow(settings, config=RunConfig())
    qtbot.addWidget(window)
    window.show()  # the engine loads once the window is painted
    qtbot.waitUntil(lambda: window.engine_ready, timeout=TIMEOUT)
    assert window.worker.torch_threads == fresh[0] and torch.get_num_threads() == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_training_runs_at_a_lower_priority_than_the_window(qtbot, settings, tiny_config):
    window = MainWindow(settings, config=tiny_config(epochs=1))
    qtbot.addWidget(window)
    finished = []
    window.runFinished.connect(finished.append)
    window.start_training()
    qtbot.waitUntil(lambda: bool(finished), timeout=TIMEOUT)
    gui = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    worker = os.getpriority(os.PRIO_PROCESS, window.worker.native_thread_id)
    assert worker == min(19, gui + TRAINING_NICE) and finished[0].done
