"""A long `vaegui eval` shows its progress and the time left on stderr; a short one prints only
its result."""

import io
import json

from vaegui.cli import main
from vaegui.core import eval_progress
from vaegui.core.eval_progress import EvalProgress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_gets_a_line_now_and_then_with_the_time_left():
    now = [0.0]
    log = io.StringIO()
    shown = EvalProgress(log, clock=lambda: now[0])
    for t, fraction in ((1.0, 0.05), (9.0, 0.10), (10.0, 0.20), (20.0, 0.40), (40.0, 0.80)):
        now[0] = t
        shown.update(fraction)
    # The first line once it has run 10 s (20% in 10 s: 40 s left), then at most every 30 s.
    assert log.getvalue().splitlines() == ["vaegui: evaluating: 20% done, about 0:40 left",
                                           "vaegui: evaluating: 80% done, about 0:10 left"]


def test_a_terminal_gets_one_line_rewritten_and_cleared():
    now = [0.0]
    tty = Terminal()
    shown = EvalProgress(tty, clock=lambda: now[0])
    now[0] = 3600.0
    shown.update(0.25)
    assert tty.getvalue() == "\rvaegui: evaluating: 25% done, about 3:00:00 left\033[K"
    shown.clear()
    assert tty.getvalue().endswith("\r\033[K")


def test_eval_reports_its_progress_on_stderr(tmp_path, capsys, monkeypatch):
    assert main(["train", "--dataset", "shapes", "--train-limit", "128", "--test-limit", "512", "--hidden", "16",
                 "--batch-size", "64", "--device", "cpu", "--offline", "--no-progress", "--epochs", "1",
                 "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    monkeypatch.setattr(eval_progress, "LOG_FIRST_S", 0.0)
    monkeypatch.setattr(eval_progress, "LOG_EVERY_S", 0.0)
    assert main(["eval", str(tmp_path / "checkpoint.pt"), "--iw-samples", "500", "--offline"]) == 0
    out, err = capsys.readouterr()
    lines = err.splitlines()
    shares = [int(line.split(": ")[2].split("%")[0]) for line in lines]
    assert len(lines) > 3 and all(line.startswith("vaegui: evaluating: ") and " left" in line for line in lines)
    assert shares == sorted(shares) and 0 < shares[0] and shares[-1] < 100
    assert json.loads(out)["iw_samples"] == 500
