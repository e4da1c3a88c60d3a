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

TIMEOUT = 120_000
REPO = Path(__file__).resolve().parents[2]
EPOCHS = 4
HOLD_AT = 2  # the writer waits after this epoch until the test has seen the run live
# The real `vaegui train`, paced by the test rather than by the machine's speed: after epoch
# HOLD_AT it waits (its heartbeat beating) until the gate file appears.
GATED_TRAIN = """
import sys, time
from pathlib import Path
from vaegui.core.run_writer import RunWriter
gate, hold_at = Path(sys.argv[1]), int(sys.argv[2])
end_epoch = RunWriter._end_epoch
def paced(self, p):
    record = end_epoch(self, p)
    while p.eval.epoch == hold_at and not gate.exists():
        self._beat(p.step)
        time.sleep(0.05)
    return record
RunWriter._end_epoch = paced
from vaegui.cli import main
raise SystemExit(main(sys.argv[3:]))
"""


def test_the_window_follows_a_run_another_process_writes(qtbot, settings, tmp_path):
    run, gate, script = tmp_path / "run", tmp_path / "go-on", tmp_path / "gated_train.py"
    script.write_text(GATED_TRAIN)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(gate), str(HOLD_AT), "train", "--dataset", "shapes",
         "--image-size", "16", "--hidden", "16", "--latent-dim", "2", "--train-limit", "1024",
         "--test-limit", "256",
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
        qtbot.waitUntil(lambda: len(window.loss_view.curve_data("test_neg_elbo")[0]) >= HOLD_AT, timeout=TIMEOUT)
        assert proc.poll() is None
        assert writers[0] is True and "writer alive" in window.status_bar.follow_label.text()
        gate.touch()
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
