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


@pytest.fixture(scope="module")
def run4(tmp_path_factory, train_shapes):
    """L = 4: the map offers UMAP and t-SNE."""
    return train_shapes(tmp_path_factory.mktemp("hist4") / "run", "--epochs", str(EPOCHS),
                        "--latent-dim", "4", "--batch-size", "64")


def test_a_tsne_maps_history_shows_each_epoch_on_the_layout_and_reopens_from_its_cache(
        qtbot, open_in_window, run4, monkeypatch):
    """A real openTSNE fit of the 128 test means on the map's thread, cached in the run folder;
    scrubbing then draws each epoch's means where the layout places them (one frame for the
    whole movie), a click there decodes through the layout's inverse, and the run reopens in
    t-SNE without a fit."""
    from vaegui.core.layout_cache import layout_path

    window = open_in_window(run4)
    reader, m, history = RunReader(run4), window.explorer, window.latent_map.history_bar
    bar = window.latent_map.projection_bar
    bar.kind_combo.setCurrentIndex(bar.kind_combo.findData("tsne"))
    bar._on_choice_changed()
    qtbot.waitUntil(lambda: getattr(m.encoded.projection, "name", "") == "tsne", timeout=TIMEOUT)
    layout = m.encoded.projection
    assert layout_path(run4, EPOCHS, "tsne").is_file()  # cached under the epoch shown live
    title = lambda: window.latent_map.plot_widget().getPlotItem().titleLabel.text  # noqa: E731
    assert "t-SNE" in title()

    history.slider.setValue(0)  # epoch 1
    means = reader.map_means(1)
    np.testing.assert_array_equal(m.encoded.latents, means)
    assert m.encoded.projection is layout and "t-SNE" in title()
    np.testing.assert_allclose(m.encoded.xy, layout.transform(means), rtol=1e-6)
    assert not np.allclose(m.encoded.xy, layout.xy)  # the points moved between epochs
    x, y = window.latent_map.scatter.positions()
    np.testing.assert_allclose(np.stack([x, y], 1), m.encoded.xy, rtol=1e-6)
    m.pick_plane(layout.xy[5])
    np.testing.assert_allclose(m.point, layout.inverse(layout.xy[5])[0], rtol=1e-6)
    m.show_history(1.5)  # while playing: the blend of two epochs, on the same layout
    np.testing.assert_allclose(m.encoded.xy, layout.transform(0.5 * means + 0.5 * reader.map_means(2)),
                               rtol=1e-5, atol=1e-5)
    history.live_button.click()
    np.testing.assert_array_equal(m.encoded.xy, layout.xy)

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted again")

    monkeypatch.setattr("vaegui.core.layout_cache.fit_projection", no_fit)
    again = open_in_window(run4)  # the same settings: t-SNE is remembered
    qtbot.waitUntil(lambda: getattr(again.explorer.encoded.projection, "name", "") == "tsne", timeout=TIMEOUT)
    np.testing.assert_array_equal(again.explorer.encoded.xy, layout.xy)
    assert "cannot lay out" not in again.latent_map.projection_bar.status.text()
