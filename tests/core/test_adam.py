"""vaegui's Adam is torch.optim.Adam(fused=True) without torch.optim: the same weights bit for
bit, state dicts that load into either, and a bad state refused before anything changes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vaegui.core.adam import Adam

REPO = Path(__file__).resolve().parents[2]


def model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))


def train(net: torch.nn.Module, optimizer, steps: int, seed: int = 1, frozen: str | None = None) -> None:
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(16, 7, generator=gen)
        optimizer.zero_grad(set_to_none=True)
        net(x).pow(2).mean().backward()
        if frozen:  # a parameter without a gradient this step is left alone, its state too
            net.get_parameter(frozen).grad = None
        optimizer.step()


@pytest.mark.parametrize("lr, frozen", [(1e-3, None), (3e-2, "0.bias")])
def test_the_weights_and_state_are_torch_s_bit_for_bit(lr, frozen):
    ours, theirs = model(), model()
    a = Adam(ours.parameters(), lr=lr)
    b = torch.optim.Adam(theirs.parameters(), lr=lr, fused=True)
    train(ours, a, 25, frozen=frozen)
    train(theirs, b, 25, frozen=frozen)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        assert torch.equal(p, q), name
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert sa["state"].keys() == sb["state"].keys()
    for i in sb["state"]:
        for key, value in sb["state"][i].items():
            assert torch.equal(sa["state"][i][key], value) and sa["state"][i][key].dtype == value.dtype


@pytest.mark.parametrize("first, second", [("ours", "torch"), ("torch", "ours")])
def test_a_state_dict_resumes_in_either_bit_for_bit(first, second):
    make = {"ours": lambda net: Adam(net.parameters(), lr=1e-2),
            "torch": lambda net: torch.optim.Adam(net.parameters(), lr=1e-2, fused=True)}
    straight = model()
    train(straight, make[first](straight), 20)
    # Ten steps, save, and ten more in a fresh model and optimiser of the other kind.
    half = model()
    opt = make[first](half)
    train(half, opt, 10)
    saved = {"model": {k: v.clone() for k, v in half.state_dict().items()},
             "optimizer": opt.state_dict()}
    resumed = model(seed=5)
    resumed.load_state_dict(saved["model"])
    opt2 = make[second](resumed)
    opt2.load_state_dict(saved["optimizer"])
    # The second half's batches are the second half of the straight run's.
    gen_state = torch.Generator().manual_seed(1)
    for _ in range(10):
        torch.randn(16, 7, generator=gen_state)
    for _ in range(10):
        x = torch.randn(16, 7, generator=gen_state)
        opt2.zero_grad(set_to_none=True)
        resumed(x).pow(2).mean().backward()
        opt2.step()
    for p, q in zip(resumed.parameters(), straight.parameters()):
        assert torch.equal(p, q)


def test_the_learning_rate_can_be_changed_between_steps():
    ours, theirs = model(), model()
    a, b = Adam(ours.parameters(), lr=1e-2), torch.optim.Adam(theirs.parameters(), lr=1e-2, fused=True)
    train(ours, a, 5)
    train(theirs, b, 5)
    a.param_groups[0]["lr"] = b.param_groups[0]["lr"] = 1e-4
    train(ours, a, 5, seed=2)
    train(theirs, b, 5, seed=2)
    assert all(torch.equal(p, q) for p, q in zip(ours.parameters(), theirs.parameters()))


def test_a_state_that_does_not_fit_is_refused_before_anything_changes():
    net = model()
    opt = Adam(net.parameters())
    train(net, opt, 3)
    before = {k: {n: t.clone() for n, t in s.items()} for k, s in opt.state_dict()["state"].items()}
    other = torch.nn.Linear(7, 5)
    other_opt = Adam(other.parameters())
    train(torch.nn.Sequential(other), other_opt, 1)  # two parameters, not four
    with pytest.raises(ValueError, match="1 parameter groups of \\[2\\] parameters, this model one of 4"):
        opt.load_state_dict(other_opt.state_dict())
    bad = opt.state_dict()
    bad["state"] = {k: dict(v) for k, v in bad["state"].items()}
    bad["state"][3]["exp_avg"] = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="exp_avg of parameter 3 is \\(2, 2\\), the parameter \\(3,\\)"):
        opt.load_state_dict(bad)
    amsgrad = opt.state_dict()
    amsgrad["param_groups"] = [{**amsgrad["param_groups"][0], "amsgrad": True}]
    with pytest.raises(ValueError, match="amsgrad=True"):
        opt.load_state_dict(amsgrad)
    after = opt.state_dict()["state"]
    assert all(torch.equal(after[k][n], t) for k, s in before.items() for n, t in s.items())


def test_training_imports_no_torch_dynamo():
    """The reason this Adam exists: torch.optim's first use imports torch._dynamo (1.5 s)."""
    code = ("import sys\nfrom vaegui.core.config import *\nfrom vaegui.core.dataset_loader import load_dataset\n"
            "from vaegui.core.trainer import Trainer\n"
            "cfg = RunConfig(data=DataConfig(dataset='shapes', train_limit=64, test_limit=16),\n"
            "                model=ModelConfig(latent_dim=2, hidden=16), train=TrainConfig(epochs=1, batch_size=32))\n"
            "t = Trainer(cfg, load_dataset(cfg.data, download=False))\nlist(t.run())\nt.state_dict()\n"
            "print('dynamo' if 'torch._dynamo' in sys.modules else 'none')\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "none"
