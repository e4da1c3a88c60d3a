"""Nonlinear map layouts cached in a run folder, so a run reopens with its UMAP or t-SNE map at
once instead of after a minute's fit.

``maps/epoch-0005.umap.npz`` beside the epoch's means (``maps/epoch-0005.npy``, see
run_writer.py) holds the layout (N, 2), the learned inverse's arrays (its residual kernel is
rebuilt from the layout and the means), the projection's parameters and a digest of the means it
was fitted on. A layout whose digest does not match the means it is asked for (the epoch was
trained again after a resume) is not used. Written atomically; read without unpickling and
checked before use.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

import dataclasses

from .atomic import atomic_write
from .errors import RunFolderError, os_reason
from .latent import EncodedSet
from .plane_inverse import LearnedInverse
from .projection import NonlinearProjection, ProjectionSpec, fit_projection

LAYOUT_FORMAT = 1
_INVERSE_PREFIX = "inverse_"


def layout_path(run: str | os.PathLike, epoch: int, kind: str) -> Path:
    from .run_writer import MAPS_DIR, epoch_file  # here: run_writer imports torch, the window must not

    return Path(run) / MAPS_DIR / epoch_file(epoch, f".{kind}.npz")


def digest(latents: np.ndarray) -> str:
    """What identifies the means a layout was fitted on."""
    z = np.ascontiguousarray(np.asarray(latents, np.float32))
    return hashlib.sha256(z.tobytes() + str(z.shape).encode()).hexdigest()


def save_layout(run: str | os.PathLike, epoch: int, projection: NonlinearProjection) -> Path:
    path = layout_path(run, epoch, projection.name)
    header = {"format": LAYOUT_FORMAT, "projection": projection.name, "params": projection.params,
              "digest": digest(projection.latents), "fit_seconds": projection.fit_seconds}
    arrays = {"header": np.array(json.dumps(header)), "xy": projection.xy,
              **{_INVERSE_PREFIX + k: v for k, v in projection.learned_inverse.arrays().items()}}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: np.savez(f, **arrays))
    except OSError as exc:
        raise RunFolderError(run, f"cannot write {path.parent.name}/{path.name}: {os_reason(exc)}") from None
    return path


def load_layout(run: str | os.PathLike, epoch: int, kind: str, latents: np.ndarray) -> NonlinearProjection | None:
    """The cached ``kind`` layout of ``epoch`` if there is one for exactly these ``latents``
    (N, L), else None. A file that is there but unusable is a RunFolderError naming it."""
    path = layout_path(run, epoch, kind)
    if not path.is_file():
        return None
    latents = np.asarray(latents, np.float32)
    name = f"{path.parent.name}/{path.name}"
    try:
        with np.load(path, allow_pickle=False) as npz:
            files = {k: npz[k] for k in npz.files}
        header = json.loads(str(files.pop("header")))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise RunFolderError(run, f"{name} cannot be read ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != LAYOUT_FORMAT or header.get("projection") != kind \
            or not isinstance(header.get("params"), dict):
        raise RunFolderError(run, f"{name} is not a vaegui {kind} layout")
    if header.get("digest") != digest(latents):
        return None  # fitted on other means: that epoch has been trained again since
    xy = files.get("xy")
    if xy is None or xy.shape != (len(latents), 2) or not np.isfinite(xy).all():
        raise RunFolderError(run, f"{name}: not ({len(latents)}, 2) finite positions")
    inverse_arrays = {k[len(_INVERSE_PREFIX):]: v for k, v in files.items() if k.startswith(_INVERSE_PREFIX)}
    try:
        inverse = LearnedInverse.from_arrays(inverse_arrays, latents.shape[1], xy, latents)
    except (KeyError, ValueError, TypeError) as exc:
        raise RunFolderError(run, f"{name}: its inverse is unusable ({exc})") from None
    return NonlinearProjection(kind, header["params"], latents, xy.astype(np.float32), inverse, model=None,
                               fit_seconds=float(header.get("fit_seconds") or 0.0))


def cached_projection(spec: ProjectionSpec, latents: np.ndarray, run: str | os.PathLike | None = None,
                      epoch: int | None = None, previous=None, *,
                      on_cache_error: Callable[[Exception], None] | None = None, **fit_options):
    """``spec`` on ``latents``: a nonlinear layout from the run folder's cache when it holds
    one for them, else fitted (see projection.fit_projection) and cached. A cache file that
    cannot be used is reported through ``on_cache_error`` (raised without it) and replaced."""
    cacheable = spec.is_nonlinear and run is not None and epoch is not None
    if cacheable:
        try:
            found = load_layout(run, epoch, spec.kind, latents)
        except RunFolderError as exc:
            if on_cache_error is None:
                raise
            on_cache_error(exc)
            found = None
        if found is not None:
            return found
    projection = fit_projection(spec, latents, previous, **fit_options)
    if cacheable:
        save_layout(run, epoch, projection)
    return projection


def project_encoded(encoded: EncodedSet, spec: ProjectionSpec, run: str | os.PathLike | None = None,
                    epoch: int | None = None, **options) -> EncodedSet:
    """``encoded`` drawn in ``spec``'s plane (see :func:`cached_projection` for ``options``)."""
    projection = cached_projection(spec, encoded.latents, run, epoch, **options)
    xy = projection.xy if isinstance(projection, NonlinearProjection) else projection.transform(encoded.latents)
    return dataclasses.replace(encoded, xy=np.asarray(xy, np.float32), projection=projection)


def map_epoch(reader, step: int) -> tuple[Path | None, int | None]:
    """(run folder, epoch) under which a layout of the weights of ``step`` is cached: a run
    folder's whole epoch, else (None, None) (a lone checkpoint, or weights saved mid-epoch)."""
    if reader is None:
        return None, None
    epoch, offset = divmod(int(step), reader.steps_per_epoch)
    return (reader.path, epoch) if offset == 0 and epoch > 0 else (None, None)
