"""What a checkpoint must hold, checked whole before any of it is used.

A checkpoint comes from disk, so every field is untrusted: ``torch.load(weights_only=True)``
guarantees only plain containers and tensors, not their types, shapes or sizes. :func:`validate`
checks the whole layout with sane bounds, and the model's size before it is built, so that a
crafted or damaged file is refused with one reason instead of failing half-way (or allocating
terabytes) later. It also holds the two integrity helpers: a digest of the whole payload saved
with it, and the search for non-finite weights.
"""

from __future__ import annotations

import hashlib
import math
import numbers
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from .config import MAX_IMAGE_SIZE, MAX_PARAMETERS, MAX_STEPS, RunConfig
from .errors import ConfigError
from .progress import EvalResult

MAX_CLASSES = 100_000
MAX_RNG_STATE_BYTES = 1 << 20
_CPU_RNG_STATE_BYTES = torch.Generator().get_state().numel()
_EVAL_FIELDS = {"epoch", "step", "neg_elbo", "recon", "kl", "bits_per_dim", "kl_per_dim",
                "active_units", "nll_iw", "iw_samples", "active"}
_EVAL_OPTIONAL = {"nll_iw", "iw_samples", "active"}


class SchemaError(ValueError):
    """The reason a checkpoint's contents are unusable (the caller names the file)."""


def validate(data: dict[str, Any]) -> RunConfig:
    """Check every field of a loaded checkpoint; returns its settings. Raises SchemaError."""
    try:
        config = RunConfig.from_dict(data["config"])
    except ConfigError as exc:
        raise SchemaError(f"bad settings ({exc})") from None
    shape = check_dataset(data["dataset"])
    try:
        config.model.check_size(shape)
    except ConfigError as exc:
        raise SchemaError(str(exc)) from None
    _weights(data["model"])
    _optimizer(data["optimizer"])
    step = whole(data["step"], "step", 0, MAX_STEPS)
    whole(data["epoch"], "epoch", 0, step)
    _history(data["history"], step, config.model.latent_dim)
    _rng(data["rng"])
    return config


def require(ok: bool, reason: str | Callable[[], str]) -> None:
    """SchemaError(reason) unless ``ok``; a reason that is costly to write is a function,
    called only on failure."""
    if not ok:
        raise SchemaError(reason() if callable(reason) else reason)


def whole(value: Any, name: str, low: int, high: int) -> int:
    require(isinstance(value, numbers.Integral) and not isinstance(value, bool),
             lambda: f"{name} is {describe(value)}, not a whole number")
    require(low <= value <= high, f"{name} {value} is out of range ({low} to {high})")
    return int(value)


def number(value: Any, name: str) -> None:
    require(isinstance(value, numbers.Real) and not isinstance(value, bool),
             lambda: f"{name} is {describe(value)}, not a number")


def describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


def check_dataset(d: Any) -> tuple[int, int, int]:
    require(isinstance(d, dict), lambda: f"dataset is {describe(d)}, not a mapping")
    for key in ("name", "image_shape", "class_names"):
        require(key in d, f"dataset has no {key}")
    require(isinstance(d["name"], str) and d["name"] != "", lambda: f"dataset name is {describe(d['name'])}")
    shape = d["image_shape"]
    require(isinstance(shape, (list, tuple)) and len(shape) == 3,
             lambda: f"dataset image_shape is {describe(shape)}, not (channels, height, width)")
    c = whole(shape[0], "image channels", 1, 3)
    require(c in (1, 3), f"image channels {c} is not 1 or 3")
    h = whole(shape[1], "image height", 1, MAX_IMAGE_SIZE)
    w = whole(shape[2], "image width", 1, MAX_IMAGE_SIZE)
    names = d["class_names"]
    require(isinstance(names, (list, tuple)) and 1 <= len(names) <= MAX_CLASSES
             and all(isinstance(n, str) for n in names),
             lambda: f"dataset class_names is {describe(names)}, not a list of 1 to {MAX_CLASSES} names")
    return c, h, w


def _weights(model: Any) -> None:
    require(isinstance(model, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                             for k, v in model.items()),
             lambda: f"model weights are {describe(model)}, not named tensors")
    total = sum(v.numel() for v in model.values())
    require(total <= MAX_PARAMETERS, f"model weights hold {total:,} numbers, more than {MAX_PARAMETERS:,}")
    bad = non_finite_tensors(model, "model")
    require(not bad, f"the weights hold NaN or infinite values ({', '.join(bad[:3])})")


def _optimizer(opt: Any) -> None:
    require(isinstance(opt, dict) and isinstance(opt.get("state"), dict)
             and isinstance(opt.get("param_groups"), list)
             and all(isinstance(g, dict) for g in opt["param_groups"]),
             "optimizer state is not an optimizer's state_dict")
    bad = non_finite_tensors(opt["state"], "optimizer")
    require(not bad, f"the optimizer state holds NaN or infinite values ({', '.join(bad[:3])})")


def _history(h: Any, step: int, latent_dim: int) -> None:
    require(isinstance(h, dict) and {"steps", "losses", "evals"} <= set(h),
             lambda: f"history is {describe(h)}, not a mapping with steps, losses and evals")
    steps, losses, weights = h["steps"], h["losses"], h.get("kl_weights")
    require(isinstance(steps, torch.Tensor) and steps.dim() == 1 and not steps.is_floating_point()
             and steps.dtype != torch.bool, "history steps are not a 1-D tensor of whole numbers")
    n = steps.shape[0]
    require(isinstance(losses, torch.Tensor) and losses.is_floating_point()
             and tuple(losses.shape) == (n, 3), f"history losses are not a ({n}, 3) tensor of numbers")
    require(weights is None or (isinstance(weights, torch.Tensor) and weights.is_floating_point()
                                 and tuple(weights.shape) == (n,)),
             f"history kl_weights are not a ({n},) tensor of numbers")
    if n:
        require(bool((steps[1:] > steps[:-1]).all()) and int(steps[0]) >= 1 and int(steps[-1]) <= step,
                 f"history steps are not increasing step numbers from 1 to {step}")
    evals = h["evals"]
    require(isinstance(evals, (list, tuple)), lambda: f"history evals are {describe(evals)}, not a list")
    for i, e in enumerate(evals):
        _eval(e, f"history evaluation {i + 1}", step, latent_dim)


def _eval(e: Any, name: str, step: int, latent_dim: int) -> None:
    require(isinstance(e, dict) and all(isinstance(k, str) for k in e), lambda: f"{name} is {describe(e)}")
    unknown, missing = set(e) - _EVAL_FIELDS, _EVAL_FIELDS - _EVAL_OPTIONAL - set(e)
    require(not unknown and not missing,
             f"{name} has unknown fields {sorted(unknown)} or misses {sorted(missing)}")
    whole(e["epoch"], f"{name} epoch", 0, MAX_STEPS)
    whole(e["step"], f"{name} step", 0, step)
    whole(e["active_units"], f"{name} active_units", 0, latent_dim)
    whole(e.get("iw_samples", 0), f"{name} iw_samples", 0, MAX_STEPS)
    for key in ("neg_elbo", "recon", "kl", "bits_per_dim"):
        number(e[key], f"{name} {key}")
    if e.get("nll_iw") is not None:
        number(e["nll_iw"], f"{name} nll_iw")
    per_dim, active = e["kl_per_dim"], e.get("active")
    require(isinstance(per_dim, (list, tuple)) and len(per_dim) == latent_dim,
             f"{name} kl_per_dim is not {latent_dim} numbers")
    for v in per_dim:
        number(v, f"{name} kl_per_dim")
    require(active is None or (isinstance(active, (list, tuple)) and len(active) == latent_dim
                                and all(isinstance(a, bool) for a in active)),
             f"{name} active is not {latent_dim} true/false values")
    EvalResult.from_dict(e)  # what History.from_dict will do; cannot fail after the checks above


def _rng(rng: Any) -> None:
    require(isinstance(rng, dict) and isinstance(rng.get("device_type"), str),
             lambda: f"rng is {describe(rng)}, not a mapping with device_type and noise")
    noise = rng.get("noise")
    require(isinstance(noise, torch.Tensor) and noise.dtype == torch.uint8 and noise.dim() == 1
             and noise.numel() <= MAX_RNG_STATE_BYTES, "rng noise is not a generator state")
    if rng["device_type"] == "cpu":  # other devices' states are checked when set
        require(noise.numel() == _CPU_RNG_STATE_BYTES,
                 f"rng noise has {noise.numel()} bytes, not a CPU generator's {_CPU_RNG_STATE_BYTES}")


# ---- integrity ---------------------------------------------------------------------------------
def non_finite_tensors(obj: Any, name: str) -> list[str]:
    """Names of the floating-point tensors inside ``obj`` (nested dicts and lists) that hold NaN
    or an infinity."""
    return [n for n, t in _tensors(obj, name)
            if (t.is_floating_point() or t.is_complex()) and not _all_finite(t)]


def _all_finite(t: torch.Tensor) -> bool:
    if t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64, torch.float16):
        # numpy's single-threaded pass: torch's parallel one can take 100x longer on a busy
        # machine (its worker threads spin waiting for a core), at every save
        return bool(np.isfinite(t.detach().numpy()).all())
    return bool(torch.isfinite(t).all())


def _tensors(obj: Any, name: str) -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(obj, torch.Tensor):
        yield name, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _tensors(v, f"{name}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _tensors(v, f"{name}[{i}]")


def digest(obj: Any) -> str:
    """sha256 of a payload of plain containers and tensors: every key, value, dtype, shape and
    tensor byte, in a fixed order, so the same contents give the same digest after a round trip
    through torch.save / torch.load."""
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def _feed(h: Any, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous().reshape(-1)
        h.update(f"T{t.dtype}{tuple(obj.shape)}:".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}:".encode())
        for k in sorted(obj, key=repr):
            _feed(h, k)
            _feed(h, obj[k])
    elif isinstance(obj, (list, tuple)):  # a tuple may come back as a list: same digest
        h.update(f"L{len(obj)}:".encode())
        for v in obj:
            _feed(h, v)
    elif isinstance(obj, float) and math.isnan(obj):
        h.update(b"Fnan;")
    else:
        h.update(f"{type(obj).__name__}{obj!r};".encode())
