"""Entry point of the desktop app: ``python main.py`` or ``vaegui`` with no subcommand.

``--autostart --screenshot PNG`` makes a scripted run: train, wait for the map of the final
weights, decode a point, save a picture of the whole window and exit. ``--window-size WxH`` opens
the window at that size, with the default layout for it.

Options apply to this launch only: the saved settings change only when the user changes them in
the window (see MainWindow.keep_launch_settings).

The window is painted before torch is imported (about 3 s here): the training worker loads it on
its own thread, and Start is enabled when it is ready (see MainWindow.engine_ready). Nothing the
window imports may import torch; a test holds to that.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QEventLoop, QObject, QSettings, QTimer, QtMsgType, qInstallMessageHandler
from PySide6.QtWidgets import QApplication

from vaegui.cli.options import OneLineParser, clip, fail, int_at_least, name_the_option
from vaegui.core.config import RunConfig
from vaegui.core.dataset_catalog import (DATASET_NAMES, FOLDER_PREFIX, dataset_available, download_problem,
                              resolve_data_dir)
from vaegui.core.ending import exit_code, stop_word
from vaegui.core.errors import EXIT_INTERRUPTED, ConfigError, DataError, VaeguiError

from . import settings as store
from .icons import icon
from .main_window import MainWindow
from .scripted_run import SCREENSHOT_SIZE, ScriptedRun
from .torch_threads import init_threads

# A file the app writes its start-up times to, when this is set (benchmarks/startup.py reads it).
STARTUP_TIMES_ENV = "VAEGUI_STARTUP_TIMES"
SIGNAL_POLL_MS = 200  # how often Python gets a chance to run a Ctrl-C handler under Qt's loop
SHUTDOWN_WAIT_MS = 2000  # after the window closes, how long the training step may take to end
# --window-size: the smallest window the docks can share, and the largest Qt makes.
WINDOW_SIZE_RANGE = ((640, 480), (16_384, 16_384))
log = logging.getLogger("vaegui")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog="vaegui", description="Desktop latent-space explorer for VAEs.")
    parser.add_argument("--dataset", help=f"{', '.join(DATASET_NAMES)} or {FOLDER_PREFIX}PATH")
    parser.add_argument("--data-dir", help="where datasets live (default $VAEGUI_DATA_DIR or the user cache)")
    parser.add_argument("--checkpoint", help="open a model saved by `vaegui train` or by the app: "
                        "a checkpoint, or a run folder (its latest checkpoint)")
    parser.add_argument("--epochs", type=int_at_least(1), help="epochs to train")
    parser.add_argument("--autostart", action="store_true", help="start training at once")
    parser.add_argument("--screenshot", metavar="PNG",
                        help="save a picture of the window when the run (or opening) is done, then exit")
    parser.add_argument("--window-size", metavar="WxH", type=window_size,
                        help="open the window at this size in pixels, e.g. 1280x800, with the "
                        f"default layout for it (for this launch only; with --screenshot, default "
                        f"{SCREENSHOT_SIZE[0]}x{SCREENSHOT_SIZE[1]})")
    args = parser.parse_args(argv)
    if args.screenshot is not None:
        check_writable_file("--screenshot", args.screenshot)
    if args.checkpoint is not None and not args.checkpoint.strip():
        raise ConfigError("--checkpoint: the path is empty")
    # Unknown names raise here; a torchvision set that is not on disk yet is fine (Start downloads it).
    if args.dataset is not None and not dataset_available(args.dataset, args.data_dir):
        if args.dataset.strip().startswith(FOLDER_PREFIX):
            raise DataError(f"dataset: {args.dataset!r}: the folder does not exist")
    return args


def window_size(text: str) -> tuple[int, int]:
    """An argparse type: WIDTHxHEIGHT in pixels, each within WINDOW_SIZE_RANGE."""
    match = re.fullmatch(r"\s*(\d{1,6})\s*[xX×]\s*(\d{1,6})\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"{clip(text)!r} is not WIDTHxHEIGHT in pixels (e.g. 1280x800)")
    width, height = int(match[1]), int(match[2])
    lo, hi = WINDOW_SIZE_RANGE
    if not (lo[0] <= width <= hi[0] and lo[1] <= height <= hi[1]):
        raise argparse.ArgumentTypeError(f"{width}x{height}: the window must be from {lo[0]}x{lo[1]} "
                                         f"to {hi[0]}x{hi[1]} pixels")
    return width, height


def check_writable_file(option: str, path: str) -> None:
    """Refuse, before any work, an output file that could never be written."""
    if not path.strip():
        raise ConfigError(f"{option}: the path is empty")
    target = Path(path).expanduser()
    if target.is_dir():
        raise ConfigError(f"{option} {path}: is a folder, not a file")
    folder = target.parent
    if not folder.is_dir():
        raise ConfigError(f"{option} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"{option} {path}: the folder {folder} is not writable")


def initial_config(stored: RunConfig | None, args: argparse.Namespace,
                   probe: Callable[[str], str | None] = download_problem) -> tuple[RunConfig, str]:
    """The settings the window opens with, and a note for the status bar (its conclusion on the
    first line, the details after it).

    The last-used settings, with the command line on top. On a first launch without --dataset:
    MNIST when its files are on disk or its download server answers (``probe``; the download
    itself waits for Start), else the built-in shapes."""
    config = stored or RunConfig()
    note = ""
    if args.data_dir:
        config = config.replace(data={"data_dir": args.data_dir})
    if args.dataset:
        config = config.replace(data={"dataset": args.dataset})
    elif stored is None:
        where = resolve_data_dir(config.data.data_dir)
        if dataset_available("mnist", config.data.data_dir):
            config = config.replace(data={"dataset": "mnist"})
        elif (problem := probe("mnist")) is None:
            config = config.replace(data={"dataset": "mnist"})
            note = ("Start downloads MNIST first (about 12 MB)\n"
                    f"MNIST is not in {where} yet: Start downloads it there (about 12 MB)")
        else:
            config = config.replace(data={"dataset": "shapes"})
            note = ("Using built-in shapes: MNIST is not downloaded and the server did not answer\n"
                    f"MNIST is not in {where} and cannot be downloaded now: {problem}")
    if args.epochs:
        config = config.replace(train={"epochs": args.epochs})
    return config, note


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        init_threads()
        if args.checkpoint:
            # Fail early, with a one-line message, rather than in a message box (a scripted
            # run: it waits for torch anyway).
            from vaegui.core.checkpoint import model_from_checkpoint
            from vaegui.core.run_paths import run_of
            from vaegui.core.run_reader import load_run_checkpoint

            path, run_dir = run_of(args.checkpoint)  # a run folder: its checkpoint, checked against it
            model_from_checkpoint(load_run_checkpoint(path, run_dir), path)
    except SystemExit as exc:  # --help (0), or a bad argument already reported in one line (2)
        return int(exc.code or 0)
    except VaeguiError as exc:
        return fail(str(exc))
    except OSError as exc:  # a path the system refuses (too long, under /proc, ...)
        return fail(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc))
    if problem := _display_problem(args):
        return fail(problem)
    return _run_app(args)



def _display_problem(args: argparse.Namespace) -> str:
    """Qt aborts without a display: use the offscreen platform for a scripted run, else explain."""
    if (not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM")
            or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return ""
    if args.screenshot:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return ""
    return "no display found (set DISPLAY, or add --screenshot PNG for an offscreen scripted run)"


def _run_app(args: argparse.Namespace) -> int:
    owned = QApplication.instance() is None
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "vaegui"])
    app.setOrganizationName(store.ORGANIZATION)
    app.setApplicationName(store.APPLICATION)
    app.setWindowIcon(icon("app"))
    previous_handler = _quiet_offscreen_warnings(app)
    interrupts = _Interrupts() if owned else None  # before the window starts its threads
    settings = QSettings()
    try:
        config, note = initial_config(store.load_config(settings), args)
    except VaeguiError as exc:  # an option out of range (--epochs 10**12): one line, exit 2
        if interrupts is not None:
            interrupts.restore()
        return fail(name_the_option(str(exc)))
    window = MainWindow(settings, config=config, data_dir=args.data_dir)
    if args.window_size:
        window.set_window_size(*args.window_size)
    if args.checkpoint:  # its settings come with this launch: not saved unless changed
        def keep_checkpoint_settings() -> None:
            window.checkpointOpened.disconnect(keep_checkpoint_settings)
            window.keep_launch_settings()
        window.checkpointOpened.connect(keep_checkpoint_settings)
    if times_file := os.environ.get(STARTUP_TIMES_ENV):
        window._startup_times = _StartupTimes(window, times_file)
    # Never quit an application someone else runs (tests, a host program): QCoreApplication.exit
    # would make every later event loop of theirs return at once.
    loop = app if owned else QEventLoop()
    window.closed.connect(loop.quit)
    window.show()
    if note:
        log.info(note.replace("\n", ": "))
        window.statusBar().showMessage(note)
    script = ScriptedRun(window, args) if (args.autostart or args.screenshot or args.checkpoint) else None
    if script is not None:
        script.begin()
    if interrupts is not None:
        interrupts.attach(window)
    code = loop.exec()
    if interrupts is not None:
        interrupts.restore()
    if previous_handler is not False:
        qInstallMessageHandler(previous_handler)
    code = window.exit_code if window.exit_code is not None else \
        script.exit_code if script is not None and script.exit_code is not None else code
    finished = window.shutdown(wait_ms=SHUTDOWN_WAIT_MS)
    if owned and not finished:
        # A training step is still running (a huge batch can take many seconds) and nothing is
        # being written: leave without waiting for it rather than hang after the window closed.
        print("vaegui: stopped without waiting for the training step in progress", file=sys.stderr)
        _leave_now(code)
    if owned and window.interrupted:
        _leave_now(code)  # saved and said: skip a second of torch's and Qt's teardown
    return exit_code(code)


class _StartupTimes(QObject):
    """Writes, as JSON, the wall-clock times (time.time()) at which the window was first painted
    and at which Start was enabled."""

    def __init__(self, window: MainWindow, path: str):
        super().__init__(window)
        self.path, self.times = path, {}
        window.installEventFilter(self)
        window.engineReady.connect(lambda: self._mark("ready"))

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Paint:
            watched.removeEventFilter(self)
            QTimer.singleShot(0, lambda: self._mark("painted"))  # once this paint is done
        return False

    def _mark(self, what: str) -> None:
        self.times.setdefault(what, time.time())
        with open(self.path, "w") as f:
            json.dump(self.times, f)


def _leave_now(code: int) -> None:
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(exit_code(code))


class _Interrupts:
    """Ctrl-C in the app stops it as closing the window does, saving the model first (see
    MainWindow.interrupt); a second Ctrl-C leaves at once.

    Python runs signal handlers only between bytecodes, never while Qt's event loop waits in
    C++, so a timer gives it that chance a few times a second. A Ctrl-C that comes while the
    window is being built is kept until it is."""

    def __init__(self):
        self.window: MainWindow | None = None
        self.pending = False
        self.timer = QTimer(interval=SIGNAL_POLL_MS)
        self.timer.timeout.connect(lambda: None)
        self.timer.start()
        self.previous = signal.signal(signal.SIGINT, self._on_sigint)

    def attach(self, window: MainWindow) -> None:
        self.window = window
        if self.pending:
            QTimer.singleShot(0, window.interrupt)

    def restore(self) -> None:
        self.timer.stop()
        signal.signal(signal.SIGINT, self.previous)

    def _on_sigint(self, signum, frame) -> None:
        # Only schedule the work: the handler runs between two bytecodes of the main thread,
        # which may hold a lock that stopping the trainer would take again (a deadlock).
        if self.window is None:
            self.pending = True
        elif self.pending or self.window.interrupted:
            print(f"vaegui: {stop_word()} again: leaving without saving", file=sys.stderr)
            _leave_now(exit_code(EXIT_INTERRUPTED))
        else:
            self.pending = True
            QTimer.singleShot(0, self.window.interrupt)


def _quiet_offscreen_warnings(app: QApplication):
    """The offscreen platform warns on every resize that it cannot propagate size hints: drop
    that line, pass everything else on. Returns the previous handler (False if none was set)."""
    if app.platformName() != "offscreen":
        return False

    def handler(mode: QtMsgType, context, message: str) -> None:
        if "propagateSizeHints" in message:
            return
        if previous is not None:
            previous(mode, context, message)
        else:
            print(message, file=sys.stderr)

    previous = qInstallMessageHandler(handler)
    return previous
