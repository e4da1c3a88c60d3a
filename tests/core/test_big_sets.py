"""Big sets end to end: shapes generates as many images as asked (uint8, the same first ones
whatever the count), the map is encoded a batch at a time with progress, and a big run's map
history is stored as float16 and read back as float32."""

import numpy as np
import torch

from core_helpers import tiny_config
from vaegui.core import decoder as decoder_module
from vaegui.core import run_writer
from vaegui.core.config import DataConfig, ModelConfig
from vaegui.core.dataset_loader import load_dataset, make_shapes
from vaegui.core.run_writer import compact_means
from vaegui.core.model import VAE
from vaegui.core.run_folder import RunFolder
from vaegui.core.run_reader import RunReader
from vaegui.core.run_writer import RunWriter
from vaegui.core.trainer import Trainer


def test_shapes_generates_more_images_than_its_default_size_as_uint8():
    data = load_dataset(DataConfig(dataset="shapes", image_size=8, train_limit=20_001, test_limit=5_002))
    assert (len(data.train_images), len(data.test_images)) == (20_001, 5_002)
    assert data.train_images.dtype == torch.uint8 and len(data.train_factors["x"]) == 20_001
    # A prefix of the bigger set is the smaller set: limits only choose how many are drawn.
    small = make_shapes(50, 50, image_size=8)
    assert torch.equal(data.train_images[:50], small.train_images)
    assert torch.equal(data.test_images[:50], small.test_images)


def test_the_map_is_encoded_a_batch_at_a_time_with_progress():
    images = make_shapes(10, 1000, image_size=8).test_images
    model = VAE(ModelConfig(family="mlp", latent_dim=2, hidden=8), (1, 8, 8))
    seen = []
    real_encode = model.encode
    model.encode = lambda x: seen.append((len(x), x.dtype, float(x.max()))) or real_encode(x)
    calls = []
    threads = torch.get_num_threads()
    means = decoder_module.encode_means(model, images, batch_size=300, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(300, 1000), (600, 1000), (900, 1000), (1000, 1000)]
    # Never a float copy of all the images: the encoder gets floats in [0, 1], a chunk at a time.
    assert [n for n, _, _ in seen] == [300, 300, 300, 100]
    assert all(dtype == torch.float32 and top <= 1.0 for _, dtype, top in seen)
    assert torch.get_num_threads() == threads  # the thread governor gave the count back
    del model.encode
    whole = model.eval().encode(images.float() / 255)[0].detach().numpy()
    np.testing.assert_allclose(means, whole, rtol=1e-4, atol=1e-5)


def test_compact_means_are_float16_above_the_threshold_unless_out_of_range():
    rng = np.random.default_rng(0)
    big = rng.normal(size=(run_writer.COMPACT_ABOVE + 1, 3)).astype(np.float32)
    assert compact_means(big).dtype == np.float16
    np.testing.assert_allclose(compact_means(big), big, atol=2e-3)
    assert compact_means(big[:-1]).dtype == np.float32
    big[5, 1] = 1e6  # beyond float16: kept exact rather than made inf
    assert compact_means(big).dtype == np.float32


def test_a_big_runs_map_history_is_written_compact_and_read_as_float32(tmp_path, monkeypatch):
    monkeypatch.setattr(run_writer, "COMPACT_ABOVE", 100)  # the tiny run's 128 test images count as big
    config = tiny_config(epochs=1)
    trainer = Trainer(config, load_dataset(config.data, download=False), report_interval=0.0, keep_test_means=True)
    run = tmp_path / "run"
    with RunFolder(run).open(resume=False) as folder:
        writer = RunWriter(folder, trainer)
        for p in trainer.run():
            writer.record(p)
        writer.close()
    assert np.load(run / "maps" / "epoch-0001.npy").dtype == np.float16
    means = RunReader(run).map_means(1)
    assert means.dtype == np.float32
    np.testing.assert_allclose(means, trainer.test_means.means, rtol=2e-3, atol=2e-3)
