"""`vaegui sweep`: the options of `vaegui train`, any of which may take a comma-separated list;
every combination trains in a folder of its own under ``--out`` (see core/sweep.py).

Each run is a `vaegui train` process, so a run that crashes or runs out of memory ends that run
only. This process never imports torch: it plans, starts, watches and writes the summary.

Ctrl-C stops the sweep: each running run gets one SIGINT (it stops within a step and saves), a
second Ctrl-C passes a second one on (the runs give up waiting for their save). The runs live in
sessions of their own, so a Ctrl-C at the terminal reaches them only through the sweep, once; on
Linux a run also gets SIGINT if the sweep is killed, and saves. Running the same command again
continues: finished runs are skipped, stopped ones resume from their checkpoints.

Exit status: 0 when every run finished, 1 when one failed, 2 for a user error, 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

from ..core import sweep as core
from ..core.run_folder import writer_busy
from ..core.errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, ConfigError, VaeguiError
from .options import OPTION_FIELDS, OneLineParser, config_from_args, file_name, int_at_least
from .train import add_parser as add_train_parser
EXIT_RUN_FAILED = 1
POLL_S = 0.1  # how often the running runs are checked
WRITER_WAIT_S = 120.0  # the longest a run waits for a killed sweep's run to finish saving its folder
NOT_SWEPT = {"--data-dir"}  # a path may hold a comma
REFUSED = {"--resume": "a sweep resumes its runs itself (run the same sweep again)",
           "--out": "give the sweep's folder once"}
OWN_FLAGS = ("--no-progress",)  # every run gets these; the sweep prints its own lines


def build_parser() -> OneLineParser:
    p = OneLineParser(prog="vaegui sweep", allow_abbrev=False, description=(
        "Train a grid of runs: every option of `vaegui train` may take a comma-separated list of "
        "values, and each combination trains in DIR/<setting=value,...>. Running the same sweep "
        "again skips finished runs and resumes stopped ones."),
        epilog="example: vaegui sweep --dataset mnist --beta 0.5,1,4 --latent-dim 2,16 --epochs 5 --out DIR")
    p.add_argument("--out", required=True, type=file_name, metavar="DIR", help="the sweep's folder")
    p.add_argument("--parallel", type=int_at_least(1), default=1, metavar="N",
                   help="runs at once (default 1), the cores divided between them")
    return p


def add_parser(sub) -> None:
    """`vaegui sweep` in `vaegui --help`; the sweep parses its own options (train's, each a list)."""
    sub.add_parser("sweep", add_help=False, help="train a grid of runs: any train option may take "
                   "a comma-separated list (vaegui sweep --help)")


def main(argv: list[str], out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args, rest = build_parser().parse_known_args(argv)
    try:
        axes, flags = axes_from(rest)
        runs = core.plan(axes)
    except (ValueError, ConfigError) as exc:
        return _fail(str(exc))
    cores = _available_cpus()
    parallel = min(args.parallel, cores, len(runs))
    share = core.threads_per_run(parallel, cores)
    try:
        configs = {r.name: _config(r, share) for r in runs}
    except ConfigError as exc:
        return _fail(str(exc))
    if share is not None and not any(a.setting == "threads" for a in axes):
        flags = [*flags, "--threads", str(share)]
    folder = Path(args.out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _fail(f"{folder}: cannot create it ({exc.strerror or exc})")
    sweep = Sweep(folder, runs, configs, flags, parallel, out)
    try:
        return sweep.run()
    except VaeguiError as exc:
        return _fail(str(exc))
    except OSError as exc:  # a log that cannot be written, a process that cannot be started
        return _fail(f"{exc.filename or folder}: {exc.strerror or exc}")


def _fail(message: str) -> int:
    print(f"vaegui sweep: error: {' '.join(message.split())}", file=sys.stderr)
    return EXIT_USER_ERROR


def _available_cpus() -> int:
    from ..core.thread_governor import available_cpus

    return available_cpus()


# ---- options -> axes ---------------------------------------------------------------------------
def axes_from(tokens: list[str]) -> tuple[list[core.Axis], list[str]]:
    """`vaegui train`'s options, each value a list: one Axis per option with a value, in the
    order given, and the flags (options without a value). Each value is checked by `vaegui
    train`'s own parser, so a bad one is reported as train reports it."""
    axes, flags, seen = [], list(OWN_FLAGS), set()
    k = 0
    while k < len(tokens):
        option, sep, value = tokens[k].partition("=")
        if not option.startswith("--"):
            raise ValueError(f"unexpected value {tokens[k]!r} (options take the form --name value)")
        if option in REFUSED:
            raise ValueError(f"argument {option}: {REFUSED[option]}")
        if not sep and k + 1 < len(tokens) and not tokens[k + 1].startswith("--"):
            value, sep, k = tokens[k + 1], "=", k + 1
        k += 1
        if option in seen:
            raise ValueError(f"argument {option}: given twice (list its values once, comma-separated)")
        seen.add(option)
        if not sep:
            _parse_train([option])  # a flag train knows
            if option not in flags:
                flags.append(option)
            continue
        texts = [value] if option in NOT_SWEPT else _split(option, value)
        dest, values = _parsed(option, texts)
        if dest not in OPTION_FIELDS:
            raise ValueError(f"argument {option}: not a setting a sweep can vary")
        axes.append(core.Axis(OPTION_FIELDS[dest][1], option, tuple(texts), tuple(values)))
    return axes, flags


def _split(option: str, value: str) -> list[str]:
    try:
        texts = core.split_list(value)
    except ValueError as exc:
        raise ValueError(f"argument {option}: {exc}") from None
    return list(dict.fromkeys(texts))  # a value listed twice is one run


def _parsed(option: str, texts: list[str]) -> tuple[str, list[Any]]:
    """(dest, parsed values) of an option's texts."""
    defaults = vars(_parse_train([]))
    dest, values = None, []
    for text in texts:
        parsed = vars(_parse_train([option, text]))
        changed = [d for d, v in parsed.items() if v != defaults.get(d)]
        if len(changed) != 1:
            raise ValueError(f"argument {option}: not an option of vaegui train that takes a value")
        dest = changed[0]
        values.append(parsed[dest])
    return dest, values


def _train_parser() -> argparse.ArgumentParser:
    """`vaegui train`'s own parser: each swept value is checked as train checks it."""
    parser = OneLineParser(prog="vaegui")
    add_train_parser(parser.add_subparsers(dest="command", parser_class=OneLineParser))
    return parser


def _parse_train(tokens: list[str]) -> argparse.Namespace:
    """`vaegui train`'s parse of ``tokens``; its one-line error becomes a ValueError."""
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            return _train_parser().parse_args(["train", *tokens])
    except SystemExit:
        message = errors.getvalue().strip().splitlines()[-1] if errors.getvalue().strip() else "bad option"
        raise ValueError(message.split("error: ", 1)[-1]) from None


def _config(run: core.PlannedRun, share: int | None):
    """The run's settings, so that a bad combination is refused before anything trains."""
    args = _parse_train(list(run.args))
    config = config_from_args(args)
    if share is not None and config.train.threads != "auto" and int(config.train.threads) > share:
        raise ConfigError(f"argument --threads: {config.train.threads} threads for each of the runs "
                          f"at once would oversubscribe the cores ({share} each at most)")
    return config


# ---- running ---------------------------------------------------------------------------------
@dataclass
class _Active:
    run: core.PlannedRun
    process: subprocess.Popen
    log: IO[str]
    started: float
    before_s: float  # training time of earlier attempts (a resumed run)
    stops_sent: int = 0


@dataclass
class Sweep:
    folder: Path
    runs: list[core.PlannedRun]
    configs: dict[str, Any]
    flags: list[str]
    parallel: int
    out: TextIO
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    presses: int = 0

    def __post_init__(self) -> None:
        self.swept = sorted({k for r in self.runs for k in r.settings})
        self.iwae = any(c.train.iw_samples for c in self.configs.values())
        self.seconds = core.previous_seconds(core.read_summary(self.folder))
        self.active: dict[str, _Active] = {}

    def run(self) -> int:
        queue = []
        for run in self.runs:
            if self._finished(run):
                self._set_row(run, core.FINISHED, self.seconds.get(run.name, 0.0))
                print(f"{run.name}: finished before, not run again", file=self.out, flush=True)
            else:
                queue.append(run)
        self._write()
        with self._ctrl_c():
            while (queue and not self.presses) or self.active:
                while queue and not self.presses and len(self.active) < self.parallel:
                    self._start(queue.pop(0))
                self._reap()
                time.sleep(POLL_S)
        self._write()
        cols = core.columns(self.swept, self.iwae)
        print(core.format_table([self.rows[r.name] for r in self.runs if r.name in self.rows], cols),
              file=self.out, flush=True)
        if self.presses:
            print("vaegui: interrupted: run the same sweep again to continue it", file=sys.stderr)
            return EXIT_INTERRUPTED
        failed = [n for n, r in self.rows.items() if r["status"] == core.FAILED]
        return EXIT_RUN_FAILED if failed else 0

    def _finished(self, run: core.PlannedRun) -> bool:
        train = self.configs[run.name].train
        return core.is_finished(self.folder / run.name, train.epochs, train.iw_samples)

    def _start(self, run: core.PlannedRun) -> None:
        path = self.folder / run.name
        self._wait_for_writer(path)
        resume = core.can_resume(path)
        command = [sys.executable, "-m", "vaegui", "train", *run.args, *self.flags, "--out", str(path)]
        if resume:
            command += ["--resume", str(path / core.CHECKPOINT_NAME)]
        logs = self.folder / core.LOGS_DIR
        logs.mkdir(exist_ok=True)
        log = open(logs / f"{run.name}.log", "a", encoding="utf-8")
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   env=_child_env(), start_new_session=True, preexec_fn=_die_with_parent)
        before = self.seconds.get(run.name, 0.0) if resume else 0.0
        self.active[run.name] = _Active(run, process, log, time.monotonic(), before)
        self._set_row(run, core.RUNNING, before)
        self._write()
        print(f"{run.name}: {'resumed' if resume else 'started'}", file=self.out, flush=True)

    def _wait_for_writer(self, path: Path) -> None:
        """A run that a killed sweep left saving still holds its folder: wait for it."""
        deadline = time.monotonic() + WRITER_WAIT_S
        while writer_busy(path) and time.monotonic() < deadline and not self.presses:
            time.sleep(POLL_S)

    def _reap(self) -> None:
        for name, a in list(self.active.items()):
            code = a.process.poll()
            if code is None:
                continue
            a.log.close()
            del self.active[name]
            seconds = a.before_s + time.monotonic() - a.started
            self.seconds[name] = seconds
            status = (core.FINISHED if code == 0 and self._finished(a.run)
                      else core.INTERRUPTED if code == EXIT_INTERRUPTED or a.stops_sent else core.FAILED)
            row = self._set_row(a.run, status, seconds)
            self._write()
            print(self._line(row, code), file=self.out, flush=True)

    def _line(self, row: dict[str, Any], code: int) -> str:
        if row["status"] == core.FAILED:
            log = self.folder / core.LOGS_DIR / f"{row['run']}.log"
            return f"{row['run']}: failed (exit {code}), see {log}: {_last_line(log)}"
        results = "  ".join(f"{c} {row[c]:.4g}" for c in ("test_elbo", "test_recon", "test_kl", "iwae_nll")
                            if isinstance(row.get(c), (int, float)))
        return f"{row['run']}: {row['status']}  {results}  {row['seconds']:.1f} s"

    def _set_row(self, run: core.PlannedRun, status: str, seconds: float) -> dict[str, Any]:
        row = core.summary_row(run, self.folder / run.name, status, seconds)
        self.rows[run.name] = row
        return row

    def _write(self) -> None:
        rows = [self.rows[r.name] for r in self.runs if r.name in self.rows]
        core.write_summary(self.folder, rows, self.swept, self.iwae, [r.name for r in self.runs])

    @contextlib.contextmanager
    def _ctrl_c(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _on_sigint(self, *_: Any) -> None:
        """Each press is passed on to every running run once: the first stops it within a step
        (it saves), a second gives up waiting for the save."""
        self.presses += 1
        for a in self.active.values():
            if a.stops_sent < self.presses and a.process.poll() is None:
                a.stops_sent += 1
                with contextlib.suppress(OSError):
                    a.process.send_signal(signal.SIGINT)


def _child_env() -> dict[str, str]:
    """This process's environment, with the vaegui it runs first on the path, so that each run
    is the same vaegui as the sweep (an uninstalled checkout included)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    if Path(root).name not in ("site-packages", "dist-packages"):
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return env


def _die_with_parent() -> None:
    """In the child, before exec (Linux): SIGINT when the sweep dies, so that a run of a killed
    sweep stops within a step and saves, rather than training on unwatched."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    PR_SET_PDEATHSIG = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGINT))


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""
