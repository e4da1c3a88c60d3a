"""The command line: ``vaegui train``, ``vaegui eval``, ``vaegui export``, ``vaegui explore``
(the explorer on the user's own model), and ``vaegui`` alone
(or ``vaegui gui``) for the desktop app. One module per command, each with ``add_parser(sub)``
and ``run(args)``; what they share is in :mod:`.options`, which the app uses too.

User errors (bad argument, missing data, bad checkpoint, unusable output folder) print one line
on stderr and exit 2. Ctrl-C prints one line and exits 130 (see core.errors).

Under torchrun (``torchrun --nproc-per-node N -m vaegui train ...``) every rank trains and rank 0
alone prints and writes; another rank prints only an error of its own, as one line naming its rank.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import sys
import threading
from types import ModuleType
from typing import Any

from ..core.ending import exit_code, sigterm_as_ctrl_c, stop_word
from ..core.errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, Reported
from .options import OneLineParser, fail, out_of_memory, rank, report

__all__ = ["main"]  # the public Python API (vaegui.explore, vaegui.load, ...) is vaegui/__init__.py's

# The commands, in the order `vaegui --help` lists them; anything else opens the app.
COMMANDS = ("train", "eval", "export", "sweep", "explore")
HELP = ("-h", "--help")


def command_modules() -> dict[str, ModuleType]:
    """Each command's module: ``add_parser(sub)`` and ``run(args)``. A new command (sweep,
    explore, ...) is a module added here. Imported when a command line is parsed, not with this
    package: a Ctrl-C while they load is then inside main's handling, and the app, which imports
    cli.options, does not load them."""
    from . import evaluate, explore, export, sweep, train

    return {"train": train, "eval": evaluate, "export": export, "sweep": sweep, "explore": explore}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="vaegui", description="Train and explore variational autoencoders. "
                           "Run without a command to open the desktop app.")
    sub = parser.add_subparsers(dest="command", parser_class=OneLineParser)
    for command in command_modules().values():
        command.add_parser(sub)
    g = sub.add_parser("gui", help="open the desktop app (the default)", add_help=False)
    g.add_argument("gui_args", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        sigterm_as_ctrl_c()  # SIGTERM takes Ctrl-C's path: save, one line, exit 143
    try:
        code = _run(argv)
    except KeyboardInterrupt:
        if argv is None:
            # A second Ctrl-C that landed while _run ended after the first (before it could
            # ignore SIGINT), which has printed its line: end as a Ctrl-C ends, without a
            # traceback and without Python killing itself by SIGINT.
            _exit_now(EXIT_INTERRUPTED)
        raise
    if argv is None and sys.argv[1:2] and sys.argv[1] in (*COMMANDS, *HELP):
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
        if rank() == 0:
            print(f"vaegui: {stop_word()}", file=sys.stderr)
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


def _exit_now(code: int) -> None:
    """End the process at once with ``code``, after flushing what it printed."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(exit_code(code))


def _main(argv: list[str], ends_process: bool = False) -> int:
    if not argv or argv[0] not in (*COMMANDS, *HELP):
        # "gui" is dropped here: argparse's REMAINDER would refuse options after the command.
        return _gui(argv[1:] if argv and argv[0] == "gui" else argv)
    if argv[0] == "sweep":  # its options are train's, each a list: the sweep parses them
        from .sweep import main as sweep

        return sweep(argv[1:])
    with _quiet_unless(rank() == 0):  # every rank has the same command line: rank 0 answers it
        args = build_parser().parse_args(argv)
    try:
        command = command_modules()[args.command]
        if args.command == "train":
            return command.run(args, ends_process=ends_process)
        return command.run(args)
    except Reported:  # a multi-process run whose error one of its ranks has printed
        return EXIT_USER_ERROR
    except BrokenPipeError:  # the reader of our output went away (`vaegui train ... | head`)
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        except (OSError, ValueError):  # stdout is not a file (redirected in-process)
            pass
        return fail("the output was closed before the command finished")
    except Exception as exc:
        if isinstance(exc, RuntimeError) and not out_of_memory(exc):
            from ..core.checkpoint import interrupted

            if interrupted(exc):  # a library turned a Ctrl-C into its own error
                raise KeyboardInterrupt from None
        if not report(exc):
            raise
        return EXIT_USER_ERROR


def _quiet_unless(speak: bool):
    if speak:
        return contextlib.nullcontext()
    quiet = contextlib.ExitStack()
    quiet.enter_context(contextlib.redirect_stdout(io.StringIO()))
    quiet.enter_context(contextlib.redirect_stderr(io.StringIO()))
    return quiet


def _gui(argv: list[str]) -> int:
    pressed = []

    def on_sigint(*_: Any) -> None:
        pressed.append(True)

    # A Ctrl-C while PySide6 loads its modules is held until the import is over: raised inside
    # shiboken's module set-up, the KeyboardInterrupt left it half made, and the process then
    # crashed (SIGSEGV) about once in 80 tries instead of ending in one line.
    previous = signal.signal(signal.SIGINT, on_sigint) if threading.current_thread() is threading.main_thread() else None
    try:
        from ..gui.app import main as gui_main  # Qt is imported only when the app is wanted
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if pressed:
        raise KeyboardInterrupt
    return gui_main(argv)
