"""The one writer of a run folder; the CLI, the app and rank 0 of a torchrun job write through it.

A run folder (format version 1) holds::

    run.json          format, version, settings, dataset (name, image shape, class names, sizes)
    metrics.jsonl     one line per epoch: train and test losses, KL per dimension, images/s
    steps.csv         one row per training step: step, recon, kl, neg_elbo, kl_weight
    checkpoint.pt     the latest weights, optimiser and history (resume from here)
    best.pt           the checkpoint of the best test -ELBO so far
    maps/             labels.npy, and epoch-0001.npy ... the test set's latent means (N, L) float32
                      (float16 above 100,000 points: compact_means below)
    decoders/         epoch-0001.pt ... the decoder weights of each epoch, when they are small
    heartbeat         the writer's pid; its time stamp is renewed every few seconds
    .lock             held (flock) by the one process that writes

Every file is written atomically or appended line by line, in an order that keeps the folder
consistent when the writer is killed at any moment: an epoch's checkpoint is saved before its
metrics line, and a resumed run rewrites metrics and steps to match its checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import save_checkpoint
from .checkpoint_schema import SchemaError
from .decoder import encode_means
from .progress import EvalResult, Progress
from .run_folder import (BEST_NAME, CHECKPOINT_NAME, DECODERS_DIR, HEARTBEAT_NAME, MAP_LABELS_NAME, MAPS_DIR,
                         RUN_JSON, STEPS_CSV, RunFolder)
from .run_schema import check_record
from .safe_dir import SafeDir

RUN_FORMAT = "vaegui-run"
RUN_VERSION = 1
STEPS_HEADER = "step,recon,kl,neg_elbo,kl_weight"
HEARTBEAT_S = 2.0  # the writer rewrites its heartbeat at most this often
KEEP_DECODER_BYTES = 8 << 20  # per-epoch decoder weights are kept when at most this size


# Maps of more points than this are stored as float16: a million points at L = 32 would take
# 128 MB an epoch as float32. Half precision keeps 3 significant digits, far finer than a map's
# pixels (its points move by more from one epoch to the next).
COMPACT_ABOVE = 100_000


def compact_means(means: np.ndarray) -> np.ndarray:
    """An epoch's means (N, L) as a run folder stores them: float16 above COMPACT_ABOVE points
    unless a value lies beyond float16's range, else float32. Readers take either."""
    means = np.asarray(means)
    if len(means) > COMPACT_ABOVE and np.all(np.abs(means) < np.finfo(np.float16).max):
        return means.astype(np.float16)
    return means.astype(np.float32, copy=False)


def epoch_file(epoch: int, suffix: str) -> str:
    return f"epoch-{epoch:04d}{suffix}"


def epoch_record(e: EvalResult, train_rows: np.ndarray, kl_weight: float,
                 images_per_s: float | None) -> dict[str, Any]:
    """The metrics.jsonl line of the epoch that evaluation ``e`` closed."""
    train_mean = train_rows.mean(0) if len(train_rows) else [float("nan")] * 3
    record = {"epoch": e.epoch, "step": e.step, "train_recon": float(train_mean[0]),
              "train_kl": float(train_mean[1]), "train_elbo": float(train_mean[2]),
              **e.test_record(),
              "kl_weight": kl_weight, "images_per_s": images_per_s,
              "kl_per_dim": [float(v) for v in e.kl_per_dim]}
    if e.active is not None:
        record["active"] = [bool(v) for v in e.active]
    return record


def run_info(trainer) -> dict[str, Any]:
    """What run.json says of a run: enough to show it without unpickling anything."""
    data = trainer.data
    return {"format": RUN_FORMAT, "version": RUN_VERSION, "config": trainer.config.to_dict(),
            "dataset": {"name": data.name, "image_shape": list(data.image_shape),
                        "class_names": list(data.class_names), "train_size": len(data.train_images),
                        "test_size": len(data.test_images)},
            "steps_per_epoch": trainer.steps_per_epoch,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


class RunWriter:
    """Writes ``folder`` (opened and locked) as ``trainer`` runs: call :meth:`record` with every
    snapshot of ``trainer.run()``, and :meth:`save` at the end or whenever the weights must be
    kept now (a stop, a close mid-epoch). The trainer must keep its test means
    (``keep_test_means=True``) for the map history to be written."""

    def __init__(self, folder: RunFolder, trainer, keep_decoders: bool | None = None):
        self.folder, self.trainer = folder, trainer
        self.path = folder.path
        decoder_bytes = sum(v.numel() * v.element_size() for v in trainer.decoder_state().values())
        self.keep_decoders = decoder_bytes <= KEEP_DECODER_BYTES if keep_decoders is None else keep_decoders
        # Every file goes through the open folder, never through a link (see safe_dir.py).
        self.dir: SafeDir = folder.dir
        self.maps = self.dir.subdir(MAPS_DIR, create=True)
        self.decoders = self.dir.subdir(DECODERS_DIR, create=True)
        # The heartbeat first: a follower that finds run.json must find the writer alive.
        self.dir.write_atomic(HEARTBEAT_NAME, lambda f: f.write(json.dumps({"pid": os.getpid()}).encode()))
        self.dir.write_atomic(RUN_JSON, lambda f: f.write(json.dumps(run_info(trainer), indent=1).encode()))
        self.maps.write_atomic(MAP_LABELS_NAME, lambda f: np.save(f, trainer.data.test_labels.numpy()))
        self._reconcile()
        self._last_beat = time.time()
        self._epoch_mark = (0, 0.0, trainer.step)  # images, train seconds and step at the last epoch end

    # ---- as training goes ---------------------------------------------------------------------
    def record(self, p: Progress) -> dict[str, Any] | None:
        """Append the snapshot's step rows; at an epoch's end, save the checkpoint (and the best,
        the map and the decoder) and then the metrics line, which is returned."""
        if len(p.new_steps):
            self._append_steps(p.new_steps, p.new_losses, p.new_kl_weights)
        record = None
        if p.eval is not None and not p.done:
            record = self._end_epoch(p)
        elif p.eval is not None and p.done:
            self._rewrite_last_metrics(p.eval)  # the final IWAE figures of the last epoch
        self._beat(p.step)
        return record

    def close(self) -> None:
        """The writer is done: followers see it at once (a killed writer's heartbeat goes stale)."""
        self.dir.unlink(HEARTBEAT_NAME)
        self.maps.close()
        self.decoders.close()

    def save(self) -> Path:
        """The checkpoint of the trainer's current state."""
        save_checkpoint(self.folder.checkpoint, self.trainer.state_dict(), dir_fd=self.dir.fd)
        self._beat(self.trainer.step, force=True)
        return self.folder.checkpoint

    def _end_epoch(self, p: Progress) -> dict[str, Any]:
        t, e = self.trainer, p.eval
        history = t.history
        images, seconds, start = self._epoch_mark
        rows = history.losses[(history.steps > start) & (history.steps <= e.step)]
        ips = (p.images_seen - images) / max(1e-9, p.train_seconds - seconds)
        self._epoch_mark = (p.images_seen, p.train_seconds, e.step)
        record = epoch_record(e, rows, p.kl_weight, ips)
        # The checkpoint first: a run killed between the writes resumes from this epoch, and a
        # metrics line never written is rebuilt from the checkpoint's history.
        self.save()
        if self._is_best(e.neg_elbo):
            saved = self.dir.read(CHECKPOINT_NAME, 1 << 62)
            self.dir.write_atomic(BEST_NAME, lambda f: f.write(saved))
        means = t.test_means
        if means is not None and means.step == e.step:
            self.maps.write_atomic(epoch_file(e.epoch, ".npy"),
                                   lambda f: np.save(f, compact_means(means.means)))
        if self.keep_decoders:
            state = t.decoder_state()
            self.decoders.write_atomic(epoch_file(e.epoch, ".pt"), lambda f: torch.save(state, f))
        self.folder.append_metrics(record)
        return record

    def _is_best(self, neg_elbo: float) -> bool:
        best = min((r["test_elbo"] for r in self._checked_metrics()), default=math.inf)
        return math.isfinite(neg_elbo) and neg_elbo < best

    def _rewrite_last_metrics(self, e: EvalResult) -> None:
        """The final evaluation adds the IWAE bound to the last epoch's (same weights)."""
        records = self._checked_metrics()
        if e.nll_iw is not None and records and records[-1]["step"] == e.step:
            records[-1].update(test_nll_iw=e.nll_iw, iw_samples=e.iw_samples)
            self.folder.write_metrics(records)

    def _checked_metrics(self) -> list[dict[str, Any]]:
        """The metrics lines that pass the reader's check (run_schema.py); a damaged line is
        dropped, and rebuilt from the checkpoint's history when it holds that epoch."""
        latent = self.trainer.config.model.latent_dim
        checked = []
        for r in self.folder.read_metrics():
            try:
                check_record(r, latent)
            except SchemaError:
                continue
            checked.append(r)
        return checked

    # ---- files ----------------------------------------------------------------------------------
    def _append_steps(self, steps: np.ndarray, losses: np.ndarray, weights: np.ndarray) -> None:
        self.dir.append(STEPS_CSV, _step_rows(steps, losses, weights).encode("utf-8"))

    def _reconcile(self) -> None:
        """Make metrics and steps match the trainer's state (its checkpoint, when resumed): lines
        after it are dropped (those epochs run again); epochs it holds but whose lines a killed
        run never wrote are rebuilt from its history."""
        t, history, step = self.trainer, self.trainer.history, self.trainer.step
        records = [r for r in self._checked_metrics() if r["step"] <= step]
        have = {r["epoch"] for r in records}
        previous = 0
        for e in history.evals:
            if e.epoch not in have and 0 < e.step <= step:
                rows = (history.steps > previous) & (history.steps <= e.step)
                weights = history.kl_weights[rows]
                records.append(epoch_record(e, history.losses[rows],
                                            float(weights[-1]) if len(weights) else math.nan, None))
            previous = e.step
        self.folder.write_metrics(sorted(records, key=lambda r: r["step"]))
        for folder in (self.dir, self.maps, self.decoders):
            folder.remove_stale_temp_files()  # of saves killed mid-write
        keep = history.steps <= step
        text = STEPS_HEADER + "\n" + _step_rows(history.steps[keep], history.losses[keep],
                                                history.kl_weights[keep])
        self.dir.write_atomic(STEPS_CSV, lambda f: f.write(text.encode()))
        # Only this run's own epoch files (regular files of its naming) are deleted: the epochs
        # after the checkpoint it resumes from, which it will write again.
        for folder, suffix in ((self.maps, ".npy"), (self.decoders, ".pt")):
            for name in folder.names():
                if name.startswith("epoch-") and name.endswith(suffix) \
                        and _epoch_of(name) > step // max(1, t.steps_per_epoch):
                    folder.unlink(name)
        self._complete_last_epoch()

    def _complete_last_epoch(self) -> None:
        """A run killed after an epoch's checkpoint but before its map (or decoder) resumes
        with exactly that epoch's weights: write what is missing from them."""
        t = self.trainer
        epoch, offset = divmod(t.step, max(1, t.steps_per_epoch))
        if offset or epoch == 0:
            return
        map_name = epoch_file(epoch, ".npy")
        if self.maps.lstat(map_name) is None:
            means = encode_means(t.model, t.data.test_images)
            self.maps.write_atomic(map_name, lambda f: np.save(f, compact_means(means)))
        decoder_name = epoch_file(epoch, ".pt")
        if self.keep_decoders and self.decoders.lstat(decoder_name) is None:
            state = t.decoder_state()
            self.decoders.write_atomic(decoder_name, lambda f: torch.save(state, f))

    def _beat(self, step: int, force: bool = False) -> None:
        """Renew the heartbeat's time stamp (a follower on another machine reads its age)."""
        now = time.time()
        if force or now - self._last_beat >= HEARTBEAT_S:
            self._last_beat = now
            self.dir.touch(HEARTBEAT_NAME)  # a missing heartbeat only makes the writer look stopped


def _step_rows(steps: np.ndarray, losses: np.ndarray, weights: np.ndarray) -> str:
    return "".join(f"{int(s)},{r[0]:.6g},{r[1]:.6g},{r[2]:.6g},{w:.6g}\n"
                   for s, r, w in zip(steps, losses, weights))


def _epoch_of(name: str) -> int:
    try:
        return int(name.split(".")[0].split("-")[1])
    except (IndexError, ValueError):
        return 0
