"""The trainer: learning, determinism, pause/resume/stop, non-finite loss, resume from checkpoint."""

import dataclasses

import numpy as np
import pytest
import torch

from vaegui.core import trainer as trainer_module
from vaegui.core.checkpoint import load_checkpoint, save_checkpoint
from vaegui.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vaegui.core.dataset_loader import load_dataset
from vaegui.core.errors import TrainingError
from vaegui.core.loss_history import History
from vaegui.core.decoder import encode_means
from vaegui.core.loss import Terms
from vaegui.core.trainer import Trainer

from core_helpers import tiny_config, tiny_data


def weights(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_a_few_hundred_steps_on_mnist_lower_the_test_elbo(mnist_dir):
    config = RunConfig(
        data=DataConfig(dataset="mnist", data_dir=str(mnist_dir), train_limit=6400, test_limit=1000),
        model=ModelConfig(latent_dim=20),
        train=TrainConfig(epochs=3, batch_size=64, device="cpu"),
    )
    trainer = Trainer(config, load_dataset(config.data, download=False))
    before = trainer.evaluate_test(0).neg_elbo
    snaps = list(trainer.run())
    assert trainer.step == 300
    evals = [s.eval for s in snaps if s.eval is not None and not s.done]
    assert [e.epoch for e in evals] == [1, 2, 3]
    assert evals[-1].neg_elbo < evals[0].neg_elbo < before
    assert evals[-1].neg_elbo < 0.5 * before  # from ~545 nats untrained to well under half
    assert snaps[-1].done and not snaps[-1].stopped
    # Every step's losses were reported exactly once, in order.
    steps = np.concatenate([s.new_steps for s in snaps])
    np.testing.assert_array_equal(steps, np.arange(1, 301))
    np.testing.assert_array_equal(trainer.history.steps, steps)


def test_training_is_deterministic_on_cpu():
    config = tiny_config(epochs=1)
    data = tiny_data(config)
    a, b = Trainer(config, data), Trainer(config, data)
    list(a.run()), list(b.run())
    assert_same_weights(weights(a), weights(b))
    other = Trainer(dataclasses.replace(config, train=dataclasses.replace(config.train, seed=2)), data)
    list(other.run())
    assert not torch.equal(weights(a)["decoder.out.weight"], weights(other)["decoder.out.weight"])


def test_stop_takes_effect_within_one_step():
    config = tiny_config(epochs=5)
    trainer = Trainer(config, tiny_data(config), report_interval=0)
    run = trainer.run()
    for _ in range(3):
        snap = next(run)
    assert snap.step == 3
    trainer.stop()
    final = next(run)
    assert final.done and final.stopped and final.step == 3
    with pytest.raises(StopIteration):
        next(run)


def test_pause_and_resume():
    config = tiny_config(epochs=1)
    trainer = Trainer(config, tiny_data(config), report_interval=0)
    run = trainer.run()
    next(run)
    trainer.pause()
    paused = [next(run) for _ in range(2)]
    assert all(p.paused for p in paused)
    assert {p.step for p in paused} == {1}
    trainer.resume()
    after = next(run)
    assert not after.paused and after.step == 2
    trainer.stop()  # a stop while paused is honoured too
    trainer.pause()
    assert next(run).stopped


def test_kl_warmup_and_beta():
    config = tiny_config(beta=0.5, warmup_steps=10)
    trainer = Trainer(config, tiny_data(config))
    assert trainer.kl_weight(0) == 0.0
    assert trainer.kl_weight(5) == pytest.approx(0.25)
    assert trainer.kl_weight(50) == pytest.approx(0.5)
    trainer.beta = 2.0  # may change while training runs
    assert trainer.kl_weight(50) == pytest.approx(2.0)


def test_every_steps_kl_weight_is_recorded_and_a_changed_beta_is_saved(tmp_path):
    config = tiny_config(beta=0.5, warmup_steps=6, epochs=1)  # 8 steps
    trainer = Trainer(config, tiny_data(config), report_interval=0)
    run = trainer.run()
    live = [next(run) for _ in range(5)]
    trainer.beta = 3.0  # changed by the user while it runs
    for p in run:
        pass
    # Step k is trained with beta * min(1, (k - 1) / 6): beta 0.5 for steps 1-5, then 3.
    expected = [0.5 * s / 6 for s in range(5)] + [3.0 * 5 / 6, 3.0, 3.0]
    np.testing.assert_allclose(trainer.history.kl_weights, expected)
    np.testing.assert_array_equal(trainer.history.steps, np.arange(1, 9))
    seen = np.concatenate([p.new_kl_weights for p in live])
    np.testing.assert_allclose(seen, expected[:len(seen)])  # the snapshots carry them too
    path = save_checkpoint(tmp_path / "beta.pt", trainer.state_dict())
    state = load_checkpoint(path)
    assert RunConfig.from_dict(state["config"]).train.beta == 3.0  # resumes with the beta in force
    np.testing.assert_allclose(History.from_dict(state["history"]).kl_weights, expected)


def test_non_finite_loss_stops_with_the_last_good_weights(monkeypatch):
    config = tiny_config(epochs=1)
    trainer = Trainer(config, tiny_data(config), report_interval=0)
    real = trainer_module.elbo_terms
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        t = real(*args, **kwargs)
        return Terms(t.recon * float("nan"), t.kl, t.mu, t.logvar) if calls["n"] == 4 else t

    monkeypatch.setattr(trainer_module, "elbo_terms", poisoned)
    run = trainer.run()
    for _ in range(3):
        next(run)
    good = weights(trainer)
    with pytest.raises(TrainingError, match="non-finite at step 4"):
        next(run)
    assert trainer.step == 3
    assert_same_weights(weights(trainer), good)


def deferred_trainer(config):
    """A trainer that checks its steps as on an accelerator: the answers read at snapshots."""
    trainer = Trainer(config, tiny_data(config), report_interval=1e9)
    trainer.check_every_step = False
    return trainer


def test_steps_checked_at_snapshots_train_the_same_weights():
    config = tiny_config(epochs=2)
    each, deferred = Trainer(config, tiny_data(config)), deferred_trainer(config)
    list(each.run())
    list(deferred.run())
    assert_same_weights(weights(each), weights(deferred))


@pytest.mark.parametrize("poison, message", [
    ("loss", "the loss became non-finite at step 11 \\(epoch 2\\); training stopped with the weights of step 8"),
    ("weights", "the weights became non-finite by step 16 \\(epoch 2\\); training stopped with the weights of step 8"),
])
def test_a_failed_step_found_at_a_snapshot_goes_back_to_the_last_good_one(monkeypatch, poison, message):
    """Where the answers are read at snapshots (on accelerators, so that the host need not wait
    for the device at every step), a failure found there restores the weights, optimiser state
    and step of the last snapshot that passed: here the end of epoch 1 (8 steps an epoch)."""
    config = tiny_config(epochs=2)
    trainer = deferred_trainer(config)
    real, calls = trainer_module.elbo_terms, {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        t = real(*args, **kwargs)
        if poison == "loss" and calls["n"] == 11:
            return Terms(t.recon * float("nan"), t.kl, t.mu, t.logvar)
        if poison == "weights" and calls["n"] == 16:  # the epoch's last step: no step after it
            with torch.no_grad():
                trainer.model.decoder.out.bias.fill_(float("inf"))
        return t

    run = trainer.run()
    first = next(run)
    assert first.step == 8 and first.eval is not None
    good, good_optimizer = weights(trainer), trainer.optimizer.state_dict()["state"]
    good_optimizer = {i: {k: v.clone() for k, v in s.items()} for i, s in good_optimizer.items()}
    monkeypatch.setattr(trainer_module, "elbo_terms", poisoned)
    calls["n"] = 8
    with pytest.raises(TrainingError, match=message):
        next(run)
    assert trainer.step == 8 and trainer.weights_finite()
    assert_same_weights(weights(trainer), good)
    state = trainer.optimizer.state_dict()["state"]
    assert all(torch.equal(state[i][k], v) for i, s in good_optimizer.items() for k, v in s.items())


@pytest.mark.parametrize("stop_after", [8, 11])  # an epoch boundary (8 steps/epoch) and mid-epoch
def test_resume_gives_the_same_weights_as_uninterrupted_training(tmp_path, stop_after):
    config = tiny_config(epochs=3, kl="mc")  # MC KL: the noise stream must be restored too
    data = tiny_data(config)
    straight = Trainer(config, data)
    list(straight.run())

    first = Trainer(config, data, report_interval=0)
    run = first.run()
    while next(run).step < stop_after:
        pass
    first.stop()
    list(run)
    path = save_checkpoint(tmp_path / "ckpt.pt", first.state_dict())

    resumed = Trainer(config, data)
    resumed.load_state_dict(load_checkpoint(path), str(path))
    assert resumed.step == stop_after
    list(resumed.run())
    assert resumed.step == straight.step
    assert_same_weights(weights(resumed), weights(straight))
    np.testing.assert_array_equal(resumed.history.steps, np.arange(1, straight.step + 1))
    np.testing.assert_allclose(resumed.history.losses, straight.history.losses)
    assert [e.epoch for e in resumed.history.evals] == [1, 2, 3]


def test_snapshots_are_immutable():
    config = tiny_config(epochs=1)
    snap = next(Trainer(config, tiny_data(config)).run())
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.step = 0


@pytest.mark.parametrize("family,likelihood", [("conv", "bernoulli"), ("mlp", "gaussian"),
                                               ("mlp", "gaussian-learned")])
def test_model_families_and_likelihoods_train(family, likelihood):
    config = tiny_config(epochs=2, lr=3e-3)
    config = config.replace(model={"family": family, "likelihood": likelihood})
    trainer = Trainer(config, tiny_data(config))
    before = trainer.evaluate_test(0).neg_elbo
    snaps = list(trainer.run())
    assert snaps[-1].done
    assert trainer.history.evals[-1].neg_elbo < before
    if likelihood == "gaussian-learned":
        assert trainer.model.log_sigma.requires_grad
        assert trainer.model.log_sigma.item() != pytest.approx(np.log(0.1))


def test_iwae_reported_at_the_end():
    config = tiny_config(epochs=1, iw_samples=8)
    trainer = Trainer(config, tiny_data(config))
    final = list(trainer.run())[-1]
    assert final.eval.nll_iw is not None and final.eval.iw_samples == 8
    assert final.eval.nll_iw < final.eval.neg_elbo + 1.0


def test_each_test_evaluation_keeps_the_posterior_means_it_computed():
    config = tiny_config(epochs=1)
    data = tiny_data(config)
    plain = Trainer(config, data)
    list(plain.run())
    assert plain.test_means is None  # only when asked for: the CLI has no use for them
    trainer = Trainer(config, data, keep_test_means=True)
    assert trainer.test_means is None
    for _ in trainer.run():
        pass
    kept = trainer.test_means
    assert kept.step == trainer.step == trainer.steps_per_epoch
    # The same vectors an encoder pass over the test set gives, with the final weights.
    np.testing.assert_allclose(kept.means, encode_means(trainer.model, data.test_images), atol=1e-5)
    first = kept.means
    trainer.evaluate_test(1)
    assert trainer.test_means.means is not first  # a new array: a holder of the old one is safe
    np.testing.assert_array_equal(trainer.test_means.means, first)
