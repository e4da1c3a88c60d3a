"""The app under bad input and interruptions: a scripted run that cannot finish ends with one
line and exit code 2; Ctrl-C and closing mid-run save the run's folder first; a close never
waits long for a training step; a real SIGINT never prints a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from vaegui.core.checkpoint import save_checkpoint
from vaegui.core.dataset_loader import load_dataset
from vaegui.core.trainer import Trainer
from vaegui.gui import app
from vaegui.core.run_reader import RunReader
from vaegui.gui.main_window import CLOSE_WAIT_MS, MainWindow

TIMEOUT = 30_000
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def window(qtbot, settings, tiny_config):
    w = MainWindow(settings, config=tiny_config(epochs=1000, train=2048))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def _training(qtbot, w: MainWindow) -> None:
    w.start_training()
    qtbot.waitUntil(lambda: w.run.state == "running" and w.explorer.snapshot is not None,
                    timeout=TIMEOUT)


@pytest.mark.parametrize("argv, message", [
    (["--screenshot", ""], "--screenshot: the path is empty"),
    (["--screenshot", "/no/such/folder/out.png"], "the folder /no/such/folder does not exist"),
    (["--screenshot", "."], "is a folder, not a file"),
    (["--checkpoint", " "], "--checkpoint: the path is empty"),
])
def test_unusable_paths_are_one_line_and_exit_2(argv, message, capsys):
    assert app.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_a_scripted_run_whose_model_cannot_get_its_data_ends_in_one_line(qtbot, tmp_path, tiny_config, capsys):
    """A genuine checkpoint whose dataset is not where it says (and cannot be downloaded) used
    to leave the scripted run waiting for ever."""
    config = tiny_config(epochs=1).replace(data={"image_size": 28})
    trainer = Trainer(config, load_dataset(config.data))
    for _ in trainer.run():
        pass
    state = trainer.state_dict()
    state["config"]["data"]["dataset"] = "mnist"
    save_checkpoint(tmp_path / "m.pt", state)
    started = time.monotonic()
    code = app.main(["--checkpoint", str(tmp_path / "m.pt"), "--data-dir", str(tmp_path / "nowhere"),
                     "--screenshot", str(tmp_path / "shot.png")])
    assert code == 2 and time.monotonic() - started < 20
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("vaegui")]
    assert len(lines) == 1 and "needs the data" in lines[0] and "Traceback" not in err
    assert not (tmp_path / "shot.png").exists()


@pytest.mark.parametrize("case", ["one image", "epochs out of range"])
def test_a_scripted_run_always_ends_with_one_line_and_exit_2(qtbot, tmp_path, capsys, case):
    """A data error found once training started (a folder of one image cannot be split), or an
    option out of range, used to leave `--autostart --screenshot` waiting for ever (or print a
    traceback)."""
    from PIL import Image

    (tmp_path / "data" / "a").mkdir(parents=True)
    Image.new("L", (10, 10), 5).save(tmp_path / "data" / "a" / "only.png")
    dataset, epochs, needle = ((f"folder:{tmp_path / 'data'}", "1", "needs at least one training and one test image")
                               if case == "one image" else ("shapes", "1000000000000", "argument --epochs"))
    started = time.monotonic()
    code = app.main(["--dataset", dataset, "--epochs", epochs, "--autostart",
                     "--screenshot", str(tmp_path / "shot.png")])
    assert code == 2 and time.monotonic() - started < 60
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("vaegui")]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err, err
    assert not (tmp_path / "shot.png").exists()


def test_interrupt_stops_saves_the_run_and_closes(qtbot, window, capsys):
    _training(qtbot, window)
    with qtbot.waitSignal(window.closed, timeout=TIMEOUT):
        window.interrupt()
    assert window.exit_code == 130 and not window.worker_thread.isRunning()
    lines = capsys.readouterr().err.splitlines()
    prefix = "vaegui: interrupted: saved the run in "
    assert len(lines) == 1 and lines[0].startswith(prefix)
    run = Path(lines[0].removeprefix(prefix))
    assert run.parent == Path(os.environ["VAEGUI_RUNS_DIR"])
    reader = RunReader(run)
    assert reader.load_checkpoint()["step"] > 0 and reader.config.data.dataset == "shapes"


def test_closing_mid_run_leaves_a_folder_that_opens_and_resumes(qtbot, window, settings, tiny_config):
    _training(qtbot, window)
    run_dir = Path(window.run.info.run_dir)
    with qtbot.waitSignal(window.closed, timeout=TIMEOUT):
        window.close()  # mid-epoch: the run stops and its folder gets the last weights first
    assert not window.isVisible() and not window.worker_thread.isRunning()
    saved = RunReader(run_dir).load_checkpoint()
    assert saved["step"] > 0
    # A new window opens the folder, and Start continues the same run in the same folder.
    second = MainWindow(settings, config=tiny_config(epochs=1000, train=2048))
    qtbot.addWidget(second)
    second.show()
    with qtbot.waitSignal(second.checkpointOpened, timeout=TIMEOUT):
        second.open_checkpoint(str(run_dir))
    assert second.run.info.run_dir == str(run_dir) and second.run.info.step == saved["step"]
    steps = []
    second.worker.progressed.connect(lambda p: steps.extend(p.new_steps.tolist()))
    second.start_training()
    qtbot.waitUntil(lambda: len(steps) > 3, timeout=TIMEOUT)
    assert steps[0] == saved["step"] + 1 and second.run.info.run_dir == str(run_dir)
    with qtbot.waitSignal(second.closed, timeout=TIMEOUT):
        second.close()
    assert RunReader(run_dir).load_checkpoint()["step"] > saved["step"]
    assert len(list(Path(os.environ["VAEGUI_RUNS_DIR"]).iterdir())) == 1  # no second folder
    # File > Recent runs lists it, newest first, in a later window too.
    third = MainWindow(settings)
    qtbot.addWidget(third)
    assert [a.text() for a in third.menu_actions.recent_menu.actions()][0] == str(run_dir)


def test_a_close_does_not_wait_for_a_long_training_step(qtbot, window, monkeypatch):
    real_step = Trainer._train_step
    step_may_end = threading.Event()

    def slow_step(self, *args):  # a huge batch on a slow device: it ends when the test says so
        if self.step >= 3:
            step_may_end.wait(TIMEOUT / 1000)
        return real_step(self, *args)
    monkeypatch.setattr(Trainer, "_train_step", slow_step)
    window.start_training()
    qtbot.waitUntil(lambda: window.worker.__dict__.get("_trainer") is not None
                    and window.worker._trainer.step >= 3, timeout=TIMEOUT)
    started = time.monotonic()
    window.close()  # the first close asks the run to stop and save, and returns at once
    assert time.monotonic() - started < 0.5 and window.isVisible()
    assert "Stopping" in window.statusBar().currentMessage()
    window.close()  # a second one leaves without waiting for the step
    assert time.monotonic() - started < CLOSE_WAIT_MS / 1000 + 1.0
    assert not window.isVisible()
    step_may_end.set()
    qtbot.waitUntil(lambda: not window.worker_thread.isRunning(), timeout=TIMEOUT)  # the step ends


CLOSED_MID_STEP = """
import gc, sys, threading, time
from PySide6.QtCore import QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication
from vaegui.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vaegui.core.trainer import Trainer
from vaegui.gui.main_window import MainWindow

def wait(seconds, until=lambda: False):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not until():
        loop = QEventLoop(); QTimer.singleShot(20, loop.quit); loop.exec()

real_step = Trainer._train_step
step_may_end, step_ended = threading.Event(), threading.Event()
def slow_step(self, *args):  # a long step: it ends when the script says so
    if self.step >= 3 and not step_may_end.is_set():
        step_may_end.wait(60)
        step_ended.set()
    return real_step(self, *args)
Trainer._train_step = slow_step
app = QApplication([])
config = RunConfig(DataConfig(dataset="shapes", image_size=16, train_limit=2048, test_limit=128),
                   ModelConfig(hidden=32, latent_dim=2), TrainConfig(epochs=1000, batch_size=64, device="cpu"))
window = MainWindow(QSettings(sys.argv[1], QSettings.Format.IniFormat), config=config)
window.show()
window.start_training()
wait(60, lambda: getattr(window.worker, "_trainer", None) is not None and window.worker._trainer.step >= 3)
window.close()
window.close()  # leaves without waiting for the step
window.deleteLater()  # as pytest-qt does with a test's windows
wait(0.2)
del window
gc.collect()  # the window goes; its worker thread is still in the step
step_may_end.set()
wait(60, step_ended.is_set)
wait(1.0)  # events the ending thread posts to the objects that went are delivered (or dropped)
print("ok")
"""


def test_a_window_closed_mid_step_can_be_collected(tmp_path):
    # Qt aborts the process when a running QThread is destroyed: collecting a window whose
    # close left its worker thread in a long step must not do that.
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "VAEGUI_RUNS_DIR": str(tmp_path / "runs")}
    proc = subprocess.run([sys.executable, "-c", CLOSED_MID_STEP, str(tmp_path / "settings.ini")],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout.strip()) == (0, "ok"), proc.stderr[-2000:]


def _app(tmp_path, *args) -> subprocess.Popen:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "VAEGUI_RUNS_DIR": str(tmp_path / "runs"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, str(REPO / "main.py"), *args], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _mapped(pid: int, library: str) -> bool:
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def _a_run_trains(runs: Path) -> bool:
    """Whether a run in ``runs`` has written a training step (steps.csv has more than its header)."""
    return any(len(p.read_text().splitlines()) > 1 for p in runs.glob("*/steps.csv"))


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="watches the process in /proc")
@pytest.mark.parametrize("moment", ["importing Qt", "training"])
def test_a_real_ctrl_c_is_one_line_and_exit_130(tmp_path, moment):
    """While Python still imports, or once the window trains: exit 130 within seconds, no
    traceback, and a model said to be saved is there."""
    proc = _app(tmp_path, "--dataset", "shapes", "--epochs", "100000", "--autostart")
    ready = ((lambda: _mapped(proc.pid, "libQt6Core")) if moment == "importing Qt"
             else (lambda: _a_run_trains(tmp_path / "runs")))
    deadline = time.monotonic() + 60
    while not ready() and proc.poll() is None:
        assert time.monotonic() < deadline, f"timed out waiting for the app to be {moment}"
        time.sleep(0.005)  # the polling interval
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "propagateSizeHints" not in line]
    assert len(lines) == 1 and lines[0].startswith("vaegui: interrupted"), err
    prefix = "vaegui: interrupted: saved the run in "
    if lines[0].startswith(prefix):
        assert RunReader(lines[0].removeprefix(prefix)).load_checkpoint()["step"] > 0


def test_sigterm_mid_epoch_saves_says_one_line_exits_143_and_the_folder_resumes(tmp_path, capsys):
    """What a service manager or a closing terminal sends: the same path as Ctrl-C."""
    from vaegui.cli import main

    proc = _app(tmp_path, "--dataset", "shapes", "--epochs", "100000", "--autostart")
    runs = tmp_path / "runs"
    deadline = time.monotonic() + 120
    # A subprocess, not this test's event loop: polling its files cannot starve it.
    while not any(p.stat().st_size for p in runs.glob("*/metrics.jsonl")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "slow"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    lines = [line for line in err.splitlines() if "propagateSizeHints" not in line]
    assert proc.returncode == 143, err
    prefix = "vaegui: terminated: saved the run in "
    assert len(lines) == 1 and lines[0].startswith(prefix) and "Traceback" not in err, err
    run = Path(lines[0].removeprefix(prefix))
    step = RunReader(run).load_checkpoint()["step"]
    per_epoch = RunReader(run).steps_per_epoch
    assert step >= per_epoch  # at least the first epoch, and the steps after it
    epochs = step // per_epoch + 1
    assert main(["train", "--resume", str(run / "checkpoint.pt"), "--epochs", str(epochs), "--offline",
                 "--no-progress"]) == 0
    assert RunReader(run).load_checkpoint()["step"] == epochs * per_epoch


def test_skipped_folder_files_are_listed_for_the_user(qtbot, settings, tiny_config, tmp_path):
    from PIL import Image
    import numpy as np
    for label in ("a", "b"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for k in range(12):
            Image.fromarray(np.full((16, 16), 20 * k, np.uint8)).save(tmp_path / "imgs" / label / f"{k}.png")
    (tmp_path / "imgs" / "a" / "broken.png").write_bytes(b"not a png")
    config = tiny_config(epochs=1).replace(data={"dataset": f"folder:{tmp_path / 'imgs'}", "image_size": 16,
                                                 "train_limit": None, "test_limit": None})
    w = MainWindow(settings, config=config)
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.runFinished, timeout=TIMEOUT):
        w.start_training()
    assert w.status_bar.skipped_button.isVisible() and w.status_bar.skipped_button.text() == "1 file skipped"
    w.status_bar.skipped_button.click()
    assert "broken.png" in w.status_bar.skipped_box.detailedText() and "broken.png" in w.status_bar.skipped_box.informativeText()
    w.status_bar.skipped_box.close()
    # Another dataset without skipped files: the button goes.
    w.training_panel.set_config(tiny_config(epochs=1))
    with qtbot.waitSignal(w.runFinished, timeout=TIMEOUT):
        w.start_training()
    assert not w.status_bar.skipped_button.isVisible()


def test_the_runs_folder_can_be_chosen_and_is_remembered(qtbot, settings, tiny_config, tmp_path):
    w = MainWindow(settings, config=tiny_config(epochs=1))
    qtbot.addWidget(w)
    w.set_runs_dir(str(tmp_path / "my-runs"))
    with qtbot.waitSignal(w.runFinished, timeout=TIMEOUT):
        w.start_training()
    assert Path(w.run.info.run_dir).parent == tmp_path / "my-runs"
    assert RunReader(w.run.info.run_dir).metrics()[-1]["epoch"] == 1
    w.close()
    again = MainWindow(settings)
    qtbot.addWidget(again)
    assert again.worker.runs_dir == tmp_path / "my-runs"
