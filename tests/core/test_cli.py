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
])
def test_user_errors_are_one_line_with_exit_code_2(capsys, args, needle):
    with pytest.raises(SystemExit) if args[1] in ("--epochs", "--model") else _no_raise():
        code = main(args)
        assert code == 2
    err = capsys.readouterr().err
    assert needle in err
    assert len(err.strip().splitlines()) == 1


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
    result = subprocess.run([sys.executable, "-m", "vaegui.cli", "eval", str(tmp_path / "nope.pt")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == f"vaegui: error: checkpoint {tmp_path / 'nope.pt'}: no such file"


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
