"""Checkpoint files: one ``torch.save`` zip holding plain containers and tensors only.

Writes are atomic (a temporary file in the same folder, flushed to disk, then renamed over the
target), so an interrupted save leaves the previous checkpoint intact. Reads use
``torch.load(weights_only=True)``, which refuses any pickle that would construct arbitrary
objects: a malicious file raises instead of running code.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from .config import RunConfig
from .errors import CheckpointError, ConfigError
from .model import VAE

FORMAT_VERSION = 1
MAGIC = "vaegui-checkpoint"
REQUIRED_KEYS = ("format", "format_version", "config", "dataset", "model", "optimizer", "step", "epoch",
                 "history", "rng")


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Atomically write ``payload`` (plus the format header) to ``path``; returns the path."""
    path = Path(path)
    data = {"format": MAGIC, "format_version": FORMAT_VERSION, **payload}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise CheckpointError(path, f"cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise CheckpointError(path, f"cannot write: {exc.strerror or exc}") from None
        raise
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a checkpoint; every failure is a :class:`CheckpointError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such file")
    if path.stat().st_size == 0:
        raise CheckpointError(path, "the file is empty")
    if not zipfile.is_zipfile(path):
        # vaegui writes torch's zip format only; anything else (raw or legacy pickles included) is
        # refused before any byte of it is unpickled.
        raise CheckpointError(path, "corrupt, truncated or not a checkpoint (not a zip archive)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # weights_only refused to build an object: a foreign or malicious file. Nothing ran.
        raise CheckpointError(path, "refused: it holds objects other than tensors and plain "
                                    "data (nothing in it was run)") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
        raise CheckpointError(path, f"corrupt or truncated ({_short(exc)})") from None
    if not isinstance(data, dict) or data.get("format") != MAGIC:
        raise CheckpointError(path, "not a vaegui checkpoint")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(path, f"format version {version!r} is not supported "
                                    f"(this vaegui reads version {FORMAT_VERSION})")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise CheckpointError(path, f"incomplete: missing {', '.join(missing)}")
    return data


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def model_from_checkpoint(data: dict[str, Any],
                          path: str | os.PathLike = "<checkpoint>") -> tuple[RunConfig, VAE]:
    """(RunConfig, VAE on the CPU with the saved weights) from a loaded checkpoint."""
    try:
        config = RunConfig.from_dict(data["config"])
        shape = tuple(int(v) for v in data["dataset"]["image_shape"])
        model = VAE(config.model, shape)
        model.load_state_dict(data["model"])
    except (ConfigError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(path, f"incompatible settings or weights ({_short(exc)})") from None
    return config, model
