"""The map history: a run folder's stored maps, scrubbed and played in the window."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaegui.core.run_reader import RunReader
from vaegui.gui.main_window import MainWindow

TIMEOUT = 30_000
EPOCHS = 3


@pytest.fixture(scope="module")
def run(tmp_path_factory, train_shapes):
    return train_shapes(tmp_path_factory.mktemp("hist") / "run", "--epochs", str(EPOCHS),
                        "--latent-dim", "2", "--batch-size", "64")


@pytest.fixture
def window(open_in_window, run):
    return open_in_window(run)


def test_the_scrubber_shows_epoch_ks_stored_means_and_weights(qtbot, window, run):
    reader, bar, m = RunReader(run), window.latent_map.history_bar, window.explorer
    assert bar.isEnabled() and bar.live_button.isChecked() and m.history.epochs == [1, 2, 3]
    live_latents = m.encoded.latents.copy()
    bar.slider.setValue(0)  # epoch 1
    assert m.history_position == 1.0 and not bar.live_button.isChecked()
    np.testing.assert_array_equal(m.encoded.latents, reader.map_means(1))
    x, y = window.latent_map.scatter.positions()
    np.testing.assert_allclose(np.stack([x, y], 1), reader.map_means(1), rtol=1e-6)  # L = 2
    for name, value in reader.decoder_state(1).items():  # that epoch's decoder
        torch.testing.assert_close(m.snapshot.state[name], value)
    assert m.snapshot.step == reader.steps_per_epoch
    assert "epoch 1 of 3" in bar.label.text()
    bar.live_button.click()  # back to the live map and weights
    assert m.history_position is None
    np.testing.assert_array_equal(m.encoded.latents, live_latents)
    assert m.snapshot.has_encoder


def test_playing_moves_the_points_smoothly_between_epochs(qtbot, window, run):
    reader, bar, m = RunReader(run), window.latent_map.history_bar, window.explorer
    positions = []
    m.events.history.connect(lambda: positions.append(m.history_position))
    bar.play_button.click()
    qtbot.waitUntil(lambda: not bar.play_button.isChecked(), timeout=TIMEOUT)
    fractional = [p for p in positions if p is not None and p % 1]
    assert fractional, "no frame between two epochs"
    assert positions[-1] == EPOCHS
    # Any point in between is the straight blend of the two epochs around it.
    m.show_history(1.25)
    np.testing.assert_allclose(m.encoded.latents, 0.75 * reader.map_means(1) + 0.25 * reader.map_means(2),
                               rtol=1e-5)


def test_training_keeps_adding_epochs_to_the_history(qtbot, settings, tiny_config):
    w = MainWindow(settings, config=tiny_config(epochs=3))
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.runFinished, timeout=TIMEOUT):
        w.start_training()
    assert w.explorer.history.epochs == [1, 2, 3]
    w.latent_map.history_bar.slider.setValue(1)
    np.testing.assert_array_equal(w.explorer.encoded.latents, RunReader(w.run.info.run_dir).map_means(2))
