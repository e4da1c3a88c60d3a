"""The optimiser is torch.optim.Adam (fused where the device has the kernel); a saved state,
including one in the layout vaegui's former hand-made Adam wrote, resumes bit for bit and keeps
this run's settings; a state that does not fit is refused before anything changes; and the
package calls no private torch function."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from vaegui.core.optimizer import load_adam_state, make_adam, prepare, prepare_in_background

PACKAGE = Path(__file__).resolve().parents[2] / "vaegui"


def model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))


def batches(n: int, skip: int = 0):
    gen = torch.Generator().manual_seed(1)
    for i in range(skip + n):
        x = torch.randn(16, 7, generator=gen)
        if i >= skip:
            yield x


def train(net: torch.nn.Module, optimizer, xs) -> None:
    for x in xs:
        optimizer.zero_grad(set_to_none=True)
        net(x).pow(2).mean().backward()
        optimizer.step()


def former_layout(state: dict) -> dict:
    """The state dict as vaegui's hand-made Adam (before it used torch.optim) wrote it, field by
    field: float32 0-d steps, and the group of a fused torch.optim.Adam."""
    group = {"lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0, "amsgrad": False,
             "maximize": False, "foreach": None, "capturable": False, "differentiable": False,
             "fused": True, "decoupled_weight_decay": False, "params": [0, 1, 2, 3]}
    return {"state": {i: {"step": torch.tensor(float(s["step"]), dtype=torch.float32),
                          "exp_avg": s["exp_avg"].clone(), "exp_avg_sq": s["exp_avg_sq"].clone()}
                      for i, s in state["state"].items()},
            "param_groups": [group]}


def test_it_is_torch_s_adam_fused_on_the_cpu():
    opt = make_adam(model().parameters(), 1e-3)
    assert type(opt) is torch.optim.Adam and opt.param_groups[0]["fused"] is True


@pytest.mark.parametrize("layout", ["torch", "former vaegui Adam"])
def test_a_saved_state_resumes_bit_for_bit(layout):
    straight = model()
    train(straight, make_adam(straight.parameters(), 1e-2), batches(20))
    half = model()
    opt = make_adam(half.parameters(), 1e-2)
    train(half, opt, batches(10))
    saved = opt.state_dict() if layout == "torch" else former_layout(opt.state_dict())
    resumed = model(seed=5)
    resumed.load_state_dict(half.state_dict())
    opt2 = make_adam(resumed.parameters(), 1e-2)
    load_adam_state(opt2, saved)
    train(resumed, opt2, batches(10, skip=10))
    for p, q in zip(resumed.parameters(), straight.parameters()):
        assert torch.equal(p, q)


def test_the_settings_stay_the_run_s_own():
    net = model()
    opt = make_adam(net.parameters(), 3e-4)
    train(net, opt, batches(2))
    saved = opt.state_dict()
    saved["param_groups"][0].update(lr=0.5, amsgrad=True, weight_decay=0.1, betas=(0.1, 0.2))
    fresh = make_adam(model().parameters(), 3e-4)
    load_adam_state(fresh, saved)
    group = fresh.param_groups[0]
    assert (group["lr"], group["amsgrad"], group["weight_decay"], group["betas"], group["fused"]) \
        == (3e-4, False, 0, (0.9, 0.999), True)
    assert fresh.state_dict()["state"][0]["step"] == 2


@pytest.mark.parametrize("damage, error, message", [
    (lambda s: s["state"][3].update(exp_avg=torch.zeros(2, 2)), ValueError,
     r"exp_avg of parameter 3 is \(2, 2\), the parameter \(3,\)"),
    (lambda s: s["state"][1].update(step=5), TypeError, "step of parameter 1 is not a tensor"),
    (lambda s: s["param_groups"][0].update(params=[0, 1]), ValueError,
     r"1 parameter groups of \[2\] parameters, this model 1 of \[4\]"),
    (lambda s: s["state"].update({9: s["state"][0]}), KeyError, "9"),
])
def test_a_state_that_does_not_fit_is_refused_before_anything_changes(damage, error, message):
    net = model()
    opt = make_adam(net.parameters(), 1e-2)
    train(net, opt, batches(3))
    before = {i: {k: v.clone() for k, v in s.items()} for i, s in opt.state_dict()["state"].items()}
    bad = opt.state_dict()
    bad["state"] = {i: dict(s) for i, s in bad["state"].items()}
    damage(bad)
    with pytest.raises(error, match=message):
        load_adam_state(opt, bad)
    after = opt.state_dict()["state"]
    assert all(torch.equal(after[i][k], v) for i, s in before.items() for k, v in s.items())


def test_preparing_twice_is_harmless():
    prepare_in_background()
    prepare()
    net = model()
    train(net, make_adam(net.parameters(), 1e-3), batches(1))


def test_the_package_calls_no_private_torch_function():
    # A private function can change or vanish in any torch release, breaking every user at once.
    private = re.compile(r"\btorch\.(?:[A-Za-z]\w*\.)*_[a-z]")
    found = [f"{path.relative_to(PACKAGE.parent)}:{n}: {line.strip()}"
             for path in sorted(PACKAGE.rglob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1) if private.search(line)]
    assert found == []
