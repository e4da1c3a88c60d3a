"""`vaegui eval CKPT`: evaluate a checkpoint on its test set (-ELBO, bits/dim, the IWAE bound)
and print the result as one JSON line."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TextIO

from ..core.config import DEVICES, MAX_IW_SAMPLES
from .options import file_name, int_at_least


def add_parser(sub) -> None:
    """The `eval` command's options (sub: the parser's subparsers)."""
    e = sub.add_parser("eval", help="evaluate a checkpoint on its test set")
    e.add_argument("checkpoint", metavar="CKPT", type=file_name,
                   help="a checkpoint, or a run folder (its latest checkpoint)")
    e.add_argument("--iw-samples", type=int_at_least(1, MAX_IW_SAMPLES), default=100,
                   help="importance samples K of the IWAE bound (default 100)")
    e.add_argument("--data-dir")
    e.add_argument("--device", choices=DEVICES, default="auto")
    e.add_argument("--offline", action="store_true", help="never download a missing dataset")


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from ..core.checkpoint import check_images_match, model_from_checkpoint
    from ..core.dataset_loader import load_dataset
    from ..core.device import describe_device, resolve_device
    from ..core.eval_progress import EvalProgress
    from ..core.evaluate import evaluate
    from ..core.run_paths import run_of
    from ..core.run_reader import load_run_checkpoint
    from ..core.trainer import check_iw_memory

    out = out or sys.stdout
    checkpoint, run_dir = run_of(args.checkpoint)
    state = load_run_checkpoint(checkpoint, run_dir)  # checked against its run.json
    config, model = model_from_checkpoint(state, checkpoint)
    if args.data_dir:
        config = config.replace(data={"data_dir": args.data_dir})
    data = load_dataset(config.data, download=not args.offline)
    if data.skipped:
        print(f"vaegui: {data.skipped_summary()}", file=sys.stderr)
    check_images_match(checkpoint, model.image_shape, data.image_shape)
    device = resolve_device(args.device)
    check_iw_memory(config.model, data.image_shape, args.iw_samples, device.type)
    model.to(device)
    started = time.perf_counter()
    shown = EvalProgress(sys.stderr)  # the IWAE bound may take minutes: progress and time left
    try:
        result = evaluate(model, data.test_images, epoch=int(state["epoch"]), step=int(state["step"]),
                          iw_samples=args.iw_samples, seed=config.train.seed, on_progress=shown.update)
    finally:
        shown.clear()
    print(json.dumps({
        **result.test_record(), "epoch": result.epoch, "step": result.step,
        "device": describe_device(device), "seconds": time.perf_counter() - started,
        "checkpoint": str(checkpoint),
    }), file=out, flush=True)
    return 0
