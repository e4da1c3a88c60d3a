"""Runs trained in the app or by ``vaegui train``, from Python: ``vaegui.load`` gives the model as
a ``torch.nn.Module``, ``vaegui.Run`` a run folder's settings, metrics and map history as plain
Python and numpy objects. Both read through the run folder's one reader (run_reader.py) and the
checked checkpoint loader (checkpoint.py): nothing is unpickled, every failure is one error
naming the file and the reason.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .checkpoint import model_from_checkpoint
from .config import RunConfig
from .evaluate import to_float
from .model import VAE
from .progress import LOSS_COLUMNS
from .run_paths import run_of
from .run_reader import RunReader, load_run_checkpoint


class LoadedModel(nn.Module):
    """A vaegui model for a notebook. ``encode(x)`` -> (mu, logvar), ``decode(z)`` -> images in
    [0, 1] (the likelihood's mean, what the app shows), ``sample(n)`` -> n images decoded from
    N(0, I), ``forward(x)`` -> the reconstructions of x. ``vae`` is vaegui's own module (its
    ``decode`` gives logits), ``config`` the run's settings; it opens in eval mode."""

    def __init__(self, vae: VAE, config: RunConfig, path: Path):
        super().__init__()
        self.vae = vae
        self.config = config
        self.path = path
        self.eval()

    @property
    def latent_dim(self) -> int:
        return self.vae.latent_dim

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.vae.image_shape

    def _device(self) -> torch.device:
        return next(self.vae.parameters()).device

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, C, H, W) floats in [0, 1], or uint8 images -> mu, logvar, each (B, L)."""
        x = torch.as_tensor(x)
        x = to_float(x, self._device()) if x.dtype == torch.uint8 else x.to(self._device())
        return self.vae.encode(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, L) -> images (B, C, H, W) in [0, 1]."""
        return torch.sigmoid(self.vae.decode(torch.as_tensor(z).to(self._device())))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)[0])

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images (n, C, H, W) in [0, 1] decoded from draws of the prior N(0, I)."""
        z = torch.randn((int(n), self.latent_dim), generator=generator).to(self._device())
        return self.decode(z)


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """The model of a run folder (its latest checkpoint) or of a checkpoint file."""
    checkpoint, run_dir = run_of(path)
    state = load_run_checkpoint(checkpoint, run_dir)  # checked, and against the run's run.json
    config, vae = model_from_checkpoint(state, checkpoint)
    return LoadedModel(vae.to(device), config, checkpoint)


class Run:
    """A run folder read as plain data. Read when asked, so a run still being written shows
    what it holds by then."""

    def __init__(self, path: str | os.PathLike):
        self.reader = RunReader(path)
        self.path = self.reader.path

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @property
    def config(self) -> RunConfig:
        return self.reader.config

    @property
    def settings(self) -> dict[str, Any]:
        """The run's settings (data, model, training) as a dict, as run.json holds them."""
        return self.reader.config.to_dict()

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.reader.description.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.reader.description.image_shape)

    @property
    def steps_per_epoch(self) -> int:
        return self.reader.steps_per_epoch

    def metrics(self) -> list[dict[str, Any]]:
        """One dict per evaluated epoch (test losses, KL per dimension, active units, ...)."""
        return self.reader.metrics()

    def losses(self) -> dict[str, np.ndarray]:
        """The training losses per step: step, recon, kl, neg_elbo (nats per image), kl_weight."""
        steps, losses, weights = self.reader.steps()
        out = {"step": steps}
        out.update({name: losses[:, k] for k, name in enumerate(LOSS_COLUMNS)})
        out["kl_weight"] = weights
        return out

    def map_epochs(self) -> list[int]:
        """The epochs whose test-set map the run kept."""
        return self.reader.map_epochs()

    def map_means(self, epoch: int) -> np.ndarray:
        """The test set's latent means at ``epoch``: (N, L) float32."""
        return self.reader.map_means(epoch)

    def map_history(self) -> dict[int, np.ndarray]:
        """Every kept epoch's means, by epoch."""
        return {epoch: self.map_means(epoch) for epoch in self.map_epochs()}

    def model(self, device: str | torch.device = "cpu", best: bool = False) -> LoadedModel:
        """The run's latest model (or its best, when it kept one)."""
        return load(self.reader.best if best else self.path, device)
