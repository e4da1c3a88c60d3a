"""benchmarks/gpu.py runs end to end in its CPU mode on a tiny configuration, so that the first
run on a GPU measures instead of debugging: every part (training both models, the host round
trips counted, decoding, the app with its simulated user, torchrun) ends with its figures, and
neither the evaluation with the IWAE bound nor the map's encoding brings values to the host
per batch."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_gpu_benchmark_runs_on_the_cpu(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen",
           "VAEGUI_RUNS_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu.py"), "--device", "cpu",
                           "--tiny", "--dataset", "shapes", "--epochs", "2",
                           "--app-epochs", "30"],  # long enough for the simulated user to act
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures["device"] == "cpu" and figures["all_met"] is None  # targets are for CUDA
    for family in ("mlp", "conv"):
        train = figures[family]
        assert train["epoch_s"] > 0 and train["images_per_s"] > 0 and math.isfinite(train["test_elbo"])
        assert train["data_on"] == "device"
    syncs = figures["syncs"]
    assert syncs["eval_batches"] == 2 and syncs["map_batches"] == 4
    assert syncs["eval_syncs_per_batch"] == 0 and syncs["map_syncs_per_batch"] == 0
    assert all(figures["decode"][f"{f}_decode_cpu_ms"] > 0 for f in ("mlp", "conv"))
    app = figures["app"]
    assert app["click_count"] + app["drag_count"] > 0 and app["app_images_per_s"] > 0
    assert figures["torchrun"]["torchrun_backend"] == "gloo"
    assert math.isfinite(figures["torchrun"]["torchrun_test_elbo"])
    assert set(figures["targets"]) == {"mlp_epoch_s", "conv_epoch_s", "drag_decode_median_ms",
                                       "train_syncs_per_step", "eval_syncs_per_batch",
                                       "map_syncs_per_batch"}
