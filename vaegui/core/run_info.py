"""What a run is, as the app shows it: its settings, data shape, losses so far and folder.

Made by whatever starts, opens or follows a run (the training worker, the run follower) and
handed to the :class:`~vaegui.core.run_model.RunModel`: plain data, safe to pass between threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .config import RunConfig
from .loss_history import History
from .latent import example_indices

if TYPE_CHECKING:
    from .dataset_loader import ImageData

SOURCES = ("train", "checkpoint", "follow")  # a run this app trains, a model opened, a run followed
EXAMPLES = 64  # test images sent for reconstructions (the explorer shows up to this many)


@dataclass(frozen=True)
class RunInfo:
    """What the window needs to know when a run starts, a checkpoint opens or a run is followed."""

    config: RunConfig  # planned epochs included (an opened model's may be replaced to train on)
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    steps_per_epoch: int
    history: History | None  # a copy of the losses so far (resumed run or checkpoint)
    source: str  # one of SOURCES
    step: int = 0  # training steps already done
    examples: np.ndarray | None = None  # (n, C, H, W) uint8 test images to reconstruct, if loaded
    run_dir: str | None = None  # the run folder it trains into, or the one it was opened from
    checkpoint: str | None = None  # the checkpoint file it was opened from

    @property
    def path(self) -> str | None:
        """What opens it again: its run folder, else its checkpoint file."""
        return self.run_dir or self.checkpoint

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"run source {self.source!r} is not one of {SOURCES}")

    @property
    def total_steps(self) -> int:
        """Steps of the whole planned run."""
        return self.config.train.epochs * self.steps_per_epoch


def examples_of(data: ImageData | None) -> np.ndarray | None:
    """A fixed, varied set of test images (a view of the dataset, not a copy)."""
    if data is None or not len(data.test_images):
        return None
    return data.test_images.numpy()[example_indices(data.test_labels.numpy(), EXAMPLES)]
