"""The optimiser: ``torch.optim.Adam``, fused where the device has the kernel, and its state.

torch.optim's first use imports torch's compiler front end (every method of ``Optimizer`` is
wrapped to keep the compiler out of it), which takes as long as importing torch itself. That
cost is paid where nobody waits for it: :func:`prepare_in_background` starts it on a thread as
soon as a command knows it will train (the CLI, before it opens the run folder and loads the
data), and the app calls :func:`prepare` on its worker thread while the window is idle.
:func:`make_adam` waits for a preparation under way rather than importing the same modules twice.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import torch

_lock = threading.Lock()
_preparing: threading.Thread | None = None
_prepared = threading.Event()


def prepare() -> None:
    """Import what torch.optim's first use imports, now (one step of a throwaway optimizer);
    once per process."""
    if not _prepared.is_set():
        p = torch.zeros(1, requires_grad=True)
        p.grad = torch.zeros(1)
        make_adam([p], 1e-3, wait=False).step()
        _prepared.set()


def prepare_in_background() -> None:
    """:func:`prepare` on a daemon thread, unless it ran or runs already."""
    global _preparing
    with _lock:
        if _preparing is None and not _prepared.is_set():
            _preparing = threading.Thread(target=prepare, name="vaegui-optimizer-import", daemon=True)
            _preparing.start()


def make_adam(params: Iterable[torch.nn.Parameter], lr: float, *,
              wait: bool = True) -> torch.optim.Adam:
    """Adam with the fused kernel (all parameters in one pass: about 12% more images/s than the
    per-tensor loop on the CPU here) where the parameters' device has it, else the foreach form.
    ``wait``: for a preparation under way (see the module's docstring)."""
    if wait:
        with _lock:
            preparing = _preparing
        if preparing is not None and preparing is not threading.current_thread():
            preparing.join()
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except RuntimeError:  # "fused=True requires ... Tensors of supported devices"
        return torch.optim.Adam(params, lr=lr, foreach=True)


def load_adam_state(optimizer: torch.optim.Adam, state: dict[str, Any]) -> None:
    """Load a saved Adam state dict (torch.optim.Adam's layout, which every vaegui checkpoint
    has, including those written by its former hand-made Adam) into ``optimizer``.

    Only the moments and step counts are taken from the file: the settings (learning rate,
    betas, eps, fused or not) stay this optimizer's, so a file cannot switch on amsgrad or
    weight decay, nor ask for a kernel this device lacks. ValueError or KeyError, before
    anything changes, when the state does not fit the parameters."""
    own = optimizer.param_groups
    groups = state["param_groups"]
    sizes = [len(g["params"]) for g in own]
    if [len(g["params"]) for g in groups] != sizes:
        raise ValueError(f"the optimizer state has {len(groups)} parameter groups of "
                         f"{[len(g['params']) for g in groups]} parameters, this model "
                         f"{len(own)} of {sizes}")
    params = {i: p for saved, mine in zip(groups, own) for i, p in zip(saved["params"], mine["params"])}
    for i, values in state["state"].items():
        p = params[i]
        for key in ("step", "exp_avg", "exp_avg_sq"):
            if not isinstance(values[key], torch.Tensor):
                raise TypeError(f"the optimizer's {key} of parameter {i} is not a tensor")
        for key in ("exp_avg", "exp_avg_sq"):
            if tuple(values[key].shape) != tuple(p.shape):
                raise ValueError(f"the optimizer's {key} of parameter {i} is "
                                 f"{tuple(values[key].shape)}, the parameter {tuple(p.shape)}")
        if values["step"].numel() != 1:
            raise ValueError(f"the optimizer's step of parameter {i} is not one number")
    settings = [{k: v for k, v in g.items() if k != "params"} for g in own]
    optimizer.load_state_dict({
        "state": {i: {"step": values["step"].reshape(()), "exp_avg": values["exp_avg"],
                      "exp_avg_sq": values["exp_avg_sq"]} for i, values in state["state"].items()},
        "param_groups": [{**mine, "params": saved["params"]} for mine, saved in zip(settings, groups)],
    })
