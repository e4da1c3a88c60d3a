"""`vaegui train`: train a VAE headless into a run folder, printing a line per epoch and a JSON
summary at the end.

Ctrl-C stops within a step and saves, then exits 130; a second Ctrl-C gives up waiting (the last
saved checkpoint stays intact). Under torchrun (``torchrun --nproc-per-node N -m vaegui train
...``) every rank trains and rank 0 alone prints and writes.
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

from ..core.config import RunConfig
from ..core.ending import stop_word
from ..core.errors import EXIT_INTERRUPTED, ConfigError, Reported
from ..core.progress import format_duration
from .options import add_config_options, config_from_args, file_name, report, resumed_config

TENSORBOARD_DIR = "tensorboard"  # in the run folder
TENSORBOARD_MISSING = "--tensorboard needs the tensorboard package: pip install 'vaegui[tensorboard]'"


def add_parser(sub) -> None:
    """The `train` command's options (sub: the parser's subparsers)."""
    t = sub.add_parser("train", help="train a VAE headless")
    add_config_options(t)
    t.add_argument("--out", type=file_name, help="output folder for checkpoint.pt and metrics.jsonl "
                   "(default runs/<dataset>-<time>, or the resumed checkpoint's folder); a new "
                   "run refuses a folder that already holds a run")
    t.add_argument("--resume", metavar="CKPT", type=file_name, help="continue training from a checkpoint "
                   "or a run folder (its latest checkpoint); the options that would change the "
                   "model or the data must match it")
    t.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    t.add_argument("--tensorboard", action="store_true", help="also write the metrics as "
                   "TensorBoard event files into <run folder>/tensorboard (needs the tensorboard "
                   "package)")
    t.add_argument("--offline", action="store_true", help="never download a missing dataset")


def run(args: argparse.Namespace, out: TextIO | None = None, ends_process: bool = False) -> int:
    """The `train` command; ``ends_process``: the process exits when it returns (a Ctrl-C after
    the save is then ignored rather than reported)."""
    # Imported here so that `vaegui --help` and argument errors answer without loading torch.
    from ..core.distributed import (Distributed, PeerFailed, all_or_none, peer_lost, process_group,
                                   wait_for_all)
    from ..core.errors import TrainingError
    from ..core.optimizer import prepare_in_background
    from ..core.run_writer import RunWriter

    prepare_in_background()  # torch.optim's import, while the folder, data and model are made
    started = time.perf_counter()
    with process_group(Distributed.from_env()) as dist, contextlib.ExitStack() as stack:
        out = (out or sys.stdout) if dist.is_main else stack.enter_context(open(os.devnull, "w"))
        with all_or_none(dist, report=report):  # a rank that cannot start stops them all
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
                    report(exc)  # after saving the last good weights
                wait_for_all(dist)  # torchrun ends the others when one rank leaves with an error
                raise Reported from None
            except RuntimeError as exc:
                if not (dist.enabled and peer_lost(exc)):
                    raise
                if dist.is_main:  # else rank 0 is the one gone, and torchrun says so
                    report(PeerFailed(f"another rank left the run at step {trainer.step + 1}; "
                                       f"{folder.checkpoint} holds the last finished epoch"))
                raise Reported from None
            if dist.is_main:
                summary = _summary(trainer, last, folder, time.perf_counter() - started)
                ctrl_c.finished()  # saved: a Ctrl-C now changes nothing, and must not add a line
                writer.close()
                print(json.dumps(summary), file=out, flush=True)
                if ctrl_c.pressed:
                    print(f"vaegui: {stop_word()}: stopped at step {trainer.step}, saved in "
                          f"{folder.checkpoint}", file=sys.stderr)
            if dist.enabled and last.stopped:  # every rank stopped at the same step
                wait_for_all(dist)  # for rank 0 to save: a rank leaving with 130 ends the others
    if not dist.is_main:
        return EXIT_INTERRUPTED if last.stopped else 0
    return EXIT_INTERRUPTED if ctrl_c.pressed else 0


def _start(args: argparse.Namespace, dist, stack: contextlib.ExitStack):
    """Settings, run folder (rank 0's), data and trainer, resumed if asked; the TensorBoard log
    if asked. Returns (run folder or None, trainer, TensorBoard log or None)."""
    from ..core import tensorboard_log
    from ..core.dataset_loader import image_shape_of, load_dataset
    from ..core.run_folder import RunFolder, run_name
    from ..core.run_paths import run_of
    from ..core.run_reader import load_run_checkpoint
    from ..core.trainer import Trainer

    if args.tensorboard and dist.is_main and not tensorboard_log.available():
        raise ConfigError(TENSORBOARD_MISSING)
    state = resumed = None
    if args.resume is not None:
        resumed, run_dir = run_of(args.resume)  # a run folder means its latest checkpoint
        state = load_run_checkpoint(resumed, run_dir)  # checked against its run.json
        config = resumed_config(args, RunConfig.from_dict(state["config"]))
        out_dir = Path(args.out) if args.out else resumed.parent
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
                                                             resumed_checkpoint=resumed))
    data = load_dataset(config.data, download=not args.offline)
    if data.skipped and dist.is_main:
        print(f"vaegui: {data.skipped_summary()}", file=sys.stderr)
    trainer = Trainer(config, data, report_interval=0.2, keep_test_means=dist.is_main, dist=dist)
    if state is not None:
        trainer.load_state_dict(state, resumed)
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
    from ..core.errors import TrainingError

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
    return {
        **final.test_record(),
        "epochs": trainer.step / trainer.steps_per_epoch, "steps": trainer.step,
        "seconds": seconds,
        "images_per_s": (last.images_seen / last.train_seconds) if last and last.train_seconds else 0.0,
        "device": trainer.device_name, "threads": last.threads if last else 0,
        "stopped": bool(last and last.stopped),
        "checkpoint": str(folder.checkpoint), "metrics": str(folder.metrics),
    }


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
        left = f"  {format_duration(p.seconds_left)} left" if p.seconds_left else ""
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {p.fraction:4.0%}  "
                          f"epoch {p.shown_epoch}/{p.epochs}  {loss}"
                          f"{p.images_per_s:,.0f} img/s  {_threads(p.threads)}{left}\033[K")
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False
