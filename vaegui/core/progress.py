"""Immutable snapshots the trainer yields: plain numbers and numpy arrays, safe to hand to any
thread (the GUI worker forwards them to the main thread as they are)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# Columns of the per-step loss rows, nats per image; "kl" is unweighted (beta is applied only to
# the optimised loss), so "neg_elbo" = recon + kl is the true -ELBO estimate of the batch.
LOSS_COLUMNS = ("recon", "kl", "neg_elbo")


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
    def fraction(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 1.0
