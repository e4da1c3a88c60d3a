"""Loss terms against hand computations and their statistical properties."""

import math

import numpy as np
import pytest
import torch

from vaegui.core.config import ModelConfig
from vaegui.core.loss import (bits_per_dim, elbo_terms, iwae_nll, kl_closed, kl_closed_per_dim,
                              kl_monte_carlo, reconstruction_nll)
from vaegui.core.model import VAE


def test_bernoulli_nll_matches_hand_computation():
    x = torch.tensor([[[[0.0, 1.0], [0.25, 1.0]]]])  # (1, 1, 2, 2)
    logits = torch.tensor([[[[0.0, 2.0], [-1.0, 3.0]]]])
    p = 1 / (1 + np.exp(-logits.numpy().ravel()))
    xs = x.numpy().ravel()
    expected = -(xs * np.log(p) + (1 - xs) * np.log(1 - p)).sum()
    got = reconstruction_nll(x, logits, "bernoulli")
    assert got.shape == (1,)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_gaussian_nll_matches_formula():
    torch.manual_seed(0)
    x = torch.rand(3, 1, 4, 4)
    logits = torch.randn(3, 1, 4, 4)
    sigma = 0.3
    xhat = torch.sigmoid(logits)
    d = 16
    expected = ((x - xhat) ** 2).flatten(1).sum(1) / (2 * sigma**2) + d * math.log(sigma * math.sqrt(2 * math.pi))
    got = reconstruction_nll(x, logits, "gaussian", torch.tensor(math.log(sigma)))
    torch.testing.assert_close(got, expected)
    # It is the negative log density of N(x; x_hat, sigma^2) summed over pixels.
    density = torch.distributions.Normal(xhat, sigma).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(got, -density)


def test_closed_form_kl_matches_hand_and_torch_distributions():
    mu = torch.tensor([[0.5, -1.0]])
    logvar = torch.tensor([[math.log(0.25), 0.0]])
    # 1/2 (mu^2 + s^2 - 1 - log s^2) per dim
    hand = 0.5 * (0.25 + 0.25 - 1 - math.log(0.25)) + 0.5 * (1.0 + 1.0 - 1 - 0.0)
    assert kl_closed(mu, logvar).item() == pytest.approx(hand)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(2), torch.ones(2))
    torch.testing.assert_close(kl_closed_per_dim(mu, logvar), torch.distributions.kl_divergence(q, p))


def test_monte_carlo_kl_converges_to_closed_form():
    gen = torch.Generator().manual_seed(0)
    mu = torch.tensor([[0.7, -0.3, 1.5]])
    logvar = torch.tensor([[-1.0, 0.5, -2.0]])
    n = 200_000
    z = mu + torch.exp(0.5 * logvar) * torch.randn(n, 3, generator=gen)
    mc = kl_monte_carlo(z, mu.expand(n, 3), logvar.expand(n, 3))
    closed = kl_closed(mu, logvar).item()
    stderr = mc.std().item() / math.sqrt(n)
    assert abs(mc.mean().item() - closed) < 4 * stderr
    assert stderr < 0.01  # the tolerance above is tight, not vacuous


def test_iwae_bound_is_at_least_as_tight_as_the_elbo():
    torch.manual_seed(0)
    model = VAE(ModelConfig(latent_dim=4, hidden=32), (1, 8, 8))
    x = torch.rand(64, 1, 8, 8)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        neg_elbo = torch.stack([elbo_terms(model, x, "closed", gen).neg_elbo for _ in range(200)]).mean(0)
    nll_1 = iwae_nll(model, x, 1, gen)
    nll_64 = iwae_nll(model, x, 64, gen)
    # K=1 is an unbiased estimate of -ELBO; K=64 is a tighter (smaller) bound on -log p(x).
    assert nll_64.mean() < neg_elbo.mean()
    assert nll_64.mean() < nll_1.mean()
    assert abs(nll_1.mean() - neg_elbo.mean()) < 0.05 * neg_elbo.mean()


def test_bits_per_dim():
    assert bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)


def test_reparameterisation_has_the_posterior_moments():
    mu = torch.full((100_000, 1), 2.0)
    logvar = torch.full((100_000, 1), math.log(0.09))
    z = VAE.reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    assert z.mean().item() == pytest.approx(2.0, abs=0.01)
    assert z.std().item() == pytest.approx(0.3, abs=0.01)
