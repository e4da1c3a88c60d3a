"""`vaegui train` and `vaegui eval` end to end on tiny runs, and their user errors."""

import json
import subprocess
import sys

import pytest

from vaegui.cli import main

TINY = ["--dataset", "shapes", "--train-limit", "512", "--test-limit", "128", "--hidden", "32",
        "--latent-dim", "3", "--batch-size", "64", "--device", "cpu", "--offline"]


def last_json(text):
    return json.loads(text.strip().splitlines()[-1])


def test_train_then_eval_then_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "2", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("epoch   1") and lines[1].startswith("epoch   2")
    summary = json.loads(lines[-1])
    for key in ("test_elbo", "test_recon", "test_kl", "epochs", "seconds", "images_per_s", "device"):
        assert key in summary
    assert summary["epochs"] == 2 and summary["device"] == "cpu"
    assert summary["test_elbo"] == pytest.approx(summary["test_recon"] + summary["test_kl"])
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert metrics[-1]["test_elbo"] == pytest.approx(summary["test_elbo"])

    assert main(["eval", str(out / "checkpoint.pt"), "--iw-samples", "10", "--offline"]) == 0
    result = last_json(capsys.readouterr().out)
    assert result["test_elbo"] == pytest.approx(summary["test_elbo"])
    assert result["test_nll_iw"] < result["test_elbo"]

    assert main(["train", "--resume", str(out / "checkpoint.pt"), "--epochs", "3", "--offline"]) == 0
    resumed = last_json(capsys.readouterr().out)
    assert resumed["epochs"] == 3 and resumed["steps"] == 3 * 8
    assert [json.loads(x)["epoch"] for x in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


@pytest.mark.parametrize("args,needle", [
    (["train", "--epochs", "0"], "argument --epochs: 0 must be at least 1"),
    (["train", "--epochs", "ten"], "argument --epochs: 'ten' is not a whole number"),
    (["train", "--model", "rnn"], "invalid choice: 'rnn'"),
    (["train", *TINY, "--lr", "-1"], "argument --lr: -1 is out of range (0, 10]"),
    (["train", "--dataset", "nonsense", "--offline"], "nonsense"),
    (["train", "--threads", "many"], "argument --threads: 'many' is not auto or a whole number"),
])
def test_user_errors_are_one_line_with_exit_code_2(capsys, args, needle):
    with pytest.raises(SystemExit) if args[1] in ("--epochs", "--model", "--threads") else _no_raise():
        code = main(args)
        assert code == 2
    err = capsys.readouterr().err
    assert needle in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("option, shown", [([], "1 thread"), (["--threads", "3"], "3 threads"),
                                           (["--threads", "AUTO"], "1 thread")])
def test_the_thread_count_is_shown_and_reported(tmp_path, capsys, option, shown):
    # In tests the governor sees one CPU (conftest), so auto means 1 here.
    assert main(["train", *TINY, "--epochs", "1", *option, "--out", str(tmp_path / "run")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("epoch   1") and lines[0].endswith(f"images/s  {shown}")
    assert json.loads(lines[-1])["threads"] == int(shown.split()[0])


def test_missing_data_names_the_folder(tmp_path, capsys):
    code = main(["train", "--dataset", "kmnist", "--data-dir", str(tmp_path), "--offline"])
    err = capsys.readouterr().err
    assert code == 2
    assert str(tmp_path / "KMNIST" / "raw") in err and "train-images-idx3-ubyte" in err
    assert len(err.strip().splitlines()) == 1


def test_bad_checkpoint_names_the_file(tmp_path, capsys):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["eval", str(bad), "--offline"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and len(err.strip().splitlines()) == 1


def test_console_error_has_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "vaegui", "eval", str(tmp_path / "nope.pt")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == f"vaegui: error: checkpoint {tmp_path / 'nope.pt'}: no such file"


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# ---- resume rules and run folders --------------------------------------------------------------
def trained_run(tmp_path, capsys, epochs=1):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", str(epochs), "--out", str(out)]) == 0
    capsys.readouterr()
    return out


def test_resume_applies_the_options_that_may_change(tmp_path, capsys):
    import torch

    out = trained_run(tmp_path, capsys)
    ckpt = out / "checkpoint.pt"
    assert main(["train", "--resume", str(ckpt), *TINY, "--epochs", "2", "--lr", "0.01",
                 "--beta", "0.5", "--iw-samples", "5"]) == 0
    assert "test_nll_iw" in last_json(capsys.readouterr().out)
    state = torch.load(ckpt, weights_only=True)
    assert state["step"] == 16
    assert state["config"]["train"]["lr"] == 0.01 and state["config"]["train"]["beta"] == 0.5
    assert state["optimizer"]["param_groups"][0]["lr"] == 0.01  # not the checkpoint's 1e-3


@pytest.mark.parametrize("option,value", [
    ("--latent-dim", "5"), ("--model", "conv"), ("--hidden", "64"), ("--likelihood", "gaussian"),
    ("--dataset", "mnist"), ("--batch-size", "32"), ("--image-size", "32"), ("--seed", "7"),
    ("--train-limit", "100"),
])
def test_resume_refuses_options_that_would_change_the_model_or_data(tmp_path, capsys, option, value):
    out = trained_run(tmp_path, capsys)
    before = (out / "checkpoint.pt").read_bytes()
    assert main(["train", "--resume", str(out / "checkpoint.pt"), "--epochs", "2", "--offline",
                 option, value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"argument {option}: {value} differs from the checkpoint's" in err
    assert (out / "checkpoint.pt").read_bytes() == before


def test_resume_after_a_kill_between_checkpoint_and_metrics_keeps_each_epoch_once(tmp_path, capsys):
    out = trained_run(tmp_path, capsys, epochs=2)
    # As if a run had written epoch 3's metrics but was killed before its checkpoint, then
    # resumed from an older checkpoint: epochs 2 and 3 would be there twice.
    old = tmp_path / "epoch1.pt"
    assert main(["train", *TINY, "--epochs", "1", "--out", str(tmp_path / "short")]) == 0
    (tmp_path / "short" / "checkpoint.pt").rename(old)
    with open(out / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"epoch": 3, "step": 24}) + "\n")
    capsys.readouterr()
    assert main(["train", "--resume", str(old), "--epochs", "3", "--out", str(out), "--offline"]) == 2
    assert "already holds another run" in capsys.readouterr().err  # not the run it came from
    assert main(["train", "--resume", str(out / "checkpoint.pt"), "--epochs", "3", "--offline"]) == 0
    epochs = [json.loads(x)["epoch"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]


def test_a_run_folder_means_its_latest_checkpoint_to_eval_and_resume(tmp_path, capsys):
    out = trained_run(tmp_path, capsys)
    assert main(["eval", str(out), "--iw-samples", "2", "--offline"]) == 0
    result = last_json(capsys.readouterr().out)
    assert result["checkpoint"] == str(out / "checkpoint.pt") and result["step"] == 8
    # Resumed from the folder: trained on in that folder, not in its parent.
    assert main(["train", "--resume", str(out), "--epochs", "2", "--offline"]) == 0
    resumed = last_json(capsys.readouterr().out)
    assert resumed["steps"] == 2 * 8 and resumed["checkpoint"] == str(out / "checkpoint.pt")
    assert [json.loads(x)["epoch"] for x in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    (tmp_path / "photos").mkdir()
    assert main(["train", "--resume", str(tmp_path / "photos"), "--offline"]) == 2
    assert main(["eval", str(tmp_path / "photos"), "--offline"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(f"run folder {tmp_path / 'photos'}:" in line for line in err)


def test_a_new_run_never_overwrites_a_run(tmp_path, capsys):
    out = trained_run(tmp_path, capsys)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"vaegui: error: run folder {out}: already holds a run (checkpoint.pt, metrics.jsonl); " \
                  "resume it or choose another folder\n"
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_weights_that_became_non_finite_are_not_saved(tmp_path, capsys, monkeypatch):
    from torch.optim import Adam

    from vaegui.core.checkpoint import load_checkpoint
    from vaegui.core.optimizer import prepare

    prepare()  # its throwaway optimizer's step is not one of the run's
    original, calls = Adam.step, []

    def blows_up_at_step_10(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 10:  # in the second epoch (8 steps each)
            for group in self.param_groups:
                for p in group["params"]:
                    p.data.fill_(float("inf"))
        return result

    monkeypatch.setattr(Adam, "step", blows_up_at_step_10)
    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "3", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the weights became non-finite by step 11" in err
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 8  # the last good save stays


def test_skipped_folder_images_are_listed_in_one_line(tmp_path, capsys):
    from PIL import Image

    for i in range(6):
        Image.new("L", (20, 20), 30 * i).save(tmp_path / f"img{i}.png")
    for i in range(5):
        (tmp_path / f"broken{i}.png").write_bytes(b"not a png")
    assert main(["train", "--dataset", f"folder:{tmp_path}", "--image-size", "8", "--hidden", "8",
                 "--epochs", "1", "--device", "cpu", "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "skipped 5 files: broken0.png (cannot identify image file" in err and "and 2 more" in err


@pytest.mark.parametrize("args,needle", [
    (["--seed", str(10**30)], "argument --seed: 1000000000000000000000000000000 is out of range"),
    (["--image-size", "100000"], "argument --image-size: 100000 is out of range (8 to 1,024)"),
    (["--latent-dim", str(10**12)], "argument --latent-dim: 1000000000000 is out of range"),
    (["--epochs", str(10**12)], "argument --epochs: 1000000000000 is out of range"),
    (["--hidden", str(10**9)], "argument --hidden: 1000000000 is out of range"),
    (["--batch-size", str(10**12)], "argument --batch-size: 1000000000000 is out of range"),
    (["--threads", "0"], "argument --threads: 0 is out of range (1 to 1,024)"),
    (["--threads", "100000"], "argument --threads: 100,000 is more than 4 per CPU this process may use"),
    (["--lr", "inf"], "argument --lr: inf is not a finite number"),
    (["--lr", "nan"], "argument --lr: nan is not a finite number"),
    (["--beta", "nan"], "argument --beta: nan is not a finite number"),
    (["--sigma", "1e-30"], "argument --sigma: 1e-30 is out of range [0.001, 1000] (the loss clamps"),
    (["--hidden", "65536", "--image-size", "1024"], "model size: 137,440,722,951 parameters"),
    (["--image-size", "1024", "--train-limit", str(10**9)], "would not fit in memory"),
])
def test_out_of_range_numbers_are_one_line_naming_the_option(tmp_path, capsys, args, needle):
    assert main(["train", *TINY, *args, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_eval_refuses_a_huge_sample_count(capsys):
    with pytest.raises(SystemExit) as info:
        main(["eval", "x.pt", "--iw-samples", str(10**12)])
    assert info.value.code == 2
    assert "must be at most 100,000" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["file", "too long", "under /proc"])
def test_unusable_out_is_one_line(tmp_path, capsys, kind):
    out = {"file": tmp_path / "f", "too long": tmp_path / ("x" * 300), "under /proc": "/proc/vaegui/run"}[kind]
    if kind == "file":
        out.write_text("mine")
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vaegui: error: run folder {out}: ") and err.count("\n") == 1


@pytest.mark.parametrize("args", [["train", "--out", ""], ["train", "--resume", " "], ["eval", ""]])
def test_an_empty_path_is_refused_rather_than_read_as_the_current_folder(capsys, args):
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "an empty name is not a file or folder" in err


def test_resume_rebuilds_the_metrics_line_a_kill_lost(tmp_path, capsys):
    # Killed after epoch 2's checkpoint was saved but before its metrics line was written.
    out = trained_run(tmp_path, capsys, epochs=2)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    (out / "metrics.jsonl").write_text(lines[0] + "\n")
    assert main(["train", "--resume", str(out / "checkpoint.pt"), "--epochs", "3", "--offline"]) == 0
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    rebuilt, original = records[1], json.loads(lines[1])
    assert rebuilt["images_per_s"] is None
    for key in ("step", "train_elbo", "train_kl", "test_elbo", "active_units", "kl_weight"):
        assert rebuilt[key] == pytest.approx(original[key]), key


@pytest.mark.parametrize("extra, code", [([], 0), (["--lr", "-1"], 2)])
def test_a_finished_command_ends_without_python_s_finalisation(tmp_path, extra, code):
    """Tearing torch down at exit took 0.6 s: a command's process ends once its output is
    flushed (an atexit hook never runs), with its exit code and every line it printed."""
    argv = ["vaegui", "train", *TINY, "--epochs", "1", "--out", str(tmp_path / "run"), *extra]
    script = ("import atexit, sys\natexit.register(lambda: print('finalised'))\n"
              f"sys.argv = {argv!r}\nfrom vaegui.cli import main\nmain()\nprint('returned')\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == code, result.stderr
    assert "finalised" not in result.stdout and "returned" not in result.stdout
    if code == 0:
        assert json.loads(result.stdout.splitlines()[-1])["epochs"] == 1
    else:
        assert result.stderr.count("\n") == 1 and "--lr" in result.stderr


def test_the_progress_bar_shows_the_epoch_and_time_left_as_the_app_does():
    import io

    import numpy as np

    from vaegui.cli.train import _ProgressBar
    from vaegui.core.progress import Progress

    stream = io.StringIO()
    bar = _ProgressBar(stream, enabled=True)
    # The last step of epoch 1 of 10: the epoch just finished (the bar used to say 2/10 here).
    bar.update(Progress(step=100, total_steps=1000, steps_per_epoch=100, epochs=10,
                        new_steps=np.zeros(0), new_losses=np.zeros((0, 3)), new_kl_weights=np.zeros(0),
                        kl_weight=1.0, images_per_s=1000.0, images_seen=6400, train_seconds=6.4,
                        seconds_left=3725.4, device="cpu", threads=2))
    line = stream.getvalue()
    assert "epoch 1/10" in line and "1:02:05 left" in line and "2 threads" in line


def test_every_setting_an_option_maps_has_its_option():
    """OPTION_FIELDS (option -> setting) and the options add_config_options defines are one list:
    an option without a mapping would be parsed and ignored, a mapping without an option dead."""
    import argparse

    from vaegui.cli.options import OPTION_FIELDS, add_config_options

    parser = argparse.ArgumentParser()
    add_config_options(parser)
    assert set(vars(parser.parse_args([]))) == set(OPTION_FIELDS)
