"""The models and images behind a comparison (torch): each run's decoder, from its checkpoint,
and the shared test images, so that a picked image is reconstructed by every model and a picked
point decodes in its own model."""

from __future__ import annotations

import numpy as np

from .checkpoint import load_checkpoint
from .compare import Comparison, ComparedRun
from .decoder import Decoder
from .errors import VaeguiError


def decoder_of(run: ComparedRun) -> Decoder | None:
    """The run's latest weights as a CPU Decoder (None when its checkpoint cannot be read: a
    run not yet saved, or damaged; its map and curves are still shown)."""
    try:
        state = load_checkpoint(run.path / "checkpoint.pt")
        shape = tuple(int(v) for v in state["dataset"]["image_shape"])
        return Decoder(run.config.model, shape, state["model"])
    except (VaeguiError, KeyError, TypeError, ValueError, RuntimeError):
        return None


def shared_images(comparison: Comparison, offline: bool = True) -> np.ndarray | None:
    """The ``count`` test images the maps share, uint8 (N, C, H, W); None when the dataset
    cannot be loaded here."""
    from .dataset_loader import load_dataset

    if not comparison.runs or not comparison.count:
        return None
    config = comparison.runs[0].config.data.__class__(**{
        **comparison.runs[0].config.data.__dict__, "train_limit": 1, "test_limit": comparison.count})
    try:
        data = load_dataset(config, download=not offline)
    except (VaeguiError, OSError, ValueError):
        return None
    images = data.test_images[:comparison.count].numpy()
    return images if len(images) == comparison.count else None


def reconstructions(decoders: list[Decoder | None], image: np.ndarray) -> list[np.ndarray | None]:
    """One uint8 image (C, H, W) reconstructed by each model: float (C, H, W) each, or None for
    a model that has none."""
    out = []
    for d in decoders:
        try:
            out.append(d.reconstruct(image[None])[0] if d is not None and d.has_encoder else None)
        except (ValueError, RuntimeError):
            out.append(None)
    return out
