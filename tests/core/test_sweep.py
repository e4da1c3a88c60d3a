"""`vaegui sweep`: the grid, the folder names, the summary, and real sweeps of `vaegui train`
processes (killed and continued; a beta sweep whose KL falls as beta grows)."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vaegui.core import sweep as core
from vaegui.core.run_folder import writer_busy
from vaegui.cli.sweep import axes_from, main

TINY = ["--dataset", "shapes", "--train-limit", "64", "--test-limit", "16", "--image-size", "16",
        "--hidden", "8", "--batch-size", "64", "--device", "cpu", "--offline", "--threads", "1"]


def test_the_grid_is_the_product_of_the_lists_in_named_folders():
    axes, flags = axes_from(["--beta", "0.5,1,4", "--latent-dim=2,16", "--epochs", "5", "--offline",
                             "--model", "mlp", "--lr", "1e-3,0.0005"])
    assert [a.setting for a in axes] == ["beta", "latent_dim", "epochs", "family", "lr"]
    assert "--offline" in flags and "--no-progress" in flags
    runs = core.plan(axes)
    assert len(runs) == 3 * 2 * 2
    names = [r.name for r in runs]
    assert names[:3] == ["beta=0.5,latent_dim=2,lr=0.001", "beta=0.5,latent_dim=2,lr=0.0005",
                         "beta=0.5,latent_dim=16,lr=0.001"]
    assert "beta=4,latent_dim=16,lr=0.0005" in names and len(set(names)) == len(names)
    assert {tuple(sorted(r.settings.items())) for r in runs} == {
        (("beta", b), ("latent_dim", d), ("lr", lr)) for b in (0.5, 1.0, 4.0) for d in (2, 16)
        for lr in (1e-3, 5e-4)}
    last = runs[-1]
    assert last.args == ("--beta", "4", "--latent-dim", "16", "--epochs", "5", "--model", "mlp",
                         "--lr", "0.0005")


def test_names_use_run_json_setting_names_sorted_and_do_not_depend_on_the_option_order():
    a = core.plan(axes_from(["--warmup", "0,100", "--model", "mlp,conv"])[0])
    b = core.plan(axes_from(["--model", "mlp,conv", "--warmup", "0,100"])[0])
    assert {r.name for r in a} == {r.name for r in b}
    assert "family=conv,warmup_steps=100" in {r.name for r in a}
    assert core.plan(axes_from(["--beta", "2"])[0])[0].name == core.SINGLE_RUN_NAME


@pytest.mark.parametrize("tokens,needle", [
    (["--beta", "1,x"], "argument --beta: invalid float value: 'x'"),
    (["--epochs", "1,0"], "argument --epochs: 0 must be at least 1"),
    (["--beta", "1,,2"], "has an empty item"),
    (["--beta", "1,1.0"], "share the folder 'beta=1'"),
    (["--resume", "x"], "a sweep resumes its runs itself"),
    (["--beta", "1", "--beta", "2"], "given twice"),
    (["--nonsense", "3"], "unrecognized arguments"),
])
def test_bad_lists_are_refused_in_one_line_before_anything_runs(tmp_path, capsys, tokens, needle):
    assert main([*tokens, "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_the_summary_has_a_column_per_swept_setting_and_the_results(tmp_path):
    runs = core.plan(axes_from(["--beta", "1,4", "--latent-dim", "2"])[0])
    rows = [core.summary_row(r, tmp_path / r.name, core.FAILED, 1.5) for r in runs]
    core.write_summary(tmp_path, rows, ["beta"], iwae=False, planned=[r.name for r in runs])
    with open(tmp_path / core.SUMMARY_CSV) as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["run", "beta", "test_elbo", "test_recon", "test_kl", "active_units",
                              "seconds", "status"]
    assert [(t["run"], t["beta"], t["status"]) for t in table] == [("beta=1", "1.0", "failed"),
                                                                    ("beta=4", "4.0", "failed")]
    document = core.read_summary(tmp_path)
    assert document["planned"] == ["beta=1", "beta=4"] and document["swept"] == ["beta"]
    core.write_summary(tmp_path, rows, ["beta"], iwae=True, planned=[])
    assert "iwae_nll" in core.read_summary(tmp_path)["columns"]
    assert core.threads_per_run(1, 8) is None and core.threads_per_run(3, 8) == 2
    assert core.threads_per_run(4, 2) == 1


def _sweep_command(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "vaegui", "sweep", *TINY, *extra, "--out", str(out)]


def _env() -> dict:
    root = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)  # polling another process's files: there is no signal to wait on


def test_a_killed_sweep_continues_where_it_stopped(tmp_path):
    out = tmp_path / "sweep"
    command = _sweep_command(out, "--epochs", "25", "--beta", "1,4")
    first, second = out / "beta=1", out / "beta=4"
    sweep = subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def first_done_second_saved():
            if sweep.poll() is not None:  # it ended by itself: say why rather than wait
                raise AssertionError(f"the sweep ended with {sweep.returncode}: {sweep.communicate()[1][-2000:]}")
            document = core.read_summary(out)
            done = document and any(r["run"] == "beta=1" and r["status"] == "finished" for r in document["runs"])
            return done and (second / "checkpoint.pt").exists()
        _wait(first_done_second_saved, 240, "the first run to finish and the second to save")
        sweep.kill()  # SIGKILL: the sweep gets no chance to clean up
    finally:
        sweep.kill()
        sweep.communicate()
    checkpoint = first / "checkpoint.pt"
    before = (checkpoint.stat().st_mtime_ns, checkpoint.read_bytes())
    _wait(lambda: not writer_busy(second), 60, "the orphaned run to save and end")
    metrics = [json.loads(x) for x in (second / "metrics.jsonl").read_text().splitlines()]
    assert 0 < len(metrics) < 25, "the second run was stopped part-way"

    again = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()
    assert "beta=1: finished before, not run again" in lines
    assert "beta=4: resumed" in lines
    assert (checkpoint.stat().st_mtime_ns, checkpoint.read_bytes()) == before
    commands = [line for line in (out / "logs" / "beta=4.log").read_text().splitlines() if line.startswith("$ ")]
    assert len(commands) == 2 and "--resume" not in commands[0] and "--resume" in commands[1]
    epochs = [json.loads(x)["epoch"] for x in (second / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, 26))
    document = core.read_summary(out)
    assert [(r["run"], r["status"]) for r in document["runs"]] == [("beta=1", "finished"), ("beta=4", "finished")]
    with open(out / core.SUMMARY_CSV) as f:
        assert [r["run"] for r in csv.DictReader(f)] == ["beta=1", "beta=4"]


def test_sigint_stops_the_running_runs_cleanly(tmp_path):
    out = tmp_path / "sweep"
    sweep = subprocess.Popen(_sweep_command(out, "--epochs", "200", "--beta", "1,4", "--parallel", "2"),
                             env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait(lambda: all((out / n / "checkpoint.pt").exists() for n in ("beta=1", "beta=4")), 240,
              "both runs to save once")
        sweep.send_signal(signal.SIGINT)
        stdout, stderr = sweep.communicate(timeout=120)
    finally:
        sweep.kill()
    assert sweep.returncode == 130, stderr
    document = core.read_summary(out)
    assert [(r["run"], r["status"]) for r in document["runs"]] == [("beta=1", "interrupted"),
                                                                    ("beta=4", "interrupted")]
    for name in ("beta=1", "beta=4"):
        assert not writer_busy(out / name)
        assert "interrupted" in (out / "logs" / f"{name}.log").read_text()
    assert "run the same sweep again" in stderr


def test_on_shapes_a_larger_beta_gives_a_smaller_kl(tmp_path):
    out = tmp_path / "sweep"
    code = subprocess.run([sys.executable, "-m", "vaegui", "sweep", "--dataset", "shapes", "--train-limit", "512",
                           "--test-limit", "128", "--hidden", "32", "--latent-dim", "4", "--image-size", "16",
                           "--batch-size", "32", "--device", "cpu", "--offline", "--threads", "1",
                           "--epochs", "2", "--beta", "0.2,4", "--out", str(out)],
                          env=_env(), capture_output=True, text=True, timeout=240)
    assert code.returncode == 0, code.stderr
    rows = {r["run"]: r for r in core.read_summary(out)["runs"]}
    assert rows["beta=4"]["test_kl"] < 0.5 * rows["beta=0.2"]["test_kl"]
    assert code.stdout.splitlines()[-3].split()[:2] == ["run", "beta"]  # the table at the end


def test_parallel_runs_share_the_cores_and_never_oversubscribe(tmp_path, monkeypatch, capsys):
    import vaegui.cli.sweep as sweep_cli

    seen = {}

    def run(self):
        seen.update(flags=list(self.flags), parallel=self.parallel)
        return 0
    monkeypatch.setattr(sweep_cli.Sweep, "run", run)
    monkeypatch.setattr(sweep_cli, "_available_cpus", lambda: 8)
    grid = ["--beta", "1,2,3,4", "--out", str(tmp_path / "s")]
    assert main([*grid, "--parallel", "3"]) == 0
    assert seen["parallel"] == 3 and seen["flags"][-2:] == ["--threads", "2"]
    assert main(grid) == 0
    assert seen["parallel"] == 1 and "--threads" not in seen["flags"]  # the governor, over all cores
    assert main([*grid, "--parallel", "16"]) == 0
    assert seen["parallel"] == 4  # no more at once than runs (nor than cores)
    assert main([*grid, "--parallel", "3", "--threads", "2"]) == 0
    assert seen["flags"].count("--threads") == 0  # the user's --threads is an axis, passed per run
    assert main([*grid, "--parallel", "3", "--threads", "4"]) == 2
    assert "oversubscribe" in capsys.readouterr().err


def test_the_sweep_process_never_imports_torch(tmp_path):
    """It only plans, starts and watches `vaegui train` processes: seconds of torch import saved."""
    code = ("import sys; from vaegui.cli.sweep import main; "
            f"main(['--beta', '1,2', '--lr', '0.001,100', '--out', {str(tmp_path / 's')!r}]); "
            "print(sorted(m for m in ('torch', 'PySide6') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=60)
    assert "argument --lr: 100" in done.stderr  # planned and checked every run's settings
    assert done.stdout.strip() == "[]", done.stderr
