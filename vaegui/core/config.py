"""Settings for data, model and training as frozen dataclasses.

The whole :class:`RunConfig` is saved inside every checkpoint (as a plain dict), so a checkpoint
alone is enough to rebuild the model, reload the data and resume training.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

MODEL_FAMILIES = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian", "gaussian-learned")
KL_FORMS = ("closed", "mc")
DEVICES = ("auto", "cpu", "cuda", "mps")
# How a user's decoder output is read (core.user_model): "auto" decides from a decoded batch.
USER_OUTPUTS = ("auto", "logits", "probabilities", "tanh")

# Bounds of every setting, in one place: the CLI, the app and a checkpoint's saved settings all
# meet them. They are generous for a desktop VAE explorer and keep every size far from what would
# exhaust memory or overflow a seed.
MAX_IMAGE_SIZE = 1024
MAX_LATENT_DIM = 65536
MAX_HIDDEN = 65536
MAX_BATCH_SIZE = 1_000_000
MAX_EPOCHS = 1_000_000
MAX_STEPS = 10**12  # warm-up steps
MAX_IW_SAMPLES = 100_000
MAX_LR = 10.0
MAX_BETA = 1e6
MAX_THREADS = 1024  # torch CPU threads of training; "auto" lets a governor choose (core.thread_governor)
THREADS_AUTO = "auto"
MAX_SEED = 2**32 - 1  # the trainer derives per-epoch seeds as seed * 1_000_003 + epoch (< 2**64)
# A Gaussian likelihood's sigma below this is clamped by the loss (loss.MIN_LOG_SIGMA), so a
# smaller value would silently train something else: refuse it.
MIN_SIGMA = 1e-3
MAX_SIGMA = 1e3
# Weights, gradients and Adam's two moments: 16 bytes a parameter; 500 M parameters is 8 GB.
MAX_PARAMETERS = 500_000_000


@dataclass(frozen=True)
class DataConfig:
    # one of dataset_catalog.DATASET_NAMES, or "folder:PATH"
    dataset: str = "mnist"
    # Where datasets live; None = $VAEGUI_DATA_DIR, else the per-user cache directory.
    data_dir: str | None = None
    # Side length in pixels of images from a folder and of generated shapes.
    image_size: int = 28
    # 1 = grayscale, 3 = RGB; used for folder datasets (torchvision sets have a fixed layout).
    channels: int = 1
    # Keep only the first N training / test images (None = all); handy for quick runs and tests.
    # For `shapes`, generate N images (20,000 / 5,000 when None), any number memory allows.
    train_limit: int | None = None
    test_limit: int | None = None
    # Seed of the generated `shapes` dataset and of the folder train/test split.
    seed: int = 0

    def __post_init__(self) -> None:
        _check(isinstance(self.dataset, str) and self.dataset.strip() != "",
               f"dataset: {self.dataset!r} must be a non-empty name")
        _check(self.data_dir is None or isinstance(self.data_dir, str),
               f"data_dir: {self.data_dir!r} must be a folder name")
        _int(self, "image_size", 8, MAX_IMAGE_SIZE)
        _check(self.channels in (1, 3) and _is_int(self.channels), f"channels: {self.channels!r} is not 1 or 3")
        for name in ("train_limit", "test_limit"):
            if getattr(self, name) is not None:
                _int(self, name, 1, 10**12)
        _int(self, "seed", 0, MAX_SEED)


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
        _choice(self, "family", MODEL_FAMILIES, label="model")
        _int(self, "latent_dim", 1, MAX_LATENT_DIM)
        _int(self, "hidden", 1, MAX_HIDDEN)
        _choice(self, "likelihood", LIKELIHOODS)
        _float(self, "sigma", MIN_SIGMA, MAX_SIGMA,
               why=f" (the loss clamps a sigma below {MIN_SIGMA:g})")

    def parameter_count(self, image_shape: tuple[int, int, int]) -> int:
        """Parameters of the VAE these settings build for (C, H, W) images (see :mod:`.model`),
        worked out without building it, so a size that cannot fit is refused before allocation."""
        c, h, w = image_shape
        d, L, hid = c * h * w, self.latent_dim, self.hidden
        if self.family == "mlp":
            n = (d + 1) * hid + (hid + 1) * 2 * L + (L + 1) * hid + (hid + 1) * d
        else:  # two 4x4 stride-2 convolutions each way around a 256-wide dense layer
            flat, dense = 64 * (h // 4) * (w // 4), 256
            encoder = (c * 16 + 1) * 32 + (32 * 16 + 1) * 64 + (flat + 1) * dense + (dense + 1) * 2 * L
            decoder = (L + 1) * dense + (dense + 1) * flat + (64 * 16 + 1) * 32 + 32 * 16 * c + c
            n = encoder + decoder
        return n + 1  # the learned log sigma

    def activation_bytes(self, image_shape: tuple[int, int, int], batch: int, backward: bool = True) -> int:
        """A generous estimate of the memory one forward (and backward) pass over ``batch``
        images takes: the activations each layer keeps, float32."""
        c, h, w = image_shape
        d, L = c * h * w, self.latent_dim
        if self.family == "mlp":
            per_image = 3 * d + 4 * self.hidden + 6 * L
        else:
            grids = 32 * (h // 2) * (w // 2) + 64 * (h // 4) * (w // 4)
            per_image = 3 * d + 4 * grids + 4 * 256 + 6 * L
        return 4 * per_image * batch * (3 if backward else 1)

    def check_size(self, image_shape: tuple[int, int, int]) -> None:
        """ConfigError when the model for ``image_shape`` images has more than MAX_PARAMETERS."""
        n = self.parameter_count(image_shape)
        _check(n <= MAX_PARAMETERS, f"model size: {n:,} parameters for {tuple(image_shape)} images with "
               f"hidden={self.hidden} and latent_dim={self.latent_dim} is more than the "
               f"{MAX_PARAMETERS:,} that fit in memory")


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
    # torch CPU threads of the training thread: a number, or "auto" = tuned while training runs
    # to the best measured step rate (core.thread_governor), which on a shared machine is often fewer
    # than the cores. The count can change the last bits of some operations (MKL's matrix
    # products at some counts, oneDNN's convolutions), so a run is reproducible bit for bit
    # with a fixed count; "auto" trades that for speed on a shared machine.
    threads: int | str = THREADS_AUTO

    def __post_init__(self) -> None:
        _int(self, "epochs", 1, MAX_EPOCHS)
        _int(self, "batch_size", 1, MAX_BATCH_SIZE)
        _float(self, "lr", 0.0, MAX_LR, low_open=True)
        _int(self, "seed", 0, MAX_SEED)
        _choice(self, "device", DEVICES)
        _choice(self, "kl", KL_FORMS)
        _float(self, "beta", 0.0, MAX_BETA)
        _int(self, "warmup_steps", 0, MAX_STEPS)
        _int(self, "iw_samples", 0, MAX_IW_SAMPLES)
        if self.threads != THREADS_AUTO:
            _check(_is_int(self.threads), f"threads: {self.threads!r} is not {THREADS_AUTO} or a whole number")
            _int(self, "threads", 1, MAX_THREADS)


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
        if not isinstance(d, dict):
            raise ConfigError(f"settings must be a mapping, not {type(d).__name__}")
        unknown = set(d) - {"data", "model", "train"}
        if unknown:
            raise ConfigError(f"unknown settings sections {sorted(map(str, unknown))}")
        try:
            parts = {}
            for name, klass in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig)):
                section = d.get(name, {})
                if not isinstance(section, dict) or not all(isinstance(k, str) for k in section):
                    raise ConfigError(f"{name}: settings must be a mapping of names, "
                                      f"not {type(section).__name__}")
                section = dict(section)
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


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _int(obj: Any, name: str, low: int, high: int) -> None:
    """``obj.name`` must be a whole number in [low, high]."""
    value = getattr(obj, name)
    _check(_is_int(value), f"{name}: {value!r} is not a whole number")
    _check(low <= value <= high, f"{name}: {value} is out of range ({low} to {high:,})")


def _float(obj: Any, name: str, low: float, high: float, *, low_open: bool = False, why: str = "") -> None:
    """``obj.name`` must be a finite number in [low, high] (or (low, high] with ``low_open``)."""
    value = getattr(obj, name)
    _check(isinstance(value, numbers.Real) and not isinstance(value, bool),
           f"{name}: {value!r} is not a number")
    _check(math.isfinite(value), f"{name}: {value} is not a finite number")
    above = value > low if low_open else value >= low
    bracket = "(" if low_open else "["
    _check(above and value <= high, f"{name}: {value:g} is out of range {bracket}{low:g}, {high:g}]{why}")


def _choice(obj: Any, name: str, choices: tuple[str, ...], label: str | None = None) -> None:
    value = getattr(obj, name)
    _check(isinstance(value, str) and value in choices,
           f"{label or name}: {value!r} is not one of {', '.join(choices)}")
