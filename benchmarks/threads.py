"""Training images/s with 1 thread, 2 threads, torch's default count and ``--threads auto``, on the
machine as it is and beside a busy process that this script starts, in one run.

Each condition runs in one process, which loads MNIST once and then trains the reference MLP
(784-400-20, Bernoulli, batch 128, Adam 1e-3) on the CPU again and again, a fresh trainer for
every run (so auto starts from scratch each time, its probes included), in rounds: each round
runs every mode once, in an order shuffled anew (with a fixed seed). The figure is the training
loop's images/s (the trainer's own count: test passes excluded). Runs of one process follow each
other within a second, where fresh processes had 2-3 s of start-up between them: this machine's
speed drifts from one second to the next, and pairs taken closer together share more of it. The
figures are medians over the rounds, the ratios medians of the ratios within each round.

    python benchmarks/threads.py [--repeats 7] [--epochs 2] [--train-limit 30000] [--data-dir DIR]

Targets (issue 11): auto >= 0.95 x the best fixed count, quiet and busy; beside a busy process
auto >= 1.5 x torch's default. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
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


def child(root: str, epochs: int, train_limit: int, repeats: int) -> None:
    """Train every mode once a round, ``repeats`` rounds; one JSON line a run."""
    import torch

    from vaegui.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from vaegui.core.dataset_loader import load_dataset
    from vaegui.core.trainer import Trainer

    default = torch.get_num_threads()  # before anything sets a count
    data_config = DataConfig(dataset="mnist", data_dir=root, train_limit=train_limit, test_limit=1000)
    data = load_dataset(data_config, download=False)
    order = random.Random(1)
    for i in range(repeats):
        for mode in order.sample(MODES, len(MODES)):
            threads = default if mode == "default" else mode if mode == "auto" else int(mode)
            config = RunConfig(
                data=data_config,
                model=ModelConfig(family="mlp", latent_dim=20, hidden=400, likelihood="bernoulli"),
                train=TrainConfig(epochs=epochs, batch_size=128, lr=1e-3, seed=1, device="cpu",
                                  threads=threads))
            last = None
            for last in Trainer(config, data).run():
                pass
            print(json.dumps({"round": i, "mode": mode, "threads": last.threads,
                              "images_per_s": last.images_seen / last.train_seconds}), flush=True)


def condition(name: str, args: argparse.Namespace, root: str) -> dict[str, list[float]]:
    """Each mode's images/s, a list in round order."""
    cmd = [sys.executable, __file__, "--child", "--data-dir", root, "--epochs", str(args.epochs),
           "--train-limit", str(args.train_limit), "--repeats", str(args.repeats)]
    runs: dict[str, list[float]] = {m: [] for m in MODES}
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        for line in proc.stdout:
            r = json.loads(line)
            runs[r["mode"]].append(r["images_per_s"])
            print(f"  {name:5s} round {r['round'] + 1} {r['mode']:>7s}: {r['images_per_s']:8,.0f} "
                  f"images/s ({r['threads']} thread{'s' * (r['threads'] != 1)} at the end)", flush=True)
        stderr = proc.stderr.read()
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{stderr}")
    return runs


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
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-limit", type=int, default=30000)
    parser.add_argument("--data-dir")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    root = data_dir(args.data_dir)
    if args.child:
        return child(root, args.epochs, args.train_limit, args.repeats)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{os.cpu_count()} CPUs, load average {load:.2f} before starting; MNIST, MLP 784-400-20, "
          f"batch 128, {args.epochs} epochs of {args.train_limit:,} images; median of {args.repeats} "
          "rounds; ratios are medians of each round's own")
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
