"""Entry point of the desktop app: ``python main.py`` or ``vaegui`` with no subcommand.

``--autostart --screenshot PNG`` makes a scripted run: train, wait for the map of the final
weights, decode a point, save a picture of the whole window and exit.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

import numpy as np
import torch
from PySide6.QtCore import QEventLoop, QSettings, QTimer, QtMsgType, qInstallMessageHandler
from PySide6.QtWidgets import QApplication

from vaegui.cli import OneLineParser, int_at_least
from vaegui.core.checkpoint import load_checkpoint, model_from_checkpoint
from vaegui.core.config import RunConfig
from vaegui.core.data import (DATASET_NAMES, FOLDER_PREFIX, dataset_available, download_problem,
                              resolve_data_dir)
from vaegui.core.errors import DataError, VaeguiError

from . import settings as store
from .icons import icon
from .main_window import MainWindow

SCREENSHOT_DELAY_MS = 300  # lets the last plot updates paint before the window is grabbed
SCREENSHOT_SIZE = (1600, 1000)


GIL_SWITCH_INTERVAL_S = 0.001


def init_threads() -> int:
    """Prepare the process's threads, before any torch work: returns the torch thread count the
    training worker should set in its own thread.

    The calling (GUI) thread gets one torch CPU thread. torch's thread count is per thread: once
    a second thread has run a multi-threaded op, a second OpenMP pool exists, the runtime stops
    spinning its threads and training in the worker loses about 40% of its speed.

    Python's GIL switch interval drops from 5 ms to 1 ms: the decoding thread, woken by a drag,
    otherwise waits up to 5 ms for the GUI thread to let go of the GIL while it paints."""
    count = torch.get_num_threads()
    torch.set_num_threads(1)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    return count


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog="vaegui", description="Desktop latent-space explorer for VAEs.")
    parser.add_argument("--dataset", help=f"{', '.join(DATASET_NAMES)} or folder:PATH")
    parser.add_argument("--data-dir", help="where datasets live (default $VAEGUI_DATA_DIR or the user cache)")
    parser.add_argument("--checkpoint", help="open a model saved by `vaegui train` or by the app")
    parser.add_argument("--epochs", type=int_at_least(1), help="epochs to train")
    parser.add_argument("--autostart", action="store_true", help="start training at once")
    parser.add_argument("--screenshot", metavar="PNG",
                        help="save a picture of the window when the run (or opening) is done, then exit")
    args = parser.parse_args(argv)
    # Unknown names raise here; a torchvision set that is not on disk yet is fine (Start downloads it).
    if args.dataset is not None and not dataset_available(args.dataset, args.data_dir):
        if args.dataset.strip().startswith(FOLDER_PREFIX):
            raise DataError(f"dataset: {args.dataset!r}: the folder does not exist")
    return args


def initial_config(stored: RunConfig | None, args: argparse.Namespace,
                   probe: Callable[[str], str | None] = download_problem) -> tuple[RunConfig, str]:
    """The settings the window opens with, and a note for the status bar.

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
            note = f"MNIST is not in {where} yet: Start downloads it there (about 12 MB)"
        else:
            config = config.replace(data={"dataset": "shapes"})
            note = (f"MNIST is not in {where} and cannot be downloaded now ({problem}): using the "
                    "built-in shapes dataset")
    if args.epochs:
        config = config.replace(train={"epochs": args.epochs})
    return config, note


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # --help (0), or a bad argument already reported in one line (2)
        return int(exc.code or 0)
    except VaeguiError as exc:
        print(f"vaegui: error: {exc}", file=sys.stderr)
        return 2
    torch_threads = init_threads()
    if args.checkpoint:
        try:  # fail early, with a one-line message, rather than in a message box
            model_from_checkpoint(load_checkpoint(args.checkpoint), args.checkpoint)
        except VaeguiError as exc:
            print(f"vaegui: error: {exc}", file=sys.stderr)
            return 2
    if problem := _display_problem(args):
        print(f"vaegui: error: {problem}", file=sys.stderr)
        return 2
    return _run_app(args, torch_threads)


def _display_problem(args: argparse.Namespace) -> str:
    """Qt aborts without a display: use the offscreen platform for a scripted run, else explain."""
    if (not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM")
            or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return ""
    if args.screenshot:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return ""
    return "no display found (set DISPLAY, or add --screenshot PNG for an offscreen scripted run)"


def _run_app(args: argparse.Namespace, torch_threads: int) -> int:
    owned = QApplication.instance() is None
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "vaegui"])
    app.setOrganizationName(store.ORGANIZATION)
    app.setApplicationName(store.APPLICATION)
    app.setWindowIcon(icon("app"))
    previous_handler = _quiet_offscreen_warnings(app)
    settings = QSettings()
    config, note = initial_config(store.load_config(settings), args)
    window = MainWindow(settings, config=config, data_dir=args.data_dir, torch_threads=torch_threads)
    # Never quit an application someone else runs (tests, a host program): QCoreApplication.exit
    # would make every later event loop of theirs return at once.
    loop = app if owned else QEventLoop()
    window.closed.connect(loop.quit)
    window.show()
    if note:
        window.statusBar().showMessage(note)
    script = ScriptedRun(window, args) if (args.autostart or args.screenshot or args.checkpoint) else None
    if script is not None:
        script.begin()
    code = loop.exec()
    window.shutdown()
    if previous_handler is not False:
        qInstallMessageHandler(previous_handler)
    return script.exit_code if script is not None and script.exit_code is not None else code


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


class ScriptedRun:
    """Autostart, open a checkpoint, and take the screenshot when the window has something to show."""

    def __init__(self, window, args: argparse.Namespace):
        self.window = window
        self.args = args
        self.exit_code: int | None = None

    def begin(self) -> None:
        w, a = self.window, self.args
        if a.screenshot:
            # The same picture whatever size and layout were saved (offscreen, a restored size is
            # clamped to the platform's 800x800 screen).
            w.resize(*SCREENSHOT_SIZE)
            w.reset_layout()
        if a.checkpoint:
            w.open_checkpoint(a.checkpoint, epochs=a.epochs)
        if a.autostart:
            w.runFinished.connect(self._on_window_runFinished)
            if a.checkpoint:  # start from the checkpoint's settings, once they are in the panel
                w.checkpointOpened.connect(w.start_training)
            else:
                w.start_training()
        elif a.screenshot and a.checkpoint:
            w.mapUpdated.connect(self._on_window_mapUpdated)
        elif a.screenshot:
            QTimer.singleShot(SCREENSHOT_DELAY_MS, self._take_screenshot)

    def _on_window_runFinished(self, final) -> None:
        if not self.args.screenshot:
            return  # an interactive run: the window shows what happened and stays open
        if final is None:
            print(f"vaegui: error: {self.window.last_error}", file=sys.stderr)
            self._finish(1)
        else:
            self._decode_example_point()
            self._later(self._take_screenshot)

    def _on_window_mapUpdated(self) -> None:
        self.window.mapUpdated.disconnect(self._on_window_mapUpdated)
        self._decode_example_point()
        self._later(self._take_screenshot)

    def _decode_example_point(self) -> None:
        """Pick a typical image of the first class (the one nearest its class mean), and
        interpolate between typical images of the two classes whose means lie furthest apart,
        with the animation a third of the way along."""
        explorer = self.window.explorer
        encoded = explorer.encoded
        if encoded is None or not len(encoded.xy):
            return
        labels = np.unique(encoded.labels)
        means = np.stack([encoded.latents[encoded.labels == k].mean(0) for k in labels])

        def typical(k: int) -> np.ndarray:
            index = np.flatnonzero(encoded.labels == labels[k])
            return index[np.argmin(((encoded.latents[index] - means[k]) ** 2).sum(1))]
        far = np.linalg.norm(means[:, None] - means[None], axis=2)
        i, j = np.unravel_index(np.argmax(far), far.shape)
        explorer.pick(encoded.latents[typical(0)])
        explorer.set_endpoint("a", encoded.latents[typical(i)])
        explorer.set_endpoint("b", encoded.latents[typical(j)])
        explorer.set_playback(position=1 / 3)

    def _later(self, slot) -> None:
        QTimer.singleShot(SCREENSHOT_DELAY_MS, slot)

    def _take_screenshot(self) -> None:
        if self.args.screenshot:
            if not self.window.grab().save(self.args.screenshot, "PNG"):
                print(f"vaegui: error: cannot write {self.args.screenshot}", file=sys.stderr)
                self._finish(1)
                return
            print(f"saved {self.args.screenshot}")
        self._finish(0)

    def _finish(self, code: int) -> None:
        self.exit_code = code
        self.window.close()  # ends the event loop (see _run_app)
