"""Command line: ``vaegui train``, ``vaegui eval``, ``vaegui export`` (export_cli.py), and
``vaegui`` alone for the desktop app.

User errors (bad argument, missing data, bad checkpoint, unusable output folder) print one line
on stderr and exit 2. Ctrl-C prints one line and exits 130 (128 + SIGINT, as a shell reports a
process that Ctrl-C ended); `vaegui train` first stops within a step and saves, a second Ctrl-C
gives up waiting (the last saved checkpoint stays intact).

Under torchrun (``torchrun --nproc-per-node N -m vaegui train ...``) every rank trains and rank 0
alone prints and writes; another rank prints only an error of its own, as one line naming its rank.
"""

from __future__ import annotations

import argparse
import contextlib
import io
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
from .core.errors import ConfigError, Reported, VaeguiError

__all__ = ["EXIT_INTERRUPTED", "EXIT_USER_ERROR", "OneLineParser", "fail", "int_at_least", "main"]  # the app uses these
EXIT_INTERRUPTED = 130
TENSORBOARD_DIR = "tensorboard"  # in the run folder
TENSORBOARD_MISSING = "--tensorboard needs the tensorboard package: pip install 'vaegui[tensorboard]'"


def main(argv: list[str] | None = None) -> int:
    try:
        code = _run(argv)
    except KeyboardInterrupt:
        if argv is None:
            # A second Ctrl-C that landed while _run ended after the first (before it could
            # ignore SIGINT), which has printed its line: end as a Ctrl-C ends, without a
            # traceback and without Python killing itself by SIGINT.
            _exit_now(EXIT_INTERRUPTED)
        raise
    if argv is None and sys.argv[1:2] and sys.argv[1] in COMMANDS:
        # The command is done, its files closed and its output written: skip Python's
        # finalisation, which in a process that has imported torch takes 0.55-0.7 s here (a
        # twentieth of a 3-epoch `vaegui train`) tearing down torch's modules. The app's
        # process ends normally (Qt and its settings are finalised on the way out).
        _exit_now(code)
    return code


def _run(argv: list[str] | None) -> int:
    """The command of ``argv`` (None: this process's arguments), and what a Ctrl-C during it means."""
    try:
        return _main(sys.argv[1:] if argv is None else list(argv), ends_process=argv is None)
    except KeyboardInterrupt:  # Ctrl-C while starting, loading, evaluating, or a second one
        if argv is None and threading.current_thread() is threading.main_thread():
            # The process ends here: a further Ctrl-C now would escape this handler, and Python
            # would end by SIGINT instead of saying so in one line.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        if _rank() == 0:
            print("vaegui: interrupted", file=sys.stderr)
        if argv is None:
            # A Ctrl-C that landed in code a library ran through PyRun_* (torch's import does)
            # makes Python kill itself with SIGINT at exit, whatever we return: exit now, with
            # the code a shell reports for Ctrl-C, so that every Ctrl-C ends the same way.
            _exit_now(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    finally:
        if argv is None and threading.current_thread() is threading.main_thread():
            # The process is about to exit: a late Ctrl-C must not print a traceback now.
            signal.signal(signal.SIGINT, signal.SIG_IGN)


COMMANDS = ("train", "eval", "export", "sweep", "-h", "--help")  # anything else opens the app


def _exit_now(code: int) -> None:
    """End the process at once with ``code``, after flushing what it printed."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _main(argv: list[str], ends_process: bool = False) -> int:
    if not argv or argv[0] not in COMMANDS:
        # "gui" is dropped here: argparse's REMAINDER would refuse options after the command.
        return _gui(argv[1:] if argv and argv[0] == "gui" else argv)
    if argv[0] == "sweep":  # its options are train's, each a list: sweep_cli parses them
        from .sweep_cli import main as sweep

        return sweep(argv[1:])
    with _quiet_unless(_rank() == 0):  # every rank has the same command line: rank 0 answers it
        args = build_parser().parse_args(argv)
    try:
        if args.command == "export":
            from .export_cli import run as export

            return export(args)
        if args.command == "train":
            return train(args, ends_process=ends_process)
        return evaluate_checkpoint(args)
    except Reported:  # a multi-process run whose error one of its ranks has printed
        return EXIT_USER_ERROR
    except BrokenPipeError:  # the reader of our output went away (`vaegui train ... | head`)
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        except (OSError, ValueError):  # stdout is not a file (redirected in-process)
            pass
        return fail("the output was closed before the command finished")
    except Exception as exc:
        if isinstance(exc, RuntimeError) and not _out_of_memory(exc):
            from .core.checkpoint import interrupted

            if interrupted(exc):  # a library turned a Ctrl-C into its own error
                raise KeyboardInterrupt from None
        if not _report(exc):
            raise
        return EXIT_USER_ERROR


def _report(exc: BaseException) -> bool:
    """Print the one line of a user's error; False for anything else (a bug, whose traceback
    is wanted)."""
    if isinstance(exc, ConfigError):
        message = name_the_option(str(exc))
    elif isinstance(exc, VaeguiError):
        message = str(exc)
    elif isinstance(exc, OSError):  # a path given on the command line that the system refuses
        message = f"{exc.filename}: " if exc.filename else ""
        message += f"{exc.strerror or exc}"
    elif isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and _out_of_memory(exc)):
        message = (f"out of memory ({exc or type(exc).__name__}): try a smaller --batch-size, "
                   "--hidden or --image-size")
    else:
        return False
    fail(message)
    return True


def fail(message: str) -> int:
    """One line on stderr, whatever the message holds (naming the rank under torchrun)."""
    rank = f"rank {_rank()}: " if _rank() else ""
    print(f"vaegui: error: {rank}{' '.join(message.split())}", file=sys.stderr)
    return EXIT_USER_ERROR


def _rank() -> int:
    """This process's rank under torchrun (0 without it). Read from the environment as
    core.distributed does, because the answer is needed before torch is imported."""
    try:
        return int(os.environ.get("RANK", "0")) if "WORLD_SIZE" in os.environ else 0
    except ValueError:
        return 0


def _quiet_unless(speak: bool):
    if speak:
        return contextlib.nullcontext()
    quiet = contextlib.ExitStack()
    quiet.enter_context(contextlib.redirect_stdout(io.StringIO()))
    quiet.enter_context(contextlib.redirect_stderr(io.StringIO()))
    return quiet


def _out_of_memory(exc: RuntimeError) -> bool:
    text = str(exc)
    return "out of memory" in text or "can't allocate memory" in text


def _gui(argv: list[str]) -> int:
    pressed = []

    def on_sigint(*_: Any) -> None:
        pressed.append(True)
        raise KeyboardInterrupt

    # A Ctrl-C while PySide6 loads its modules comes back from shiboken as an ImportError
    # ("could not import module PySide6.QtGui"): note the press, to report it as the interrupt
    # it is.
    previous = signal.signal(signal.SIGINT, on_sigint) if threading.current_thread() is threading.main_thread() else None
    try:
        from .gui.app import main as gui_main  # Qt is imported only when the app is wanted
    except ImportError:
        if pressed:
            raise KeyboardInterrupt from None
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if pressed:  # the import went on: a library's own import fallback caught the interrupt
        raise KeyboardInterrupt
    return gui_main(argv)


# ---- train -----------------------------------------------------------------------------------
def train(args: argparse.Namespace, out: TextIO | None = None, ends_process: bool = False) -> int:
    """The `train` command; ``ends_process``: the process exits when it returns (a Ctrl-C after
    the save is then ignored rather than reported)."""
    # Imported here so that `vaegui --help` and argument errors answer without loading torch.
    from .core.distributed import (Distributed, PeerFailed, all_or_none, peer_lost, process_group,
                                   wait_for_all)
    from .core.errors import TrainingError
    from .core.run_writer import RunWriter

    started = time.perf_counter()
    with process_group(Distributed.from_env()) as dist, contextlib.ExitStack() as stack:
        out = (out or sys.stdout) if dist.is_main else stack.enter_context(open(os.devnull, "w"))
        with all_or_none(dist, report=_report):  # a rank that cannot start stops them all
            folder, trainer, tensorboard = _start(args, dist, stack)
        # Once every rank has started: a run that could not start leaves no files behind. A
        # resumed run's files are made to match its checkpoint.
        writer = RunWriter(folder, trainer) if folder is not None else None
        with _StopOnCtrlC(trainer, ends_process) as ctrl_c:
            try:
                last = _train_epochs(trainer, writer, out, tensorboard,
                                     progress=not args.no_progress and dist.is_main)
            except TrainingError as exc:  # every rank meets it at the same step
                if not dist.enabled:
                    raise
                if dist.is_main:
                    _report(exc)  # after saving the last good weights
                wait_for_all(dist)  # torchrun ends the others when one rank leaves with an error
                raise Reported from None
            except RuntimeError as exc:
                if not (dist.enabled and peer_lost(exc)):
                    raise
                if dist.is_main:  # else rank 0 is the one gone, and torchrun says so
                    _report(PeerFailed(f"another rank left the run at step {trainer.step + 1}; "
                                       f"{folder.checkpoint} holds the last finished epoch"))
                raise Reported from None
            if dist.is_main:
                summary = _summary(trainer, last, folder, time.perf_counter() - started)
                ctrl_c.finished()  # saved: a Ctrl-C now changes nothing, and must not add a line
                writer.close()
                print(json.dumps(summary), file=out, flush=True)
                if ctrl_c.pressed:
                    print(f"vaegui: interrupted: stopped at step {trainer.step}, saved in "
                          f"{folder.checkpoint}", file=sys.stderr)
            if dist.enabled and last.stopped:  # every rank stopped at the same step
                wait_for_all(dist)  # for rank 0 to save: a rank leaving with 130 ends the others
    if not dist.is_main:
        return EXIT_INTERRUPTED if last.stopped else 0
    return EXIT_INTERRUPTED if ctrl_c.pressed else 0


def _start(args: argparse.Namespace, dist, stack: contextlib.ExitStack):
    """Settings, run folder (rank 0's), data and trainer, resumed if asked; the TensorBoard log
    if asked. Returns (run folder or None, trainer, TensorBoard log or None)."""
    from .core import tensorboard_log
    from .core.checkpoint import load_checkpoint
    from .core.data import image_shape_of, load_dataset
    from .core.run_folder import RunFolder, run_name
    from .core.trainer import Trainer

    if args.tensorboard and dist.is_main and not tensorboard_log.available():
        raise ConfigError(TENSORBOARD_MISSING)
    state = None
    if args.resume is not None:
        state = load_checkpoint(args.resume)
        config = resumed_config(args, RunConfig.from_dict(state["config"]))
        out_dir = Path(args.out) if args.out else Path(args.resume).parent
    else:
        config = config_from_args(args)
        out_dir = Path(args.out) if args.out else Path("runs") / run_name(config.data.dataset)
    # Refused at once rather than after minutes of loading: a batch the ranks cannot share, a
    # model too big for memory, a second writer, a folder that cannot be written.
    dist.local_batch_size(config.train.batch_size)
    config.model.check_size(image_shape_of(config.data))
    folder = None
    if dist.is_main:
        folder = stack.enter_context(RunFolder(out_dir).open(resume=state is not None,
                                                             resumed_checkpoint=args.resume))
    data = load_dataset(config.data, download=not args.offline)
    if data.skipped and dist.is_main:
        print(f"vaegui: {data.skipped_summary()}", file=sys.stderr)
    trainer = Trainer(config, data, report_interval=0.2, keep_test_means=dist.is_main, dist=dist)
    if state is not None:
        trainer.load_state_dict(state, args.resume)
        state = None
    tensorboard = None
    if args.tensorboard and folder is not None:
        tensorboard = stack.enter_context(tensorboard_log.TensorBoardLog(
            folder.path / TENSORBOARD_DIR, resumed_at=trainer.step))
    return folder, trainer, tensorboard


class _StopOnCtrlC:
    """While active, Ctrl-C asks the trainer to stop (within one step, and it still saves); a
    second Ctrl-C raises KeyboardInterrupt, for a user who will not wait for the save. After
    finished() a Ctrl-C changes nothing; if ``ends_process``, that lasts to the exit, since
    restoring Python's handler would let a late second press (a busy machine can deliver it
    after the save) report the finished run as interrupted in a second line."""

    def __init__(self, trainer, ends_process: bool = False):
        self.trainer, self.pressed, self._previous = trainer, 0, None
        self._ends_process, self._finished = ends_process, False

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
        self._finished = True
        if self._previous is not None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None and not (self._finished and self._ends_process):
            signal.signal(signal.SIGINT, self._previous)


def _train_epochs(trainer, writer, out: TextIO, tensorboard, progress: bool):
    """Train, printing each epoch's line as the run folder's writer records it; saves at the
    end (rank 0: the other ranks of a multi-process run have no ``writer`` and see no
    evaluations). Returns the last progress snapshot."""
    from .core.errors import TrainingError

    bar = _ProgressBar(sys.stderr, enabled=progress and sys.stderr.isatty())
    last = None
    try:
        for p in trainer.run():
            last = p
            bar.update(p)
            if tensorboard is not None:
                tensorboard.log(p)
            if writer is not None and (record := writer.record(p)) is not None:
                bar.clear()
                print(_epoch_line(record, p.threads), file=out, flush=True)
    except TrainingError:
        bar.clear()
        if writer is not None and trainer.weights_finite():
            writer.save()  # the last good weights
        raise
    finally:
        bar.clear()
    if writer is not None:
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
        "device": trainer.device_name, "threads": last.threads if last else 0,
        "stopped": bool(last and last.stopped),
        "checkpoint": str(folder.checkpoint), "metrics": str(folder.metrics),
    }
    if final.nll_iw is not None:
        summary.update(test_nll_iw=final.nll_iw, iw_samples=final.iw_samples)
    return summary


def _epoch_line(r: dict[str, Any], threads: int) -> str:
    return (f"epoch {r['epoch']:>3}  train -ELBO {r['train_elbo']:8.2f}  test -ELBO "
            f"{r['test_elbo']:8.2f}  recon {r['test_recon']:8.2f}  KL {r['test_kl']:6.2f}  "
            f"{r['test_bits_per_dim']:.4f} bits/dim  {r['images_per_s']:,.0f} images/s  "
            f"{_threads(threads)}")


def _threads(count: int) -> str:
    return f"{count} thread{'s' * (count != 1)}"


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
                          f"{p.images_per_s:,.0f} img/s  {_threads(p.threads)}{left}\033[K")
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
