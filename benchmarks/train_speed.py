"""Training speed and peak memory: vaegui against the PyTorch VAE example's way, in one run.

Both run as whole processes (start-up, data loading, training and a test pass per epoch
included), the same model (MLP 784-400-20, Bernoulli, batch 128, Adam 1e-3) on the CPU, for the
same epochs. Runs alternate (reference, vaegui, reference, ...) so that machine noise hits both;
the figures are medians over the repeats, and the speed ratio the median of each repeat's own.

    python benchmarks/train_speed.py [--epochs 3] [--repeats 3] [--data-dir DIR] [--before TREE]

``--quality``: also train the reference configuration (10 epochs, --threads 2) and check its
test -ELBO <= 106.0 nats, and train one epoch twice with the same seed and --threads and check
that the two runs' weights are equal bit for bit: a change of the loop's arithmetic is checked
against the quality bar in the same run as its speed.

``--before TREE``: also run the vaegui of another source tree (e.g. a ``git worktree`` of the
commit before a change), in the same alternation, to measure a change before and after in one run.

Targets: vaegui images/s >= 3x the reference (issue 11; issue 2 asked 2x); vaegui peak RSS <=
the reference's (issue 2). vaegui runs with its default --threads auto. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRAIN_IMAGES = 60_000


def data_dir(explicit: str | None) -> str:
    for candidate in (explicit, os.environ.get("VAEGUI_DATA_DIR"), HERE.parent.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
            return str(candidate)
    sys.exit("MNIST not found: pass --data-dir or set VAEGUI_DATA_DIR")


def run(cmd: list[str], source: str | None = None) -> dict:
    """Run a process (with ``source`` first on its PYTHONPATH); return wall seconds, peak RSS
    (MiB) and its last stdout line as JSON."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (source, os.environ.get("PYTHONPATH")))))
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        stderr = proc.stderr.read().decode()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr}")
        out.seek(0)
        last = out.read().decode().strip().splitlines()[-1]
    # ru_maxrss is in KiB on Linux.
    return {"wall": wall, "rss_mib": usage.ru_maxrss / 1024, "result": json.loads(last)}


QUALITY_BAR = 106.0  # nats: the reference configuration's test -ELBO after 10 epochs


def check_quality(root: str) -> dict:
    """The reference configuration (MLP, L = 20, 10 epochs, seed 1) against the quality bar,
    and one epoch trained twice with the same seed and threads, compared bit for bit."""
    import torch

    base = [sys.executable, "-m", "vaegui", "train", "--dataset", "mnist", "--data-dir", root,
            "--model", "mlp", "--latent-dim", "20", "--seed", "1", "--threads", "2", "--device", "cpu",
            "--no-progress", "--offline"]
    source = str(HERE.parent)
    with tempfile.TemporaryDirectory() as tmp:
        ten = run(base + ["--epochs", "10", "--out", os.path.join(tmp, "ten")], source)["result"]
        twice = [run(base + ["--epochs", "1", "--out", os.path.join(tmp, f"one-{i}")], source)["result"]
                 for i in range(2)]
        weights = [torch.load(r["checkpoint"], weights_only=True)["model"] for r in twice]
        same = (twice[0]["test_elbo"] == twice[1]["test_elbo"]
                and all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0]))
    met = ten["test_elbo"] <= QUALITY_BAR
    print(f"  quality: reference config, 10 epochs: test -ELBO {ten['test_elbo']:.2f} nats (bar <= "
          f"{QUALITY_BAR}: {'met' if met else 'NOT met'}); one epoch twice, same seed and "
          f"--threads 2: {'bit for bit the same' if same else 'DIFFERENT'}")
    return {"quality_test_elbo_10_epochs": round(ten["test_elbo"], 3), "quality_bar": QUALITY_BAR,
            "quality_met": met, "reproducible": same}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir")
    parser.add_argument("--before", metavar="TREE", help="another vaegui source tree to run too")
    parser.add_argument("--quality", action="store_true", help="check the quality bar and reproducibility")
    args = parser.parse_args()
    root = data_dir(args.data_dir)
    reference = [sys.executable, str(HERE / "reference_vae_example.py"), root, str(args.epochs)]
    with tempfile.TemporaryDirectory() as tmp:
        vaegui = [sys.executable, "-m", "vaegui", "train", "--dataset", "mnist",
                  "--data-dir", root, "--model", "mlp", "--latent-dim", "20", "--likelihood",
                  "bernoulli", "--epochs", str(args.epochs), "--batch-size", "128", "--lr", "1e-3",
                  "--seed", "1", "--device", "cpu", "--no-progress", "--offline"]
        contestants = [("reference", reference, None), ("vaegui", vaegui, str(HERE.parent))]
        if args.before:
            contestants.append(("before", vaegui, str(Path(args.before).resolve())))
        runs: dict[str, list[dict]] = {name: [] for name, _, _ in contestants}
        for i in range(args.repeats):
            for name, cmd, source in contestants:
                if name != "reference":  # each in a fresh folder: one that holds a run is refused
                    cmd = cmd + ["--out", os.path.join(tmp, f"{name}-{i}")]
                r = run(cmd, source)
                runs[name].append(r)
                print(f"  run {i + 1} {name:9s}: {r['wall']:6.1f} s, "
                      f"{args.epochs * TRAIN_IMAGES / r['wall']:8,.0f} images/s, "
                      f"peak RSS {r['rss_mib']:6.0f} MiB, test -ELBO {r['result']['test_elbo']:.2f}",
                      flush=True)
    med = {n: {"wall": statistics.median(r["wall"] for r in rs),
               "rss": statistics.median(r["rss_mib"] for r in rs)} for n, rs in runs.items()}
    ips = {n: args.epochs * TRAIN_IMAGES / m["wall"] for n, m in med.items()}
    # The ratio is the median of each repeat's own (its two processes ran back to back, so the
    # machine's drift over the whole run mostly cancels); the ratio of the medians is printed too.
    speed_ratio = statistics.median(ref["wall"] / ours["wall"]
                                    for ref, ours in zip(runs["reference"], runs["vaegui"]))
    rss_ratio = med["vaegui"]["rss"] / med["reference"]["rss"]
    loop_ips = statistics.median(r["result"]["images_per_s"] for r in runs["vaegui"])
    print(f"\nMNIST, MLP 784-400-20, {args.epochs} epochs, CPU ({os.cpu_count()} cores), "
          f"median of {args.repeats}, whole processes:")
    print(f"  reference (PyTorch example, DataLoader+ToTensor): {ips['reference']:8,.0f} images/s, "
          f"peak RSS {med['reference']['rss']:.0f} MiB")
    print(f"  vaegui train:                                     {ips['vaegui']:8,.0f} images/s, "
          f"peak RSS {med['vaegui']['rss']:.0f} MiB  (training loop alone {loop_ips:,.0f} images/s)")
    print(f"  speed ratio vaegui/reference, median of the repeats' own: {speed_ratio:.2f}x  (target "
          f">= 3.00x: {'met' if speed_ratio >= 3 else 'NOT met'}); of the medians: "
          f"{ips['vaegui'] / ips['reference']:.2f}x")
    print(f"  peak memory ratio vaegui/reference: {rss_ratio:.2f}  (target <= 1.00: "
          f"{'met' if rss_ratio <= 1 else 'NOT met'})")
    before = {}
    if args.before:
        before_ratio = statistics.median(ref["wall"] / old["wall"]
                                         for ref, old in zip(runs["reference"], runs["before"]))
        change = statistics.median(old["wall"] / new["wall"]
                                   for old, new in zip(runs["before"], runs["vaegui"]))
        print(f"  before ({args.before}): {ips['before']:8,.0f} images/s, speed ratio "
              f"{before_ratio:.2f}x; this tree runs {change:.3f}x as fast as before "
              f"(median of the repeats' own)")
        before = {"before_images_per_s": round(ips["before"]), "before_speed_ratio":
                  round(before_ratio, 3), "speed_change_vs_before": round(change, 3)}
    quality = check_quality(root) if args.quality else {}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(json.dumps({"reference_images_per_s": round(ips["reference"]), "vaegui_images_per_s":
                      round(ips["vaegui"]), "vaegui_loop_images_per_s": round(loop_ips),
                      "speed_ratio": round(speed_ratio, 3), "rss_ratio": round(rss_ratio, 3),
                      "vaegui_threads_at_end": runs["vaegui"][-1]["result"].get("threads"),
                      "load_average_after": round(load, 2), **before, **quality}))


if __name__ == "__main__":
    main()
