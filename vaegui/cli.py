"""Command line: ``vaegui train``, ``vaegui eval``, and ``vaegui`` alone for the desktop app.

User errors (bad argument, missing data, bad checkpoint) print one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from .core.config import DEVICES, KL_FORMS, LIKELIHOODS, MODEL_FAMILIES, DataConfig, ModelConfig, RunConfig, TrainConfig
from .core.errors import VaeguiError

EXIT_USER_ERROR = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (no usage dump) with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message}\n")


def int_at_least(minimum: int):
    """An argparse type: a whole number no smaller than ``minimum``, with a readable error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} must be at least {minimum}")
        return value

    return parse


_positive_int, _non_negative_int = int_at_least(1), int_at_least(0)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="vaegui", description="Train and explore variational autoencoders. "
                     "Run without a command to open the desktop app.")
    sub = parser.add_subparsers(dest="command", parser_class=OneLineParser)
    t = sub.add_parser("train", help="train a VAE headless")
    t.add_argument("--dataset", default="mnist",
                   help="mnist, fashion-mnist, kmnist, cifar10, shapes or folder:PATH (default mnist)")
    t.add_argument("--data-dir", help="dataset folder (default $VAEGUI_DATA_DIR, else the user cache)")
    t.add_argument("--model", choices=MODEL_FAMILIES, default="mlp")
    t.add_argument("--latent-dim", type=_positive_int, default=2)
    t.add_argument("--hidden", type=_positive_int, default=400, help="hidden width of the mlp (400)")
    t.add_argument("--likelihood", choices=LIKELIHOODS, default="bernoulli")
    t.add_argument("--sigma", type=float, default=0.1,
                   help="std of the gaussian likelihood (start value for gaussian-learned)")
    t.add_argument("--kl", choices=KL_FORMS, default="closed")
    t.add_argument("--beta", type=float, default=1.0)
    t.add_argument("--warmup", type=_non_negative_int, default=0, help="KL warm-up steps")
    t.add_argument("--epochs", type=_positive_int, default=None, help="total epochs (default 10)")
    t.add_argument("--batch-size", type=_positive_int, default=128)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--device", choices=DEVICES, default=None, help="default auto")
    t.add_argument("--out", help="output folder for checkpoint.pt and metrics.jsonl "
                   "(default runs/<dataset>-<time>, or the resumed checkpoint's folder)")
    t.add_argument("--resume", metavar="CKPT", help="continue training from a checkpoint")
    t.add_argument("--iw-samples", type=_non_negative_int, default=0,
                   help="also report the IWAE bound with K samples at the end")
    t.add_argument("--image-size", type=_positive_int, default=28, help="folder/shapes image side")
    t.add_argument("--channels", type=int, choices=(1, 3), default=1, help="folder images: 1 or 3")
    t.add_argument("--train-limit", type=_positive_int, help="use only the first N training images")
    t.add_argument("--test-limit", type=_positive_int, help="use only the first N test images")
    t.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    t.add_argument("--offline", action="store_true", help="never download a missing dataset")
    e = sub.add_parser("eval", help="evaluate a checkpoint on its test set")
    e.add_argument("checkpoint", metavar="CKPT")
    e.add_argument("--iw-samples", type=_positive_int, default=100,
                   help="importance samples K of the IWAE bound (default 100)")
    e.add_argument("--data-dir")
    e.add_argument("--device", choices=DEVICES, default="auto")
    e.add_argument("--offline", action="store_true", help="never download a missing dataset")
    g = sub.add_parser("gui", help="open the desktop app (the default)", add_help=False)
    g.add_argument("gui_args", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in ("train", "eval", "gui", "-h", "--help"):
        return _gui(argv)
    args = build_parser().parse_args(argv)
    if args.command == "gui":
        return _gui(args.gui_args)
    try:
        return train(args) if args.command == "train" else evaluate_checkpoint(args)
    except VaeguiError as exc:
        print(f"vaegui: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR


def _gui(argv: list[str]) -> int:
    from .gui.app import main as gui_main  # Qt is imported only when the app is wanted

    return gui_main(argv)


# ---- train -----------------------------------------------------------------------------------
def config_from_args(args: argparse.Namespace) -> RunConfig:
    return RunConfig(
        data=DataConfig(dataset=args.dataset, data_dir=args.data_dir, image_size=args.image_size,
                        channels=args.channels, train_limit=args.train_limit,
                        test_limit=args.test_limit),
        model=ModelConfig(family=args.model, latent_dim=args.latent_dim, hidden=args.hidden,
                          likelihood=args.likelihood, sigma=args.sigma),
        train=TrainConfig(epochs=args.epochs or 10, batch_size=args.batch_size, lr=args.lr,
                          seed=args.seed, device=args.device or "auto", kl=args.kl,
                          beta=args.beta, warmup_steps=args.warmup, iw_samples=args.iw_samples),
    )


def train(args: argparse.Namespace, out: TextIO | None = None) -> int:
    # Imported here so that `vaegui --help` and argument errors answer without loading torch.
    from .core.checkpoint import load_checkpoint, save_checkpoint
    from .core.data import load_dataset
    from .core.errors import TrainingError
    from .core.trainer import Trainer

    out = out or sys.stdout
    started = time.perf_counter()
    state = None
    if args.resume:
        state = load_checkpoint(args.resume)
        config = RunConfig.from_dict(state["config"])
        changes: dict[str, Any] = {}
        train_changes = {k: v for k, v in (("epochs", args.epochs), ("device", args.device)) if v}
        if train_changes:
            changes["train"] = train_changes
        if args.data_dir:
            changes["data"] = {"data_dir": args.data_dir}
        config = config.replace(**changes)
        out_dir = Path(args.out) if args.out else Path(args.resume).parent
    else:
        config = config_from_args(args)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = config.data.dataset.replace(":", "-").replace("/", "_")
        out_dir = Path(args.out) if args.out else Path("runs") / f"{name}-{stamp}"
    data = load_dataset(config.data, download=not args.offline)
    trainer = Trainer(config, data, report_interval=0.2)
    if state is not None:
        trainer.load_state_dict(state, args.resume)
    ckpt_path = out_dir / "checkpoint.pt"
    metrics_path = out_dir / "metrics.jsonl"
    out_dir.mkdir(parents=True, exist_ok=True)
    bar = _ProgressBar(sys.stderr, enabled=not args.no_progress and sys.stderr.isatty())
    previous_sigint = signal.signal(signal.SIGINT, lambda *_: trainer.stop())
    last = None
    epoch_mark = (0, 0.0, trainer.step)  # images, train seconds and step at the last epoch end
    try:
        for p in trainer.run():
            last = p
            bar.update(p)
            if p.eval is not None and not p.done:
                bar.clear()
                train_rows = trainer.history.losses[trainer.history.steps > epoch_mark[2]]
                ips = (p.images_seen - epoch_mark[0]) / max(1e-9, p.train_seconds - epoch_mark[1])
                epoch_mark = (p.images_seen, p.train_seconds, p.step)
                record = _epoch_record(p, train_rows, ips)
                print(_epoch_line(record), file=out, flush=True)
                with open(metrics_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
                save_checkpoint(ckpt_path, trainer.state_dict())
    except TrainingError:
        bar.clear()
        save_checkpoint(ckpt_path, trainer.state_dict())  # the last good weights
        raise
    finally:
        signal.signal(signal.SIGINT, previous_sigint)
        bar.clear()
    save_checkpoint(ckpt_path, trainer.state_dict())
    final = trainer.history.evals[-1] if trainer.history.evals else None
    if final is None or final.step != trainer.step:  # stopped mid-epoch: evaluate what we have
        final = trainer.evaluate_test(trainer.step // trainer.steps_per_epoch)
    summary = {
        "test_elbo": final.neg_elbo, "test_recon": final.recon, "test_kl": final.kl,
        "test_bits_per_dim": final.bits_per_dim, "active_units": final.active_units,
        "epochs": trainer.step / trainer.steps_per_epoch, "steps": trainer.step,
        "seconds": time.perf_counter() - started,
        "images_per_s": (last.images_seen / last.train_seconds) if last and last.train_seconds else 0.0,
        "device": trainer.device_name, "stopped": bool(last and last.stopped),
        "checkpoint": str(ckpt_path), "metrics": str(metrics_path),
    }
    if final.nll_iw is not None:
        summary.update(test_nll_iw=final.nll_iw, iw_samples=final.iw_samples)
    print(json.dumps(summary), file=out, flush=True)
    return 0


def _epoch_record(p, train_rows, images_per_s: float) -> dict[str, Any]:
    e = p.eval
    train_mean = train_rows.mean(0) if len(train_rows) else [float("nan")] * 3
    return {"epoch": e.epoch, "step": p.step, "train_recon": float(train_mean[0]),
            "train_kl": float(train_mean[1]), "train_elbo": float(train_mean[2]),
            "test_elbo": e.neg_elbo, "test_recon": e.recon, "test_kl": e.kl,
            "test_bits_per_dim": e.bits_per_dim, "active_units": e.active_units,
            "kl_weight": p.kl_weight, "images_per_s": images_per_s}


def _epoch_line(r: dict[str, Any]) -> str:
    return (f"epoch {r['epoch']:>3}  train -ELBO {r['train_elbo']:8.2f}  test -ELBO "
            f"{r['test_elbo']:8.2f}  recon {r['test_recon']:8.2f}  KL {r['test_kl']:6.2f}  "
            f"{r['test_bits_per_dim']:.4f} bits/dim  {r['images_per_s']:,.0f} images/s")


class _ProgressBar:
    """A one-line progress bar on a terminal; silent when output is not a terminal."""

    def __init__(self, stream: TextIO, enabled: bool, width: int = 28):
        self.stream, self.enabled, self.width = stream, enabled, width
        self._shown = False

    def update(self, p) -> None:
        if not self.enabled:
            return
        filled = int(self.width * p.fraction)
        loss = f"-ELBO {p.new_losses[-20:, 2].mean():7.2f}  " if len(p.new_losses) else ""
        left = f"  {int(p.seconds_left) // 60}:{int(p.seconds_left) % 60:02d} left" if p.seconds_left else ""
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {p.fraction:4.0%}  "
                          f"epoch {min(p.epochs, int(p.epoch) + 1)}/{p.epochs}  {loss}"
                          f"{p.images_per_s:,.0f} img/s{left}\033[K")
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False


# ---- eval ------------------------------------------------------------------------------------
def evaluate_checkpoint(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from .core.checkpoint import load_checkpoint, model_from_checkpoint
    from .core.data import load_dataset
    from .core.device import describe_device, resolve_device
    from .core.evaluate import evaluate

    out = out or sys.stdout
    state = load_checkpoint(args.checkpoint)
    config, model = model_from_checkpoint(state, args.checkpoint)
    if args.data_dir:
        config = config.replace(data={"data_dir": args.data_dir})
    data = load_dataset(config.data, download=not args.offline)
    if tuple(data.image_shape) != tuple(model.image_shape):
        from .core.errors import CheckpointError

        raise CheckpointError(args.checkpoint, f"trained on {model.image_shape} images, "
                                               f"the data has {data.image_shape}")
    device = resolve_device(args.device)
    model.to(device)
    started = time.perf_counter()
    result = evaluate(model, data.test_images, epoch=int(state["epoch"]), step=int(state["step"]),
                      iw_samples=args.iw_samples, seed=config.train.seed)
    print(json.dumps({
        "test_elbo": result.neg_elbo, "test_recon": result.recon, "test_kl": result.kl,
        "test_bits_per_dim": result.bits_per_dim, "test_nll_iw": result.nll_iw,
        "iw_samples": result.iw_samples, "active_units": result.active_units,
        "epoch": result.epoch, "step": result.step, "device": describe_device(device),
        "seconds": time.perf_counter() - started, "checkpoint": str(args.checkpoint),
    }), file=out, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
