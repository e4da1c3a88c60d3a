"""Command line: ``vaegui train``, ``vaegui eval``, and ``vaegui`` alone for the desktop app.

User errors (bad argument, missing data, bad checkpoint, unusable output folder) print one line
on stderr and exit 2. Ctrl-C prints one line and exits 130 (128 + SIGINT, as a shell reports a
process that Ctrl-C ended); `vaegui train` first stops within a step and saves, a second Ctrl-C
gives up waiting (the last saved checkpoint stays intact).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from .cli_options import (EXIT_USER_ERROR, OneLineParser, build_parser, config_from_args,
                          int_at_least, name_the_option, resumed_config)
from .core.config import RunConfig
from .core.errors import ConfigError, VaeguiError

__all__ = ["EXIT_INTERRUPTED", "EXIT_USER_ERROR", "OneLineParser", "int_at_least", "main"]  # the app uses these
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else list(argv))
    except KeyboardInterrupt:  # Ctrl-C while starting, loading, evaluating, or a second one
        print("vaegui: interrupted", file=sys.stderr)
        if argv is None:
            # A Ctrl-C that landed in code a library ran through PyRun_* (torch's import does)
            # makes Python kill itself with SIGINT at exit, whatever we return: exit now, with
            # the code a shell reports for Ctrl-C, so that every Ctrl-C ends the same way.
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()
            os._exit(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    finally:
        if argv is None and threading.current_thread() is threading.main_thread():
            # The process is about to exit: a late Ctrl-C must not print a traceback now.
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("train", "eval", "export", "gui", "-h", "--help"):
        return _gui(argv)
    if argv[0] == "gui":  # argparse's REMAINDER would refuse options after the command
        return _gui(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        if args.command == "export":
            from .export_cli import run as export

            return export(args)
        return train(args) if args.command == "train" else evaluate_checkpoint(args)
    except ConfigError as exc:
        return _fail(name_the_option(str(exc)))
    except VaeguiError as exc:
        return _fail(str(exc))
    except BrokenPipeError:  # the reader of our output went away (`vaegui train ... | head`)
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        except (OSError, ValueError):  # stdout is not a file (redirected in-process)
            pass
        return _fail("the output was closed before the command finished")
    except OSError as exc:  # a path given on the command line that the system refuses
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}")
    except (MemoryError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and not _out_of_memory(exc):
            from .core.checkpoint import interrupted

            if interrupted(exc):  # a library turned a Ctrl-C into its own error
                raise KeyboardInterrupt from None
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
def train(args: argparse.Namespace, out: TextIO | None = None) -> int:
    # Imported here so that `vaegui --help` and argument errors answer without loading torch.
    from .core.checkpoint import load_checkpoint
    from .core.data import image_shape_of, load_dataset
    from .core.run_folder import RunFolder, run_name
    from .core.run_writer import RunWriter
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
        out_dir = Path(args.out) if args.out else Path("runs") / run_name(config.data.dataset)
    # Refused at once rather than after minutes of loading: a model too big for memory, a
    # second writer, a folder that cannot be written.
    config.model.check_size(image_shape_of(config.data))
    with RunFolder(out_dir).open(resume=state is not None, resumed_checkpoint=args.resume) as folder:
        data = load_dataset(config.data, download=not args.offline)
        if data.skipped:
            print(f"vaegui: {data.skipped_summary()}", file=sys.stderr)
        trainer = Trainer(config, data, report_interval=0.2, keep_test_means=True)
        if state is not None:
            trainer.load_state_dict(state, args.resume)
            state = None
        writer = RunWriter(folder, trainer)  # a resumed run's files are made to match its checkpoint
        with _StopOnCtrlC(trainer) as ctrl_c:
            last = _train_epochs(trainer, writer, out, progress=not args.no_progress)
            summary = _summary(trainer, last, folder, time.perf_counter() - started)
            ctrl_c.finished()  # saved: a Ctrl-C now changes nothing, and must not add a line
            writer.close()
            print(json.dumps(summary), file=out, flush=True)
            if ctrl_c.pressed:
                print(f"vaegui: interrupted: stopped at step {trainer.step}, saved in "
                      f"{folder.checkpoint}", file=sys.stderr)
    return EXIT_INTERRUPTED if ctrl_c.pressed else 0


class _StopOnCtrlC:
    """While active, Ctrl-C asks the trainer to stop (within one step, and it still saves); a
    second Ctrl-C raises KeyboardInterrupt, for a user who will not wait for the save."""

    def __init__(self, trainer):
        self.trainer, self.pressed, self._previous = trainer, 0, None

    def _on_sigint(self, *_: Any) -> None:
        self.pressed += 1
        if self.pressed > 1:
            # Not stop() again: this press may have interrupted the first one's stop(), inside
            # the lock it holds, and taking that lock again would deadlock.
            raise KeyboardInterrupt
        self.trainer.stop()

    def __enter__(self) -> "_StopOnCtrlC":
        if threading.current_thread() is threading.main_thread():  # only there can signals be set
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def finished(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, lambda *_: None)

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _train_epochs(trainer, writer, out: TextIO, progress: bool):
    """Train, printing each epoch's line as the run folder's writer records it; saves at the
    end. Returns the last progress snapshot."""
    from .core.errors import TrainingError

    bar = _ProgressBar(sys.stderr, enabled=progress and sys.stderr.isatty())
    last = None
    try:
        for p in trainer.run():
            last = p
            bar.update(p)
            if (record := writer.record(p)) is not None:
                bar.clear()
                print(_epoch_line(record), file=out, flush=True)
    except TrainingError:
        bar.clear()
        if trainer.weights_finite():
            writer.save()  # the last good weights
        raise
    finally:
        bar.clear()
    writer.save()
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
