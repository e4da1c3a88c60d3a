"""Ctrl-C (SIGINT) at awkward moments: one line on stderr, exit 130, no traceback, within about
a second, and the run saved. And a reader that goes away (`vaegui train | head -1`). Real
processes, since signals and pipes are the point."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vaegui.cli import main
from vaegui.core.checkpoint import load_checkpoint

pytestmark = pytest.mark.skipif(not Path("/proc/self/maps").exists(),
                                reason="sends POSIX signals, and watches the process in /proc")

SMALL = ["--dataset", "shapes", "--train-limit", "128", "--hidden", "32", "--batch-size", "64",
         "--device", "cpu", "--offline", "--no-progress"]


def start(*args):
    return subprocess.Popen([sys.executable, "-m", "vaegui", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_line(proc, prefix, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(prefix):
            return line
        if not line and proc.poll() is not None:
            break
    proc.kill()
    pytest.fail(f"no line starting {prefix!r}: {proc.stderr.read()}")


def wait_until(condition, what, timeout=60):
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)  # the polling interval


def cpu_seconds(pid):
    """CPU time the process has used so far (Linux /proc), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def torch_loaded(pid):
    """Whether the process has mapped torch's C++ library: it is importing torch, or has."""
    try:
        return "libtorch_cpu" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def busy_for(proc, seconds):
    """A condition: the process has used ``seconds`` of CPU from now on."""
    start = cpu_seconds(proc.pid)
    return lambda: cpu_seconds(proc.pid) >= start + seconds or proc.poll() is not None


def interrupt(proc, times=1, gap=0.05):
    for i in range(times):
        proc.send_signal(signal.SIGINT)
        if i + 1 < times:
            time.sleep(gap)  # the gap between two presses is what the test varies
    sent = time.monotonic()
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err, time.monotonic() - sent


def test_ctrl_c_during_the_final_iwae_stops_within_a_second_and_saves(tmp_path):
    # 20,000 importance samples of 1,000 test images: half a minute of work if not cut short.
    proc = start("train", *SMALL, "--test-limit", "1000", "--epochs", "1", "--iw-samples", "20000",
                 "--out", str(tmp_path / "run"))
    wait_for_line(proc, "epoch   1")
    wait_until(busy_for(proc, 0.3), "the IWAE evaluation")  # all that is left after epoch 1
    code, out, err, seconds = interrupt(proc)
    # Cut short: the bound (as for training's Ctrl-C) includes the exit of a process with torch
    # loaded, 3.1 s once on a loaded machine; the evaluation alone would take half a minute.
    assert code == 130 and seconds < 5, (seconds, err)
    assert err == f"vaegui: interrupted: stopped at step 2, saved in {tmp_path / 'run' / 'checkpoint.pt'}\n"
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["stopped"] and "test_nll_iw" not in summary
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 2


@pytest.mark.parametrize("gap", [0.001, 0.01])  # the second one often lands inside the first's handling
def test_ctrl_c_twice_during_training_is_one_line_and_leaves_a_good_checkpoint(tmp_path, gap):
    proc = start("train", *SMALL, "--test-limit", "64", "--epochs", "100000", "--out", str(tmp_path / "run"))
    wait_for_line(proc, "epoch   2")
    code, out, err, seconds = interrupt(proc, times=2, gap=gap)
    assert code == 130 and seconds < 5
    assert err.count("\n") == 1 and err.startswith("vaegui: interrupted") and "Traceback" not in err
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] >= 2


def test_ctrl_c_during_eval_is_one_line(tmp_path, capsys):
    assert main(["train", *SMALL, "--test-limit", "1000", "--epochs", "1", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    proc = start("eval", str(tmp_path / "checkpoint.pt"), "--iw-samples", "20000", "--device", "cpu",
                 "--offline")
    wait_until(lambda: torch_loaded(proc.pid), "torch to load")
    wait_until(busy_for(proc, 1.5), "the evaluation")  # past torch's import, into the IWAE bound
    code, out, err, seconds = interrupt(proc)
    assert (code, err, out) == (130, "vaegui: interrupted\n", "") and seconds < 3


@pytest.mark.parametrize("moment", ["importing torch", "making the run"])
def test_ctrl_c_during_start_up_is_one_line(tmp_path, moment):
    proc = start("train", *SMALL, "--epochs", "100000", "--out", str(tmp_path / "run"))
    if moment == "importing torch":
        wait_until(lambda: torch_loaded(proc.pid), moment)
    else:  # the folder is made before the data is loaded and the model built
        wait_until(lambda: (tmp_path / "run").exists() or proc.poll() is not None, moment)
    code, out, err, _ = interrupt(proc)
    assert code == 130 and err.count("\n") == 1 and err.startswith("vaegui: interrupted"), err
    if err == "vaegui: interrupted\n":  # before the run began: it left no folder behind
        assert not (tmp_path / "run").exists()
    else:  # during training: stopped and saved
        assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] >= 0


def test_a_reader_that_goes_away_is_one_line_and_the_run_is_kept(tmp_path):
    proc = start("train", *SMALL, "--test-limit", "64", "--epochs", "100000", "--out", str(tmp_path / "run"))
    wait_for_line(proc, "epoch   1")
    proc.stdout.close()  # as `| head -1` does once it has its line
    err = proc.stderr.read()
    assert proc.wait(timeout=30) == 2
    assert err == "vaegui: error: the output was closed before the command finished\n"
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] >= 2


def test_a_second_ctrl_c_after_the_save_adds_no_line(tmp_path):
    # What a busy machine does to the test above: the second press arrives once the run is
    # saved and its summary printed, while the process is on its way out.
    proc = start("train", *SMALL, "--test-limit", "64", "--epochs", "100000", "--out", str(tmp_path / "run"))
    wait_for_line(proc, "epoch   2")
    proc.send_signal(signal.SIGINT)
    wait_for_line(proc, "{")  # the summary: saved, and the process is ending
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.count("\n") == 1 and err.startswith("vaegui: interrupted: stopped at step"), err


class _Trainer:
    stopped = 0

    def stop(self):
        self.stopped += 1


@pytest.mark.parametrize("ends_process", [False, True])
def test_after_the_save_ctrl_c_is_ignored_until_the_process_ends(ends_process):
    from vaegui.cli.train import _StopOnCtrlC

    before = signal.getsignal(signal.SIGINT)
    trainer = _Trainer()
    try:
        with _StopOnCtrlC(trainer, ends_process) as ctrl_c:
            signal.raise_signal(signal.SIGINT)
            assert (ctrl_c.pressed, trainer.stopped) == (1, 1)
            ctrl_c.finished()
            signal.raise_signal(signal.SIGINT)  # ignored: the run is saved
            assert ctrl_c.pressed == 1
        # An in-process caller (a test, the app) gets its handler back; a process that ends
        # now keeps ignoring Ctrl-C, rather than report a finished run as interrupted.
        assert signal.getsignal(signal.SIGINT) is (signal.SIG_IGN if ends_process else before)
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_second_ctrl_c_before_the_save_interrupts():
    from vaegui.cli.train import _StopOnCtrlC

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), _StopOnCtrlC(_Trainer(), ends_process=True) as ctrl_c:
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)
    assert ctrl_c.pressed == 2 and signal.getsignal(signal.SIGINT) is before


def test_sigterm_during_training_saves_says_one_line_and_exits_143_and_the_run_resumes(tmp_path, capsys):
    run = tmp_path / "run"
    proc = start("train", *SMALL, "--test-limit", "64", "--epochs", "100000", "--out", str(run))
    wait_for_line(proc, "epoch   2")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    step = load_checkpoint(run / "checkpoint.pt")["step"]
    assert err == f"vaegui: terminated: stopped at step {step}, saved in {run / 'checkpoint.pt'}\n"
    assert json.loads(out.strip().splitlines()[-1])["stopped"]
    epochs = step // 2 + 2  # 2 steps an epoch: one more epoch than it finished
    assert main(["train", "--resume", str(run / "checkpoint.pt"), "--epochs", str(epochs), "--offline",
                 "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 2 * epochs


def test_sigterm_during_eval_is_one_line_and_exit_143(tmp_path, capsys):
    assert main(["train", *SMALL, "--test-limit", "1000", "--epochs", "1", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    proc = start("eval", str(tmp_path / "checkpoint.pt"), "--iw-samples", "20000", "--device", "cpu",
                 "--offline")
    time.sleep(4)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, out) == (143, "") and err.startswith("vaegui: terminated") and err.count("\n") == 1, err
