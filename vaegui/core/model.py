"""VAE encoder/decoder families.

The encoder maps an image to the mean and log-variance of a diagonal Gaussian q(z|x); the decoder
maps a latent vector to per-pixel *logits*. Both likelihoods read the decoder through those logits:
Bernoulli uses them directly, the Gaussian takes sigmoid(logits) as its mean, so sigmoid(logits)
is always the displayed image.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import ModelConfig
from .errors import ConfigError


class MLPEncoder(nn.Module):
    """One hidden layer, as in the PyTorch VAE example (784-400-(20, 20))."""

    def __init__(self, data_dim: int, hidden: int, latent_dim: int):
        super().__init__()
        self.hidden = nn.Linear(data_dim, hidden)
        # mu and log-variance from one layer: same init distribution as two (fan_in is `hidden`).
        self.head = nn.Linear(hidden, 2 * latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, 2L)
        return self.head(torch.relu(self.hidden(x.flatten(1))))


class MLPDecoder(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], hidden: int, latent_dim: int):
        super().__init__()
        self.image_shape = image_shape
        self.hidden = nn.Linear(latent_dim, hidden)
        self.out = nn.Linear(hidden, math.prod(image_shape))

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, L) -> (B, C, H, W) logits
        return self.out(torch.relu(self.hidden(z))).view(-1, *self.image_shape)


class ConvEncoder(nn.Module):
    """Two stride-2 convolutions (H -> H/4), then a dense layer; for 28x28 and 32x32 images."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, hidden: int = 256):
        super().__init__()
        c, h, w = image_shape
        self.conv = nn.Sequential(
            nn.Conv2d(c, 32, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2, padding=1), nn.ReLU(),
        )
        self.dense = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * (h // 4) * (w // 4), hidden), nn.ReLU(),
            nn.Linear(hidden, 2 * latent_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, 2L)
        return self.dense(self.conv(x))


class ConvDecoder(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, hidden: int = 256):
        super().__init__()
        c, h, w = image_shape
        self.grid = (64, h // 4, w // 4)
        self.dense = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, math.prod(self.grid)), nn.ReLU(),
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(32, c, 4, stride=2, padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, L) -> (B, C, H, W) logits
        return self.deconv(self.dense(z).view(-1, *self.grid))


class VAE(nn.Module):
    """Gaussian-posterior VAE with a standard normal prior.

    ``log_sigma`` is the (log) standard deviation of the Gaussian likelihood: a learned scalar for
    ``gaussian-learned`` (sigma-VAE, Rybkin et al. 2021), a fixed buffer for ``gaussian`` and
    unused for ``bernoulli``. It lives on the module so that it is saved with the weights.
    """

    def __init__(self, config: ModelConfig, image_shape: tuple[int, int, int]):
        super().__init__()
        self.config = config
        self.image_shape = tuple(image_shape)
        c, h, w = self.image_shape
        L = config.latent_dim
        if config.family == "mlp":
            self.encoder = MLPEncoder(c * h * w, config.hidden, L)
            self.decoder = MLPDecoder(self.image_shape, config.hidden, L)
        else:
            if h % 4 or w % 4:
                raise ConfigError(f"model: conv needs image sides divisible by 4, got {h}x{w}")
            self.encoder = ConvEncoder(self.image_shape, L)
            self.decoder = ConvDecoder(self.image_shape, L)
        log_sigma = torch.tensor(math.log(config.sigma))
        if config.likelihood == "gaussian-learned":
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, C, H, W) floats in [0, 1] -> mu, logvar, each (B, L)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, L) -> logits (B, C, H, W)."""
        return self.decoder(z)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """z = mu + sigma * eps with eps ~ N(0, I) (Kingma & Welling 2014, eq. 10)."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps


def decoder_state(model: VAE) -> dict[str, torch.Tensor]:
    """A detached CPU copy of what decoding needs (decoder weights and sigma): safe to hand to
    another thread while training goes on."""
    state = {f"decoder.{k}": v.detach().to("cpu", copy=True) for k, v in model.decoder.state_dict().items()}
    state["log_sigma"] = model.log_sigma.detach().to("cpu", copy=True)
    return state


def model_state(model: VAE) -> dict[str, torch.Tensor]:
    """A detached CPU copy of all the weights (encoder too, for reconstructions): safe to hand
    to another thread while training goes on."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
