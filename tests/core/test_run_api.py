"""vaegui.load and vaegui.Run on a run trained by `vaegui train`: the model and the data a
notebook gets are the run's own."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vaegui
from vaegui.cli import main
from vaegui.core.checkpoint import load_checkpoint, model_from_checkpoint
from vaegui.core.dataset_loader import load_dataset
from vaegui.core.errors import VaeguiError

TINY = ["--dataset", "shapes", "--train-limit", "256", "--test-limit", "64", "--image-size", "16",
        "--hidden", "16", "--latent-dim", "3", "--batch-size", "64", "--device", "cpu", "--offline"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "run"
    assert main(["train", *TINY, "--epochs", "2", "--out", str(out)]) == 0
    return out


def test_load_gives_the_runs_model(run_dir):
    model = vaegui.load(run_dir)
    assert isinstance(model, torch.nn.Module) and not model.training and model.latent_dim == 3
    _, vae = model_from_checkpoint(load_checkpoint(run_dir / "checkpoint.pt"))
    run = vaegui.Run(run_dir)
    images = load_dataset(run.config.data, download=False).test_images  # (64, 1, 16, 16) uint8
    with torch.no_grad():
        mu, logvar = model.encode(images)
        want_mu, want_logvar = vae.encode(images.float() / 255)
        torch.testing.assert_close(mu, want_mu)
        torch.testing.assert_close(logvar, want_logvar)
        torch.testing.assert_close(model.decode(mu), torch.sigmoid(vae.decode(want_mu)))
        torch.testing.assert_close(model(images.float() / 255), torch.sigmoid(vae.decode(want_mu)))
    # the run's own map of its last epoch holds these means
    last = run.map_epochs()[-1]
    np.testing.assert_allclose(run.map_means(last), mu.numpy(), rtol=1e-4, atol=1e-5)
    samples = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (5, 1, 16, 16) and 0 <= samples.min() and samples.max() <= 1
    same = vaegui.load(run_dir / "checkpoint.pt")  # the checkpoint file means the same model
    torch.testing.assert_close(same.decode(mu).detach(), model.decode(mu).detach())


def test_run_gives_settings_metrics_losses_and_map_history(run_dir):
    run = vaegui.Run(run_dir)
    assert run.settings["data"]["dataset"] == "shapes" and run.settings["model"]["latent_dim"] == 3
    assert run.settings == run.config.to_dict()
    assert run.class_names == ("square", "ellipse", "triangle") and run.image_shape == (1, 16, 16)
    metrics = run.metrics()
    assert [m["epoch"] for m in metrics] == [1, 2]
    losses = run.losses()
    assert set(losses) == {"step", "recon", "kl", "neg_elbo", "kl_weight"}
    assert len(losses["step"]) == len(losses["neg_elbo"]) > 0 and losses["step"][-1] == 2 * run.steps_per_epoch
    history = run.map_history()
    assert sorted(history) == run.map_epochs() and all(v.shape == (64, 3) for v in history.values())
    assert isinstance(run.model(), torch.nn.Module)


def test_a_folder_that_is_no_run_is_one_error(tmp_path):
    with pytest.raises(VaeguiError, match="not a run folder"):
        vaegui.Run(tmp_path)
    with pytest.raises(VaeguiError, match="no such file"):
        vaegui.load(tmp_path / "nothing.pt")
