"""Checkpoint files: one ``torch.save`` zip holding plain containers and tensors only.

Writes are atomic (a temporary file in the same folder, flushed to disk, then renamed over the
target), so an interrupted save leaves the previous checkpoint intact; the temporary files of
writers that died (kill -9) are removed by the next save or load of the same target. Weights that
hold NaN or infinities are never written.

Reads trust nothing: the zip archive's CRCs and the sha256 digest saved with the contents must
match (checkpoints from before the digest are checked by their CRCs alone), then
``torch.load(weights_only=True)`` refuses any pickle that would construct arbitrary objects (a
malicious file raises instead of running code), and :mod:`.checkpoint_schema` checks every field
with sane bounds before any of it is used.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import torch

from . import limits
from .atomic import atomic_write, context_of, remove_stale_temp_files
from .checkpoint_schema import SchemaError, digest, non_finite_tensors, validate
from .config import RunConfig
from .errors import CheckpointError, ConfigError
from .model import VAE

FORMAT_VERSION = 1
MAGIC = "vaegui-checkpoint"
REQUIRED_KEYS = ("format", "format_version", "config", "dataset", "model", "optimizer", "step", "epoch",
                 "history", "rng")
DIGEST_KEY = "sha256"  # of everything else in the checkpoint; absent from the first checkpoints


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any], *, dir_fd: int | None = None) -> Path:
    """Atomically write ``payload`` (plus the format header and a digest) to ``path``; returns
    the path. Refuses weights or optimizer state that hold NaN or infinities. With ``dir_fd``
    (a run folder's open descriptor), the file is written as ``path``'s name in that folder."""
    path = Path(path)
    bad = non_finite_tensors(payload.get("model"), "model") + non_finite_tensors(
        payload.get("optimizer"), "optimizer")
    if bad:
        raise CheckpointError(path, f"not saved: the weights hold NaN or infinite values "
                                    f"({', '.join(bad[:3])}); the previous file is kept")
    data = {"format": MAGIC, "format_version": FORMAT_VERSION, **payload}
    data[DIGEST_KEY] = digest(data)
    try:
        if dir_fd is None:
            path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path.name if dir_fd is not None else path, lambda f: _torch_save(data, f), dir_fd=dir_fd)
    except OSError as exc:
        raise CheckpointError(path, f"cannot write: {exc.strerror or exc}; the previous file is kept") from None
    return path


def _torch_save(data: dict[str, Any], f: Any) -> None:
    try:
        torch.save(data, f)
    except Exception as exc:
        # A Ctrl-C inside torch.save comes out as torch's complaint about the unfinished archive
        # ("unexpected pos"): let it be the interrupt it is.
        if interrupted(exc):
            raise KeyboardInterrupt from None
        raise  # a failed write behind torch's own error is found by atomic_write




def interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was raised while handling, a KeyboardInterrupt."""
    return context_of(exc, KeyboardInterrupt) is not None


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a checkpoint; every failure is a :class:`CheckpointError` naming the file."""
    path = Path(path)
    remove_stale_temp_files(path)
    try:
        if not path.exists():
            raise CheckpointError(path, "no such file")
        if not path.is_file():
            raise CheckpointError(path, "not a regular file")
        size = path.stat().st_size
        if size == 0:
            raise CheckpointError(path, "the file is empty")
        ok, budget = limits.fits(size)
        if not ok:  # it is read whole into memory
            raise CheckpointError(path, f"{limits.gib(size)} is more than the {budget} of memory "
                                        "it may take here")
        with open(path, "rb"):  # "permission denied" said as such, not as "not a zip archive"
            pass
        _check_archive(path)
    except OSError as exc:
        raise CheckpointError(path, f"cannot read: {exc.strerror or exc}") from None
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
    saved_digest = data.pop(DIGEST_KEY, None)
    if saved_digest is not None and saved_digest != digest(data):
        raise CheckpointError(path, "corrupt: its contents do not match the checksum saved with them")
    try:
        validate(data)
    except SchemaError as exc:
        raise CheckpointError(path, str(exc)) from None
    return data


def _check_archive(path: Path) -> None:
    """Refuse anything but an intact, uncompressed zip (torch.save's format) before unpickling."""
    if not zipfile.is_zipfile(path):
        # vaegui writes torch's zip format only; anything else (raw or legacy pickles included) is
        # refused before any byte of it is unpickled.
        raise CheckpointError(path, "corrupt, truncated or not a checkpoint (not a zip archive)")
    try:
        with zipfile.ZipFile(path) as archive:
            if any(info.compress_type != zipfile.ZIP_STORED for info in archive.infolist()):
                raise CheckpointError(path, "not a vaegui checkpoint (a compressed zip archive)")
            broken = archive.testzip()  # reads every member and checks its CRC-32
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError,
            NotImplementedError, RuntimeError) as exc:
        raise CheckpointError(path, f"corrupt or truncated ({_short(exc)})") from None
    if broken is not None:
        raise CheckpointError(path, f"corrupt: {broken} fails its CRC check (damaged on disk or in transit)")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def check_images_match(path: str | os.PathLike, trained: Sequence[int], data: Sequence[int]) -> None:
    """A model reads images of the shape it was trained on: data of another shape (a folder
    loaded at another size, another --data-dir) is a CheckpointError naming both shapes."""
    if tuple(trained) != tuple(data):
        raise CheckpointError(path, f"it was trained on {tuple(trained)} images, the data has "
                                    f"{tuple(data)}")


def model_from_checkpoint(data: dict[str, Any],
                          path: str | os.PathLike = "<checkpoint>") -> tuple[RunConfig, VAE]:
    """(RunConfig, VAE on the CPU with the saved weights) from a loaded checkpoint."""
    try:
        config = RunConfig.from_dict(data["config"])
        shape = tuple(int(v) for v in data["dataset"]["image_shape"])
        config.model.check_size(shape)  # before building it
        model = VAE(config.model, shape)
        model.load_state_dict(data["model"])
    except (ConfigError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(path, f"incompatible settings or weights ({_short(exc)})") from None
    return config, model
