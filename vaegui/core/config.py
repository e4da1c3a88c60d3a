"""Settings for data, model and training as frozen dataclasses.

The whole :class:`RunConfig` is saved inside every checkpoint (as a plain dict), so a checkpoint
alone is enough to rebuild the model, reload the data and resume training.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

MODEL_FAMILIES = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian", "gaussian-learned")
KL_FORMS = ("closed", "mc")
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class DataConfig:
    # "mnist", "fashion-mnist", "kmnist", "cifar10", "shapes" or "folder:PATH".
    dataset: str = "mnist"
    # Where datasets live; None = $VAEGUI_DATA_DIR, else the per-user cache directory.
    data_dir: str | None = None
    # Side length in pixels of images from a folder and of generated shapes.
    image_size: int = 28
    # 1 = grayscale, 3 = RGB; used for folder datasets (torchvision sets have a fixed layout).
    channels: int = 1
    # Keep only the first N training / test images (None = all); handy for quick runs and tests.
    train_limit: int | None = None
    test_limit: int | None = None
    # Seed of the generated `shapes` dataset and of the folder train/test split.
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.dataset:
            raise ConfigError("dataset: must not be empty")
        _check(self.image_size >= 8, f"image_size: {self.image_size} is below 8 pixels")
        _check(self.channels in (1, 3), f"channels: {self.channels} is not 1 or 3")
        for name in ("train_limit", "test_limit"):
            value = getattr(self, name)
            _check(value is None or value >= 1, f"{name}: {value} must be at least 1")


@dataclass(frozen=True)
class ModelConfig:
    # "mlp" (fully connected, as in the PyTorch VAE example) or "conv" (28x28 or 32x32 images).
    family: str = "mlp"
    # Dimension L of the latent space; 2 makes the latent map exact (no projection needed).
    latent_dim: int = 2
    # Width of the hidden layer of the mlp family (400 in the PyTorch VAE example).
    hidden: int = 400
    # "bernoulli" (BCE on logits), "gaussian" (fixed sigma) or "gaussian-learned" (sigma-VAE).
    likelihood: str = "bernoulli"
    # Standard deviation of the fixed Gaussian likelihood; start value of the learned one.
    sigma: float = 0.1

    def __post_init__(self) -> None:
        _check(self.family in MODEL_FAMILIES, f"model: {self.family!r} is not one of {MODEL_FAMILIES}")
        _check(self.latent_dim >= 1, f"latent_dim: {self.latent_dim} must be at least 1")
        _check(self.hidden >= 1, f"hidden: {self.hidden} must be at least 1")
        _check(self.likelihood in LIKELIHOODS, f"likelihood: {self.likelihood!r} is not one of {LIKELIHOODS}")
        _check(self.sigma > 0, f"sigma: {self.sigma} must be positive")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    # Adam learning rate.
    lr: float = 1e-3
    seed: int = 1
    # "auto" = CUDA when available, else Apple MPS, else CPU.
    device: str = "auto"
    # "closed" = analytic KL(q || N(0, I)); "mc" = log q(z|x) - log p(z) at the sampled z.
    kl: str = "closed"
    # Weight of the KL term (beta-VAE); 1 gives the ELBO.
    beta: float = 1.0
    # Linear KL warm-up: the KL weight grows from 0 to beta over this many steps (0 = off).
    warmup_steps: int = 0
    # Importance samples K of the IWAE bound reported at the end of training (0 = skip).
    iw_samples: int = 0

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, f"epochs: {self.epochs} must be at least 1")
        _check(self.batch_size >= 1, f"batch_size: {self.batch_size} must be at least 1")
        _check(self.lr > 0, f"lr: {self.lr} must be positive")
        _check(self.device in DEVICES, f"device: {self.device!r} is not one of {DEVICES}")
        _check(self.kl in KL_FORMS, f"kl: {self.kl!r} is not one of {KL_FORMS}")
        _check(self.beta >= 0, f"beta: {self.beta} must not be negative")
        _check(self.warmup_steps >= 0, f"warmup_steps: {self.warmup_steps} must not be negative")
        _check(self.iw_samples >= 0, f"iw_samples: {self.iw_samples} must not be negative")


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        """Rebuild from :meth:`to_dict` output; unknown keys are an error, missing keys take defaults."""
        try:
            parts = {}
            for name, klass in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig)):
                section = dict(d.get(name, {}))
                known = {f.name for f in dataclasses.fields(klass)}
                unknown = set(section) - known
                if unknown:
                    raise ConfigError(f"{name}: unknown settings {sorted(unknown)}")
                parts[name] = klass(**section)
            return cls(**parts)
        except TypeError as exc:
            raise ConfigError(f"settings are malformed: {exc}") from None

    def replace(self, **sections: Any) -> "RunConfig":
        """Copy with some fields changed: ``cfg.replace(train={"epochs": 3})``."""
        new = {}
        for name, changes in sections.items():
            new[name] = dataclasses.replace(getattr(self, name), **changes)
        return dataclasses.replace(self, **new)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)
