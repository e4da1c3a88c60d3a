"""The optimised training step gives bit for bit what the plain step gives: the step written out
below as the trainer had it before issue 11 (index the batch, convert it, ELBO terms, means,
backward, fused Adam; a loss row stacked per step), run beside the trainer on the same settings."""

import math

import numpy as np
import pytest
import torch

from vaegui.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vaegui.core.dataset_loader import load_dataset
from vaegui.core.loss import elbo_terms
from vaegui.core.model import VAE
from vaegui.core.trainer import Trainer, epoch_permutation


def plain_training(config: RunConfig, data) -> tuple[dict, np.ndarray]:
    """The straightforward loop: final weights and the (steps, 3) loss rows."""
    tc = config.train
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(tc.seed)
        model = VAE(config.model, data.image_shape)
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr, fused=True)
    noise = torch.Generator().manual_seed(tc.seed)
    images = data.train_images
    steps_per_epoch = math.ceil(len(images) / tc.batch_size)
    rows, step = [], 0
    for epoch in range(tc.epochs):
        order = epoch_permutation(tc.seed, epoch, len(images))
        for i in range(steps_per_epoch):
            x = images[order[i * tc.batch_size:(i + 1) * tc.batch_size]].float().div_(255.0)
            terms = elbo_terms(model, x, tc.kl, noise)
            recon, kl = terms.recon.mean(), terms.kl.mean()
            weight = tc.beta * (min(1.0, step / tc.warmup_steps) if tc.warmup_steps else 1.0)
            loss = recon + weight * kl
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            rows.append(torch.stack([recon, kl, recon + kl]).detach())
            optimizer.step()
            step += 1
    return model.state_dict(), torch.stack(rows).numpy().astype(np.float64)


@pytest.mark.parametrize("family, likelihood, kl, limit", [
    ("mlp", "bernoulli", "closed", 1000),  # 1000 = 7 full batches of 128 and a last one of 104
    ("mlp", "gaussian-learned", "mc", 640),
    ("conv", "gaussian", "closed", 300),
])
def test_the_trainer_matches_the_plain_step_bit_for_bit(family, likelihood, kl, limit):
    config = RunConfig(
        data=DataConfig(dataset="shapes", train_limit=limit, test_limit=64),
        model=ModelConfig(family=family, latent_dim=4, hidden=64, likelihood=likelihood),
        train=TrainConfig(epochs=2, batch_size=128, device="cpu", kl=kl, warmup_steps=5, seed=3))
    data = load_dataset(config.data, download=False)
    trainer = Trainer(config, data, report_interval=0)
    snaps = list(trainer.run())
    weights, rows = plain_training(config, data)
    assert trainer.step == len(rows)
    for name, value in weights.items():
        assert torch.equal(trainer.model.state_dict()[name], value), name
    np.testing.assert_array_equal(np.concatenate([s.new_losses for s in snaps]), rows)
    np.testing.assert_array_equal(trainer.history.losses, rows)
