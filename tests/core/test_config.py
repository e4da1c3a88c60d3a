"""Settings: every field's type and bounds, the model's size worked out before building it, and
the memory a batch would need checked before training starts."""

import pytest

from vaegui.cli import main
from vaegui.core import limits
from vaegui.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vaegui.core.errors import ConfigError
from vaegui.core.model import VAE
from vaegui.core.trainer import Trainer

from core_helpers import tiny_config, tiny_data


@pytest.mark.parametrize("family", ["mlp", "conv"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 16, 16)])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian-learned"])
def test_parameter_count_is_exact(family, shape, likelihood):
    cfg = ModelConfig(family=family, latent_dim=5, hidden=7, likelihood=likelihood)
    model = VAE(cfg, shape)
    built = sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())
    assert cfg.parameter_count(shape) == built


@pytest.mark.parametrize("section,changes,needle", [
    (DataConfig, {"image_size": 7}, "image_size: 7 is out of range (8 to 1,024)"),
    (DataConfig, {"image_size": 28.0}, "image_size: 28.0 is not a whole number"),
    (DataConfig, {"channels": True}, "channels: True is not 1 or 3"),
    (DataConfig, {"dataset": 5}, "dataset: 5 must be a non-empty name"),
    (DataConfig, {"seed": -1}, "seed: -1 is out of range"),
    (ModelConfig, {"latent_dim": 10**12}, "latent_dim: 1000000000000 is out of range (1 to 65,536)"),
    (ModelConfig, {"hidden": "400"}, "hidden: '400' is not a whole number"),
    (ModelConfig, {"sigma": 1e-30}, "sigma: 1e-30 is out of range [0.001, 1000] (the loss clamps"),
    (ModelConfig, {"sigma": float("nan")}, "sigma: nan is not a finite number"),
    (ModelConfig, {"family": None}, "model: None is not one of mlp, conv"),
    (TrainConfig, {"lr": float("inf")}, "lr: inf is not a finite number"),
    (TrainConfig, {"lr": 0.0}, "lr: 0 is out of range (0, 10]"),
    (TrainConfig, {"beta": float("nan")}, "beta: nan is not a finite number"),
    (TrainConfig, {"seed": 10**30}, "seed: 1000000000000000000000000000000 is out of range"),
    (TrainConfig, {"epochs": 10**12}, "epochs: 1000000000000 is out of range (1 to 1,000,000)"),
    (TrainConfig, {"batch_size": 0}, "batch_size: 0 is out of range"),
    (TrainConfig, {"iw_samples": 10**12}, "iw_samples: 1000000000000 is out of range (0 to 100,000)"),
    (TrainConfig, {"warmup_steps": -1}, "warmup_steps: -1 is out of range"),
])
def test_each_setting_has_a_type_and_bounds(section, changes, needle):
    with pytest.raises(ConfigError) as info:
        section(**changes)
    assert needle in str(info.value)


@pytest.mark.parametrize("d,needle", [
    ("hello", "settings must be a mapping, not str"),
    ({"model": "x"}, "model: settings must be a mapping of names, not str"),
    ({"train": {"epochs": 1, "speed": 3}}, "train: unknown settings ['speed']"),
    ({"extra": {}}, "unknown settings sections ['extra']"),
    ({"model": {"latent_dim": "2"}}, "latent_dim: '2' is not a whole number"),
])
def test_from_dict_refuses_malformed_settings(d, needle):
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict(d)
    assert needle in str(info.value)


def test_a_round_trip_keeps_every_setting():
    config = RunConfig(model=ModelConfig(family="conv", latent_dim=7, sigma=0.5),
                       train=TrainConfig(lr=0.01, beta=0.5, iw_samples=10))
    assert RunConfig.from_dict(config.to_dict()) == config


def test_a_batch_that_cannot_fit_is_refused_before_training(monkeypatch):
    config = tiny_config()
    data = tiny_data(config)
    need = config.model.activation_bytes(data.image_shape, 64)
    monkeypatch.setattr(limits, "budget_bytes", lambda device_type="cpu": need - 1)
    with pytest.raises(ConfigError, match=r"batch_size: 64 images of \(1, 28, 28\) need about"):
        Trainer(config, data)
    monkeypatch.setattr(limits, "budget_bytes", lambda device_type="cpu": need)
    Trainer(config, data)  # exactly enough
    big_iw = config.replace(train={"iw_samples": 100_000})
    with pytest.raises(ConfigError, match="iw_samples: 100,000 samples"):
        Trainer(big_iw, data)


def test_the_cli_names_the_option_of_a_batch_that_cannot_fit(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(limits, "budget_bytes", lambda device_type="cpu": 100_000)  # the images fit
    assert main(["train", "--dataset", "shapes", "--train-limit", "64", "--test-limit", "16",
                 "--device", "cpu", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vaegui: error: argument --batch-size: 64 images of (1, 28, 28) need about")
    assert err.count("\n") == 1


def test_eval_refuses_importance_samples_that_cannot_fit(monkeypatch, capsys, tmp_path):
    tiny = ["--dataset", "shapes", "--train-limit", "64", "--test-limit", "16", "--hidden", "8",
            "--device", "cpu", "--epochs", "1", "--out", str(tmp_path)]
    assert main(["train", *tiny]) == 0
    capsys.readouterr()
    monkeypatch.setattr(limits, "budget_bytes", lambda device_type="cpu": 2**28)
    assert main(["eval", str(tmp_path / "checkpoint.pt"), "--iw-samples", "100000", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vaegui: error: argument --iw-samples: 100,000 samples of (1, 28, 28) images")
