"""Immutable snapshots the trainer yields: plain numbers and numpy arrays, safe to hand to any
thread (the GUI worker forwards them to the main thread as they are)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# Columns of the per-step loss rows, nats per image; "kl" is unweighted (beta is applied only to
# the optimised loss), so "neg_elbo" = recon + kl is the true -ELBO estimate of the batch.
LOSS_COLUMNS = ("recon", "kl", "neg_elbo")


def steps_per_epoch(train_images: int, batch_size: int) -> int:
    """Optimisation steps in one epoch: every training image once, the last batch smaller."""
    return max(1, math.ceil(train_images / batch_size))


def steps_per_epoch_from(eval_step: int, eval_epoch: int) -> int:
    """Steps per epoch of a run whose training set is not at hand, from an evaluation made at
    the end of epoch ``eval_epoch``, after ``eval_step`` steps."""
    return max(1, eval_step // max(1, eval_epoch))


def epoch_of_step(step: int, steps_per_epoch: int, epochs: int | None = None) -> int:
    """The epoch (from 1) that the ``step``-th optimisation step belongs to, as every progress
    line shows it: at an epoch's last step (step = k * steps_per_epoch) that is k, the epoch
    just finished, so a finished 10-epoch run reads "epoch 10/10", never 11/10; before the
    first step, epoch 1. Capped at ``epochs`` when given."""
    epoch = max(1, -(-step // max(1, steps_per_epoch)))  # ceil without floats
    return min(epoch, epochs) if epochs else epoch


def format_duration(seconds: float) -> str:
    """A time left or taken, to the nearest second: "0:07", "1:35", "1:02:05"."""
    total = max(0, int(round(seconds)))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@dataclass(frozen=True)
class EvalResult:
    """Test-set evaluation after an epoch (all in nats per image unless named otherwise)."""

    epoch: int
    step: int
    neg_elbo: float
    recon: float
    kl: float
    bits_per_dim: float
    kl_per_dim: np.ndarray  # (L,) mean closed-form KL of each latent dimension
    active_units: int  # dimensions whose posterior mean varies across the data (Cov > 0.01)
    nll_iw: float | None = None  # IWAE estimate of -log p(x), when computed
    iw_samples: int = 0
    active: np.ndarray | None = None  # (L,) bool: which dimensions are active

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["kl_per_dim"] = [float(v) for v in self.kl_per_dim]
        d["active"] = None if self.active is None else [bool(v) for v in self.active]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EvalResult":
        active = d.get("active")
        return cls(**{**d, "kl_per_dim": np.asarray(d["kl_per_dim"], dtype=np.float64),
                      "active": None if active is None else np.asarray(active, dtype=bool)})

    def test_record(self) -> dict[str, Any]:
        """The test-set figures under the keys every JSON output uses: a metrics.jsonl line,
        the summary of `vaegui train` and the line of `vaegui eval`. :meth:`from_record` reads
        them back."""
        record = {"test_elbo": self.neg_elbo, "test_recon": self.recon, "test_kl": self.kl,
                  "test_bits_per_dim": self.bits_per_dim, "active_units": self.active_units}
        if self.nll_iw is not None:
            record.update(test_nll_iw=self.nll_iw, iw_samples=self.iw_samples)
        return record

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> "EvalResult":
        """The evaluation of a metrics.jsonl line (its epoch, step, :meth:`test_record` keys and
        kl_per_dim). A line without them raises KeyError, TypeError or ValueError."""
        active = r.get("active")
        return cls(epoch=int(r["epoch"]), step=int(r["step"]), neg_elbo=float(r["test_elbo"]),
                   recon=float(r["test_recon"]), kl=float(r["test_kl"]),
                   bits_per_dim=float(r["test_bits_per_dim"]),
                   kl_per_dim=np.asarray(r["kl_per_dim"], np.float64),
                   active_units=int(r["active_units"]), nll_iw=r.get("test_nll_iw"),
                   iw_samples=int(r.get("iw_samples") or 0),
                   active=None if active is None else np.asarray(active, bool))


@dataclass(frozen=True)
class Progress:
    step: int  # optimisation steps done (over the whole run, resumed runs included)
    total_steps: int
    steps_per_epoch: int
    epochs: int  # planned epochs
    new_steps: np.ndarray  # (n,) step numbers of the rows of new_losses
    new_losses: np.ndarray  # (n, 3) per-step training losses since the last snapshot, LOSS_COLUMNS
    new_kl_weights: np.ndarray  # (n,) the KL weight each of those steps was trained with
    kl_weight: float  # the KL weight in force (beta times the warm-up factor)
    images_per_s: float  # recent training throughput
    images_seen: int  # training images processed in this run
    train_seconds: float  # time spent in training steps in this run (evaluation and pauses excluded)
    seconds_left: float | None  # estimated training time to the last planned step
    device: str
    eval: EvalResult | None = None  # set on the snapshot that closes an epoch
    paused: bool = False
    done: bool = False
    stopped: bool = False  # done because stop() was called
    threads: int = 0  # torch CPU threads the training thread runs with (0: not known)

    @property
    def epoch(self) -> float:
        """Fractional epoch, e.g. 2.5 = halfway through the third epoch."""
        return self.step / self.steps_per_epoch

    @property
    def shown_epoch(self) -> int:
        """The epoch a progress line shows (see :func:`epoch_of_step`)."""
        return epoch_of_step(self.step, self.steps_per_epoch, self.epochs)

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 1.0
