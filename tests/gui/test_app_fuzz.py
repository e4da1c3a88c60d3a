"""Fuzz the app's command line (`python main.py ...`) with a few hundred hostile argument lists.

Everything the app does before its window opens runs for real: argument parsing, the dataset and
screenshot checks, and the checkpoint's full validation. Where an invocation would open the
window, the fuzz stops it there (the scripted runs that go on past that point, with hostile
checkpoints and data, are tested in test_app_reliability.py). Every invocation must end with
exit code 0 (it would open the window) or 2 with exactly one line on stderr: no traceback, no
hang. The draw comes from a fixed seed, so a failure repeats.
"""

from __future__ import annotations

import contextlib
import io
import os
import random

import pytest
import torch

from vaegui.cli import main as cli_main
from vaegui.gui import app

from fuzzing import invoke  # tests/fuzzing.py

pytestmark = pytest.mark.skipif(os.name != "posix", reason="uses SIGALRM for the deadline")

INVOCATIONS = 250
DEADLINE_S = 30
HUGE = [str(10**12), str(10**30), "9" * 5000]


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    root = tmp_path_factory.mktemp("appfuzz")
    (root / "folder").mkdir()
    (root / "file").write_text("not a checkpoint")
    (root / "garbage.pt").write_bytes(os.urandom(4096))
    tiny = ["--dataset", "shapes", "--train-limit", "64", "--test-limit", "32", "--image-size", "16",
            "--hidden", "8", "--epochs", "1", "--device", "cpu", "--no-progress"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli_main(["train", *tiny, "--out", str(root / "good")]) == 0
    state = torch.load(root / "good" / "checkpoint.pt", weights_only=True)
    crafted = {"string_config": {**state, "config": "lol"}, "string_step": {**state, "step": "12"},
               "bad_history": {**state, "history": [1, 2, 3]}, "int_classes": {**state, "dataset": {
                   **state["dataset"], "class_names": 7}}}
    nan = {**state, "model": {k: torch.full_like(v, float("nan")) for k, v in state["model"].items()}}
    for name, content in {**crafted, "nan": nan}.items():
        content = dict(content)
        content.pop("sha256", None)
        torch.save(content, root / f"{name}.pt")
    flipped = bytearray((root / "good" / "checkpoint.pt").read_bytes())
    middle = len(flipped) // 2
    flipped[middle:middle + 64] = bytes(b ^ 0xFF for b in flipped[middle:middle + 64])
    (root / "flipped.pt").write_bytes(bytes(flipped))
    return root


def pools(root):
    checkpoints = [str(root / f"{n}.pt") for n in ("garbage", "string_config", "string_step",
                                                    "bad_history", "int_classes", "nan", "flipped")]
    return {
        "--dataset": ["mnist", "shapes", "nonsense", "", "folder:", "folder:/nonexistent/x",
                      f"folder:{root / 'folder'}", f"folder:{root / 'file'}", "CIFAR10", " kmnist "],
        "--data-dir": [str(root / "folder"), "/proc/vaegui", str(root / ("x" * 300)), ""],
        "--checkpoint": [*checkpoints, str(root / "good" / "checkpoint.pt"), str(root / "good"),
                         "/nonexistent.pt", "", " ", str(root / "file"), str(root / "folder")],
        "--epochs": ["0", "-1", "1", "2", "x", "1.5", "", *HUGE],
        "--screenshot": [str(root / "out.png"), "", str(root / "folder"), "/nonexistent/dir/x.png",
                         "/proc/x.png", str(root / ("y" * 300) / "x.png")],
    }


def test_hundreds_of_hostile_app_invocations_end_in_one_line_or_the_window(places, monkeypatch):
    opened = []
    monkeypatch.setattr(app, "_run_app", lambda args: opened.append(args) or 0)  # the window: not here
    rng, choices = random.Random(11), pools(places)
    failures, codes = [], {0: 0, 2: 0}
    for _ in range(INVOCATIONS):
        argv = []
        for key in rng.sample(sorted(choices), rng.randint(1, 4)):
            argv += [key, rng.choice(choices[key])]
        if rng.random() < 0.3:
            argv.append("--autostart")
        if rng.random() < 0.1:
            argv.insert(rng.randint(0, len(argv)), rng.choice(["--bogus", "stray", "--epochs", "-"]))
        code, _, err, failure = invoke(app.main, argv, DEADLINE_S)
        problem = None
        if failure is not None:
            problem = f"raised {type(failure).__name__}: {str(failure)[:200]}"
        elif code not in (0, 2):
            problem = f"exit code {code}"
        elif code == 2 and (err.count("\n") != 1 or not err.startswith("vaegui")):
            problem = f"error in {err.count(chr(10))} lines: {err[:300]!r}"
        elif code == 0 and err:
            problem = f"would open the window, but said {err[:300]!r}"
        if problem:
            failures.append(f"{[a[:60] for a in argv]}: {problem}")
        else:
            codes[code] += 1
    assert not failures, f"{len(failures)} of {INVOCATIONS} failed:\n" + "\n".join(failures[:15])
    assert codes[0] >= 20 and codes[2] >= 100, codes  # both outcomes are exercised
    assert len(opened) == codes[0]
