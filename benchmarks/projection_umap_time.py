"""How long the map's first UMAP layout takes, against umap-learn's defaults, in fresh processes
(issue 21: 10,000 points <= 20 s including the compile, <= 10 s after; 70,000 points <= 90 s).

Each round starts one process for the app's fit (core.projection: exact neighbours, umap-learn's
compiles kept in numba's disk cache, 200 epochs from a PCA start) and one for umap-learn's
defaults (pynndescent's neighbours, a spectral start, 500 epochs up to 10,000 points), in
alternating order; each times its import, its first fit and a second one (the first layout the
user waits for is the import and the first fit). With --cold, one
more pair runs first with an empty numba cache (NUMBA_CACHE_DIR): the compile a new install
pays once. The app's layout time ends when its learned inverse starts (its own line: the map
shows when both are done). Both layouts' 10-NN label accuracy and trustworthiness are printed
(targets >= 0.93, >= 0.95). The machine is shared: the load average is printed beside each
process, and the ratios are taken per round.

With --all-images the points are the means of all the run's images, train and test (70,000 for
MNIST), encoded by the run's latest model; each process then fits once (the target is the first
layout) and the trustworthiness is estimated on a fixed sample of TRUST_SAMPLE points, their
ranks taken among all. --timeout stops a process that runs longer (umap-learn's defaults print
their progress then, to show what they reached).

    python benchmarks/projection_umap_time.py --run RUN [--rounds 2] [--limit 10000] [--cold]
    python benchmarks/projection_umap_time.py --run RUN --all-images [--rounds 2] [--timeout 600]
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

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# Points whose trustworthiness is summed above this many (an exact sum over 70,000 points
# compares every pair ten times over: minutes of a core per layout).
TRUST_SAMPLE = 10000


def child(mode: str, means: Path, out: Path, fits: int, verbose: bool) -> None:
    """In a fresh process: import, fit ``fits`` times, write the timings (and the first layout)."""
    z = np.load(means)
    t = time.perf_counter()
    import umap  # noqa: F401  (both pay the import)
    result = {"import_s": time.perf_counter() - t}
    for fit in ("first", "second")[:fits]:
        t = time.perf_counter()
        if mode == "app":
            from vaegui.core.projection import ProjectionSpec, fit_projection

            marks = {}
            layout = fit_projection(ProjectionSpec("umap"), z,
                                    progress=lambda f, what: marks.setdefault(what, time.perf_counter()))
            end = time.perf_counter()
            result[f"{fit}_s"] = marks["fitting the inverse"] - t
            result[f"{fit}_with_inverse_s"] = end - t
            if fit == "first":  # where the time goes: each stage until the next one starts
                stages = sorted(marks.items(), key=lambda m: m[1]) + [("end", end)]
                result["first_stages_s"] = {what.split(" (")[0]: b - a
                                            for (what, a), (_, b) in zip(stages, stages[1:])}
            xy = layout.xy
        else:
            xy = umap.UMAP(n_neighbors=15, min_dist=0.1, verbose=verbose).fit_transform(z)
            result[f"{fit}_s"] = time.perf_counter() - t
        if fit == "first":
            np.save(out.with_suffix(".npy"), np.asarray(xy, np.float32))
    out.write_text(json.dumps(result))


def run_child(mode: str, means: Path, tmp: Path, cache_dir: str | None, fits: int,
              timeout: float | None) -> dict | None:
    """The child's timings, or None when it ran past ``timeout`` seconds (it is killed)."""
    out = tmp / f"{mode}-{time.monotonic_ns()}.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    load_before = os.getloadavg()[0]
    cmd = [sys.executable, __file__, "--child", mode, "--means", str(means), "--out", str(out),
           "--fits", str(fits)] + ["--verbose"] * (timeout is not None)
    try:
        subprocess.run(cmd, check=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  {mode:8s}: stopped after {timeout:g} s (--timeout), load average "
              f"{(load_before + os.getloadavg()[0]) / 2:.2f}", flush=True)
        return None
    result = json.loads(out.read_text())
    result["load_average"] = round((load_before + os.getloadavg()[0]) / 2, 2)
    result["xy"] = np.load(out.with_suffix(".npy"))

    def rounded(v):
        return {k: rounded(w) for k, w in v.items()} if isinstance(v, dict) else round(v, 2)

    shown = rounded({k: v for k, v in result.items() if k != "xy"})
    print(f"  {mode:8s}{' (cold cache)' if cache_dir else ''}: {json.dumps(shown)}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, help="a run folder of benchmarks/projection_quality.py")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--limit", type=int, default=10000)
    parser.add_argument("--cold", action="store_true", help="first a pair with an empty numba cache")
    parser.add_argument("--all-images", action="store_true",
                        help="the means of all the run's images (train and test), one fit per process")
    parser.add_argument("--timeout", type=float, help="stop a process after this many seconds")
    parser.add_argument("--child", choices=("app", "default"), help=argparse.SUPPRESS)
    parser.add_argument("--means", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--fits", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--verbose", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.means, args.out, args.fits, args.verbose)
        return
    if args.run is None:
        parser.error("--run RUN is needed")
    from projection_quality import knn_accuracy, trustworthiness

    if args.all_images:
        z, labels = all_means(args.run)
    else:
        from vaegui.core.run_reader import RunReader

        reader = RunReader(args.run)
        z = reader.map_means(reader.map_epochs()[-1])[: args.limit]
        labels = reader.map_labels(len(z))
    fits = 1 if args.all_images else 2
    sample = None
    if len(z) > TRUST_SAMPLE:
        sample = np.sort(np.random.default_rng(0).choice(len(z), TRUST_SAMPLE, replace=False))
        print(f"{len(z)} points; trustworthiness summed over a fixed random {TRUST_SAMPLE} of them "
              "(their ranks among all)", flush=True)
    results: dict[str, list[dict | None]] = {"app": [], "default": []}
    cold: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        means = Path(tmp) / "means.npy"
        np.save(means, z)
        if args.cold:
            print("cold numba cache (a new install):", flush=True)
            for mode in ("app", "default"):
                with tempfile.TemporaryDirectory() as cache_dir:
                    cold[mode] = run_child(mode, means, Path(tmp), cache_dir, fits, args.timeout)
        for r in range(args.rounds):
            print(f"round {r + 1}:", flush=True)
            for mode in ("app", "default") if r % 2 == 0 else ("default", "app"):
                results[mode].append(run_child(mode, means, Path(tmp), None, fits, args.timeout))
    summary = {"points": len(z), "rounds": args.rounds, "trustworthiness_sample": len(z) if sample is None else len(sample)}
    for mode, runs in results.items():
        summary[mode] = summarise([r for r in runs if r is not None], z, labels, sample, knn_accuracy, trustworthiness)
        if None in runs:
            summary[mode]["stopped_after_s"] = args.timeout
            summary[mode]["stopped_runs"] = runs.count(None)
        if cold.get(mode):
            summary[mode]["cold_import_and_first_s"] = round(first(cold[mode]), 2)

    def ratio(key, value):
        # A stopped default took at least the timeout: the ratio is then at most app / timeout.
        pairs = [(value(a), value(d) if d is not None else args.timeout)
                 for a, d in zip(results["app"], results["default"]) if a is not None]
        if pairs:
            summary[key] = round(statistics.median(a / d for a, d in pairs), 3)
            if None in results["default"]:
                summary[key + "_is_at_most"] = True

    ratio("import_and_first_ratio_app_to_default", first)
    if fits == 2:
        ratio("second_ratio_app_to_default", lambda r: r["second_s"])
    if cold.get("app") and cold.get("default"):
        summary["cold_ratio_app_to_default"] = round(first(cold["app"]) / first(cold["default"]), 3)
    target = 90 if args.all_images else 20
    summary["targets_s"] = {"import_and_first": target} if args.all_images else {"import_and_first": target, "second": 10}
    if "import_and_first_s" in summary["app"]:
        summary["import_and_first_ratio_app_to_target"] = round(summary["app"]["import_and_first_s"] / target, 3)
    print(json.dumps(summary))


def first(r: dict) -> float:
    return r["import_s"] + r["first_s"]


def summarise(runs: list[dict], z, labels, sample, knn_accuracy, trustworthiness) -> dict:
    """Medians over the finished processes; the quality of the first one's layout."""
    if not runs:
        return {}
    out = {"import_and_first_s": round(statistics.median(first(r) for r in runs), 2),
           "first_s": round(statistics.median(r["first_s"] for r in runs), 2)}
    if "second_s" in runs[0]:
        out["second_s"] = round(statistics.median(r["second_s"] for r in runs), 2)
    if "first_with_inverse_s" in runs[0]:
        out["first_with_inverse_s"] = round(statistics.median(r["first_with_inverse_s"] for r in runs), 2)
        out["first_stages_s"] = {k: round(v, 2) for k, v in runs[0]["first_stages_s"].items()}
    xy = runs[0]["xy"]
    out.update(knn_accuracy=round(knn_accuracy(xy, labels), 4),
               trustworthiness=round(trustworthiness(z, xy, sample=sample), 4),
               load_average=round(statistics.median(r["load_average"] for r in runs), 2))
    return out


def all_means(run: Path) -> tuple[np.ndarray, np.ndarray]:
    """The latent means of every image of the run's dataset, train then test, by its latest
    model, as the app encodes them, and their labels."""
    import dataclasses

    import torch

    from vaegui.core.dataset_loader import load_dataset
    from vaegui.core.decoder import encode_means
    from vaegui.core.run_api import load

    model = load(run)
    data = load_dataset(dataclasses.replace(model.config.data, train_limit=None, test_limit=None), download=False)
    t = time.perf_counter()
    z = encode_means(model.vae, torch.cat([data.train_images, data.test_images]))
    labels = torch.cat([data.train_labels, data.test_labels]).numpy().astype(np.int64)
    print(f"encoded {len(z)} images ({data.name}, train and test) in {time.perf_counter() - t:.1f} s", flush=True)
    return z, labels


if __name__ == "__main__":
    main()
