"""A new model of another architecture while the interpolation plays: every decode request of
the old model is dropped, so the decoding thread never decodes old latents with new weights
(it once printed `mat1 and mat2 shapes cannot be multiplied` every second for a whole run)."""

from __future__ import annotations

import pytest

from vaegui.gui.main_window import MainWindow

TIMEOUT = 60_000


@pytest.fixture
def window(qtbot, settings):
    w = MainWindow(settings)
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    return w


def _train(qtbot, window: MainWindow) -> None:
    with qtbot.waitSignal(window.runFinished, timeout=TIMEOUT) as finished:
        qtbot.waitUntil(lambda: window.menu_actions.start.isEnabled(), timeout=TIMEOUT)
        window.start_training()
    assert finished.args[0] is not None and finished.args[0].done


def test_a_new_latent_dimension_drops_every_request_of_the_old_model(qtbot, window, tiny_config):
    window.training_panel.set_config(tiny_config(epochs=1))  # L = 2
    _train(qtbot, window)
    m, view = window.explorer, window.interpolation_view
    assert view.isVisible()
    m.set_endpoint("a", m.encoded.latents[0])
    m.set_endpoint("b", m.encoded.latents[1])
    with qtbot.waitSignal(view.frameShown, timeout=TIMEOUT):
        m.set_playback(playing=True)
    qtbot.waitUntil(lambda: view._frames is not None, timeout=TIMEOUT)  # the pass decoded ahead
    window.training_panel.latent_spin.setValue(8)
    window.training_panel.set_config(window.training_panel.config().replace(train={"epochs": 2}))
    _train(qtbot, window)
    assert m.latent_dim == 8 and m.snapshot.step > 0
    # Every snapshot of the new run re-ran the channels' last requests: none may be the old model's.
    qtbot.waitUntil(window.decode_worker.idle, timeout=TIMEOUT)
    assert window.decode_worker.failures == []
