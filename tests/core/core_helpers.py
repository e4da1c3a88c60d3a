"""Small, fast training set-ups shared by the core tests."""

from vaegui.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vaegui.core.dataset_loader import load_dataset


def tiny_config(**train) -> RunConfig:
    return RunConfig(
        data=DataConfig(dataset="shapes", train_limit=512, test_limit=128),
        model=ModelConfig(latent_dim=3, hidden=32),
        train=TrainConfig(**{"epochs": 2, "batch_size": 64, "device": "cpu", **train}),
    )


def tiny_data(config: RunConfig):
    return load_dataset(config.data, download=False)
