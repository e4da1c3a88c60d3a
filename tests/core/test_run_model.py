"""RunModel: the run the app shows, its one enable rule, and the events its views follow."""

from __future__ import annotations

import numpy as np
import pytest

from vaegui.core.config import RunConfig
from vaegui.core.loss_history import History
from vaegui.core.progress import EvalResult, Progress
from vaegui.core.run_info import RunInfo
from vaegui.core.run_model import EVENTS, RunModel, describe_results

SPE = 469  # steps per epoch


def _eval(epoch: int, neg_elbo: float = 100.0, nll: float | None = None) -> EvalResult:
    return EvalResult(epoch=epoch, step=epoch * SPE, neg_elbo=neg_elbo, recon=neg_elbo - 5, kl=5.0,
                      bits_per_dim=0.2, kl_per_dim=np.ones(2), active_units=2, nll_iw=nll,
                      iw_samples=50 if nll is not None else 0)


def _progress(step: int, rows: int = 2, epochs: int = 10, eval=None, done=False, stopped=False) -> Progress:
    steps = np.arange(step - rows + 1, step + 1)
    return Progress(step=step, total_steps=epochs * SPE, steps_per_epoch=SPE, epochs=epochs,
                    new_steps=steps, new_losses=np.ones((rows, 3)), new_kl_weights=np.ones(rows),
                    kl_weight=1.0, images_per_s=100.0, images_seen=step * 128, train_seconds=1.0,
                    seconds_left=30.0, device="cpu", eval=eval, done=done, stopped=stopped)


def _info(step: int, epochs: int = 10, evals=(), source="checkpoint") -> RunInfo:
    history = History(np.arange(1, step + 1), np.ones((step, 3)), list(evals), np.ones(step))
    return RunInfo(RunConfig().replace(train={"epochs": epochs}), (1, 28, 28), tuple("0123456789"),
                   SPE, history, source, step, None, "/runs/mnist-1")


@pytest.fixture
def run():
    run = RunModel()
    run.log = []  # every event, in order
    for name in EVENTS:
        getattr(run.events, name).connect(lambda name=name: run.log.append(name))
    return run


def test_start_is_enabled_once_ready_and_nothing_runs(run):
    assert not run.controls().start and run.controls().open and run.controls().settings
    run.set_ready("cpu")
    c = run.controls()
    assert c.start and not c.pause and not c.stop and not c.model and run.device == "cpu"
    assert "ready" in run.log and "state" in run.log


def test_running_and_paused_enable_pause_stop_and_nothing_that_changes_the_run(run):
    run.set_ready("cpu")
    run.start(RunConfig())
    c = run.controls()
    assert run.state == "running" and not c.start and c.pause and c.stop and not c.resumes
    assert not c.open and not c.settings and run.message.startswith("Starting: mnist")
    run.pause()
    assert run.state == "paused" and run.controls().resumes and run.outcome() == "paused"
    run.resume()
    assert run.state == "running" and not run.controls().resumes
    with pytest.raises(RuntimeError, match="running"):
        run.start(RunConfig())


def test_a_run_collects_its_losses_and_ends_with_its_results(run):
    run.set_ready("cpu")
    run.start(RunConfig())
    run.run_started(_info(0, source="train"))
    assert run.controls().model and run.progress is None and run.evaluation is None
    run.log.clear()
    run.add_progress(_progress(2))
    run.add_progress(_progress(SPE, rows=SPE - 2, eval=_eval(1, 120.0)))
    assert run.log == ["progress", "progress", "evaluation"]
    assert len(run.history.steps) == SPE and run.evaluation.neg_elbo == 120.0 and run.outcome() == ""
    run.add_progress(_progress(10 * SPE, rows=1, eval=_eval(10, 91.234, nll=88.5), done=True))
    run.run_finished(_progress(10 * SPE, rows=1, done=True))
    assert len(run.history.steps) == SPE + 1  # the final progress's rows came once
    assert run.state == "finished" and run.outcome() == "finished" and run.results.epoch == 10
    assert run.controls().start and run.controls().settings
    assert "test −ELBO 91.23 nats" in run.message and "NLL 88.50 nats (IWAE, k = 50)" in run.message


def test_a_stopped_run_says_stopped(run):
    run.start(RunConfig())
    run.run_started(_info(0, source="train"))
    run.add_progress(_progress(100, stopped=True, done=True))
    run.run_finished(_progress(100, stopped=True, done=True))
    assert run.outcome() == "stopped" and run.results is None
    assert run.message.startswith("Training stopped at step 100")


def test_a_failed_run_is_failed_and_one_stopped_before_its_first_step_is_idle(run):
    run.start(RunConfig())
    run.report_error("dataset: folder not found")
    run.run_finished(None)
    assert run.state == "failed" and run.outcome() == "failed" and "error" in run.log
    run.start(RunConfig())
    assert run.error is None
    run.run_finished(None)
    assert run.state == "idle" and run.controls().open


def test_an_opened_finished_run_shows_its_last_step_and_results(run):
    run.set_ready("cpu")
    run.log.clear()
    run.opened(_info(10 * SPE, evals=[_eval(9, 95.0), _eval(10, 93.5)]))
    p = run.progress
    assert (p.step, p.total_steps, p.epochs, p.done, p.stopped) == (4690, 4690, 10, True, False)
    assert run.state == "finished" and run.outcome() == "finished"
    assert run.results.neg_elbo == 93.5 and run.evaluation.epoch == 10 and len(run.history.steps) == 4690
    assert {"info", "history", "progress", "results", "state", "message"} <= set(run.log)
    assert "Start continues" not in run.message and "raise Epochs" in run.message
    assert "test −ELBO 93.50 nats" in run.message and "epochs)" not in run.message


def test_an_opened_part_way_run_says_stopped_and_that_start_continues_it(run):
    run.opened(_info(872, evals=[_eval(1, 130.0)]))
    assert run.outcome() == "stopped" and run.progress.step == 872 and run.progress.total_steps == 4690
    assert "trained 872 of 4,690 steps: Start continues its training" in run.message
    assert "." not in run.message.split("trained")[1].split("steps")[0]  # no fractional epochs


def test_opening_replaces_the_previous_run_everywhere(run):
    run.start(RunConfig())
    run.run_started(_info(0, source="train"))
    run.add_progress(_progress(872, rows=872, epochs=10))
    run.run_finished(_progress(872, stopped=True, done=True))
    run.opened(_info(2 * SPE, epochs=2, evals=[_eval(2, 99.0)]))
    run.start(RunConfig())
    assert run.progress is None and run.results is None  # the new run's line starts afresh
    run.run_finished(None)
    run.opened(_info(2 * SPE, epochs=2, evals=[_eval(2, 99.0)]))
    assert run.progress.step == 2 * SPE and run.progress.epochs == 2 and run.outcome() == "finished"
    assert len(run.history.steps) == 2 * SPE and run.results.neg_elbo == 99.0


def test_following_a_run(run):
    run.set_ready("cpu")
    run.follow("/runs/elsewhere")
    c = run.controls()
    assert run.following and c.stop and not c.pause and not c.start and not c.open
    run.follow_started(_info(0, source="follow"))
    run.set_writer_alive(True)
    run.add_progress(_progress(SPE, rows=SPE, eval=_eval(1)))
    assert run.writer_alive and len(run.history.steps) == SPE
    run.follow_finished()
    assert not run.following and run.writer_alive is None and run.state == "finished"
    assert run.results.epoch == 1 and run.message.startswith("Stopped following")


def test_clear_shows_nothing(run):
    run.opened(_info(10, evals=[_eval(1)]))
    run.clear()
    assert (run.info, run.progress, run.results, run.evaluation) == (None, None, None, None)
    assert run.state == "idle" and not len(run.history.steps) and not run.controls().model


def test_describe_results():
    assert describe_results(_eval(3, 91.234)) == "test −ELBO 91.23 nats at epoch 3"
    assert describe_results(_eval(3, 91.234, nll=88.0)) == \
        "test −ELBO 91.23 nats, NLL 88.00 nats (IWAE, k = 50) at epoch 3"
