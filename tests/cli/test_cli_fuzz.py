"""Fuzz `vaegui train` and `vaegui eval` with a few hundred hostile argument lists.

Each invocation runs in-process (vaegui.cli.main) under a deadline. Every one must end with exit
code 0 or 2, never an exception (a traceback, for a user) and never a hang; every error must be
exactly one line on stderr; a run that succeeds may print at most one line there (the skipped
files of a folder dataset). The argument lists are drawn from a fixed seed, so a failure repeats.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import time

import pytest
import torch
from PIL import Image

from vaegui.cli import main

from fuzzing import invoke  # tests/fuzzing.py

pytestmark = pytest.mark.skipif(os.name != "posix", reason="uses SIGALRM for the deadline")

INVOCATIONS = 300
DEADLINE_S = 30

# A valid tiny run; each invocation replaces one to three of these (or adds others).
BASE = {"--dataset": "shapes", "--train-limit": "64", "--test-limit": "32", "--image-size": "16",
        "--hidden": "8", "--latent-dim": "2", "--batch-size": "32", "--epochs": "1", "--device": "cpu"}

HUGE = [str(10**12), str(10**30), "9" * 5000]  # the last has more digits than int() converts


def hostile_values(places):
    """Option -> values to try: out of range, malformed, and a few valid but cheap ones."""
    return {
        "--seed": ["-1", "abc", "", "1.5", str(2**32), str(2**64), "0", "7", *HUGE],
        "--image-size": ["0", "7", "100000", "-5", "nan", "1e2", "24", "1025", *HUGE],
        "--latent-dim": ["0", "-1", "2.5", "65537", "3", *HUGE],
        "--hidden": ["0", "-3", "65537", "4", "x", *HUGE],
        "--batch-size": ["0", "-1", "1", "1000000", "1000001", *HUGE],
        "--epochs": ["0", "-3", "2", "1000001", "1e3", *HUGE],
        "--lr": ["inf", "-inf", "nan", "0", "-1", "1e-3", "1e300", "10.5", "1e-320", "abc", "0x10", "1e999"],
        "--beta": ["nan", "inf", "-1", "0", "2", "1e7", "-0.0"],
        "--sigma": ["1e-30", "0", "-1", "nan", "inf", "0.5", "1e4", "1e-3"],
        "--warmup": ["-1", str(10**13), "5", "0", "x"],
        "--iw-samples": ["-1", "100001", "3", "0", *HUGE],
        "--train-limit": ["0", "-1", str(10**13), "5", "1"],
        "--test-limit": ["0", "1", str(10**13), "x"],
        "--channels": ["0", "2", "3", "1", "x"],
        "--model": ["conv", "rnn", "", "MLP"],
        "--likelihood": ["gaussian", "gaussian-learned", "poisson"],
        "--kl": ["mc", "exact"],
        "--dataset": ["nonsense", "folder:", "folder:/nonexistent/x", f"folder:{places['images']}",
                      "mnist", "cifar10", "", "SHAPES", " shapes ", f"folder:{places['file']}",
                      f"folder:{places['long']}"],
        "--data-dir": [places["empty"], "/proc/vaegui", places["long"], places["file"], ""],
        "--out": [places["file"], "/proc/vaegui/run", places["long"], places["used"], "/sys/vaegui",
                  places["file"] + "/sub"],
        "--resume": ["/nonexistent.pt", places["garbage"], places["good"], places["nan"],
                     places["empty"], places["file"], ""],
        "--device": ["cuda", "mps", "tpu", "auto"],
    }


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    images = root / "images"
    for cls in ("a", "b"):
        (images / cls).mkdir(parents=True)
        for i in range(6):
            Image.new("L", (20, 20), 20 * i).save(images / cls / f"{i}.png")
    (images / "a" / "broken.png").write_bytes(b"not a png")
    os.mkfifo(images / "b" / "pipe.png")
    (root / "empty").mkdir()
    (root / "file").write_text("a file, not a folder")
    (root / "garbage.pt").write_bytes(os.urandom(2048))
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", *_flat(BASE), "--out", str(root / "used")]) == 0
        assert main(["train", *_flat(BASE), "--out", str(root / "good")]) == 0
    state = torch.load(root / "good" / "checkpoint.pt", weights_only=True)
    del state["sha256"]
    for v in state["model"].values():
        v.fill_(float("nan"))
    torch.save(state, root / "nan.pt")
    return {"images": str(images), "empty": str(root / "empty"), "file": str(root / "file"),
            "long": str(root / ("x" * 300)), "used": str(root / "used"), "garbage": str(root / "garbage.pt"),
            "good": str(root / "good" / "checkpoint.pt"), "nan": str(root / "nan.pt"), "root": root}


def _flat(options):
    return [part for key, value in options.items() for part in (key, value)]


def train_argv(rng, pools, places, i):
    options = dict(BASE, **{"--out": str(places["root"] / "runs" / f"r{i}")})
    for key in rng.sample(sorted(pools), rng.randint(1, 3)):
        options[key] = rng.choice(pools[key])
    argv = ["train", *_flat(options), "--offline", "--no-progress"]
    if rng.random() < 0.1:
        argv.insert(rng.randint(1, len(argv)), rng.choice(["--bogus", "stray", "--epochs", "-"]))
    return argv


def eval_argv(rng, pools, places):
    argv = ["eval", rng.choice(pools["--resume"] + [places["good"]] * 3), "--offline"]
    for key, values in (("--iw-samples", ["0", "-1", "3", "100001", *HUGE]),
                        ("--data-dir", pools["--data-dir"]), ("--device", ["cpu", "cuda", "x"])):
        if rng.random() < 0.4:
            argv += [key, rng.choice(values)]
    return argv


def test_hundreds_of_hostile_invocations_end_in_0_or_one_line_and_2(places, monkeypatch):
    monkeypatch.chdir(places["root"])  # where a run without --out would go
    rng = random.Random(9)
    pools = hostile_values(places)
    failures, codes = [], {0: 0, 2: 0}
    started = time.monotonic()
    for i in range(INVOCATIONS):
        argv = eval_argv(rng, pools, places) if rng.random() < 0.2 else train_argv(rng, pools, places, i)
        code, out, err, failure = invoke(main, argv, DEADLINE_S)
        problem = None
        if failure is not None:
            problem = f"raised {type(failure).__name__}: {str(failure)[:200]}"
        elif code not in (0, 2):
            problem = f"exit code {code}"
        elif code == 2 and err.count("\n") != 1:
            problem = f"error in {err.count(chr(10))} lines: {err[:300]!r}"
        elif code == 0 and (err.count("\n") > 1 or not out.strip()):
            problem = f"success with stderr {err[:300]!r} and stdout {out[-200:]!r}"
        if os.environ.get("VAEGUI_FUZZ_SHOW"):
            print(code, " ".join(a[:40] for a in argv[1:]), "=>", err.strip()[:160])
        if problem:
            failures.append(f"{[a[:60] for a in argv]}: {problem}")
        else:
            codes[code] += 1
    assert not failures, f"{len(failures)} of {INVOCATIONS} failed:\n" + "\n".join(failures[:15])
    # The draw exercises both outcomes, and the whole test stays quick on 2 cores.
    assert codes[0] >= 20 and codes[2] >= 150, codes
    assert time.monotonic() - started < 120
    assert torch.isfinite(torch.load(places["good"], weights_only=True)["model"]["encoder.hidden.weight"]).all()
