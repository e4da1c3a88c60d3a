"""Adam with PyTorch's fused kernel, without ``torch.optim``.

Why not ``torch.optim.Adam``: its first use imports ``torch._dynamo`` (every method of
``Optimizer`` is wrapped to keep dynamo out), about 1.5 s on this machine and 80 MB, a sixth of
a 3-epoch ``vaegui train`` run. The update itself is one call of the same fused kernel
(``torch._fused_adam_``) that ``torch.optim.Adam(fused=True)`` makes, with the same arguments, so
the weights are bit for bit the same (tests/core/test_adam.py), and the state dict has
``torch.optim.Adam``'s layout, so checkpoints load into either.

Only what the trainer uses is here: one parameter group, no weight decay, amsgrad or maximize.
Devices without the fused kernel get ``torch.optim.Adam`` (see :func:`make_adam`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

# Devices with a fused Adam kernel (ATen's _fused_adam_: CPU and CUDA here; MPS too, untested).
FUSED_DEVICES = ("cpu", "cuda")
# torch.optim.Adam's settings; the fused update supports only these values of the last three.
_GROUP_DEFAULTS = {"weight_decay": 0, "amsgrad": False, "maximize": False, "foreach": None,
                   "capturable": False, "differentiable": False, "fused": True,
                   "decoupled_weight_decay": False}
_FIXED = ("weight_decay", "amsgrad", "maximize")


def make_adam(params: Iterable[torch.nn.Parameter], lr: float, device_type: str):
    """This module's :class:`Adam` where the fused kernel exists, else ``torch.optim.Adam``."""
    if device_type in FUSED_DEVICES and hasattr(torch, "_fused_adam_"):
        return Adam(params, lr=lr)
    return torch.optim.Adam(params, lr=lr)


class Adam:
    """The parts of ``torch.optim.Adam(fused=True)`` the trainer uses: ``param_groups`` (one,
    whose ``lr`` may be changed), ``zero_grad``, ``step``, ``state_dict``, ``load_state_dict``."""

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params = list(params)
        if not self.params:
            raise ValueError("Adam got an empty parameter list")
        self.param_groups = [{"lr": lr, "betas": tuple(betas), "eps": eps, **_GROUP_DEFAULTS,
                              "params": self.params}]
        self.state: dict[torch.nn.Parameter, dict[str, torch.Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.detach_().zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One update of the parameters that have a gradient, as torch.optim.Adam's fused path
        makes it: the steps counted up, then one kernel call per device and dtype."""
        group = self.param_groups[0]
        beta1, beta2 = group["betas"]
        lists: dict[tuple[torch.device, torch.dtype], tuple[list, ...]] = {}
        for p in self.params:
            if p.grad is None:
                continue
            state = self.state.get(p) or self._fresh_state(p)
            params, grads, avgs, sqs, steps = lists.setdefault((p.device, p.dtype), ([], [], [], [], []))
            params.append(p)
            grads.append(p.grad)
            avgs.append(state["exp_avg"])
            sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
        for params, grads, avgs, sqs, steps in lists.values():
            torch._foreach_add_(steps, 1)
            torch._fused_adam_(params, grads, avgs, sqs, [], steps, amsgrad=False, lr=group["lr"],
                               beta1=beta1, beta2=beta2, weight_decay=0, eps=group["eps"],
                               maximize=False, grad_scale=None, found_inf=None)

    def _fresh_state(self, p: torch.nn.Parameter) -> dict[str, torch.Tensor]:
        # As torch.optim.Adam makes it for the fused path: a float32 step on the parameter's device.
        state = {"step": torch.zeros((), dtype=torch.float32, device=p.device),
                 "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                 "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
        self.state[p] = state
        return state

    def state_dict(self) -> dict[str, Any]:
        """torch.optim.Adam's layout: state by parameter index, the group with its indices."""
        index = {p: i for i, p in enumerate(self.params)}
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        return {"state": {index[p]: dict(s) for p, s in self.state.items()},
                "param_groups": [{**group, "params": list(range(len(self.params)))}]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict of this class or of torch.optim.Adam; ValueError or KeyError, before
        anything changes, when it does not fit these parameters."""
        groups = state_dict["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise ValueError(f"the optimizer state has {len(groups)} parameter groups of "
                             f"{[len(g['params']) for g in groups]} parameters, this model one "
                             f"of {len(self.params)}")
        saved = groups[0]
        for key in _FIXED:
            if saved.get(key, _GROUP_DEFAULTS[key]) != _GROUP_DEFAULTS[key]:
                raise ValueError(f"the optimizer state has {key}={saved[key]!r}, which this "
                                 "Adam does not support")
        by_index = dict(zip(saved["params"], self.params))
        state = {}
        for i, values in state_dict["state"].items():
            p = by_index[i]
            for key in ("exp_avg", "exp_avg_sq"):
                if not isinstance(values[key], torch.Tensor):
                    raise TypeError(f"the optimizer's {key} of parameter {i} is not a tensor")
                if tuple(values[key].shape) != tuple(p.shape):
                    raise ValueError(f"the optimizer's {key} of parameter {i} is "
                                     f"{tuple(values[key].shape)}, the parameter {tuple(p.shape)}")
            # As torch.optim does: state on the parameter's device and dtype, the step float32.
            state[p] = {"step": torch.as_tensor(values["step"], dtype=torch.float32,
                                                device=p.device).reshape(()),
                        "exp_avg": values["exp_avg"].to(dtype=p.dtype, device=p.device),
                        "exp_avg_sq": values["exp_avg_sq"].to(dtype=p.dtype, device=p.device)}
        self.state = state
        group = self.param_groups[0]
        group.update(lr=saved["lr"], betas=tuple(saved["betas"]), eps=saved["eps"])
