"""``vaegui.explore``: the explorer's window on a user's own model, from Python.

The model and the images are checked first (core/user_model.py): a model that does not fit gets
one clear error before any window opens. ``block=True`` then runs Qt's event loop until the
window closes, as ``napari.run()`` does; ``block=False`` returns the window, for a script or a
notebook that runs its own loop (``%gui qt``).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading

from PySide6.QtCore import QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication

from vaegui.core.user_images import ImagesError, user_images
from vaegui.core.user_model import UserModel

from . import settings as store
from .app import SIGNAL_POLL_MS
from .icons import icon
from .main_window import MainWindow
from .scripted_run import ScriptedRun

EXPLORE_SETTINGS = "vaegui-explore"  # the settings file of explore mode (its window and views)


def explore(model=None, images=None, labels=None, *, class_names=None, output: str = "auto",
            block: bool = True, encode=None, decode=None) -> MainWindow | None:
    """Open the explorer on ``model`` (conventions 1 and 2) or on ``encode=`` and ``decode=``
    callables (convention 3), with ``images`` (N, C, H, W), (N, H, W) or (N, H, W, C), uint8
    or float, or a Dataset yielding ``x`` or ``(x, y)``. ``output``: "auto", "logits",
    "probabilities" or "tanh" (what the decoder returns). Returns the window when
    ``block=False``; with ``block=True``, returns once it is closed."""
    user = user_model(model, images, labels, class_names=class_names, output=output,
                      encode=encode, decode=decode)
    window = open_window(user)
    if not block:
        return window
    run_until_closed(window)
    return None


def user_model(model, images, labels=None, *, class_names=None, output: str = "auto",
               encode=None, decode=None) -> UserModel:
    """The model checked against the images (every error here comes before a window)."""
    if images is None:
        raise ImagesError("images: none given (explore and export_bundle need images to encode)")
    return UserModel(model, user_images(images, labels, class_names), output=output,
                     encode=encode, decode=decode)


def open_window(user: UserModel, settings: QSettings | None = None) -> MainWindow:
    """The window on ``user``, shown. Qt's application is made if there is none yet."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(["vaegui"])
        app.setOrganizationName(store.ORGANIZATION)
        app.setApplicationName(store.APPLICATION)
        app.setWindowIcon(icon("app"))
    if settings is None:  # settings of their own: explore mode's layout is not the app's
        settings = QSettings(QSettings.defaultFormat(), QSettings.Scope.UserScope, store.ORGANIZATION,
                             EXPLORE_SETTINGS)
    window = MainWindow(settings, source=user)
    window.show()
    return window


def run_until_closed(window: MainWindow, screenshot: str | None = None) -> int:
    """Qt's event loop until ``window`` closes (with ``screenshot``: a picture of it once the map
    and the picked point are shown, then close); the exit code of a scripted run, else 0."""
    loop = QEventLoop()  # not the application's exec: a host program's application is left running
    window.closed.connect(loop.quit)
    script = None
    if screenshot:
        script = ScriptedRun(window, argparse.Namespace(screenshot=screenshot, checkpoint=None,
                                                        autostart=False, epochs=None))
        script.begin()
    if window.isVisible():
        with _ctrl_c_closes(window):
            loop.exec()
    window.shutdown()
    if window.exit_code is not None:  # Ctrl-C: 130
        return window.exit_code
    return script.exit_code if script is not None and script.exit_code is not None else 0


@contextlib.contextmanager
def _ctrl_c_closes(window: MainWindow):
    """Ctrl-C closes the window (one line, exit code 130; see MainWindow.interrupt). Python runs a
    signal handler only between its own bytecodes, so a timer gives it the chance while Qt's
    loop waits."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda *_: window.interrupt())
    timer = QTimer()
    timer.timeout.connect(lambda: None)
    timer.start(SIGNAL_POLL_MS)
    try:
        yield
    finally:
        timer.stop()
        signal.signal(signal.SIGINT, previous)
