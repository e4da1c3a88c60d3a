"""Several runs side by side: their curves, their latent maps over the same test images, and a
table of their results. Plain data, no Qt: the comparison window and ``vaegui export --compare``
both draw a :class:`Comparison`.

The maps: each run's latest map (the test set's posterior means, maps/epoch-NNNN.npy), cut to the
test images every run has (the first N: a smaller --test-limit keeps a prefix of the same set),
and projected to a plane as the explorer projects (PCA for L > 2). Each plane after the first is
turned by an orthogonal Procrustes fit (Schönemann 1966) to the first run's over those shared
points, so that two similar spaces are drawn the same way round rather than mirrored or rotated
by the arbitrary signs and order of their principal axes. A turned plane is still a
:class:`~vaegui.core.latent.Projection`, with an exact inverse: a point picked in it decodes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import RunConfig
from .errors import VaeguiError
from .latent import Projection
from .projection import turn_projection
from .sweep import FAILED, FINISHED, RESULT_KEYS, RUNNING, read_summary

MAX_RUNS = 8
MIN_RUNS = 2
STOPPED = "stopped"  # a run that ended before its last epoch (a sweep's row says more, when there is one)


@dataclass(frozen=True, eq=False)
class ComparedRun:
    name: str  # how the comparison names it (its folder's name, made unique)
    path: Path
    config: RunConfig
    steps_per_epoch: int
    metrics: list[dict[str, Any]]  # metrics.jsonl's lines
    map_epoch: int  # the epoch of the map (0: none yet)
    latents: np.ndarray  # (N, L) posterior means of the shared test images
    labels: np.ndarray  # (N,)
    class_names: tuple[str, ...]
    status: str  # finished, running, stopped (or a sweep row's status)
    seconds: float | None = None  # from a sweep's summary
    projection: Projection | None = None  # set by Comparison (aligned)
    xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    turned: bool = False  # its plane was turned (or mirrored) to match the first run's


    @property
    def latent_dim(self) -> int:
        return self.config.model.latent_dim

    def curve(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(epochs, values) of a metrics key, e.g. "test_elbo", "test_kl", "train_elbo"."""
        points = [(r["epoch"], r[key]) for r in self.metrics
                  if isinstance(r.get("epoch"), int) and isinstance(r.get(key), (int, float))]
        if not points:
            return np.zeros(0), np.zeros(0)
        epochs, values = zip(*points)
        return np.asarray(epochs, np.float64), np.asarray(values, np.float64)


def data_key(config: RunConfig) -> tuple:
    """What two runs' test sets must share for their maps to show the same images."""
    d = config.data
    return (d.dataset, d.image_size, d.channels, d.seed)


def read_run(path: str | os.PathLike, name: str | None = None) -> ComparedRun:
    """A run folder's curves, latest map and labels; a RunFolderError names the folder and the
    reason when it cannot be compared."""
    from .run_reader import RunReader  # torch: only once runs are read

    reader = RunReader(path)
    epochs = reader.map_epochs()
    latents = reader.map_means(epochs[-1]) if epochs else np.zeros((0, reader.config.model.latent_dim), np.float32)
    labels = reader.map_labels(len(latents))
    metrics = reader.metrics()
    last = metrics[-1] if metrics else {}
    finished = isinstance(last.get("epoch"), int) and last["epoch"] >= reader.config.train.epochs
    status = FINISHED if finished else RUNNING if reader.writer_alive() else STOPPED
    classes = tuple(str(c) for c in reader.info.get("dataset", {}).get("class_names", ()))
    return ComparedRun(name or reader.path.name, reader.path, reader.config, reader.steps_per_epoch,
                       metrics, epochs[-1] if epochs else 0, latents, labels, classes, status)


def procrustes_rotation(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The orthogonal (2, 2) matrix R minimising ||(source - mean) R - (target - mean)||
    (orthogonal Procrustes: R = U V^T from the SVD of source_c^T target_c; a reflection is
    allowed, since a mirrored plane is as arbitrary as a turned one)."""
    s = np.asarray(source, np.float64)
    t = np.asarray(target, np.float64)
    s, t = s - s.mean(0), t - t.mean(0)
    u, _, vt = np.linalg.svd(s.T @ t)
    return u @ vt


@dataclass(eq=False)
class Comparison:
    """2 to 8 runs of one dataset, their maps over the same ``count`` test images, aligned."""

    runs: list[ComparedRun]
    count: int  # shared map points (0 while a run has no map yet)
    problems: list[str] = field(default_factory=list)  # runs left out: one line each

    @classmethod
    def of(cls, runs: Sequence[ComparedRun], limit: int | None = None,
           problems: Sequence[str] = ()) -> "Comparison":
        problems = list(problems)
        kept: list[ComparedRun] = []
        for run in runs:
            if kept and data_key(run.config) != data_key(kept[0].config):
                problems.append(f"{run.path}: trained on {run.config.data.dataset}, not the "
                                f"{kept[0].config.data.dataset} of {kept[0].name}: not compared")
            elif len(kept) == MAX_RUNS:
                problems.append(f"{run.path}: a comparison shows {MAX_RUNS} runs at most: not compared")
            else:
                kept.append(run)
        mapped = [r.latents.shape[0] for r in kept if r.latents.shape[0]]
        count = min(mapped) if mapped else 0
        if limit is not None:
            count = min(count, limit)
        return cls(_aligned(_unique_names(kept), count), count, problems)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.runs]

    @property
    def labels(self) -> np.ndarray:
        for run in self.runs:
            if len(run.labels) >= self.count and self.count:
                return run.labels[:self.count]
        return np.zeros(self.count, np.int64)

    @property
    def class_names(self) -> tuple[str, ...]:
        return next((r.class_names for r in self.runs if r.class_names), ())

    def varying_settings(self) -> list[str]:
        """The settings (as run.json names them) whose values differ between the runs."""
        found = []
        for section in ("data", "model", "train"):
            dicts = [getattr(r.config, section).__dict__ for r in self.runs]
            for key in dicts[0] if dicts else ():
                if key != "threads" and len({repr(d[key]) for d in dicts}) > 1 and key not in found:
                    found.append(key)
        return found

    def table(self) -> tuple[list[str], list[dict[str, Any]]]:
        """(columns, rows): the sweep summary's columns for these runs."""
        varying = self.varying_settings()
        iwae = any(isinstance(_last(r).get("test_nll_iw"), (int, float)) for r in self.runs)
        cols = ["run", *varying, *(c for c in RESULT_KEYS.values() if iwae or c != "iwae_nll"),
                "seconds", "status"]
        rows = []
        for r in self.runs:
            last = _last(r)
            row: dict[str, Any] = {"run": r.name}
            for key in varying:
                row[key] = _setting(r.config, key)
            for key, column in RESULT_KEYS.items():
                value = last.get(key)
                row[column] = value if isinstance(value, (int, float)) else None
            row["seconds"] = r.seconds
            row["status"] = r.status
            rows.append({c: row.get(c) for c in cols})
        return cols, rows


def _last(run: ComparedRun) -> dict[str, Any]:
    return run.metrics[-1] if run.metrics else {}


def _setting(config: RunConfig, key: str) -> Any:
    for section in ("data", "model", "train"):
        part = getattr(config, section)
        if hasattr(part, key):
            return getattr(part, key)
    return None


def _unique_names(runs: list[ComparedRun]) -> list[ComparedRun]:
    """Runs of two sweeps can share a folder name: the second becomes "name (2)"."""
    seen: dict[str, int] = {}
    out = []
    for run in runs:
        k = seen.get(run.name, 0) + 1
        seen[run.name] = k
        out.append(run if k == 1 else _replace(run, name=f"{run.name} ({k})"))
    return out


def _replace(run: ComparedRun, **changes: Any) -> ComparedRun:
    import dataclasses

    return dataclasses.replace(run, **changes)


def _aligned(runs: list[ComparedRun], count: int) -> list[ComparedRun]:
    """Each run's shared points in its plane, turned to the first run's plane."""
    out: list[ComparedRun] = []
    reference = None
    for run in runs:
        latents = run.latents[:count]
        if count == 0:
            out.append(_replace(run, latents=latents, labels=run.labels[:0], projection=None,
                                xy=np.zeros((0, 2), np.float32)))
            continue
        projection = Projection.fit(latents)
        xy = projection.transform(latents)
        if reference is None:
            reference = xy
            rotation = np.eye(2)
        else:
            rotation = procrustes_rotation(xy, reference)
            projection = turn_projection(projection, rotation)
            xy = projection.transform(latents)
        out.append(_replace(run, latents=latents, labels=run.labels[:count], projection=projection, xy=xy,
                            turned=not np.allclose(rotation, np.eye(2), atol=1e-6)))
    return out


def read_runs(paths: Sequence[str | os.PathLike]) -> tuple[list[ComparedRun], list[str]]:
    """The readable runs of ``paths`` (a sweep's folder stands for its runs) and one line per
    path that could not be read."""
    runs, problems = [], []
    for path in expand_sweeps(paths):
        try:
            runs.append(read_run(path))
        except VaeguiError as exc:
            problems.append(str(exc))
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror or exc}")
    _add_sweep_rows(runs)
    return runs, problems


def expand_sweeps(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Each path, a sweep folder replaced by its runs' folders in the sweep's order."""
    out = []
    for p in map(Path, paths):
        document = read_summary(p) if p.is_dir() else None
        if document is not None:
            names = [n for n in document.get("planned", []) if isinstance(n, str)]
            out += [p / n for n in names if (p / n).is_dir()]
        else:
            out.append(p)
    return out


def _add_sweep_rows(runs: list[ComparedRun]) -> None:
    """A run of a sweep takes its time from the sweep's summary, and "failed" (which its folder
    cannot tell from stopped); finished and running are the folder's to say (a killed sweep
    leaves rows that say running)."""
    for k, run in enumerate(runs):
        document = read_summary(run.path.parent)
        if document is None:
            continue
        for row in document["runs"]:
            if isinstance(row, dict) and row.get("run") == run.path.name:
                seconds = row.get("seconds")
                failed = row.get("status") == FAILED and run.status == STOPPED
                runs[k] = _replace(run, status=FAILED if failed else run.status,
                                   seconds=float(seconds) if isinstance(seconds, (int, float))
                                   and math.isfinite(seconds) else None)
