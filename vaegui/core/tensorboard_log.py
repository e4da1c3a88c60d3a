"""The metrics of a run as TensorBoard event files, for users who watch their runs there.

Written through ``torch.utils.tensorboard``, which needs the optional ``tensorboard`` package
(``pip install 'vaegui[tensorboard]'``); this module imports it only when a log is opened.
Every scalar is plotted against the training step, so the test points of each epoch line up
with the training curves.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from .progress import Progress

# tag -> column of Progress.new_losses (LOSS_COLUMNS)
TRAIN_TAGS = {"train/recon": 0, "train/kl": 1, "train/neg_elbo": 2}
KL_WEIGHT_TAG = "train/kl_weight"
# tag -> attribute of EvalResult
TEST_TAGS = {"test/neg_elbo": "neg_elbo", "test/recon": "recon", "test/kl": "kl",
             "test/bits_per_dim": "bits_per_dim", "test/active_units": "active_units"}
IW_TAG = "test/nll_iw"


def available() -> bool:
    """Whether the tensorboard package is installed (without importing it)."""
    return importlib.util.find_spec("tensorboard") is not None


class TensorBoardLog:
    """Use as ``with TensorBoardLog(folder / "tensorboard") as tb: tb.log(progress)``.

    ``resumed_at``: the step a resumed run starts from; the events a killed run wrote after it
    (steps the resumed run trains again) are hidden, so that each step shows once."""

    def __init__(self, path: str | os.PathLike, resumed_at: int = 0):
        from torch.utils.tensorboard import SummaryWriter

        # TensorBoard hides the events at purge_step and after: the resumed run's first step on.
        self._writer = SummaryWriter(log_dir=os.fspath(path),
                                     purge_step=resumed_at + 1 if resumed_at else None)

    def log(self, p: Progress) -> None:
        """The training steps the snapshot brings, the test metrics of the epoch it closes, and
        the IWAE bound the final snapshot may bring."""
        w = self._writer
        for step, losses, weight in zip(p.new_steps.tolist(), p.new_losses.tolist(),
                                        p.new_kl_weights.tolist()):
            for tag, column in TRAIN_TAGS.items():
                w.add_scalar(tag, losses[column], step)
            w.add_scalar(KL_WEIGHT_TAG, weight, step)
        e = p.eval
        if e is not None and not p.done:
            for tag, name in TEST_TAGS.items():
                w.add_scalar(tag, getattr(e, name), e.step)
        if e is not None and e.nll_iw is not None:
            w.add_scalar(IW_TAG, e.nll_iw, e.step)
        if e is not None or p.done:
            w.flush()  # an epoch's figures reach the disk as they are known

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> "TensorBoardLog":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
