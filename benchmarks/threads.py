"""Training images/s with 1 thread, 2 threads, torch's default count and ``--threads auto``, on the
machine as it is and beside a busy process that this script starts, in one run.

Each measurement is a fresh process training the reference MLP (784-400-20, Bernoulli, batch 128,
Adam 1e-3) on MNIST on the CPU; the figure is the training loop's images/s (the trainer's own
count: start-up and test passes excluded), probing included for auto. Modes alternate within each
repeat so that machine noise hits all of them; the figures are medians over the repeats, and the
ratios medians of the ratios within each repeat.

    python benchmarks/threads.py [--repeats 3] [--epochs 2] [--train-limit 30000] [--data-dir DIR]

Targets (issue 11): auto >= 0.95 x the best fixed count, quiet and busy; beside a busy process
auto >= 1.5 x torch's default. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODES = ("1", "2", "default", "auto")
# One busy Python process, as a build or a browser tab would be; it ends when this script does,
# however this script ends.
BUSY = "import os\nparent = os.getppid()\nwhile os.getppid() == parent: pass"


def data_dir(explicit: str | None) -> str:
    for candidate in (explicit, os.environ.get("VAEGUI_DATA_DIR"), HERE.parent.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
            return str(candidate)
    sys.exit("MNIST not found: pass --data-dir or set VAEGUI_DATA_DIR")


def child(mode: str, root: str, epochs: int, train_limit: int) -> None:
    """Train once in this process and print one JSON line: images/s and the last thread count."""
    import torch

    from vaegui.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from vaegui.core.data import load_dataset
    from vaegui.core.trainer import Trainer

    threads = torch.get_num_threads() if mode == "default" else mode if mode == "auto" else int(mode)
    config = RunConfig(
        data=DataConfig(dataset="mnist", data_dir=root, train_limit=train_limit, test_limit=1000),
        model=ModelConfig(family="mlp", latent_dim=20, hidden=400, likelihood="bernoulli"),
        train=TrainConfig(epochs=epochs, batch_size=128, lr=1e-3, seed=1, device="cpu", threads=threads))
    last = None
    for last in Trainer(config, load_dataset(config.data, download=False)).run():
        pass
    print(json.dumps({"images_per_s": last.images_seen / last.train_seconds, "threads": last.threads}))


def measure(mode: str, args: argparse.Namespace, root: str) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--data-dir", root, "--epochs", str(args.epochs),
           "--train-limit", str(args.train_limit)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def condition(name: str, args: argparse.Namespace, root: str) -> dict[str, list[float]]:
    """Each mode's images/s, a list in repeat order."""
    runs: dict[str, list[dict]] = {m: [] for m in MODES}
    for i in range(args.repeats):
        # Each repeat starts with another mode: the machine's speed drifts within a minute, and a
        # fixed order would hand the same drift to the same mode every time.
        for mode in MODES[i % len(MODES):] + MODES[:i % len(MODES)]:
            r = measure(mode, args, root)
            runs[mode].append(r)
            print(f"  {name:5s} run {i + 1} {mode:>7s}: {r['images_per_s']:8,.0f} images/s "
                  f"({r['threads']} thread{'s' * (r['threads'] != 1)} at the end)", flush=True)
    return {m: [r["images_per_s"] for r in rs] for m, rs in runs.items()}


def ratios(runs: dict[str, list[float]]) -> dict[str, float]:
    """auto against the best fixed count (the one with the higher median) and against torch's
    default, each the median of the repeats' own ratios: the modes of a repeat run minutes
    apart at most, so a ratio within a repeat leaves out most of the machine's drift, which a
    ratio of medians over the whole run keeps."""
    med = {m: statistics.median(v) for m, v in runs.items()}
    best = max(("1", "2"), key=med.get)

    def paired(other: str) -> float:
        return statistics.median(a / b for a, b in zip(runs["auto"], runs[other]))

    return {"auto_over_best_fixed": paired(best), "auto_over_default": paired("default")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-limit", type=int, default=30000)
    parser.add_argument("--data-dir")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    root = data_dir(args.data_dir)
    if args.child:
        return child(args.child, root, args.epochs, args.train_limit)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{os.cpu_count()} CPUs, load average {load:.2f} before starting; MNIST, MLP 784-400-20, "
          f"batch 128, {args.epochs} epochs of {args.train_limit:,} images; median of {args.repeats}; ratios are medians of each repeat's own")
    results = {"quiet": condition("quiet", args, root)}
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        results["busy"] = condition("busy", args, root)
    finally:
        busy.kill()
        busy.wait()
    summary = {}
    for name, runs in results.items():
        r = ratios(runs)
        med = {m: statistics.median(v) for m, v in runs.items()}
        summary[name] = {**{f"{m}_images_per_s": round(v) for m, v in med.items()},
                         **{k: round(v, 3) for k, v in r.items()}}
        print(f"\n{name} ({'as the machine is' if name == 'quiet' else 'beside one busy process'}): "
              + ", ".join(f"{m} {v:,.0f}" for m, v in med.items()) + " images/s")
        print(f"  auto / best fixed {r['auto_over_best_fixed']:.2f} (target >= 0.95: "
              f"{'met' if r['auto_over_best_fixed'] >= 0.95 else 'NOT met'})")
        target = " (target >= 1.50: " + ("met)" if r["auto_over_default"] >= 1.5 else "NOT met)")
        print(f"  auto / torch default {r['auto_over_default']:.2f}"
              + (target if name == "busy" else ""))
    summary["load_average_before"] = round(load, 2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
