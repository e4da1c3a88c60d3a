"""The loss history of a run: every training step's losses and every epoch's evaluation."""

from __future__ import annotations

from typing import Any

import numpy as np

from .progress import EvalResult


class History:
    """Per-step training losses and KL weights, appended in chunks (one per snapshot) and joined
    on demand, so a long run does not copy its whole history at every snapshot."""

    def __init__(self, steps: np.ndarray | None = None, losses: np.ndarray | None = None,
                 evals: list[EvalResult] | None = None, kl_weights: np.ndarray | None = None):
        """``kl_weights`` None: not recorded (the first checkpoints kept none); they read as NaN."""
        self._steps = [np.zeros(0, dtype=np.int64) if steps is None else steps.astype(np.int64)]
        self._losses = [np.zeros((0, 3)) if losses is None else losses.astype(np.float64)]
        n = len(self._steps[0])
        self._kl_weights = [np.full(n, np.nan) if kl_weights is None
                            else kl_weights.astype(np.float64)]
        if not len(self._losses[0]) == len(self._kl_weights[0]) == n:
            raise ValueError(f"history columns differ in length: {n} steps, "
                             f"{len(self._losses[0])} losses, {len(self._kl_weights[0])} KL weights")
        self.evals: list[EvalResult] = list(evals or [])

    def append(self, steps: np.ndarray, losses: np.ndarray, kl_weights: np.ndarray) -> None:
        if len(steps):
            self._steps.append(steps.astype(np.int64))
            self._losses.append(losses.astype(np.float64))
            self._kl_weights.append(kl_weights.astype(np.float64))

    @property
    def steps(self) -> np.ndarray:  # (n,)
        if len(self._steps) > 1:
            self._steps = [np.concatenate(self._steps)]
        return self._steps[0]

    @property
    def losses(self) -> np.ndarray:  # (n, 3), columns LOSS_COLUMNS
        if len(self._losses) > 1:
            self._losses = [np.concatenate(self._losses)]
        return self._losses[0]

    @property
    def kl_weights(self) -> np.ndarray:  # (n,) beta times the warm-up factor; NaN if unknown
        if len(self._kl_weights) > 1:
            self._kl_weights = [np.concatenate(self._kl_weights)]
        return self._kl_weights[0]

    def copy(self) -> "History":
        return History(self.steps.copy(), self.losses.copy(), self.evals, self.kl_weights.copy())

    def to_dict(self) -> dict[str, Any]:
        # Tensors and plain containers only: loadable with torch.load(weights_only=True). torch
        # is imported here, not above: the window holds a History before torch is loaded.
        import torch

        return {"steps": torch.from_numpy(self.steps.copy()),
                "losses": torch.from_numpy(self.losses.copy()),
                "kl_weights": torch.from_numpy(self.kl_weights.copy()),
                "evals": [e.to_dict() for e in self.evals]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "History":
        weights = d.get("kl_weights")  # absent from the first checkpoints
        return cls(steps=d["steps"].numpy(), losses=d["losses"].numpy(),
                   evals=[EvalResult.from_dict(e) for e in d["evals"]],
                   kl_weights=None if weights is None else weights.numpy())
