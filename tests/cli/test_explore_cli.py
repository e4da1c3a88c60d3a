"""`vaegui explore --model package.module:factory`: a module written to a temporary folder opens
in the explorer; what cannot be imported, loaded or explored is one line and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from vaegui.cli import main

REPO = Path(__file__).resolve().parents[2]
MODULE = textwrap.dedent('''
    import torch
    from torch import nn


    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Linear(64, 4)
            self.dec = nn.Linear(2, 64)

        def encode(self, x):
            mu, logvar = self.enc(x.flatten(1)).chunk(2, dim=1)
            return mu, logvar

        def decode(self, z):
            return self.dec(z).reshape(len(z), 1, 8, 8)


    def make():
        return VAE()


    def broken():
        raise RuntimeError("no GPU here")


    class NoConvention(nn.Module):
        pass
''')


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    """A folder with the user's module, images, labels and weights, as the current folder."""
    (tmp_path / "mymodels.py").write_text(MODULE)
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.integers(0, 256, (80, 8, 8), dtype=np.uint8))  # (N, H, W) uint8
    np.save(tmp_path / "y.npy", np.arange(80) % 4)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("mymodels", None)
    import mymodels

    torch.manual_seed(3)
    torch.save(mymodels.make().state_dict(), tmp_path / "w.pt")
    yield tmp_path
    sys.modules.pop("mymodels", None)


@pytest.mark.parametrize("source", [["--weights", "w.pt", "--images", "x.npy", "--labels", "y.npy"],
                                    ["--dataset", "shapes", "--image-size", "8", "--limit", "50", "--offline"]])
def test_explore_opens_a_module_written_to_a_folder(user_dir, source):
    env = dict(os.environ, PYTHONPATH=str(REPO), QT_QPA_PLATFORM="offscreen",
               HOME=str(user_dir), XDG_CONFIG_HOME=str(user_dir / "config"))  # no real settings touched
    result = subprocess.run([sys.executable, "-m", "vaegui", "explore", "--model", "mymodels:make", *source,
                             "--screenshot", "shot.png"],
                            cwd=user_dir, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "saved shot.png" in result.stdout
    from PIL import Image

    assert Image.open(user_dir / "shot.png").size == (1600, 1000)


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("model, extra, needle", [
    ("nosuch.module:make", [], "--model nosuch.module:make: cannot import nosuch.module (ModuleNotFoundError"),
    ("mymodels", [], "--model 'mymodels': expected package.module:factory"),
    ("mymodels:nope", [], "--model mymodels:nope: mymodels has no nope"),
    ("mymodels:broken", [], "--model mymodels:broken: broken() raised RuntimeError: no GPU here"),
    ("mymodels:NoConvention", [], "model NoConvention has neither encode(x) and decode(z)"),
    ("mymodels:make", ["--weights", "missing.pt"], "--weights missing.pt: no such file"),
    ("mymodels:make", ["--weights", "evil.pt"], "--weights evil.pt: refused: it holds objects other than tensors"),
    ("mymodels:make", ["--weights", "other.pt"], "--weights other.pt: do not fit VAE (Error(s) in loading state_dict"),
])
def test_what_cannot_be_used_is_one_line_and_exit_2(user_dir, capsys, model, extra, needle):
    torch.save({"x": Path("a")}, user_dir / "evil.pt")  # an object weights_only refuses to build
    torch.save({"enc.weight": torch.zeros(3, 3)}, user_dir / "other.pt")
    assert main(["explore", "--model", model, *extra, "--images", "x.npy"]) == 2
    assert needle in _one_line(capsys)


def test_bad_images_are_one_line(user_dir, capsys):
    (user_dir / "bad.npy").write_text("not numpy")
    assert main(["explore", "--model", "mymodels:make", "--images", "bad.npy"]) == 2
    assert "--images bad.npy: cannot be read as a .npy array" in _one_line(capsys)
    np.save(user_dir / "few.npy", np.arange(3))
    assert main(["explore", "--model", "mymodels:make", "--images", "x.npy", "--labels", "few.npy"]) == 2
    assert "labels: 3 labels for 80 images" in _one_line(capsys)


def test_safetensors_weights(user_dir, capsys):
    try:
        from safetensors.torch import save_file
    except ImportError:
        (user_dir / "w.safetensors").write_bytes(b"\0" * 16)
        assert main(["explore", "--model", "mymodels:make", "--weights", "w.safetensors", "--images", "x.npy"]) == 2
        assert "needs the safetensors package (pip install safetensors)" in _one_line(capsys)
        return
    import mymodels

    saved = mymodels.make().state_dict()
    save_file(saved, str(user_dir / "w.safetensors"))
    model = mymodels.make()
    from vaegui.cli.explore import load_weights

    load_weights(model, str(user_dir / "w.safetensors"))
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, saved[key])
