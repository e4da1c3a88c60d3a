"""kill -9 at random moments of `vaegui train` (most of which is spent saving): the checkpoint is
always whole, the next run removes the temporary files the killed one left, and metrics.jsonl
ends with every epoch once.

A helper process imports vaegui and torch once, then forks a real `vaegui train` process per
round (resuming the run when there is a checkpoint), SIGKILLs it after a random delay, and
checks the folder before the next round; forking saves the two seconds of importing torch each
round. With one intra-op thread nothing in the helper holds a thread across fork.
"""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="forks the runs it kills")

ROUNDS = 40

HELPER = r"""
import glob, json, os, random, signal, sys, time
import torch
torch.set_num_threads(1)
from vaegui.cli import main
import vaegui.core.dataset_loader, vaegui.core.run_folder, vaegui.core.run_writer, vaegui.core.trainer  # once, before forking
from vaegui.core.optimizer import prepare
prepare()  # torch.optim's own imports too, on this thread: no thread is running at a fork
from vaegui.core.checkpoint import load_checkpoint
from vaegui.core.errors import CheckpointError

run, rounds = sys.argv[1], int(sys.argv[2])
ckpt = os.path.join(run, "checkpoint.pt")
argv = ["train", "--dataset", "shapes", "--train-limit", "64", "--test-limit", "16",
        "--image-size", "16", "--hidden", "8", "--batch-size", "64", "--device", "cpu",
        "--offline", "--no-progress", "--out", run]
rng = random.Random(5)
report = {"broken": [], "temps_after_kill": 0, "steps": [], "codes": []}

def train(epochs):
    args = argv + ["--epochs", str(epochs)] + (["--resume", ckpt] if os.path.exists(ckpt) else [])
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1); os.dup2(fd, 2)
        os._exit(main(args))
    return pid

for i in range(rounds):
    pid = train(100000)
    if i == 0:  # let the run save once, however slow this machine is today
        deadline = time.monotonic() + 60
        while not os.path.exists(ckpt) and time.monotonic() < deadline:
            time.sleep(0.01)
    time.sleep(rng.uniform(0.01, 0.3))
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    report["temps_after_kill"] += len(glob.glob(os.path.join(run, ".*.tmp")))
    if os.path.exists(ckpt):
        try:
            report["steps"].append(load_checkpoint(ckpt)["step"])
        except CheckpointError as exc:
            report["broken"].append(str(exc))
# One more run, to the end: it resumes, cleans up and finishes.
final_epochs = (max(report["steps"]) if report["steps"] else 0) + 2
pid = train(final_epochs)
report["codes"].append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
report["final_step"] = load_checkpoint(ckpt)["step"]
report["final_epochs"] = final_epochs
report["left"] = sorted(os.path.relpath(os.path.join(d, f), run) for d, _, fs in os.walk(run) for f in fs)
print(json.dumps(report))
"""


def test_dozens_of_kills_leave_no_broken_checkpoint_and_no_temporary_file(tmp_path):
    run = tmp_path / "run"
    result = subprocess.run([sys.executable, "-c", HELPER, str(run), str(ROUNDS)],
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["broken"] == []
    assert report["codes"] == [0]
    left = report["left"]
    assert not [f for f in left if f.endswith(".tmp")], left  # no temporary files anywhere
    assert {".lock", "run.json", "checkpoint.pt", "best.pt", "metrics.jsonl", "steps.csv",
            "maps/labels.npy"} <= set(left)
    epochs = range(1, report["final_epochs"] + 1)
    assert {f"maps/epoch-{k:04d}.npy" for k in epochs} <= set(left)  # every epoch's map
    # The run moved forward across the kills and never went back.
    assert report["steps"] == sorted(report["steps"]) and len(report["steps"]) == ROUNDS
    assert report["final_step"] == report["final_epochs"]  # one step per epoch
    epochs = [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, report["final_epochs"] + 1))
    # Some kills did land in the middle of a save (they left a temporary file behind).
    assert report["temps_after_kill"] >= 1, report
