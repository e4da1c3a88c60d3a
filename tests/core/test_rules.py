"""The rules that every part of vaegui shares, each defined once in core: the epoch a progress
line shows, the time-left format, steps per epoch, the test-result JSON keys, the dataset
names, what a run folder means, and that a checkpoint's images must match the data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vaegui.core.checkpoint import check_images_match
from vaegui.core.dataset_catalog import DATASET_NAMES, DATASET_TITLES, unknown_dataset
from vaegui.core.errors import CheckpointError, RunFolderError
from vaegui.core.progress import (EvalResult, Progress, epoch_of_step, format_duration, steps_per_epoch,
                                  steps_per_epoch_from)
from vaegui.core.run_folder import CHECKPOINT_NAME
from vaegui.core.run_paths import checkpoint_of, run_of


def progress(step: int, steps_per_epoch: int = 100, epochs: int = 10) -> Progress:
    return Progress(step=step, total_steps=steps_per_epoch * epochs, steps_per_epoch=steps_per_epoch,
                    epochs=epochs, new_steps=np.zeros(0), new_losses=np.zeros((0, 3)),
                    new_kl_weights=np.zeros(0), kl_weight=1.0, images_per_s=0.0, images_seen=0,
                    train_seconds=0.0, seconds_left=None, device="cpu")


@pytest.mark.parametrize("step, shown", [(0, 1), (1, 1), (99, 1), (100, 1), (101, 2), (200, 2),
                                         (999, 10), (1000, 10)])
def test_the_epoch_shown_is_the_epoch_of_the_last_step(step, shown):
    # At a boundary (step 100 = the last step of epoch 1) the epoch just finished is shown, so
    # a finished 10-epoch run reads 10/10, where the progress bar used to say 2/10 at step 100.
    assert epoch_of_step(step, 100) == shown
    assert progress(step).shown_epoch == shown


def test_the_epoch_shown_never_passes_the_planned_epochs():
    assert epoch_of_step(1500, 100, epochs=10) == 10
    assert epoch_of_step(1500, 100) == 15


@pytest.mark.parametrize("seconds, text", [(0, "0:00"), (7.4, "0:07"), (59.6, "1:00"), (95, "1:35"),
                                           (3600, "1:00:00"), (3725.2, "1:02:05"), (-3, "0:00")])
def test_durations_are_rounded_to_the_second(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("images, batch, steps", [(60000, 128, 469), (512, 64, 8), (513, 64, 9),
                                                  (10, 64, 1)])
def test_steps_per_epoch_counts_the_last_smaller_batch(images, batch, steps):
    assert steps_per_epoch(images, batch) == steps


def test_steps_per_epoch_of_a_run_without_its_data_come_from_its_first_evaluation():
    assert steps_per_epoch_from(eval_step=938, eval_epoch=2) == 469
    assert steps_per_epoch_from(eval_step=0, eval_epoch=0) == 1  # a damaged history: never 0


def evaluation(nll_iw=None) -> EvalResult:
    return EvalResult(epoch=3, step=300, neg_elbo=101.5, recon=80.25, kl=21.25, bits_per_dim=0.19,
                      kl_per_dim=np.array([1.5, 0.0]), active_units=1, nll_iw=nll_iw,
                      iw_samples=0 if nll_iw is None else 100, active=np.array([True, False]))


def test_the_test_record_reads_back_as_the_same_evaluation():
    for e in (evaluation(), evaluation(nll_iw=99.0)):
        line = json.loads(json.dumps({"epoch": e.epoch, "step": e.step, **e.test_record(),
                                      "kl_per_dim": e.kl_per_dim.tolist(), "active": e.active.tolist()}))
        back = EvalResult.from_record(line)
        assert back.to_dict() == e.to_dict()
    assert set(evaluation().test_record()) == {"test_elbo", "test_recon", "test_kl",
                                               "test_bits_per_dim", "active_units"}
    assert evaluation(nll_iw=99.0).test_record()["test_nll_iw"] == 99.0


def test_the_dataset_names_are_the_titles_keys():
    assert DATASET_NAMES == tuple(DATASET_TITLES) and "mnist" in DATASET_NAMES
    assert all(name in str(unknown_dataset("nope")) for name in DATASET_NAMES)


def test_a_checkpoint_reads_only_images_of_its_own_shape(tmp_path):
    check_images_match(tmp_path / "c.pt", [1, 28, 28], (1, 28, 28))
    with pytest.raises(CheckpointError, match=r"c\.pt: it was trained on \(1, 28, 28\) images, "
                                              r"the data has \(3, 32, 32\)"):
        check_images_match(tmp_path / "c.pt", (1, 28, 28), (3, 32, 32))


def test_a_run_folder_means_its_latest_checkpoint(tmp_path):
    from test_run_format import train  # a tiny run written by the run folder's writer

    train(tmp_path / "run")
    run = tmp_path / "run"
    assert checkpoint_of(run) == run / CHECKPOINT_NAME
    assert run_of(run) == (run / CHECKPOINT_NAME, run)
    assert run_of(run / CHECKPOINT_NAME) == (run / CHECKPOINT_NAME, run)  # a checkpoint in its run
    loose = tmp_path / "elsewhere.pt"
    assert checkpoint_of(loose) == loose and run_of(loose) == (loose, None)


def test_a_folder_that_is_not_a_run_is_an_error_naming_it(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(RunFolderError, match="photos"):
        checkpoint_of(tmp_path / "photos")
