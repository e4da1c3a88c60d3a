"""The loss history of a run: every training step's losses and every epoch's evaluation."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .progress import EvalResult


class History:
    """Per-step training losses, appended in chunks (one per snapshot) and joined on demand, so a
    long run does not copy its whole history at every snapshot."""

    def __init__(self, steps: np.ndarray | None = None, losses: np.ndarray | None = None,
                 evals: list[EvalResult] | None = None):
        self._steps = [np.zeros(0, dtype=np.int64) if steps is None else steps.astype(np.int64)]
        self._losses = [np.zeros((0, 3)) if losses is None else losses.astype(np.float64)]
        self.evals: list[EvalResult] = list(evals or [])

    def append(self, steps: np.ndarray, losses: np.ndarray) -> None:
        if len(steps):
            self._steps.append(steps.astype(np.int64))
            self._losses.append(losses.astype(np.float64))

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

    def to_dict(self) -> dict[str, Any]:
        # Tensors and plain containers only: loadable with torch.load(weights_only=True).
        return {"steps": torch.from_numpy(self.steps.copy()),
                "losses": torch.from_numpy(self.losses.copy()),
                "evals": [e.to_dict() for e in self.evals]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "History":
        return cls(steps=d["steps"].numpy(), losses=d["losses"].numpy(),
                   evals=[EvalResult.from_dict(e) for e in d["evals"]])
