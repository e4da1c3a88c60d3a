"""What run.json and each metrics.jsonl line must hold, checked field by field.

A run folder is untrusted (see safe_dir.py), and its values reach numpy, torch and Qt: a list of
50 KL values for a 2-D model, handed to a plot that draws 2 bars, crashed the app. So the reader
checks every field it hands out here, once: its type, that it is finite, its range, and the
lengths that must agree with the model (latent size, image shape, class count). Each failure is a
SchemaError naming the field and the reason; the reader adds the folder and the file.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any


from .checkpoint_schema import SchemaError, check_dataset, describe, require, whole
from .config import MAX_STEPS, RunConfig
from .errors import ConfigError
from .progress import EvalResult

MAX_SET_SIZE = 10**9  # images in one split
MAX_NAME = 4096  # characters of a dataset name


@dataclass(frozen=True)
class RunDescription:
    """run.json, checked: every field the reader hands out, with its type."""

    version: int
    config: RunConfig
    dataset: str
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    steps_per_epoch: int
    train_size: int | None
    test_size: int | None


def check_info(info: Any, run_format: str, run_version: int) -> RunDescription:
    require(isinstance(info, dict), lambda: f"the file holds {describe(info)}, not a run description")
    require(info.get("format") == run_format, "format: not a vaegui run description")
    version = info.get("version")
    require(isinstance(version, int) and not isinstance(version, bool) and 0 <= version,
            lambda: f"version: {describe(version)} is not a format version")
    require(version <= run_version, f"version: format version {version} is newer than this vaegui "
                                     f"reads ({run_version})")
    require("config" in info, "config: missing")
    require(isinstance(info["config"], dict), lambda: f"config: {describe(info['config'])}, not a mapping")
    try:
        config = RunConfig.from_dict(info["config"])
    except (ConfigError, TypeError, KeyError, ValueError, AttributeError, OverflowError) as exc:
        raise SchemaError(f"config: bad settings ({' '.join(str(exc).split())[:200]})") from None
    require("dataset" in info, "dataset: missing")
    try:
        shape = check_dataset(info["dataset"])
    except SchemaError as exc:
        raise SchemaError(f"dataset: {exc}") from None
    d = info["dataset"]
    require(len(d["name"]) <= MAX_NAME, f"dataset name: longer than {MAX_NAME} characters")
    try:
        config.model.check_size(shape)
    except ConfigError as exc:
        raise SchemaError(f"config.model: {exc}") from None
    sizes = [None if d.get(key) is None else whole(d[key], f"dataset {key}", 0, MAX_SET_SIZE)
             for key in ("train_size", "test_size")]
    per_epoch = info.get("steps_per_epoch")
    if per_epoch is None and version == 0:
        per_epoch = 1  # a version-0 folder whose checkpoint has no evaluation yet
    per_epoch = whole(per_epoch, "steps_per_epoch", 1, MAX_STEPS)
    return RunDescription(version, config, d["name"], shape, tuple(d["class_names"]), per_epoch, *sizes)


_FINITE = ("test_elbo", "test_recon", "test_kl", "test_bits_per_dim")
_NAN_ALLOWED = ("train_recon", "train_kl", "train_elbo", "kl_weight")  # NaN: not known


def check_record(r: Any, latent_dim: int) -> EvalResult:
    """The evaluation a metrics.jsonl line records (every field checked); SchemaError names the
    first field that is wrong."""
    require(isinstance(r, dict), lambda: f"the line holds {describe(r)}, not a record")
    for key in ("epoch", "step", *_FINITE, "active_units", "kl_per_dim"):
        require(key in r, f"{key}: missing")
    whole(r["epoch"], "epoch", 0, MAX_STEPS)
    whole(r["step"], "step", 0, MAX_STEPS)
    for key in _FINITE:
        finite(r[key], key)
    for key in _NAN_ALLOWED:
        if key in r:
            finite(r[key], key, nan=True)
    if r.get("images_per_s") is not None:
        finite(r["images_per_s"], "images_per_s", low=0.0)
    whole(r["active_units"], "active_units", 0, latent_dim)
    per_dim = r["kl_per_dim"]
    require(isinstance(per_dim, list) and len(per_dim) == latent_dim,
            lambda: f"kl_per_dim: {_length(per_dim)}, not the model's {latent_dim}")
    for v in per_dim:
        finite(v, "kl_per_dim")
    active = r.get("active")
    require(active is None or (isinstance(active, list) and len(active) == latent_dim
                               and all(isinstance(a, bool) for a in active)),
            lambda: f"active: {_length(active)}, not {latent_dim} true/false values")
    nll = r.get("test_nll_iw")
    if nll is not None:
        finite(nll, "test_nll_iw")
    samples = 0 if r.get("iw_samples") is None else whole(r["iw_samples"], "iw_samples", 0, MAX_STEPS)
    # Every field is checked: the one reading of a line's keys (progress.py) makes the result.
    return EvalResult.from_record({**r, "iw_samples": samples})


def finite(value: Any, name: str, nan: bool = False, low: float = -math.inf) -> float:
    """A real number (not a bool), finite (NaN allowed when ``nan``), at least ``low``."""
    require(isinstance(value, numbers.Real) and not isinstance(value, bool),
            lambda: f"{name}: {describe(value)}, not a number")
    v = float(value)
    require(math.isfinite(v) or (nan and math.isnan(v)), f"{name}: {v} is not a finite number")
    require(math.isnan(v) or v >= low, f"{name}: {v} is less than {low}")
    return v


def _length(value: Any) -> str:
    if isinstance(value, list):
        return f"{len(value)} values"
    return describe(value)
