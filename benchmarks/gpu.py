"""vaegui on a GPU, end to end: training speed, the explorer's latency while the GPU trains,
torchrun, and no host round trip per batch. One prepared script, so that the first run on a
GPU machine measures instead of debugging.

    python benchmarks/gpu.py [--device cuda] [--data-dir DIR] [--epochs 3]
    python benchmarks/gpu.py --device cpu --tiny       # the same code paths in seconds

Parts, each printed as it ends:
  train    the reference MLP (784-400-20, Bernoulli, batch 128, Adam 1e-3) and the conv model
           (L = 20) with vaegui's Trainer on the device: seconds per epoch (training alone, the
           test pass timed apart) and images/s. The images live on the GPU when they fit (else
           batches come from pinned host memory: printed; on CUDA the MLP trains once more that
           way, as `mlp_host_data`), and the loop does not wait for the GPU at every step
           (counted in `syncs`).
  syncs    host round trips per training step, and per batch of the test evaluation with the
           IWAE bound and of encoding the map: counted with torch.cuda's sync debug mode on CUDA; elsewhere by
           counting the calls that bring a tensor's values to Python (item, cpu, numpy, tolist,
           bool, float, int), which on a GPU would each wait for it.
  decode   one latent point decoded (a drag's image) by the MLP and conv decoders, on the CPU
           and on the device: median ms each (the explorer decodes where that is faster).
  app      the real window, offscreen, trains MNIST (MLP, L = 2) on the device while the
           explorer benchmark's simulated user clicks and drags on the map: click and drag
           latency, median and p99.
  torchrun `torchrun --standalone --nproc-per-node 1 -m vaegui train ...` on the device: NCCL on
           CUDA (its log is checked for NCCL), gloo on the CPU.

Targets on an H100/H200-class GPU: reference MLP epoch <= 0.25 s, conv epoch <= 1 s, drag decode
<= 3 ms median, no host round trip per training step or evaluation batch. The last line is one
JSON object with every figure and its target (targets apply on CUDA; --device cpu checks that
everything runs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from vaegui.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig  # noqa: E402
from vaegui.core.dataset_loader import dataset_available, load_dataset  # noqa: E402
from vaegui.core.decoder import encode_means  # noqa: E402
from vaegui.core import device as core_device  # noqa: E402
from vaegui.core.device import describe_device, resolve_device  # noqa: E402
from vaegui.core.evaluate import evaluate  # noqa: E402
from vaegui.core.model import VAE  # noqa: E402
from vaegui.core.trainer import Trainer  # noqa: E402

TARGETS = {"mlp_epoch_s": 0.25, "conv_epoch_s": 1.0, "drag_decode_median_ms": 3.0,
           # host round trips: a training step, an evaluation batch; the map: a constant few
           "train_syncs_per_step": 0.1, "eval_syncs_per_batch": 0.1, "map_syncs_per_batch": 0.1}
IW_SAMPLES = 100
MAP_BATCH = 128  # small batches, so that even a tiny test set has several


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


# ---- counting host round trips ---------------------------------------------------------------
_TO_HOST = ("item", "cpu", "numpy", "tolist", "__bool__", "__float__", "__int__")


class SyncCounter:
    """Counts host round trips while active: CUDA's own count (its sync debug mode warns at
    every synchronising call) on CUDA, else the calls in _TO_HOST on any tensor."""

    def __init__(self, device: torch.device):
        self.device, self.count = device, 0

    @contextlib.contextmanager
    def counting(self):
        if self.device.type == "cuda":
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                torch.cuda.set_sync_debug_mode("warn")
                try:
                    yield self
                finally:
                    torch.cuda.set_sync_debug_mode("default")
            self.count += sum("synchroniz" in str(w.message) for w in caught)
            return
        originals = {name: getattr(torch.Tensor, name) for name in _TO_HOST}
        own = {name for name in _TO_HOST if name in vars(torch.Tensor)}  # not inherited

        def counted(name):
            def call(tensor, *args, **kwargs):
                self.count += 1
                return originals[name](tensor, *args, **kwargs)
            return call
        for name in _TO_HOST:
            setattr(torch.Tensor, name, counted(name))
        try:
            yield self
        finally:
            for name, original in originals.items():
                if name in own:
                    setattr(torch.Tensor, name, original)
                else:
                    delattr(torch.Tensor, name)


# ---- training ------------------------------------------------------------------------------
def train_config(args, family: str, latent_dim: int = 20, epochs: int | None = None) -> RunConfig:
    hidden = 64 if args.tiny else 400
    return RunConfig(DataConfig(dataset=args.dataset, data_dir=args.data_dir,
                                train_limit=512 if args.tiny else None,
                                test_limit=512 if args.tiny else None),
                     ModelConfig(family=family, latent_dim=latent_dim, hidden=hidden, likelihood="bernoulli"),
                     TrainConfig(epochs=epochs or args.epochs, batch_size=128, lr=1e-3, seed=1,
                                 device=args.device))


def train_part(args, family: str, data) -> dict:
    """Epoch times of one model: snapshots only at epoch ends (each one syncs once), the test
    pass of each epoch timed on its own and taken out."""
    config = train_config(args, family)
    trainer = Trainer(config, data, report_interval=1e9)
    device = trainer.device
    # The images' place (GPU or pinned host memory) is the trainer's choice (core.device).
    place = "device" if trainer._train_x.device.type == device.type else "pinned host memory"
    counter = SyncCounter(device)
    marks, steps = [], []
    sync(device)
    marks.append(time.perf_counter())
    with counter.counting():
        for p in trainer.run():
            if p.eval is not None or p.done:
                sync(device)
                marks.append(time.perf_counter())
                steps.append(p.step)
            if p.done:
                break
    epoch_walls = np.diff(marks[:1 + config.train.epochs])
    sync(device)
    t0 = time.perf_counter()
    with SyncCounter(device).counting() as eval_counter:
        trainer.evaluate_test(config.train.epochs)
    sync(device)
    eval_s = time.perf_counter() - t0
    # The first epoch pays the warm-up (kernel selection, allocator): the later ones' median.
    wall = float(np.median(epoch_walls[1:] if len(epoch_walls) > 1 else epoch_walls))
    epoch_s = max(wall - eval_s, 1e-9)
    total_steps = trainer.step
    # Syncs a run makes that are not steps': one per snapshot and the evaluations' own.
    per_step = max(0, counter.count - len(steps) - config.train.epochs * eval_counter.count) / total_steps
    result = {"epoch_s": epoch_s, "first_epoch_s": float(epoch_walls[0]) - eval_s,
              "images_per_s": len(data.train_images) / epoch_s, "test_pass_s": eval_s,
              "syncs_per_step": per_step, "data_on": place,
              "test_elbo": trainer.history.evals[-1].neg_elbo}
    print(f"train {family}: {epoch_s:.3f} s per epoch ({result['images_per_s']:,.0f} images/s; "
          f"first epoch {result['first_epoch_s']:.3f} s; test pass {eval_s:.3f} s), images in "
          f"{place}, {per_step:.3f} host round trips per step, test -ELBO {result['test_elbo']:.2f} "
          f"after {config.train.epochs} epochs", flush=True)
    return result


def sync_part(args, data, device: torch.device) -> dict:
    """Host round trips per batch of the test evaluation with the IWAE bound, and of encoding
    the map: the counts for the whole test set less those for its first half, per extra batch
    (what every evaluation makes once, at its end, cancels out)."""
    torch.manual_seed(0)
    model = VAE(train_config(args, "mlp").model, data.image_shape).to(device)
    images = data.test_images.to(device)
    halves = (images[:len(images) // 2], images)
    counts = {"eval": [], "map": []}
    for part in halves:
        with SyncCounter(device).counting() as c:
            evaluate(model, part, iw_samples=IW_SAMPLES, seed=1)
        counts["eval"].append(c.count)
        with SyncCounter(device).counting() as c:
            encode_means(model, part, batch_size=MAP_BATCH)
        counts["map"].append(c.count)
    result = {}
    for name, batch in (("eval", 256), ("map", MAP_BATCH)):
        batches = [-(-len(part) // batch) for part in halves]
        extra = batches[1] - batches[0]
        per_batch = (counts[name][1] - counts[name][0]) / extra if extra else float("nan")
        result[f"{name}_syncs_per_batch"], result[f"{name}_syncs"] = per_batch, counts[name][1]
        result[f"{name}_batches"] = batches[1]
    print(f"syncs: the test evaluation with the IWAE bound (K = {IW_SAMPLES}) makes "
          f"{result['eval_syncs']} host round trips for {result['eval_batches']} batches "
          f"({result['eval_syncs_per_batch']:.2f} per batch); encoding the map "
          f"{result['map_syncs']} for {result['map_batches']} ({result['map_syncs_per_batch']:.2f} "
          "per batch)", flush=True)
    return result


# ---- decoding --------------------------------------------------------------------------------
def decode_ms(model: VAE, device: torch.device, repeats: int) -> float:
    """Median ms to decode one latent point (from numpy, as the explorer has it) to an image in
    host memory."""
    model = model.to(device).eval()
    z = np.random.default_rng(0).normal(size=(1, model.latent_dim)).astype(np.float32)
    times = []
    with torch.no_grad():
        for i in range(repeats + 5):
            t0 = time.perf_counter()
            torch.sigmoid(model.decode(torch.from_numpy(z).to(device))).cpu().numpy()
            if i >= 5:  # the first calls pay kernel selection
                times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times)


def decode_part(args, data, device: torch.device) -> dict:
    result = {}
    for family in ("mlp", "conv"):
        torch.manual_seed(0)
        model = VAE(ModelConfig(family=family, latent_dim=2), data.image_shape)
        cpu = decode_ms(model, torch.device("cpu"), args.repeats)
        dev = decode_ms(model, device, args.repeats) if device.type != "cpu" else cpu
        result[f"{family}_decode_cpu_ms"], result[f"{family}_decode_device_ms"] = cpu, dev
        print(f"decode one point, {family}: CPU {cpu:.3f} ms, {device.type} {dev:.3f} ms "
              f"(faster: {'cpu' if cpu <= dev else device.type})", flush=True)
    return result


# ---- the app -------------------------------------------------------------------------------
def app_part(args) -> dict:
    """The window trains on the device while the explorer benchmark's simulated user acts."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    import gui_responsiveness as gr
    from explorer_latency import ExplorerBench

    runs = tempfile.mkdtemp(prefix="vaegui-gpu-runs-")  # never the user's runs folder
    os.environ[gr.RUNS_ENV_VAR] = runs
    gr.init_threads()  # as the app does, before any torch work on this thread
    torch_threads = gr.one_torch_thread_here()
    app = QApplication.instance() or QApplication([sys.argv[0]])  # noqa: F841 - must stay alive
    config = train_config(args, "mlp", latent_dim=2, epochs=args.app_epochs)
    bench = ExplorerBench(config, torch_threads)
    bench.run_once(seed=0)
    result = {"app_images_per_s": bench.results[-1]["images"] / bench.results[-1]["wall"]
              if bench.results else None}
    for kind in ("click", "drag"):
        ms = np.asarray(bench.latency[kind])
        result[f"{kind}_count"] = int(ms.size)
        result[f"{kind}_median_ms"] = float(np.median(ms)) if ms.size else None
        result[f"{kind}_p99_ms"] = float(np.percentile(ms, 99)) if ms.size else None
    print(f"app ({config.train.epochs} epochs on {config.train.device}, "
          f"{result['app_images_per_s'] or 0:,.0f} images/s): "
          + "; ".join(f"{k} {result[k + '_count']} timed, median "
                      f"{result[k + '_median_ms'] or float('nan'):.2f} ms, "
                      f"p99 {result[k + '_p99_ms'] or float('nan'):.2f} ms" for k in ("click", "drag")),
          flush=True)
    return result


# ---- torchrun --------------------------------------------------------------------------------
def torchrun_part(args, device: torch.device) -> dict:
    out = tempfile.mkdtemp(prefix="vaegui-gpu-torchrun-")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1",
           "-m", "vaegui", "train", "--dataset", args.dataset, "--model", "mlp", "--latent-dim", "20",
           "--epochs", "1", "--device", device.type, "--no-progress", "--offline",
           "--out", os.path.join(out, "run")]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    if args.tiny:
        cmd += ["--hidden", "64", "--train-limit", "512", "--test-limit", "512"]
    path = os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH"))))
    env = {**os.environ, "PYTHONPATH": path,
           "NCCL_DEBUG": "INFO", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.torchrun_timeout)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"torchrun failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    backend = "nccl" if device.type == "cuda" else "gloo"
    nccl_seen = "NCCL INFO" in proc.stderr
    result = {"torchrun_wall_s": wall, "torchrun_images_per_s": summary["images_per_s"],
              "torchrun_backend": backend, "torchrun_nccl_seen": nccl_seen,
              "torchrun_test_elbo": summary["test_elbo"]}
    print(f"torchrun, 1 process on {summary['device']}: {wall:.1f} s in all, "
          f"{summary['images_per_s']:,.0f} images/s, backend {backend}"
          + (f" (NCCL in its log: {nccl_seen})" if device.type == "cuda" else ""), flush=True)
    return result


# ---- the whole --------------------------------------------------------------------------------
def verdicts(figures: dict, device: torch.device) -> dict:
    """Each target beside its figure; met is None where the target does not apply (not CUDA)."""
    pairs = {"mlp_epoch_s": figures["mlp"]["epoch_s"], "conv_epoch_s": figures["conv"]["epoch_s"],
             "drag_decode_median_ms": figures["app"].get("drag_median_ms"),
             "train_syncs_per_step": max(figures["mlp"]["syncs_per_step"], figures["conv"]["syncs_per_step"]),
             "eval_syncs_per_batch": figures["syncs"]["eval_syncs_per_batch"],
             "map_syncs_per_batch": figures["syncs"]["map_syncs_per_batch"]}
    cuda = device.type == "cuda"
    return {name: {"figure": value, "target": TARGETS[name],
                   "met": (value is not None and value <= TARGETS[name]) if cuda else None}
            for name, value in pairs.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), mps or cpu")
    parser.add_argument("--dataset", default="mnist", help="mnist (default); shapes needs no files")
    parser.add_argument("--data-dir", help="folder holding MNIST/raw (default $VAEGUI_DATA_DIR)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per model (default 3)")
    parser.add_argument("--app-epochs", type=int, default=3, help="epochs the window trains (default 3)")
    parser.add_argument("--repeats", type=int, default=200, help="decodes timed per model")
    parser.add_argument("--tiny", action="store_true",
                        help="512 training images and narrow models: every part in seconds")
    parser.add_argument("--skip", nargs="*", default=[], choices=("app", "torchrun"),
                        help="parts to leave out")
    parser.add_argument("--torchrun-timeout", type=float, default=300)
    args = parser.parse_args()
    args.data_dir = args.data_dir or os.environ.get("VAEGUI_DATA_DIR")
    if args.tiny:
        args.repeats = min(args.repeats, 20)
    if args.dataset == "mnist" and not dataset_available("mnist", args.data_dir):
        print(f"MNIST not found in {args.data_dir}: pass --data-dir or --dataset shapes", file=sys.stderr)
        return 2
    device = resolve_device(args.device)
    print(f"device: {describe_device(device)}; torch {torch.__version__}; {os.cpu_count()} CPUs"
          + ("; tiny configuration" if args.tiny else ""), flush=True)
    data = load_dataset(train_config(args, "mlp").data, download=False)
    figures = {"device": describe_device(device), "tiny": args.tiny}
    figures["mlp"] = train_part(args, "mlp", data)
    figures["conv"] = train_part(args, "conv", data)
    if device.type == "cuda":  # the path of a dataset too big for the GPU: batches from pinned memory
        share, core_device.GPU_DATA_SHARE = core_device.GPU_DATA_SHARE, 0.0
        try:
            figures["mlp_host_data"] = train_part(args, "mlp", data)
        finally:
            core_device.GPU_DATA_SHARE = share
    figures["syncs"] = sync_part(args, data, device)
    figures["decode"] = decode_part(args, data, device)
    figures["app"] = app_part(args) if "app" not in args.skip else {}
    figures["torchrun"] = torchrun_part(args, device) if "torchrun" not in args.skip else {}
    figures["targets"] = verdicts(figures, device)
    met = [v["met"] for v in figures["targets"].values()]
    if device.type == "cuda":
        print("targets: " + ", ".join(f"{k} {v['figure']} (<= {v['target']}): "
                                      f"{'met' if v['met'] else 'NOT met'}"
                                      for k, v in figures["targets"].items()))
    figures["all_met"] = all(met) if device.type == "cuda" else None
    print(json.dumps(figures, default=lambda v: round(v, 4) if isinstance(v, float) else str(v)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
