"""Command line: ``vaegui train``, ``vaegui eval``, and ``vaegui`` alone for the desktop app.

User errors (bad argument, missing data, bad checkpoint, unusable output folder) print one line
on stderr and exit 2. Ctrl-C prints one line and exits 130 (128 + SIGINT, as a shell reports a
process that Ctrl-C ended); `vaegui train` first stops within a step and saves, a second Ctrl-C
gives up waiting (the last saved checkpoint stays intact).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from .core.config import (DEVICES, KL_FORMS, LIKELIHOODS, MAX_IW_SAMPLES, MODEL_FAMILIES, DataConfig,
                          ModelConfig, RunConfig, TrainConfig)
from .core.errors import ConfigError, VaeguiError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

# Options of `vaegui train` -> (section, setting) of RunConfig. Their defaults are the
# dataclasses' (an option left out is None here, so a resumed run knows what was asked).
OPTION_FIELDS = {
    "dataset": ("data", "dataset"), "data_dir": ("data", "data_dir"),
    "image_size": ("data", "image_size"), "channels": ("data", "channels"),
    "train_limit": ("data", "train_limit"), "test_limit": ("data", "test_limit"),
    "model": ("model", "family"), "latent_dim": ("model", "latent_dim"), "hidden": ("model", "hidden"),
    "likelihood": ("model", "likelihood"), "sigma": ("model", "sigma"),
    "epochs": ("train", "epochs"), "batch_size": ("train", "batch_size"), "lr": ("train", "lr"),
    "seed": ("train", "seed"), "device": ("train", "device"), "kl": ("train", "kl"),
    "beta": ("train", "beta"), "warmup": ("train", "warmup_steps"), "iw_samples": ("train", "iw_samples"),
}
# What a resumed run may change; every other option would make it another model or another
# stream of data, so a resumed run refuses a value that differs from the checkpoint's.
RESUMABLE = ("epochs", "lr", "beta", "warmup", "kl", "device", "iw_samples", "data_dir")
_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (no usage dump) with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message}\n")


def int_at_least(minimum: int, maximum: int | None = None):
    """An argparse type: a whole number no smaller than ``minimum`` (nor larger than
    ``maximum``), with a readable error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:  # not a number, or more digits than Python converts
            raise argparse.ArgumentTypeError(f"{_clip(text)!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{_clip(str(value))} must be at most {maximum:,}")
        return value

    return parse


def _file_name(text: str) -> str:
    """An argparse type: a path that is not empty (an empty one would mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty name is not a file or folder")
    return text


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else f"{text[:limit]}..."


def _default(dest: str) -> Any:
    section, name = OPTION_FIELDS[dest]
    return next(f.default for f in dataclasses.fields(_SECTIONS[section]) if f.name == name)


_positive_int, _non_negative_int = int_at_least(1), int_at_least(0)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="vaegui", description="Train and explore variational autoencoders. "
                     "Run without a command to open the desktop app.")
    sub = parser.add_subparsers(dest="command", parser_class=OneLineParser)
    t = sub.add_parser("train", help="train a VAE headless")
    # No defaults here (None = not given): config_from_args takes them from the dataclasses,
    # and a resumed run from the checkpoint. Bounds live in the dataclasses' validation.
    d = _default
    t.add_argument("--dataset", help="mnist, fashion-mnist, kmnist, cifar10, shapes or folder:PATH "
                   f"(default {d('dataset')})")
    t.add_argument("--data-dir", help="dataset folder (default $VAEGUI_DATA_DIR, else the user cache)")
    t.add_argument("--model", choices=MODEL_FAMILIES, help=f"default {d('model')}")
    t.add_argument("--latent-dim", type=_positive_int, help=f"default {d('latent_dim')}")
    t.add_argument("--hidden", type=_positive_int, help=f"hidden width of the mlp ({d('hidden')})")
    t.add_argument("--likelihood", choices=LIKELIHOODS, help=f"default {d('likelihood')}")
    t.add_argument("--sigma", type=float, help="std of the gaussian likelihood (start value for "
                   f"gaussian-learned; default {d('sigma')})")
    t.add_argument("--kl", choices=KL_FORMS, help=f"default {d('kl')}")
    t.add_argument("--beta", type=float, help=f"KL weight (default {d('beta')})")
    t.add_argument("--warmup", type=_non_negative_int, help="KL warm-up steps (default 0)")
    t.add_argument("--epochs", type=_positive_int, help=f"total epochs (default {d('epochs')})")
    t.add_argument("--batch-size", type=_positive_int, help=f"default {d('batch_size')}")
    t.add_argument("--lr", type=float, help=f"Adam learning rate (default {d('lr')})")
    t.add_argument("--seed", type=_non_negative_int, help=f"default {d('seed')}")
    t.add_argument("--device", choices=DEVICES, help="default auto")
    t.add_argument("--out", type=_file_name, help="output folder for checkpoint.pt and metrics.jsonl "
                   "(default runs/<dataset>-<time>, or the resumed checkpoint's folder); a new "
                   "run refuses a folder that already holds a run")
    t.add_argument("--resume", metavar="CKPT", type=_file_name, help="continue training from a checkpoint (the "
                   "options that would change the model or the data must match it)")
    t.add_argument("--iw-samples", type=_non_negative_int,
                   help="also report the IWAE bound with K samples at the end")
    t.add_argument("--image-size", type=_positive_int, help=f"folder/shapes image side ({d('image_size')})")
    t.add_argument("--channels", type=int, choices=(1, 3), help="folder images: 1 or 3")
    t.add_argument("--train-limit", type=_positive_int, help="use only the first N training images")
    t.add_argument("--test-limit", type=_positive_int, help="use only the first N test images")
    t.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    t.add_argument("--offline", action="store_true", help="never download a missing dataset")
    e = sub.add_parser("eval", help="evaluate a checkpoint on its test set")
    e.add_argument("checkpoint", metavar="CKPT", type=_file_name)
    e.add_argument("--iw-samples", type=int_at_least(1, MAX_IW_SAMPLES), default=100,
                   help="importance samples K of the IWAE bound (default 100)")
    e.add_argument("--data-dir")
    e.add_argument("--device", choices=DEVICES, default="auto")
    e.add_argument("--offline", action="store_true", help="never download a missing dataset")
    g = sub.add_parser("gui", help="open the desktop app (the default)", add_help=False)
    g.add_argument("gui_args", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else list(argv))
    except KeyboardInterrupt:  # Ctrl-C while starting, loading, evaluating, or a second one
        print("vaegui: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if argv is None and threading.current_thread() is threading.main_thread():
            # The process is about to exit: a late Ctrl-C must not print a traceback now.
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("train", "eval", "gui", "-h", "--help"):
        return _gui(argv)
    args = build_parser().parse_args(argv)
    if args.command == "gui":
        return _gui(args.gui_args)
    try:
        return train(args) if args.command == "train" else evaluate_checkpoint(args)
    except ConfigError as exc:
        return _fail(_name_the_option(str(exc)))
    except VaeguiError as exc:
        return _fail(str(exc))
    except OSError as exc:  # a path given on the command line that the system refuses
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}")
    except (MemoryError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and not _out_of_memory(exc):
            raise
        return _fail(f"out of memory ({exc or type(exc).__name__}): try a smaller --batch-size, "
                     "--hidden or --image-size")


def _fail(message: str) -> int:
    """One line on stderr, whatever the message holds."""
    print(f"vaegui: error: {' '.join(message.split())}", file=sys.stderr)
    return EXIT_USER_ERROR


def _out_of_memory(exc: RuntimeError) -> bool:
    text = str(exc)
    return "out of memory" in text or "can't allocate memory" in text


def _gui(argv: list[str]) -> int:
    from .gui.app import main as gui_main  # Qt is imported only when the app is wanted

    return gui_main(argv)


# ---- train -----------------------------------------------------------------------------------
def config_from_args(args: argparse.Namespace, base: RunConfig | None = None,
                     only: tuple[str, ...] | None = None) -> RunConfig:
    """``base`` (default: the dataclasses' defaults) with the options given on the command line
    (of those in ``only``, when given). A bad value is a ConfigError naming the option."""
    changes: dict[str, dict[str, Any]] = {}
    for dest, (section, name) in OPTION_FIELDS.items():
        value = getattr(args, dest, None)
        if value is not None and (only is None or dest in only):
            changes.setdefault(section, {})[name] = value
    try:
        return (base or RunConfig()).replace(**changes)
    except ConfigError as exc:
        raise ConfigError(_name_the_option(str(exc))) from None


def _name_the_option(message: str) -> str:
    """"lr: inf is not a finite number" -> "argument --lr: inf is not a finite number"."""
    setting, sep, rest = message.partition(":")
    for dest, (_, name) in OPTION_FIELDS.items():
        if sep and setting in (name, dest):
            return f"argument --{dest.replace('_', '-')}:{rest}"
    return message


def resumed_config(args: argparse.Namespace, saved: RunConfig) -> RunConfig:
    """The checkpoint's settings with the options a resumed run may change; an option that
    would change the model or the data, given with another value, is a ConfigError."""
    from .core.data import dataset_key

    for dest, (section, name) in OPTION_FIELDS.items():
        value = getattr(args, dest, None)
        if value is None or dest in RESUMABLE:
            continue
        old = getattr(getattr(saved, section), name)
        same = dataset_key(value) == dataset_key(old) if dest == "dataset" else value == old
        if not same:
            raise ConfigError(f"argument --{dest.replace('_', '-')}: {_clip(str(value))} differs from "
                              f"the checkpoint's {old}, and a resumed run cannot change it "
                              "(start a new run instead)")
    return config_from_args(args, saved, only=RESUMABLE)


def train(args: argparse.Namespace, out: TextIO | None = None) -> int:
    # Imported here so that `vaegui --help` and argument errors answer without loading torch.
    from .core.checkpoint import load_checkpoint
    from .core.data import image_shape_of, load_dataset
    from .core.run_folder import RunFolder
    from .core.trainer import Trainer

    out = out or sys.stdout
    started = time.perf_counter()
    state = None
    if args.resume is not None:
        state = load_checkpoint(args.resume)
        config = resumed_config(args, RunConfig.from_dict(state["config"]))
        out_dir = Path(args.out) if args.out else Path(args.resume).parent
    else:
        config = config_from_args(args)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = config.data.dataset.replace(":", "-").replace("/", "_")
        out_dir = Path(args.out) if args.out else Path("runs") / f"{name}-{stamp}"
    # Refused at once rather than after minutes of loading: a model too big for memory, a
    # second writer, a folder that cannot be written.
    config.model.check_size(image_shape_of(config.data))
    with RunFolder(out_dir).open(resume=state is not None, resumed_checkpoint=args.resume) as folder:
        data = load_dataset(config.data, download=not args.offline)
        if data.skipped:
            print(f"vaegui: {data.skipped_summary()}", file=sys.stderr)
        trainer = Trainer(config, data, report_interval=0.2)
        if state is not None:
            trainer.load_state_dict(state, args.resume)
            _reconcile_metrics(folder, trainer.history, trainer.step)
            state = None
        with _StopOnCtrlC(trainer) as ctrl_c:
            last = _train_epochs(trainer, folder, out, progress=not args.no_progress)
            summary = _summary(trainer, last, folder, time.perf_counter() - started)
        print(json.dumps(summary), file=out, flush=True)
    if ctrl_c.pressed:
        print(f"vaegui: interrupted: stopped at step {trainer.step}, saved in {folder.checkpoint}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


class _StopOnCtrlC:
    """While active, Ctrl-C asks the trainer to stop (within one step, and it still saves); a
    second Ctrl-C raises KeyboardInterrupt, for a user who will not wait for the save."""

    def __init__(self, trainer):
        self.trainer, self.pressed, self._previous = trainer, 0, None

    def _on_sigint(self, *_: Any) -> None:
        self.pressed += 1
        self.trainer.stop()
        if self.pressed > 1:
            raise KeyboardInterrupt

    def __enter__(self) -> "_StopOnCtrlC":
        if threading.current_thread() is threading.main_thread():  # only there can signals be set
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _train_epochs(trainer, folder, out: TextIO, progress: bool):
    """Train, printing and recording each epoch; saves after each epoch and at the end.
    Returns the last progress snapshot."""
    from .core.checkpoint import save_checkpoint
    from .core.errors import TrainingError

    bar = _ProgressBar(sys.stderr, enabled=progress and sys.stderr.isatty())
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
                record = _epoch_record(p.eval, train_rows, p.kl_weight, ips)
                print(_epoch_line(record), file=out, flush=True)
                # The checkpoint first: a run killed between the two writes resumes from this
                # epoch, and a metrics line it never wrote is better than one written twice.
                save_checkpoint(folder.checkpoint, trainer.state_dict())
                folder.append_metrics(record)
    except TrainingError:
        bar.clear()
        if trainer.weights_finite():
            save_checkpoint(folder.checkpoint, trainer.state_dict())  # the last good weights
        raise
    finally:
        bar.clear()
    save_checkpoint(folder.checkpoint, trainer.state_dict())
    return last


def _summary(trainer, last, folder, seconds: float) -> dict[str, Any]:
    final = trainer.history.evals[-1] if trainer.history.evals else None
    if final is None or final.step != trainer.step:  # stopped mid-epoch: evaluate what we have
        final = trainer.evaluate_test(trainer.step // trainer.steps_per_epoch)
    summary = {
        "test_elbo": final.neg_elbo, "test_recon": final.recon, "test_kl": final.kl,
        "test_bits_per_dim": final.bits_per_dim, "active_units": final.active_units,
        "epochs": trainer.step / trainer.steps_per_epoch, "steps": trainer.step,
        "seconds": seconds,
        "images_per_s": (last.images_seen / last.train_seconds) if last and last.train_seconds else 0.0,
        "device": trainer.device_name, "stopped": bool(last and last.stopped),
        "checkpoint": str(folder.checkpoint), "metrics": str(folder.metrics),
    }
    if final.nll_iw is not None:
        summary.update(test_nll_iw=final.nll_iw, iw_samples=final.iw_samples)
    return summary


def _epoch_record(e, train_rows, kl_weight: float, images_per_s: float | None) -> dict[str, Any]:
    """The metrics.jsonl line of the epoch that evaluation ``e`` closed."""
    train_mean = train_rows.mean(0) if len(train_rows) else [float("nan")] * 3
    return {"epoch": e.epoch, "step": e.step, "train_recon": float(train_mean[0]),
            "train_kl": float(train_mean[1]), "train_elbo": float(train_mean[2]),
            "test_elbo": e.neg_elbo, "test_recon": e.recon, "test_kl": e.kl,
            "test_bits_per_dim": e.bits_per_dim, "active_units": e.active_units,
            "kl_weight": kl_weight, "images_per_s": images_per_s}


def _reconcile_metrics(folder, history, step: int) -> None:
    """Make metrics.jsonl hold each epoch of a resumed checkpoint once: drop the lines of epochs
    after it (they run again), and rebuild from its history the line of an epoch whose
    checkpoint was saved but whose line was not (a run killed between the two writes; its
    images/s is unknown)."""
    records = [r for r in folder.read_metrics() if isinstance(r.get("step"), int) and r["step"] <= step]
    have = {r.get("epoch") for r in records}
    previous = 0
    for e in history.evals:
        if e.epoch not in have and 0 < e.step <= step:
            rows = (history.steps > previous) & (history.steps <= e.step)
            weights = history.kl_weights[rows]
            records.append(_epoch_record(e, history.losses[rows], float(weights[-1]) if len(weights)
                                         else float("nan"), None))
        previous = e.step
    folder.write_metrics(sorted(records, key=lambda r: r["step"]))


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
    from .core.trainer import check_iw_memory

    out = out or sys.stdout
    state = load_checkpoint(args.checkpoint)
    config, model = model_from_checkpoint(state, args.checkpoint)
    if args.data_dir:
        config = config.replace(data={"data_dir": args.data_dir})
    data = load_dataset(config.data, download=not args.offline)
    if data.skipped:
        print(f"vaegui: {data.skipped_summary()}", file=sys.stderr)
    if tuple(data.image_shape) != tuple(model.image_shape):
        from .core.errors import CheckpointError

        raise CheckpointError(args.checkpoint, f"trained on {model.image_shape} images, "
                                               f"the data has {data.image_shape}")
    device = resolve_device(args.device)
    check_iw_memory(config.model, data.image_shape, args.iw_samples, device.type)
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
