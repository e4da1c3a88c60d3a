"""Test-set evaluation: -ELBO, its terms, KL per latent dimension, active units, IWAE bound."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .loss import bits_per_dim, elbo_terms, iwae_nll, kl_closed_per_dim
from .model import VAE
from .progress import EvalResult

# Burda et al. 2016, section 5.2: a unit is active when Cov_x(E_q[z_u]) exceeds 0.01.
ACTIVE_UNIT_THRESHOLD = 0.01
# Decodes per chunk of the IWAE bound (K samples of max(1, IW_DECODES // K) images).
IW_DECODES = 20000


class EvaluationStopped(Exception):
    """``should_stop`` answered true: the evaluation was abandoned part-way."""


def to_float(images: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """uint8 images -> floats in [0, 1] on ``device``; done per batch, never for a whole set."""
    return images.to(device, non_blocking=True).float().div_(255.0)


@torch.no_grad()
def evaluate(model: VAE, images: torch.Tensor, *, epoch: int = 0, step: int = 0,
             batch_size: int = 256, iw_samples: int = 0, seed: int = 0,
             means_out: np.ndarray | None = None,
             should_stop: Callable[[], bool] | None = None,
             on_progress: Callable[[float], None] | None = None) -> EvalResult:
    """Evaluate on uint8 images (N, C, H, W). One reparameterised sample per image, from a
    generator seeded with ``seed``, so repeated evaluations of the same weights agree and the
    training noise stream is left untouched. KL is the closed form.

    ``means_out``: an (N, L) float32 array that receives every image's posterior mean, which the
    evaluation computes anyway (the latent map reuses them instead of encoding the set again).

    ``should_stop``: polled between batches (and between the IWAE bound's chunks, which with
    thousands of samples take minutes in all); when it answers true, EvaluationStopped is raised.

    ``on_progress``: called with the share of the images done, after each batch (and each of the
    IWAE bound's chunks), for a progress display."""
    device = next(model.parameters()).device
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    was_training = model.training
    model.eval()
    n = images.shape[0]
    # Sums stay on the device (float64, as Python floats would add them) until the end: no host
    # round trip per batch, which on a GPU would stall its queue at every batch.
    recon = torch.zeros((), dtype=torch.float64, device=device)
    nll_iw = torch.zeros_like(recon)
    kl_dims = torch.zeros(model.latent_dim, dtype=torch.float64, device=device)
    mu_sum = torch.zeros_like(kl_dims)
    mu_sq = torch.zeros_like(kl_dims)
    if means_out is not None:
        if means_out.shape != (n, model.latent_dim) or means_out.dtype != np.float32:
            raise ValueError(f"means_out must be float32 of shape {(n, model.latent_dim)}, "
                             f"got {means_out.dtype} {means_out.shape}")
        means = torch.empty((n, model.latent_dim), dtype=torch.float32, device=device)
    # IWAE decodes K samples per image: shrink its batches so K * batch stays moderate.
    iw_batch = max(1, IW_DECODES // max(1, iw_samples))
    for start in range(0, n, batch_size):
        if should_stop is not None and should_stop():
            raise EvaluationStopped
        x = to_float(images[start:start + batch_size], device)
        t = elbo_terms(model, x, "closed", gen)
        recon += t.recon.double().sum()
        kl_dims += kl_closed_per_dim(t.mu, t.logvar).double().sum(0)
        if means_out is not None:
            means[start:start + x.shape[0]] = t.mu
        mu = t.mu.double()
        mu_sum += mu.sum(0)
        mu_sq += mu.pow(2).sum(0)
        for s in range(0, x.shape[0], iw_batch) if iw_samples else ():
            if should_stop is not None and should_stop():
                raise EvaluationStopped
            nll_iw += iwae_nll(model, x[s:s + iw_batch], iw_samples, gen).double().sum()
            if on_progress is not None:  # on a GPU this counts batches queued, not yet done
                on_progress((start + min(s + iw_batch, x.shape[0])) / n)
        if on_progress is not None:
            on_progress((start + x.shape[0]) / n)
    model.train(was_training)
    if means_out is not None:
        means_out[:] = means.cpu().numpy()  # one transfer, not one per batch
    kl_per_dim = (kl_dims / n).cpu().numpy()
    mu_var = (mu_sq / n - (mu_sum / n).pow(2)).cpu().numpy()
    kl = float(kl_per_dim.sum())
    recon, nll_iw = recon.item(), nll_iw.item()
    neg_elbo = recon / n + kl
    data_dim = images[0].numel()
    return EvalResult(
        epoch=epoch, step=step, neg_elbo=neg_elbo, recon=recon / n, kl=kl,
        bits_per_dim=bits_per_dim(neg_elbo, data_dim), kl_per_dim=kl_per_dim,
        active_units=int((mu_var > ACTIVE_UNIT_THRESHOLD).sum()),
        active=mu_var > ACTIVE_UNIT_THRESHOLD,
        nll_iw=(nll_iw / n) if iw_samples else None, iw_samples=iw_samples,
    )
