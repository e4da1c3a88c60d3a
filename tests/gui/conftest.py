"""GUI test set-up: settings in temporary files, tiny runs, and no thread left running."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, QSettings, QThread

from vaegui.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig


@pytest.fixture(autouse=True, scope="session")
def _user_settings_in_tmp(tmp_path_factory):
    """Any QSettings() made without a file (e.g. by app.main) goes to a temporary folder, never
    to the user's real settings."""
    folder = str(tmp_path_factory.mktemp("qsettings"))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, folder)


@pytest.fixture(autouse=True)
def _runs_in_tmp(tmp_path_factory, monkeypatch):
    """Runs the app saves by itself (Ctrl-C, closing mid-run) go to a temporary folder."""
    monkeypatch.setenv("VAEGUI_RUNS_DIR", str(tmp_path_factory.mktemp("runs")))


@pytest.fixture
def settings(tmp_path) -> QSettings:
    """The settings a test's MainWindow gets through its constructor."""
    return QSettings(str(tmp_path / "vaegui.ini"), QSettings.Format.IniFormat)


@pytest.fixture(autouse=True)
def _no_thread_left_running():
    """Fail a test that leaves a QThread running. Autouse, so it is set up before qtbot and torn
    down after pytest-qt has closed the test's widgets. The test's cyclic garbage is collected
    here too, while none of its threads runs, not in a later test's event loop (where a
    collection once crashed CI, with that test's decoding thread running)."""
    yield
    gc.collect()
    running = []
    for obj in gc.get_objects():
        if issubclass(type(obj), QThread):  # type(): isinstance would trip lazy module attributes
            try:
                if obj.isRunning():
                    running.append(obj.objectName() or repr(obj))
            except RuntimeError:  # its C++ object is already deleted
                pass
    assert not running, f"QThreads still running at the end of the test: {running}"


@pytest.fixture
def show_widget(qtbot):
    """show_widget(widget, width, height) -> widget: owned by the test, resized, shown and exposed."""
    def show(widget, width: int, height: int):
        qtbot.addWidget(widget)
        widget.resize(width, height)
        widget.show()
        qtbot.waitExposed(widget)
        return widget
    return show


OPEN_TIMEOUT_MS = 30_000


def _train_shapes(out: Path, *args: str) -> Path:
    from vaegui import cli

    assert cli.main(["train", "--dataset", "shapes", "--epochs", "1", "--image-size", "16", "--hidden", "16",
                     "--train-limit", "512", "--test-limit", "128", "--device", "cpu", "--no-progress",
                     *args, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def train_shapes():
    """train_shapes(out, *args) -> out: ``vaegui train`` on shapes at 16x16 with 16 hidden units,
    one epoch of 512 images and 128 test images unless ``args`` say otherwise (a later option
    wins), into the run folder ``out``."""
    return _train_shapes


@pytest.fixture
def open_in_window(qtbot, settings):
    """open_in_window(path, size=None) -> a shown MainWindow that has opened ``path`` (a run
    folder or a checkpoint) and drawn its map."""
    from vaegui.gui.main_window import MainWindow

    def open_(path: Path, size: tuple[int, int] | None = None):
        window = MainWindow(settings)
        qtbot.addWidget(window)
        if size is not None:
            window.resize(*size)
        window.show()
        qtbot.waitExposed(window)
        with qtbot.waitSignal(window.mapUpdated, timeout=OPEN_TIMEOUT_MS):
            window.open_checkpoint(str(path))
        return window
    return open_


def _tiny_config(epochs: int = 2, train: int = 256, test: int = 128, **train_changes) -> RunConfig:
    """Shapes at 16x16 with a 32-unit MLP: an epoch takes milliseconds."""
    return RunConfig(
        data=DataConfig(dataset="shapes", image_size=16, train_limit=train, test_limit=test),
        model=ModelConfig(hidden=32, latent_dim=2),
        train=TrainConfig(epochs=epochs, batch_size=64, **train_changes),
    )


@pytest.fixture
def tiny_config():
    """tiny_config(epochs=2, train=256, test=128, **train_changes) -> RunConfig."""
    return _tiny_config


class SignalLog(QObject):
    """Records a TrainingWorker's signals in the GUI thread.

    Its slots are methods of a QObject living in the GUI thread, so Qt queues the worker's
    emissions to them. (qtbot.waitSignal on a worker signal would run its handler in the worker
    thread, where it stops a GUI-thread timer.) Tests wait with qtbot.waitUntil on these lists."""

    def __init__(self, worker):
        super().__init__()
        self.progress, self.maps, self.snapshots, self.errors = [], [], [], []
        self.started, self.finished, self.saved, self.opened, self.status = [], [], [], [], []
        for signal, log in ((worker.progressed, self.progress), (worker.mapEncoded, self.maps),
                            (worker.snapshotTaken, self.snapshots), (worker.failed, self.errors),
                            (worker.runStarted, self.started), (worker.runFinished, self.finished),
                            (worker.checkpointSaved, self.saved), (worker.checkpointOpened, self.opened),
                            (worker.statusChanged, self.status)):
            signal.connect(self._recorder(log))

    def _recorder(self, log: list):
        # A bound method of this QObject (not a lambda), so the connection is queued.
        return _Appender(self, log).append


class _Appender(QObject):
    def __init__(self, parent: QObject, log: list):
        super().__init__(parent)
        self._log = log

    def append(self, value) -> None:
        self._log.append(value)


@pytest.fixture
def signal_log():
    """signal_log(worker) -> SignalLog."""
    return SignalLog
