"""The one reader of a run folder (see run_writer.py for its files), also while another process
still writes it: :func:`follow` turns a growing folder into the same Progress snapshots a local
trainer yields, so a view cannot tell a followed run from its own.

Only complete lines are read from the appended files, nothing is unpickled (weights are read
with ``torch.load(weights_only=True)``), and every problem is a RunFolderError naming the file.
A folder written before run.json existed (checkpoint.pt and metrics.jsonl only) reads as format
version 0: its settings come from its checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import load_checkpoint
from .config import RunConfig
from .errors import ConfigError, RunFolderError, VaeguiError, os_reason
from .progress import EvalResult, Progress
from .run_folder import CHECKPOINT_NAME, METRICS_NAME
from .run_writer import (BEST_NAME, DECODERS_DIR, HEARTBEAT_NAME, HEARTBEAT_S, MAPS_DIR, RUN_FORMAT,
                         RUN_JSON, RUN_VERSION, STEPS_CSV, epoch_file)

HEARTBEAT_STALE_S = 5 * HEARTBEAT_S + 5  # a writer whose heartbeat is older is taken as gone


class RunReader:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_dir():
            raise RunFolderError(self.path, "no such folder")
        self.checkpoint = self.path / CHECKPOINT_NAME
        self.best = self.path / BEST_NAME
        self.info = self._read_info()
        try:
            self.config = RunConfig.from_dict(self.info["config"])
        except (ConfigError, TypeError, KeyError) as exc:
            raise RunFolderError(self.path, f"{RUN_JSON}: bad settings ({exc})") from None
        self._steps_offset = 0  # bytes of steps.csv consumed by steps_since
        self._metrics_offset = 0

    @property
    def version(self) -> int:
        return int(self.info.get("version", 0))

    @property
    def steps_per_epoch(self) -> int:
        return max(1, int(self.info.get("steps_per_epoch") or 1))

    def _read_info(self) -> dict[str, Any]:
        run_json = self.path / RUN_JSON
        if run_json.is_file():
            try:
                info = json.loads(run_json.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise RunFolderError(self.path, f"{RUN_JSON} cannot be read ({exc})") from None
            if not isinstance(info, dict) or info.get("format") != RUN_FORMAT:
                raise RunFolderError(self.path, f"{RUN_JSON} is not a vaegui run description")
            if not isinstance(info.get("version"), int) or info["version"] > RUN_VERSION:
                raise RunFolderError(self.path, f"format version {info.get('version')!r} is newer than "
                                                f"this vaegui reads ({RUN_VERSION})")
            return info
        if self.checkpoint.is_file():
            return migrate_info(self.checkpoint)
        raise RunFolderError(self.path, f"not a run folder (no {RUN_JSON} and no {CHECKPOINT_NAME})")

    # ---- metrics and steps --------------------------------------------------------------------
    def metrics(self) -> list[dict[str, Any]]:
        return [r for r in (_parse_json(line) for line in _complete_lines(self.path / METRICS_NAME))
                if r is not None]

    def metrics_since(self) -> list[dict[str, Any]]:
        """The epochs' lines written since the last call (the first call: all of them)."""
        lines, self._metrics_offset = _lines_from(self.path / METRICS_NAME, self._metrics_offset)
        return [r for r in (_parse_json(line) for line in lines) if r is not None]

    def steps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every step row: steps (n,), losses (n, 3) and KL weights (n,)."""
        return _parse_steps(_complete_lines(self.path / STEPS_CSV))

    def steps_since(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lines, self._steps_offset = _lines_from(self.path / STEPS_CSV, self._steps_offset)
        return _parse_steps(lines)

    # ---- maps and decoders ------------------------------------------------------------------
    def map_epochs(self) -> list[int]:
        return _epochs(self.path / MAPS_DIR, ".npy")

    def map_means(self, epoch: int) -> np.ndarray:
        path = self.path / MAPS_DIR / epoch_file(epoch, ".npy")
        try:
            means = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise RunFolderError(self.path, f"{MAPS_DIR}/{path.name} cannot be read ({exc})") from None
        latent = self.config.model.latent_dim
        if means.ndim != 2 or means.shape[1] != latent or not np.isfinite(means).all():
            raise RunFolderError(self.path, f"{MAPS_DIR}/{path.name}: not (N, {latent}) finite means")
        return means.astype(np.float32, copy=False)

    def decoder_epochs(self) -> list[int]:
        return _epochs(self.path / DECODERS_DIR, ".pt")

    def decoder_state(self, epoch: int) -> dict[str, torch.Tensor]:
        path = self.path / DECODERS_DIR / epoch_file(epoch, ".pt")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is one message
            raise RunFolderError(self.path, f"{DECODERS_DIR}/{path.name} cannot be read "
                                            f"({type(exc).__name__})") from None
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) and torch.isfinite(v).all()
                                                  for v in state.values()):
            raise RunFolderError(self.path, f"{DECODERS_DIR}/{path.name}: not finite decoder weights")
        return state

    def load_checkpoint(self, best: bool = False) -> dict[str, Any]:
        return load_checkpoint(self.best if best else self.checkpoint)

    # ---- the writer ---------------------------------------------------------------------------
    def writer_alive(self) -> bool:
        """Whether a process is writing the folder now: its heartbeat is recent (this works for
        a folder mounted from another machine, where a lock says nothing)."""
        try:
            return time.time() - (self.path / HEARTBEAT_NAME).stat().st_mtime < HEARTBEAT_STALE_S
        except OSError:
            return False


def migrate_info(checkpoint: Path) -> dict[str, Any]:
    """run.json's content for a folder of format version 0, from its checkpoint."""
    try:
        state = load_checkpoint(checkpoint)
    except VaeguiError as exc:
        raise RunFolderError(checkpoint.parent, f"a version-0 run whose checkpoint cannot be read: {exc}") from None
    first = state["history"]["evals"][0] if state["history"].get("evals") else None
    per_epoch = first["step"] // max(1, first["epoch"]) if first else None
    return {"format": RUN_FORMAT, "version": 0, "config": state["config"],
            "dataset": {"name": state["dataset"]["name"], "image_shape": list(state["dataset"]["image_shape"]),
                        "class_names": list(state["dataset"]["class_names"])},
            "steps_per_epoch": per_epoch}


def follow(reader: RunReader, *, poll_s: float = 0.5, should_stop: Callable[[], bool] = lambda: False,
           sleep: Callable[[float], None] = time.sleep) -> Iterator[Progress]:
    """Snapshots of a run folder as it grows, shaped as ``Trainer.run()``'s: the new step rows,
    and an evaluation when an epoch's metrics line lands. Ends with a ``done`` snapshot once the
    writer is gone and nothing more came, or when ``should_stop()``."""
    config, per_epoch = reader.config, reader.steps_per_epoch
    state = {"step": 0, "kl_weight": math.nan, "images_per_s": 0.0}

    def snapshot(steps, losses, weights, e: EvalResult | None, done: bool, stopped: bool) -> Progress:
        if len(steps):
            state["step"], state["kl_weight"] = int(steps[-1]), float(weights[-1])
        if e is not None:
            state["step"] = max(state["step"], e.step)
            state["images_per_s"] = _images_per_s(reader, e) or state["images_per_s"]
        return Progress(step=state["step"], total_steps=per_epoch * config.train.epochs,
                        steps_per_epoch=per_epoch, epochs=config.train.epochs, new_steps=steps,
                        new_losses=losses, new_kl_weights=weights, kl_weight=state["kl_weight"],
                        images_per_s=state["images_per_s"],
                        images_seen=state["step"] * config.train.batch_size, train_seconds=0.0,
                        seconds_left=None, device="followed", eval=e, done=done, stopped=stopped)

    while True:
        steps, losses, weights = reader.steps_since()
        evals = [e for e in map(_eval_from_record, reader.metrics_since()) if e is not None]
        stopped = should_stop()
        done = stopped or not (len(steps) or evals or reader.writer_alive())
        # The rows come with the first snapshot (they end at or before its epoch's end); the
        # other epochs' evaluations follow with none.
        none = (steps[:0], losses[:0], weights[:0])
        for k, e in enumerate(evals):
            yield snapshot(*((steps, losses, weights) if k == 0 else none), e, False, False)
        if len(steps) and not evals:
            yield snapshot(steps, losses, weights, None, False, False)
        if done:
            yield snapshot(*none, None, True, stopped)
            return
        sleep(poll_s)


def _images_per_s(reader: RunReader, e: EvalResult) -> float | None:
    for r in reversed(reader.metrics()):
        if r.get("step") == e.step and isinstance(r.get("images_per_s"), (int, float)):
            return float(r["images_per_s"])
    return None


def _eval_from_record(r: dict[str, Any]) -> EvalResult | None:
    """The EvalResult of a metrics line; None for a line too old to hold KL per dimension."""
    try:
        kl = np.asarray(r["kl_per_dim"], np.float64)
        active = r.get("active")
        return EvalResult(epoch=int(r["epoch"]), step=int(r["step"]), neg_elbo=float(r["test_elbo"]),
                          recon=float(r["test_recon"]), kl=float(r["test_kl"]),
                          bits_per_dim=float(r["test_bits_per_dim"]), kl_per_dim=kl,
                          active_units=int(r["active_units"]), nll_iw=r.get("test_nll_iw"),
                          iw_samples=int(r.get("iw_samples") or 0),
                          active=None if active is None else np.asarray(active, bool))
    except (KeyError, TypeError, ValueError):
        return None


def _complete_lines(path: Path) -> list[str]:
    lines, _ = _lines_from(path, 0)
    return lines


def _lines_from(path: Path, offset: int) -> tuple[list[str], int]:
    """The complete lines of ``path`` after byte ``offset``, and the offset after them (a line
    still being written is left for the next read)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    except OSError as exc:
        raise RunFolderError(path.parent, f"{path.name} cannot be read: {os_reason(exc)}") from None
    end = data.rfind(b"\n") + 1
    return data[:end].decode("utf-8", errors="replace").splitlines(), offset + end


def _parse_json(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _parse_steps(lines: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = []
    for line in lines:
        parts = line.split(",")
        if len(parts) == 5 and parts[0].isdigit():
            try:
                rows.append([float(v) for v in parts])
            except ValueError:
                continue
    table = np.asarray(rows, np.float64).reshape(-1, 5)
    return table[:, 0].astype(np.int64), table[:, 1:4], table[:, 4]


def _epochs(folder: Path, suffix: str) -> list[int]:
    found = []
    for f in folder.glob("epoch-*" + suffix):
        try:
            found.append(int(f.stem.split("-")[1]))
        except (IndexError, ValueError):
            continue
    return sorted(found)


def run_of(path: str | os.PathLike) -> tuple[str, Path | None]:
    """(checkpoint file, run folder or None) of what File > Open was given: a run folder means
    its latest checkpoint; a checkpoint inside a run folder belongs to that run."""
    target = Path(path)
    if target.is_dir():
        return str(RunReader(target).checkpoint), target
    parent = target.parent
    if (parent / RUN_JSON).is_file() or (parent / METRICS_NAME).is_file():
        return str(target), parent
    return str(target), None
