"""Following a run folder that another process writes: a real `vaegui train` subprocess; the
window's curves, KL view and map grow with its epochs, and it says whether the writer lives."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from vaegui.core.run_reader import RunReader
from vaegui.gui.main_window import MainWindow

TIMEOUT = 180_000
REPO = Path(__file__).resolve().parents[2]
EPOCHS = 30


def test_the_window_follows_a_run_another_process_writes(qtbot, settings, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vaegui.cli", "train", "--dataset", "shapes", "--image-size", "16",
         "--hidden", "16", "--latent-dim", "2", "--train-limit", "20000", "--test-limit", "256",
         "--batch-size", "64", "--epochs", str(EPOCHS), "--device", "cpu", "--no-progress",
         "--out", str(run)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    try:
        window = MainWindow(settings)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitUntil(lambda: (run / "run.json").exists(), timeout=TIMEOUT)
        writers, maps = [], []
        window.follower.writerChanged.connect(writers.append)
        window.mapUpdated.connect(lambda: maps.append(window.explorer.encoded.step))
        window.follow_run(str(run))
        assert not window.menu_actions.start.isEnabled()  # no training while following
        # While it trains: curves and epochs arrive, and the writer is alive.
        qtbot.waitUntil(lambda: len(window.loss_view.curve_data("test_neg_elbo")[0]) >= 2, timeout=TIMEOUT)
        assert proc.poll() is None, "the run ended before the window saw it grow: make it longer"
        assert writers[0] is True and "writer alive" in window.follow_label.text()
        with qtbot.waitSignal(window.followFinished, timeout=TIMEOUT):
            pass  # the run ends; the follower sees the writer go and stops
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == 0, proc.stderr.read()
    reader = RunReader(run)
    metrics = reader.metrics()
    assert len(metrics) == EPOCHS and writers[-1] is False
    # Everything the folder holds reached the panels: every step, every epoch, the last map.
    steps, _, _ = reader.steps()
    x, _ = window.loss_view.curve_data("neg_elbo")
    assert len(x) == len(steps)
    assert len(window.loss_view.curve_data("test_neg_elbo")[0]) == EPOCHS
    np.testing.assert_allclose(window.kl_view.bar_heights(), metrics[-1]["kl_per_dim"])
    assert maps and maps[-1] == metrics[-1]["step"]
    np.testing.assert_array_equal(window.explorer.encoded.latents, reader.map_means(EPOCHS))
    assert window.explorer.snapshot.step == metrics[-1]["step"]
    assert window.menu_actions.start.isEnabled()
