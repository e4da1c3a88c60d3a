"""What keeping a UMAP map during training costs training (issue 21): training throughput
beside the map's per-epoch work, against training with the PCA map (whose per-epoch work is
milliseconds, so: alone).

While a run trains, the app places each epoch's test means on the last UMAP layout (the
layout's fast neighbour placement, on a thread with one torch thread) and goes on fitting the
learned inverse from the last epoch's network; it lays the map out anew only when training
pauses or ends. Here one MNIST epoch (MLP, L = 16, batch 128) trains on a thread as the window's
worker does, in rounds, alone and beside one such placement of 10,000 means started with the
epoch, in an order shuffled per round. Printed: the images/s of each, the median of each
round's ratio, and the placement's own seconds. Target: ratio >= 0.85.

    python benchmarks/projection_training.py [--rounds 3] [--data-dir DIR] [--train-limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def train_epoch(config, data, threads: int, side=None) -> tuple[float, float]:
    """(training images/s, the side's seconds) of one epoch on a thread of its own."""
    import torch

    from vaegui.core.trainer import Trainer

    result: dict[str, float] = {}

    def work() -> None:
        torch.set_num_threads(threads)
        last = None
        for last in Trainer(config, data, report_interval=0.05).run():
            pass
        result["rate"] = last.images_seen / last.train_seconds

    def side_work() -> None:
        from vaegui.core.thread_governor import pin_threads

        pin_threads(1)
        start = time.perf_counter()
        side()
        result["side_s"] = time.perf_counter() - start

    trainer = threading.Thread(target=work)
    helper = threading.Thread(target=side_work) if side is not None else None
    trainer.start()
    if helper is not None:
        helper.start()
        helper.join()
    trainer.join()
    return result["rate"], result.get("side_s", 0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("VAEGUI_DATA_DIR") or str(REPO.parent / "shared" / "data"))
    parser.add_argument("--train-limit", type=int, default=None, help="training images per epoch (default all)")
    parser.add_argument("--means", type=int, default=10000, help="test means placed each epoch")
    args = parser.parse_args()

    from vaegui.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from vaegui.core.dataset_loader import load_dataset
    from vaegui.core.decoder import encode_means
    from vaegui.core.model import VAE
    from vaegui.core.projection import ProjectionSpec, fit_projection
    from vaegui.gui.torch_threads import init_threads, one_torch_thread_here

    init_threads()
    threads = one_torch_thread_here()  # this thread as the GUI's; training gets the rest
    config = RunConfig(DataConfig(dataset="mnist", data_dir=args.data_dir, train_limit=args.train_limit),
                       ModelConfig(family="mlp", latent_dim=16, likelihood="bernoulli"),
                       TrainConfig(epochs=1, batch_size=128))
    data = load_dataset(config.data)
    images = data.test_images[: args.means]
    means = encode_means(VAE(config.model, data.image_shape), images)  # an untrained model's: the cost is the same
    t = time.perf_counter()
    layout = fit_projection(ProjectionSpec("umap"), means, n_jobs=1)
    print(f"UMAP layout of {len(means)} means: {time.perf_counter() - t:.1f} s (compile included)", flush=True)
    moved = (means + np.random.default_rng(0).normal(0, 0.01, means.shape)).astype(np.float32)
    layout.transform(moved[:1])  # the placement index, built once per layout in the app's worker

    def place() -> None:
        layout.placed(moved, layout.transform(moved))

    rates: dict[str, list[float]] = {"alone": [], "umap": []}
    side_s: list[float] = []
    order = random.Random(1)
    for r in range(args.rounds):
        for mode in order.sample(list(rates), 2):
            rate, s = train_epoch(config, data, threads, place if mode == "umap" else None)
            rates[mode].append(rate)
            if mode == "umap":
                side_s.append(s)
        print(f"  round {r + 1}: alone {rates['alone'][-1]:,.0f}, beside a placement {rates['umap'][-1]:,.0f} "
              f"images/s (placement {side_s[-1]:.1f} s)", flush=True)
    ratio = statistics.median(a / b for a, b in zip(rates["umap"], rates["alone"]))
    print(json.dumps({"alone_images_per_s": round(statistics.median(rates["alone"])),
                      "umap_images_per_s": round(statistics.median(rates["umap"])),
                      "throughput_ratio": round(ratio, 3), "target_ratio": 0.85,
                      "placement_seconds": round(statistics.median(side_s), 2), "means": len(means),
                      "training_threads": threads}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
