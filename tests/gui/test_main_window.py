"""The main window end to end: tiny runs, map clicks, controls, errors, settings, checkpoints,
and the app's entry point."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from vaegui.core.checkpoint import load_checkpoint, save_checkpoint
from vaegui.core.config import RunConfig
from vaegui.core.dataset_loader import load_dataset
from vaegui.core.decoder import Decoder
from vaegui.core.trainer import Trainer
from vaegui.gui import app
from vaegui.gui.main_window import MainWindow

TIMEOUT = 30_000


@pytest.fixture
def make_window(qtbot, settings):
    def make(config: RunConfig | None = None) -> MainWindow:
        window = MainWindow(settings, config=config)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        return window
    return make


def _train(qtbot, window: MainWindow):
    """Start and wait for the run to finish; returns the final Progress."""
    with qtbot.waitSignal(window.runFinished, timeout=TIMEOUT) as finished:
        window.start_training()
    return finished.args[0]


def test_a_tiny_run_fills_the_losses_map_kl_and_decoder(qtbot, make_window, tiny_config, signal_log):
    window = make_window(tiny_config(epochs=2))
    log = signal_log(window.worker)
    final = _train(qtbot, window)
    assert final.done and final.step == 8
    x, y = window.loss_view.curve_data("neg_elbo")
    assert len(x) == 8 and np.isfinite(y).all()  # every step reached the curves
    assert len(window.loss_view.curve_data("test_neg_elbo")[0]) == 2
    assert len(window.kl_view.bar_heights()) == 2
    encoded = window.explorer.encoded
    assert encoded is not None and encoded.step == 8 and len(encoded.latents) == 128
    assert window.explorer.snapshot is not None and window.explorer.snapshot.step == 8
    assert window.run.state == "finished" and window.menu_actions.start.isEnabled()
    assert "step 8/8" in window.training_panel.progress_label.text()
    assert window.status_bar.device_label.text() == "Device: cpu"
    assert len(log.progress) >= 2 and not log.errors


def _click_plane_point(qtbot, window: MainWindow, xy) -> None:
    plot = window.latent_map.plot_widget()
    scene = plot.getPlotItem().getViewBox().mapViewToScene(QPointF(float(xy[0]), float(xy[1])))
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=plot.mapFromScene(scene))


def test_clicking_the_map_decodes_that_latent(qtbot, make_window, tiny_config, tmp_path):
    window = make_window(tiny_config(epochs=1))
    _train(qtbot, window)
    encoded = window.explorer.encoded
    target = encoded.xy[np.argmin(np.abs(encoded.xy - np.median(encoded.xy, 0)).sum(1))]
    _click_plane_point(qtbot, window, target)
    z = window.explorer.point
    assert z is not None
    qtbot.waitUntil(lambda: window.point_view.current_image() is not None, timeout=TIMEOUT)
    # The click lands within a pixel or two of the target point.
    view = window.latent_map.plot_widget().getPlotItem().getViewBox().viewRange()
    pixel = max(view[0][1] - view[0][0], view[1][1] - view[1][0]) / 200
    np.testing.assert_allclose(encoded.projection.transform(z[None])[0], target, atol=3 * pixel)
    np.testing.assert_allclose(window.latent_map.marker_xy, encoded.projection.transform(z[None])[0],
                               atol=1e-5)
    # The panel shows exactly what decoding z with the trained weights gives.
    path = tmp_path / "m.pt"
    with qtbot.waitSignal(window.worker.checkpointSaved, timeout=TIMEOUT):  # emitted when idle
        window.save_checkpoint(str(path))
    state = load_checkpoint(path)
    expected = Decoder(RunConfig.from_dict(state["config"]).model, (1, 16, 16), state["model"]).decode(z)[0]
    np.testing.assert_array_equal(window.point_view.current_image(), expected)


def test_pause_resume_and_stop(qtbot, make_window, tiny_config, signal_log):
    window = make_window(tiny_config(epochs=1000, train=2048))
    log = signal_log(window.worker)
    window.start_training()
    qtbot.waitUntil(lambda: any(p.step > 0 for p in log.progress), timeout=TIMEOUT)
    window.training_panel.pause_button.click()
    assert window.run.state == "paused" and window.menu_actions.pause.text() == "&Resume"
    qtbot.waitUntil(lambda: log.progress[-1].paused, timeout=TIMEOUT)
    paused_at, count = log.progress[-1].step, len(log.progress)
    qtbot.waitUntil(lambda: len(log.progress) >= count + 3, timeout=TIMEOUT)  # paused snapshots...
    assert {p.step for p in log.progress[count - 1:]} == {paused_at}  # ...at the same step
    window.training_panel.pause_button.click()  # resume
    assert window.run.state == "running"
    qtbot.waitUntil(lambda: log.progress[-1].step > paused_at, timeout=TIMEOUT)
    with qtbot.waitSignal(window.runFinished, timeout=TIMEOUT) as finished:
        window.training_panel.stop_button.click()
    final = finished.args[0]
    assert final.stopped and final.step < final.total_steps
    assert window.run.state == "finished" and window.training_panel.start_button.isEnabled()
    assert window.explorer.encoded.step == final.step  # the map shows the weights it stopped with


def test_beta_changes_the_running_trainer(qtbot, make_window, tiny_config, signal_log):
    window = make_window(tiny_config(epochs=1000, train=2048))
    log = signal_log(window.worker)
    window.start_training()
    qtbot.waitUntil(lambda: bool(log.progress), timeout=TIMEOUT)
    window.training_panel.beta_spin.setValue(0.25)
    qtbot.waitUntil(lambda: log.progress[-1].kl_weight == 0.25, timeout=TIMEOUT)
    with qtbot.waitSignal(window.runFinished, timeout=TIMEOUT):
        window.stop_training()


def test_closing_mid_run_stops_the_thread(qtbot, make_window, tiny_config, signal_log):
    window = make_window(tiny_config(epochs=1000, train=2048))
    log = signal_log(window.worker)
    window.start_training()
    qtbot.waitUntil(lambda: bool(log.progress), timeout=TIMEOUT)
    with qtbot.waitSignal(window.closed, timeout=TIMEOUT):
        window.close()  # stops within a step, saves the run folder, then closes
    assert not window.worker_thread.isRunning()
    assert log.progress[-1].step < log.progress[-1].total_steps


def test_a_worker_error_is_shown_and_the_app_stays_usable(qtbot, make_window, tiny_config, tmp_path):
    window = make_window(tiny_config().replace(data={"dataset": f"folder:{tmp_path / 'missing'}"}))
    assert _train(qtbot, window) is None
    assert window.error_box is not None and window.error_box.isVisible()
    assert "not found" in window.error_box.text() and "not found" in window.last_error
    assert window.run.state == "failed" and window.menu_actions.start.isEnabled()
    window.error_box.close()
    window.training_panel.set_config(tiny_config(epochs=1))
    assert _train(qtbot, window).done
    assert window.explorer.encoded is not None


def test_settings_persist_between_windows(qtbot, make_window, tiny_config):
    first = make_window()
    cfg = tiny_config(epochs=7).replace(model={"latent_dim": 3}, train={"beta": 2.5, "lr": 3e-4})
    first.training_panel.set_config(cfg)
    first.training_panel.set_map_source("train", 70_000)
    first.resize(700, 650)  # within the offscreen screen (800x800): restoreGeometry keeps windows on screen
    first.show_workspace("Explore")
    first.docks.point.hide()
    first.close()
    second = make_window()
    # Everything but the image limits, which are no setting of the window.
    assert second.training_panel.config() == cfg.replace(data={"train_limit": None, "test_limit": None})
    assert second.training_panel.map_source() == ("train", 70_000)
    assert (second.width(), second.height()) == (700, 650)
    assert second.docks.workspace == "Explore" and second.workspace_tabs.currentIndex() == 1
    assert second.docks.point.isHidden() and not second.docks.interpolation.isHidden()
    second.show_workspace("Train")  # the other workspace keeps its own arrangement
    assert not second.docks.training.isHidden() and second.docks.interpolation.isHidden()
    second.show_workspace("Explore")
    assert second.docks.point.isHidden()
    second.reset_layout()
    assert not second.docks.point.isHidden()


def _tiny_checkpoint(path, config: RunConfig) -> int:
    trainer = Trainer(config, load_dataset(config.data))
    for _ in trainer.run():
        pass
    save_checkpoint(path, trainer.state_dict())
    return trainer.step


def test_opening_a_checkpoint_shows_its_map_and_start_resumes_it(qtbot, make_window, tiny_config,
                                                                  tmp_path, signal_log):
    config = tiny_config(epochs=1).replace(model={"latent_dim": 3})
    steps = _tiny_checkpoint(tmp_path / "m.pt", config)
    window = make_window()
    log = signal_log(window.worker)
    with qtbot.waitSignal(window.mapUpdated, timeout=TIMEOUT):
        window.open_checkpoint(str(tmp_path / "m.pt"), epochs=2)
    assert window.explorer.encoded.latents.shape == (128, 3)  # L = 3: a PCA map
    assert window.explorer.snapshot.step == steps and not log.progress  # no training
    assert window.training_panel.config() == config.replace(train={"epochs": 2})
    assert len(window.loss_view.curve_data("neg_elbo")[0]) == steps
    window.explorer.pick_plane(window.explorer.encoded.xy[0])
    qtbot.waitUntil(lambda: window.point_view.current_image() is not None, timeout=TIMEOUT)
    assert window.point_view.current_image().shape == (1, 16, 16)
    final = _train(qtbot, window)
    assert log.progress[0].new_steps[0] == steps + 1 and final.step == 2 * steps  # resumed
    assert len(window.loss_view.curve_data("neg_elbo")[0]) == 2 * steps
    # The one resume rule: a setting that would make it another model starts a new run, and
    # the status says which.
    with qtbot.waitSignal(window.mapUpdated, timeout=TIMEOUT):
        window.open_checkpoint(str(tmp_path / "m.pt"), epochs=2)
    window.training_panel.set_config(config.replace(model={"latent_dim": 2}, train={"epochs": 1}))
    seen = len(log.progress)
    _train(qtbot, window)
    new_rows = np.concatenate([p.new_steps for p in log.progress[seen:]])
    np.testing.assert_array_equal(new_rows, np.arange(1, steps + 1))  # from step 1 again: a new run
    assert any("latent_dim is 2, the opened checkpoint's is 3" in s for s in log.status)


# ---- the entry point -------------------------------------------------------------------------

@pytest.mark.parametrize("argv, words", [
    (["--dataset", "imagenet"], "unknown"),
    (["--dataset", "folder:/no/such/folder"], "does not exist"),
    (["--epochs", "0"], "at least 1"),
    (["--bogus"], "unrecognized"),
])
def test_bad_arguments_exit_2_with_one_line(capsys, argv, words):
    assert app.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1 and err.startswith("vaegui: error:")


def test_a_bad_checkpoint_exits_2(capsys, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert app.main(["--checkpoint", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(bad) in err and len(err.splitlines()) == 1


def test_first_launch_falls_back_to_shapes_when_mnist_is_neither_on_disk_nor_reachable(tmp_path,
                                                                                     no_network):
    args = app.parse_args(["--data-dir", str(tmp_path)])
    config, note = app.initial_config(None, args)  # the real probe, offline
    assert config.data.dataset == "shapes" and "cannot be downloaded" in note and str(tmp_path) in note
    assert "tests never use the network" in note and no_network  # it tried, and says why not
    stored = RunConfig().replace(data={"dataset": "kmnist"})
    config, note = app.initial_config(stored, app.parse_args(["--epochs", "3"]))
    assert config.data.dataset == "kmnist" and config.train.epochs == 3 and not note


def test_first_launch_picks_mnist_to_download_when_its_server_answers(tmp_path):
    asked = []
    config, note = app.initial_config(None, app.parse_args(["--data-dir", str(tmp_path)]),
                                      probe=lambda name: asked.append(name))
    assert asked == ["mnist"] and config.data.dataset == "mnist"
    assert "Start downloads it" in note and str(tmp_path) in note


def test_first_launch_uses_mnist_when_it_is_on_disk(mnist_dir):
    config, note = app.initial_config(None, app.parse_args(["--data-dir", str(mnist_dir)]),
                                      probe=lambda name: pytest.fail("no probe needed"))
    assert config.data.dataset == "mnist" and not note


def test_scripted_run_saves_a_screenshot(qtbot, tmp_path, monkeypatch, tiny_config):
    made = []
    real_initial = app.initial_config

    def tiny_initial(stored, args):  # the real command line on top of a tiny run
        config, note = real_initial(stored, args)
        return tiny_config(epochs=config.train.epochs), note

    monkeypatch.setattr(app, "initial_config", tiny_initial)
    monkeypatch.setattr(app, "MainWindow", lambda *a, **k: made.append(MainWindow(*a, **k)) or made[-1],
                        raising=False)
    out = tmp_path / "shot.png"
    assert app.main(["--dataset", "shapes", "--epochs", "1", "--autostart", "--screenshot", str(out)]) == 0
    assert out.stat().st_size > 10_000
    window = made[0]
    assert window.explorer.encoded is not None and window.point_view.current_image() is not None
    assert not window.worker_thread.isRunning()
