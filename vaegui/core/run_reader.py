"""The one reader of a run folder (see run_writer.py for its files), also while another process
still writes it (``following.follow`` turns a growing folder into Progress snapshots).

The folder is untrusted, and this is its one boundary: every value handed out is checked here,
once (run_schema.py: types, finiteness, ranges, lengths that must agree with the model), and so
is the agreement between run.json, the checkpoint and the stored maps and decoders. What fails is
one RunFolderError naming the folder, the file, the field and the reason; nothing past the reader
checks again. Only regular files are opened, never through a link and never blocking on a pipe,
each kind with a size cap (safe_dir.py); JSON is parsed with a nesting limit. A metrics line that
fails its check is skipped and counted (``skipped_lines``), not the whole run: a killed writer
leaves a torn last line, and one bad line should not hide the others. Nothing is unpickled
(weights are read with ``torch.load(weights_only=True)``).

A folder written before run.json existed (checkpoint.pt and metrics.jsonl only) reads as format
version 0: its settings come from its checkpoint.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import stat
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import load_checkpoint
from .checkpoint_schema import SchemaError
from .config import MAX_STEPS, RunConfig
from .errors import RunFolderError, VaeguiError
from .json_limits import loads_bounded
from .progress import EvalResult, steps_per_epoch_from
from .run_folder import CHECKPOINT_NAME, MAP_LABELS_NAME, METRICS_CAP, METRICS_NAME
from .run_schema import RunDescription, check_info, check_record
from .run_writer import (BEST_NAME, DECODERS_DIR, HEARTBEAT_NAME, HEARTBEAT_S, MAPS_DIR, RUN_FORMAT,
                         RUN_JSON, RUN_VERSION, STEPS_CSV, epoch_file)
from .safe_dir import SafeDir

HEARTBEAT_STALE_S = 5 * HEARTBEAT_S + 5  # a writer whose heartbeat is older is taken as gone
HEARTBEAT_FUTURE_S = 60.0  # a heartbeat stamped later than this ahead of the clock is no sign of life
RUN_JSON_CAP = 1 << 20
STEPS_CAP = 1 << 30
MAP_HEADER_CAP = 1 << 16
DECODER_EXTRA = 1 << 20  # bytes of a decoder file beyond its weights (the zip and pickle around them)


class RunReader:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            is_dir = self.path.is_dir()
        except (OSError, ValueError):
            is_dir = False
        if not is_dir:
            raise RunFolderError(self.path, "no such folder")
        self.checkpoint = self.path / CHECKPOINT_NAME
        self.best = self.path / BEST_NAME
        self.info = self._read_info()
        try:
            self.description: RunDescription = check_info(self.info, RUN_FORMAT, RUN_VERSION)
        except SchemaError as exc:
            raise RunFolderError(self.path, f"{RUN_JSON}: {exc}") from None
        self.config = self.description.config
        self.latent_dim = self.config.model.latent_dim
        self._decoder_shapes: dict[str, tuple[int, ...]] | None = None
        self._map_rows: int | None = self.description.test_size
        self._steps_offset = 0  # bytes of steps.csv consumed by steps_since
        self._metrics_offset = 0
        self._last_step = 0  # the last step row handed out by steps_since
        self.skipped_lines = 0  # metrics lines that failed their check, in the last full read
        self.skipped_since = 0  # ... and in the reads of metrics_since so far
        self.skip_reason = ""  # the first one's

    @property
    def version(self) -> int:
        return self.description.version

    @property
    def steps_per_epoch(self) -> int:
        return self.description.steps_per_epoch

    def _read(self, parts: tuple[str, ...], cap: int, offset: int = 0) -> bytes | None:
        """A regular file of the folder (``parts``: its path inside it), reached without
        following a link; None when it is not there."""
        with SafeDir.open(self.path) as folder:
            *dirs, name = parts
            opened = []
            try:
                for d in dirs:
                    if folder.kind(d) is None:
                        return None
                    folder = folder.subdir(d)
                    opened.append(folder)
                return folder.read(name, cap, offset)
            finally:
                for f in opened:
                    f.close()

    def _read_info(self) -> dict[str, Any]:
        try:
            data = self._read((RUN_JSON,), RUN_JSON_CAP)
        except RunFolderError as exc:
            raise RunFolderError(self.path, exc.reason) from None
        if data is not None:
            try:
                return loads_bounded(data)
            except ValueError as exc:
                raise RunFolderError(self.path, f"{RUN_JSON} cannot be read ({' '.join(str(exc).split())[:200]})") from None
        if self._kind(CHECKPOINT_NAME) == "file":
            return migrate_info(self.checkpoint)
        raise RunFolderError(self.path, f"not a run folder (no {RUN_JSON} and no {CHECKPOINT_NAME})")

    def _kind(self, name: str) -> str | None:
        with SafeDir.open(self.path) as folder:
            return folder.kind(name)

    # ---- metrics and steps --------------------------------------------------------------------
    def metrics(self) -> list[dict[str, Any]]:
        """Every line of metrics.jsonl that passes its check; ``skipped_lines`` counts the others."""
        lines, _ = self._lines_from(METRICS_NAME, 0, METRICS_CAP)
        records, self.skipped_lines = self._check_lines(lines)
        return records

    def metrics_since(self) -> list[dict[str, Any]]:
        """The epochs' lines written since the last call (the first call: all of them)."""
        lines, self._metrics_offset = self._lines_from(METRICS_NAME, self._metrics_offset, METRICS_CAP)
        records, skipped = self._check_lines(lines)
        self.skipped_since += skipped
        return records

    def evaluations(self, records: list[dict[str, Any]]) -> list[EvalResult]:
        """The evaluations of checked metrics lines."""
        return [check_record(r, self.latent_dim) for r in records]

    def _check_lines(self, lines: list[str]) -> tuple[list[dict[str, Any]], int]:
        records, skipped = [], 0
        for number, line in enumerate(lines, 1):
            try:
                record = loads_bounded(line)
                check_record(record, self.latent_dim)
            except (ValueError, SchemaError) as exc:  # SchemaError is a ValueError
                skipped += 1
                if not self.skip_reason:
                    self.skip_reason = f"{METRICS_NAME}: a line skipped: {' '.join(str(exc).split())[:200]}"
                continue
            records.append(record)
        return records, skipped

    def steps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every step row: steps (n,), losses (n, 3) and KL weights (n,)."""
        lines, _ = self._lines_from(STEPS_CSV, 0, STEPS_CAP)
        return _parse_steps(lines, 0)

    def steps_since(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lines, self._steps_offset = self._lines_from(STEPS_CSV, self._steps_offset, STEPS_CAP)
        steps, losses, weights = _parse_steps(lines, self._last_step)
        if len(steps):
            self._last_step = int(steps[-1])
        return steps, losses, weights

    def _lines_from(self, name: str, offset: int, cap: int) -> tuple[list[str], int]:
        """The complete lines of ``name`` after byte ``offset``, and the offset after them (a
        line still being written is left for the next read)."""
        data = self._read((name,), cap, offset)
        if data is None:
            return [], offset
        end = data.rfind(b"\n") + 1
        return data[:end].decode("utf-8", errors="replace").splitlines(), offset + end

    # ---- maps and decoders ------------------------------------------------------------------
    def map_epochs(self) -> list[int]:
        return self._epochs(MAPS_DIR, ".npy")

    def map_means(self, epoch: int) -> np.ndarray:
        """The test set's latent means at ``epoch``: (N, latent_dim) finite float32, N the same
        for every epoch (run.json's test_size when it says)."""
        name = f"{MAPS_DIR}/{epoch_file(epoch, '.npy')}"
        rows = self._map_rows
        cap = MAP_HEADER_CAP + (8 * self.latent_dim * rows if rows is not None else STEPS_CAP)
        data = self._read((MAPS_DIR, epoch_file(epoch, ".npy")), cap)
        if data is None:
            raise RunFolderError(self.path, f"{name}: no such file")
        try:
            means = np.load(io.BytesIO(data), allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - whatever numpy says of a damaged file is one message
            raise RunFolderError(self.path, f"{name} cannot be read ({' '.join(str(exc).split())[:120]})") from None
        latent = self.latent_dim
        if not isinstance(means, np.ndarray) or means.dtype.kind != "f" or means.ndim != 2 \
                or means.shape[1] != latent:
            raise RunFolderError(self.path, f"{name}: holds {getattr(means, 'dtype', '?')} "
                                            f"{getattr(means, 'shape', '?')}, not (N, {latent}) means")
        if rows is not None and means.shape[0] != rows:
            raise RunFolderError(self.path, f"{name}: holds {means.shape[0]} test images' means, not "
                                            f"the {rows} of the run's test set")
        if not np.isfinite(means).all():
            raise RunFolderError(self.path, f"{name}: holds NaN or infinite means")
        self._map_rows = means.shape[0]
        return means.astype(np.float32, copy=False)

    def map_labels(self, n: int) -> np.ndarray:
        """The labels of the first ``n`` map points, int64 (none when the run has no map yet)."""
        name = f"{MAPS_DIR}/{MAP_LABELS_NAME}"
        data = self._read((MAPS_DIR, MAP_LABELS_NAME), MAP_HEADER_CAP + 8 * n)
        if data is None:
            if n == 0:
                return np.zeros(0, np.int64)
            raise RunFolderError(self.path, f"{name}: no such file")
        try:
            labels = np.load(io.BytesIO(data), allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - whatever numpy says of a damaged file is one message
            raise RunFolderError(self.path, f"{name} cannot be read ({' '.join(str(exc).split())[:120]})") from None
        if not isinstance(labels, np.ndarray) or labels.ndim != 1 or len(labels) < n \
                or not np.issubdtype(labels.dtype, np.integer):
            raise RunFolderError(self.path, f"{name}: not {n} or more whole-number labels")
        return labels[:n].astype(np.int64)

    def decoder_epochs(self) -> list[int]:
        return self._epochs(DECODERS_DIR, ".pt")

    def decoder_state(self, epoch: int) -> dict[str, torch.Tensor]:
        """The decoder weights of ``epoch``: exactly the names and shapes of this run's model,
        all finite."""
        name = f"{DECODERS_DIR}/{epoch_file(epoch, '.pt')}"
        shapes = self.decoder_shapes()
        cap = DECODER_EXTRA + 8 * sum(math.prod(s) for s in shapes.values())
        data = self._read((DECODERS_DIR, epoch_file(epoch, ".pt")), cap)
        if data is None:
            raise RunFolderError(self.path, f"{name}: no such file")
        if not data.startswith(b"PK"):  # torch.save's zip; a bare pickle is never unpickled
            raise RunFolderError(self.path, f"{name}: not a weights file (not a zip archive)")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch's remarks on a crafted file: the error says it
                state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is one message
            raise RunFolderError(self.path, f"{name} cannot be read ({type(exc).__name__})") from None
        if not isinstance(state, dict) or set(state) != set(shapes):
            raise RunFolderError(self.path, f"{name}: not this run's decoder weights "
                                            f"(expected {', '.join(sorted(shapes))})")
        for key, shape in shapes.items():
            v = state[key]
            if not isinstance(v, torch.Tensor) or not v.is_floating_point() or tuple(v.shape) != shape:
                raise RunFolderError(self.path, f"{name}: {key} is not a {shape} tensor of numbers")
            if not torch.isfinite(v).all():
                raise RunFolderError(self.path, f"{name}: {key} holds NaN or infinite values")
        return {k: v.float() for k, v in state.items()}

    def decoder_shapes(self) -> dict[str, tuple[int, ...]]:
        """The names and shapes of this run's decoder weights (of a model built on torch's meta
        device: no memory is taken)."""
        if self._decoder_shapes is None:
            from .model import VAE

            with torch.device("meta"):
                model = VAE(self.config.model, self.description.image_shape)
            shapes = {f"decoder.{k}": tuple(v.shape) for k, v in model.decoder.state_dict().items()}
            shapes["log_sigma"] = tuple(model.log_sigma.shape)
            self._decoder_shapes = shapes
        return self._decoder_shapes

    def _epochs(self, folder: str, suffix: str) -> list[int]:
        found = []
        try:
            with SafeDir.open(self.path) as root:
                if root.kind(folder) != "folder":
                    return []
                with root.subdir(folder) as sub:
                    names = sub.names()
        except (RunFolderError, OSError):
            return []
        for name in names:
            if name.startswith("epoch-") and name.endswith(suffix):
                digits = name[len("epoch-"):-len(suffix)]
                if digits.isdigit() and len(digits) <= 12:
                    found.append(int(digits))
        return sorted(found)

    # ---- the checkpoint ---------------------------------------------------------------------
    def load_checkpoint(self, best: bool = False, path: str | os.PathLike | None = None) -> dict[str, Any]:
        """The latest (or best, or the run's checkpoint file at ``path``), checked
        (checkpoint.py) and agreeing with run.json: the same model, image shape and classes."""
        path = Path(path) if path is not None else self.best if best else self.checkpoint
        if path.parent.resolve() == self.path.resolve():
            kind = self._kind(path.name)
            if kind == "link":
                raise RunFolderError(self.path, f"{path.name} is a symbolic link; vaegui follows none in a run folder")
            if kind not in (None, "file"):
                raise RunFolderError(self.path, f"{path.name} is not a regular file")
        state = load_checkpoint(path)
        d = self.description
        theirs = RunConfig.from_dict(state["config"]).model  # checked by load_checkpoint already
        differ = [f.name for f in dataclasses.fields(theirs)
                  if getattr(theirs, f.name) != getattr(d.config.model, f.name)]
        if differ:
            field = differ[0]
            raise RunFolderError(self.path, f"{path.name}: model {field} {getattr(theirs, field)!r} "
                                            f"disagrees with {RUN_JSON}'s {getattr(d.config.model, field)!r}")
        shape = tuple(int(v) for v in state["dataset"]["image_shape"])
        if shape != d.image_shape:
            raise RunFolderError(self.path, f"{path.name}: image_shape {shape} disagrees with {RUN_JSON}'s "
                                            f"{d.image_shape}")
        classes = len(state["dataset"]["class_names"])
        if classes != len(d.class_names):
            raise RunFolderError(self.path, f"{path.name}: {classes} classes disagree with "
                                            f"{RUN_JSON}'s {len(d.class_names)}")
        return state

    # ---- the writer ---------------------------------------------------------------------------
    def writer_alive(self) -> bool:
        """Whether a process is writing the folder now: its heartbeat is recent (this works for
        a folder mounted from another machine, where a lock says nothing). A heartbeat stamped
        in the future (a clock set wrong, or a crafted file) is no sign of life: it would say
        "alive" for ever."""
        try:
            with SafeDir.open(self.path) as folder:
                st = folder.lstat(HEARTBEAT_NAME)
        except (RunFolderError, OSError):
            return False
        if st is None or not stat.S_ISREG(st.st_mode):
            return False
        age = time.time() - st.st_mtime
        return -HEARTBEAT_FUTURE_S <= age < HEARTBEAT_STALE_S


def load_run_checkpoint(path: str | os.PathLike, run_dir: str | os.PathLike | None) -> dict[str, Any]:
    """A checkpoint file, checked against its run folder's run.json when it has one."""
    if run_dir is None:
        return load_checkpoint(path)
    return RunReader(run_dir).load_checkpoint(path=path)


def migrate_info(checkpoint: Path) -> dict[str, Any]:
    """run.json's content for a folder of format version 0, from its checkpoint."""
    try:
        state = load_checkpoint(checkpoint)
    except VaeguiError as exc:
        raise RunFolderError(checkpoint.parent, f"a version-0 run whose checkpoint cannot be read: {exc}") from None
    first = state["history"]["evals"][0] if state["history"].get("evals") else None
    per_epoch = steps_per_epoch_from(first["step"], first["epoch"]) if first else None
    return {"format": RUN_FORMAT, "version": 0, "config": state["config"],
            "dataset": {"name": state["dataset"]["name"], "image_shape": list(state["dataset"]["image_shape"]),
                        "class_names": list(state["dataset"]["class_names"])},
            "steps_per_epoch": per_epoch or None}


def _parse_steps(lines: list[str], after: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows of steps.csv lines that hold a step (increasing, after ``after``), three finite
    losses and a KL weight (NaN: not known); other lines are skipped."""
    rows = []
    last = after
    for line in lines:
        parts = line.split(",")
        if len(parts) != 5 or not parts[0].isdigit() or len(parts[0]) > 13:
            continue
        try:
            row = [float(v) for v in parts]
        except ValueError:
            continue
        step = int(parts[0])
        if not (last < step <= MAX_STEPS) or not all(math.isfinite(v) for v in row[1:4]) \
                or math.isinf(row[4]):
            continue
        rows.append(row)
        last = step
    table = np.asarray(rows, np.float64).reshape(-1, 5)
    return table[:, 0].astype(np.int64), table[:, 1:4], table[:, 4]
