"""ELBO terms, all in nats per image.

-ELBO(x) = E_q[-log p(x|z)] + KL(q(z|x) || p(z)),  q(z|x) = N(mu, diag(sigma^2)),  p(z) = N(0, I)
(Kingma & Welling 2014, "Auto-Encoding Variational Bayes", eq. 3 and appendix B), estimated with
one reparameterised sample per image during training. The importance-weighted bound follows
Burda, Grosse & Salakhutdinov 2016, "Importance Weighted Autoencoders", eq. 8.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .model import VAE

LOG_2PI = math.log(2 * math.pi)
# Below this the learned sigma of a Gaussian likelihood is clamped: the MSE floor of a good fit
# would otherwise let log sigma run off to -inf and the loss with it.
MIN_LOG_SIGMA = math.log(1e-3)


def reconstruction_nll(x: torch.Tensor, logits: torch.Tensor, likelihood: str,
                       log_sigma: torch.Tensor | None = None) -> torch.Tensor:
    """-log p(x|z) per image, (B,).

    bernoulli: sum_i BCE(x_i, sigmoid(logits_i)), evaluated stably on the logits.
    gaussian:  ||x - x_hat||^2 / (2 sigma^2) + D log(sigma sqrt(2 pi)),  x_hat = sigmoid(logits).
    """
    if likelihood == "bernoulli":
        nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        return nll.flatten(1).sum(1)
    if log_sigma is None:
        raise ValueError("a Gaussian likelihood needs log_sigma")
    log_sigma = log_sigma.clamp(min=MIN_LOG_SIGMA)
    d = math.prod(x.shape[1:])  # x may hold no image (a rank's share of a small last batch)
    sq = (x - torch.sigmoid(logits)).pow(2).flatten(1).sum(1)
    return sq * (0.5 * torch.exp(-2 * log_sigma)) + d * (log_sigma + 0.5 * LOG_2PI)


def kl_closed_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) per latent dimension, (B, L):
    1/2 (mu^2 + sigma^2 - 1 - log sigma^2)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def kl_closed(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Closed-form KL(q(z|x) || N(0, I)) per image, (B,)."""
    return kl_closed_per_dim(mu, logvar).sum(1)


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dimension."""
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


def kl_monte_carlo(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """One-sample KL estimate log q(z|x) - log p(z) at the sampled z, (B,). Unbiased; its mean
    over samples converges to :func:`kl_closed`."""
    return log_normal(z, mu, logvar) - log_standard_normal(z)


@dataclass(frozen=True)
class Terms:
    """Per-image loss terms of one batch, each (B,); ``kl`` is unweighted."""

    recon: torch.Tensor
    kl: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor

    @property
    def neg_elbo(self) -> torch.Tensor:
        return self.recon + self.kl


def elbo_terms(model: VAE, x: torch.Tensor, kl_form: str = "closed",
               generator: torch.Generator | None = None) -> Terms:
    """Encode x (floats in [0, 1]), sample z once, decode, and return the per-image terms."""
    mu, logvar = model.encode(x)
    z = model.reparameterize(mu, logvar, generator)
    recon = reconstruction_nll(x, model.decode(z), model.config.likelihood, model.log_sigma)
    kl = kl_closed(mu, logvar) if kl_form == "closed" else kl_monte_carlo(z, mu, logvar)
    return Terms(recon, kl, mu, logvar)


@torch.no_grad()
def iwae_nll(model: VAE, x: torch.Tensor, k: int,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """-log p(x) estimated with K importance samples from q(z|x), (B,):
    -(logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K).
    For K = 1 its expectation is -ELBO; it tightens (decreases) as K grows."""
    mu, logvar = model.encode(x)  # (B, L)
    b, latent = mu.shape
    mu_k = mu.unsqueeze(0).expand(k, b, latent)
    logvar_k = logvar.unsqueeze(0).expand(k, b, latent)
    z = model.reparameterize(mu_k, logvar_k, generator)  # (K, B, L)
    logits = model.decode(z.reshape(k * b, latent))
    x_k = x.unsqueeze(0).expand(k, *x.shape).reshape(k * b, *x.shape[1:])
    log_px_z = -reconstruction_nll(x_k, logits, model.config.likelihood, model.log_sigma).view(k, b)
    log_w = log_px_z + log_standard_normal(z) - log_normal(z, mu_k, logvar_k)
    return -(torch.logsumexp(log_w, dim=0) - math.log(k))


def bits_per_dim(nats_per_image: float, data_dim: int) -> float:
    """Convert nats per image to bits per dimension: nats / (D ln 2)."""
    return nats_per_image / (data_dim * math.log(2))
