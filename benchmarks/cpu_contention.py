"""What other work in the process costs training: the price of every millisecond the explorer
spends while the window trains (issue 7).

The GUI benchmarks' run (MNIST, mlp, L = 2, Bernoulli, batch 128) trains headless on a thread with
the thread count the window's worker uses, in rounds, each round in an order shuffled anew:
  alone;
  beside a thread busy ``--share`` of a core in short bursts running Python, so holding the GIL,
  as the window's GUI thread does in its handlers;
  beside a thread busy as much in C with the GIL released (hashing), as Qt painting and torch do.
For each side load it prints the side's measured CPU, in cores, training's loss of speed
against alone (1 - the median of each round's own ratio), and their quotient: what one core of
other work costs training. Were training simply to lose the side's share of the machine, that
would be 1 / CPUs (0.5 on 2 cores). It is more: every torch op splits its work evenly over the
training threads and waits for all of them, so a thread that loses its core stalls the others.
The explorer benchmark prints the explorer's own CPU; with this cost per core, the two give the
throughput ratio to expect.

It also prints what waking up costs a thread here (CPU time per 16 ms sleep) and a one-image
decode of the MLP, back to back and after a 16 ms sleep each (cold caches): a drag's events
come 16 ms apart.

    python benchmarks/cpu_contention.py [--rounds 7] [--share 0.25] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
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
BURST_S = 0.0025  # a side burst: about one explorer event's work on this machine
SIDES = ("python", "released")
_BUFFER = os.urandom(1 << 17)  # hashed in the GIL-free bursts (hashlib lets go of the GIL)


def _python_burst() -> None:
    end = time.perf_counter() + BURST_S
    x = 0
    while time.perf_counter() < end:
        for i in range(200):
            x += i


def _released_burst() -> None:
    end = time.perf_counter() + BURST_S
    while time.perf_counter() < end:
        hashlib.sha256(_BUFFER).digest()


def _side(burst, share: float, stop: threading.Event, cpu: list[float]) -> None:
    """Bursts of BURST_S with sleeps between them, for ``share`` of a core."""
    start = time.thread_time()
    pause = BURST_S * (1 - share) / share
    while not stop.is_set():
        burst()
        time.sleep(pause)
    cpu.append(time.thread_time() - start)


def train_once(config, data, torch_threads: int, side: str | None, share: float) -> tuple[float, float]:
    """(training images/s, side cores) of one run, training on a thread of its own as the
    window's worker does."""
    import torch

    from vaegui.core.trainer import Trainer

    result: dict[str, float] = {}

    def work() -> None:
        torch.set_num_threads(torch_threads)
        last = None
        for last in Trainer(config, data, report_interval=0.05).run():
            pass
        result["rate"] = last.images_seen / last.train_seconds

    stop, cpu = threading.Event(), []
    helper = None
    if side is not None:
        burst = _python_burst if side == "python" else _released_burst
        helper = threading.Thread(target=_side, args=(burst, share, stop, cpu))
        helper.start()
    trainer = threading.Thread(target=work)
    start = time.perf_counter()
    trainer.start()
    trainer.join()
    wall = time.perf_counter() - start
    stop.set()
    if helper is not None:
        helper.join()
    return result["rate"], (cpu[0] / wall if cpu else 0.0)


def wake_costs(config, data) -> dict[str, float]:
    """Microseconds of this thread's CPU: a 16 ms sleep, and a one-image decode back to back and
    after a 16 ms sleep each (one torch thread, as the explorer's decoding thread has)."""
    from vaegui.core.decoder import Decoder
    from vaegui.core.model import VAE, model_state
    from vaegui.core.latent import Snapshot

    model = VAE(config.model, data.image_shape)
    decoder = Decoder.from_snapshot(Snapshot(config.model, data.image_shape, model_state(model), 0))
    z = np.zeros((1, config.model.latent_dim), np.float32)

    def per_call(fn, sleep: float, n: int = 150) -> float:
        fn()
        start = time.thread_time()
        for _ in range(n):
            fn()
            if sleep:
                time.sleep(sleep)
        return 1e6 * (time.thread_time() - start) / n

    return {"sleep_16ms_us": per_call(lambda: None, 0.016),
            "decode_hot_us": per_call(lambda: decoder.decode(z), 0.0),
            "decode_after_sleep_us": per_call(lambda: decoder.decode(z), 0.016)
            - per_call(lambda: None, 0.016)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--share", type=float, default=0.25, help="the side's share of a core (default 0.25)")
    parser.add_argument("--data-dir", help="folder holding MNIST/raw (default $VAEGUI_DATA_DIR, "
                                           "else ../shared/data)")
    args = parser.parse_args()
    if not 0 < args.share < 1:
        parser.error(f"--share {args.share} is not between 0 and 1")
    data_dir = args.data_dir or os.environ.get("VAEGUI_DATA_DIR") or str(REPO.parent / "shared" / "data")

    from vaegui.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from vaegui.core.dataset_loader import dataset_available, load_dataset
    from vaegui.gui.torch_threads import init_threads, one_torch_thread_here

    if not dataset_available("mnist", data_dir):
        print(f"MNIST not found in {data_dir}: pass --data-dir", file=sys.stderr)
        return 2
    init_threads()  # as the app does: the GIL switch interval, before torch
    torch_threads = one_torch_thread_here()  # this thread as the GUI thread, training as the worker
    config = RunConfig(DataConfig(dataset="mnist", data_dir=data_dir),
                       ModelConfig(family="mlp", latent_dim=2, likelihood="bernoulli"),
                       TrainConfig(epochs=1, batch_size=128))
    data = load_dataset(config.data)
    print(f"{os.cpu_count()} CPUs, {torch_threads} training threads; one MNIST epoch a run, "
          f"{args.rounds} rounds; side threads busy {args.share:.0%} of a core in "
          f"{1000 * BURST_S:g} ms bursts")
    rates: dict[str, list[float]] = {"alone": [], **{s: [] for s in SIDES}}
    cores: dict[str, list[float]] = {s: [] for s in SIDES}
    order = random.Random(1)
    for r in range(args.rounds):
        for mode in order.sample(list(rates), len(rates)):
            rate, side_cores = train_once(config, data, torch_threads, None if mode == "alone" else mode,
                                          args.share)
            rates[mode].append(rate)
            if mode != "alone":
                cores[mode].append(side_cores)
        print(f"  round {r + 1}: " + ", ".join(f"{m} {v[-1]:,.0f}" for m, v in rates.items())
              + " images/s", flush=True)
    summary = {"alone_images_per_s": round(statistics.median(rates["alone"]))}
    for side in SIDES:
        ratio = statistics.median(a / b for a, b in zip(rates[side], rates["alone"]))
        side_cores = statistics.median(cores[side])
        per_core = (1 - ratio) / side_cores
        summary[side] = {"ratio": round(ratio, 3), "side_cores": round(side_cores, 3),
                         "cost_per_core": round(per_core, 2)}
        what = "Python, holding the GIL" if side == "python" else "C, GIL released"
        print(f"beside {side_cores:.2f} of a core of {what}: training at {ratio:.2f} of alone; "
              f"a core of such work costs training {per_core:.2f} of its speed "
              f"({per_core * (os.cpu_count() or 1):.1f}x the machine share it takes)")
    wake = wake_costs(config, data)
    summary.update({k: round(v) for k, v in wake.items()})
    print(f"waking up: a 16 ms sleep costs {wake['sleep_16ms_us']:.0f} us of CPU; a one-image decode "
          f"{wake['decode_hot_us']:.0f} us back to back, {wake['decode_after_sleep_us']:.0f} us more "
          "than the sleep when each follows one")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
