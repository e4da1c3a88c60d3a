"""Every view of the run model agrees on the run shown: after a run finishes or fails, and after
a run folder is opened, from File > Recent runs too, in this window or after a restart."""

from __future__ import annotations

import re

import pytest

from vaegui.core.run_reader import RunReader
from vaegui.gui.main_window import MainWindow

TIMEOUT = 60_000


@pytest.fixture
def make_window(qtbot, settings):
    def make() -> MainWindow:
        window = MainWindow(settings)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        qtbot.waitUntil(lambda: window.engine_ready, timeout=TIMEOUT)
        return window
    return make


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, train_shapes):
    """A finished 3-epoch run folder, with its importance-weighted NLL."""
    return train_shapes(tmp_path_factory.mktemp("runs") / "finished", "--epochs", "3", "--iw-samples", "5")


def _numbers(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"\d+\.\d+", text)]


def _assert_controls_agree(window: MainWindow) -> None:
    """The panel's buttons and the toolbar's actions follow the one rule."""
    c, a, panel = window.run.controls(), window.menu_actions, window.training_panel
    assert (panel.start_button.isEnabled(), a.start.isEnabled()) == (c.start, c.start)
    assert (panel.pause_button.isEnabled(), a.pause.isEnabled()) == (c.pause, c.pause)
    assert (panel.stop_button.isEnabled(), a.stop.isEnabled()) == (c.stop, c.stop)
    assert (panel.refresh_button.isEnabled(), a.save.isEnabled()) == (c.model, c.model)
    assert panel.latent_spin.isEnabled() == c.settings and a.open_run.isEnabled() == c.open


def _assert_shows_finished_run(window: MainWindow, run_dir) -> None:
    reader = RunReader(run_dir)
    last = reader.metrics()[-1]
    epochs, steps = last["epoch"], last["step"]
    assert window.run.info.run_dir == str(run_dir)
    line = window.training_panel.progress_label.text()
    assert line.startswith(f"Epoch {epochs}/{epochs} · step {steps:,}/{steps:,}") and line.endswith("finished")
    results = window.training_panel.results_label.text()
    # Shown by the panel (the panel itself is behind the Explore workspace once a run is opened).
    assert window.training_panel.results_label.isVisibleTo(window.training_panel)
    assert _numbers(results)[:2] == [round(last["test_elbo"], 2), round(last["test_nll_iw"], 2)]
    message = window.status_bar.currentMessage()
    assert "Start continues" not in message and "epochs)" not in message and "finished" in message
    assert f"{last['test_elbo']:.2f}" in message
    assert len(window.loss_view.curve_data("neg_elbo")[0]) == steps
    assert len(window.loss_view.curve_data("test_neg_elbo")[0]) == epochs
    assert len(window.kl_view.bar_heights()) == window.run.info.config.model.latent_dim
    _assert_controls_agree(window)


def test_a_finished_run_shows_finished_and_its_test_results(qtbot, make_window, tiny_config):
    window = make_window()
    window.training_panel.set_config(tiny_config(epochs=2))
    with qtbot.waitSignal(window.runFinished, timeout=TIMEOUT):
        window.start_training()
        _assert_controls_agree(window)  # running
    assert window.run.state == "finished"
    line = window.training_panel.progress_label.text()
    assert line.startswith("Epoch 2/2 · step 8/8") and line.endswith("finished")
    neg_elbo = window.run.results.neg_elbo
    assert window.run.results.epoch == 2 and neg_elbo == window.run.history.evals[-1].neg_elbo
    assert _numbers(window.training_panel.results_label.text())[0] == round(neg_elbo, 2)
    assert f"test −ELBO {neg_elbo:.2f} nats" in window.status_bar.currentMessage()
    _assert_controls_agree(window)


def test_a_failed_run_says_so_everywhere(qtbot, make_window, tiny_config, tmp_path):
    window = make_window()
    window.training_panel.set_config(tiny_config().replace(data={"dataset": f"folder:{tmp_path / 'no'}"}))
    with qtbot.waitSignal(window.runFinished, timeout=TIMEOUT):
        window.start_training()
    assert window.run.state == "failed" and "not found" in window.run.error
    assert window.training_panel.progress_label.text() == "Failed"
    assert window.error_box.isVisible() and not window.training_panel.results_label.isVisibleTo(window.training_panel)
    _assert_controls_agree(window)


def test_recent_runs_replace_the_previous_run_in_every_view(qtbot, make_window, tiny_config,
                                                             finished_run):
    window = make_window()
    with qtbot.waitSignal(window.mapUpdated, timeout=TIMEOUT):
        window.open_checkpoint(str(finished_run))
    window.training_panel.set_config(tiny_config(epochs=1000, train=2048))
    with qtbot.waitSignal(window.runFinished, timeout=TIMEOUT):
        window.start_training()  # a new run, stopped part way
        assert window.training_panel.progress_label.text() == "Starting…"
        qtbot.waitUntil(lambda: window.run.progress is not None and window.run.progress.step > 3,
                        timeout=TIMEOUT)
        assert window.run.info.source == "train" and not window.training_panel.results_label.isVisibleTo(window.training_panel)
        window.stop_training()
    assert window.training_panel.progress_label.text().endswith("stopped")
    recent = {a.text(): a for a in window.menu_actions.recent_menu.actions()}
    assert str(finished_run) in recent and window.run.info.run_dir in recent
    with qtbot.waitSignal(window.mapUpdated, timeout=TIMEOUT):
        recent[str(finished_run)].trigger()
    _assert_shows_finished_run(window, finished_run)


def test_a_run_opened_again_after_a_restart_shows_its_progress(qtbot, make_window, finished_run):
    first = make_window()
    with qtbot.waitSignal(first.mapUpdated, timeout=TIMEOUT):
        first.open_checkpoint(str(finished_run))
    with qtbot.waitSignal(first.closed, timeout=TIMEOUT):
        first.close()
    second = make_window()  # the same settings: the run is in Recent runs
    assert second.training_panel.progress_label.text() == "Not started"
    [action] = [a for a in second.menu_actions.recent_menu.actions() if a.text() == str(finished_run)]
    with qtbot.waitSignal(second.mapUpdated, timeout=TIMEOUT):
        action.trigger()
    _assert_shows_finished_run(second, finished_run)


def test_an_opened_part_way_checkpoint_says_start_continues_it(qtbot, make_window, finished_run):
    window = make_window()
    with qtbot.waitSignal(window.mapUpdated, timeout=TIMEOUT):
        window.open_checkpoint(str(finished_run), epochs=5)  # 3 of 5 epochs trained
    line = window.training_panel.progress_label.text()
    assert line.startswith("Epoch 3/5") and line.endswith("stopped")
    message = window.status_bar.currentMessage()
    assert "Start continues its training" in message and "epochs)" not in message
    _assert_controls_agree(window)
