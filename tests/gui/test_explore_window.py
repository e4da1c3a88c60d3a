"""vaegui.explore end to end, offscreen: a tiny model of each convention explored in the app's own
window (block=False), its map, a drag, interpolation, traversal and the bundle; outputs shown in
[0, 1]; a model that raises while dragging; and the model entered by one thread at a time."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

import user_models as um  # tests/user_models.py
import vaegui
from vaegui.core.latent import nearest_index, tile
from vaegui.core.user_model import ModelError
from vaegui.gui.main_window import MainWindow

WAIT_MS = 20_000


def _open(qtbot, model=None, x=None, y=None, **kw) -> MainWindow:
    if x is None:
        x, y = um.images()
    window = vaegui.explore(model, x, y, block=False, **kw)
    qtbot.addWidget(window)  # closed (and its threads ended) by pytest-qt after the test
    window.resize(1300, 850)
    qtbot.waitUntil(lambda: window.explorer.encoded is not None, timeout=WAIT_MS)
    return window


def _mouse(window: MainWindow, kind, xy) -> None:
    """A real mouse event at plane point ``xy`` on the map's viewport (a press, move or release
    of the left button: QTest.mouseMove sends no buttons)."""
    plot = window.latent_map.plot_widget()
    view = plot.getPlotItem().getViewBox()
    pos = plot.mapFromScene(view.mapViewToScene(QPointF(float(xy[0]), float(xy[1]))))
    viewport = plot.viewport()
    button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else Qt.MouseButton.LeftButton
    buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else Qt.MouseButton.LeftButton
    event = QMouseEvent(kind, QPointF(pos), QPointF(viewport.mapToGlobal(QPoint(pos))), button, buttons,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, event)


def _drag(window: MainWindow, start, end) -> None:
    for _ in range(3):
        QApplication.processEvents()  # the map's layout lands, so the mapping is current
    _mouse(window, QEvent.Type.MouseButtonPress, start)
    for t in np.linspace(0.2, 1.0, 4):
        _mouse(window, QEvent.Type.MouseMove, (1 - t) * np.asarray(start) + t * np.asarray(end))
    _mouse(window, QEvent.Type.MouseButtonRelease, end)


def _convention(kind: str):
    """(explore's arguments, means of images x, decoded images in [0, 1] of latents z)."""
    if kind == "encode/decode":
        model = um.TupleVAE()
        return {"model": model}, (lambda x: model.encode(x)[0]), (lambda z: torch.sigmoid(model.decode(z)))
    if kind == "pythae":
        model = um.PythaeStyle()
        return {"model": model}, (lambda x: model.encoder(x).embedding), \
            (lambda z: model.decoder(z)["reconstruction"])
    encode, decode = um.callables()
    return {"encode": encode, "decode": decode}, encode, \
        (lambda z: torch.sigmoid(decode(z)).reshape(len(z), *um.SHAPE))


@pytest.mark.parametrize("kind", ["encode/decode", "pythae", "callables"])
def test_each_convention_is_explored_end_to_end(qtbot, tmp_path, kind):
    args, means, images_of = _convention(kind)
    x, y = um.images()
    window = _open(qtbot, x=x, y=y, **args)
    m = window.explorer
    with torch.no_grad():
        want = means(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(m.encoded.latents, want, rtol=1e-6, atol=1e-6)  # the map: the encoder's means
    assert window.explore_mode.description.values["Convention"].text() == kind
    assert not window.menu_actions.start.isVisible() and window.docks.training.windowTitle() == "Model"
    assert not window.docks.losses.isVisible() and window.docks.workspace == "Explore"
    window.show_workspace("Train")  # the model's description where the training panel was; no losses
    assert window.docks.training.isVisible() and not window.docks.losses.isVisible()
    assert window.explore_mode.description.isVisibleTo(window)
    window.reset_layout()  # View > Reset layout: still no losses
    assert not window.docks.losses.isVisible()
    window.show_workspace("Explore")

    # a drag on the map: the point view shows model.decode of the latent under the mouse
    xy = m.encoded.xy
    _drag(window, xy[3], xy.mean(0) + 0.3 * xy.std(0))
    z = m.point.copy()
    qtbot.waitUntil(lambda: window.point_view.result is not None and np.array_equal(m.point, z), timeout=WAIT_MS)
    with torch.no_grad():
        expected = images_of(torch.from_numpy(z[None])).numpy()[0]
    qtbot.waitUntil(lambda: window.point_view.result is not None
                    and np.allclose(window.point_view.result.image, expected, atol=1e-6), timeout=WAIT_MS)
    assert window.point_view.result.nearest == nearest_index(m.encoded.latents, z)[0]

    # interpolation and traversal are decoded by the same model
    m.set_endpoint("a", m.dataset_latent(0))
    m.set_endpoint("b", m.dataset_latent(1))
    with torch.no_grad():
        strip = tile(images_of(torch.from_numpy(m.interpolation_path())).numpy(), nrow=m.interpolation.steps)
    canvas = window.interpolation_view.strip_canvas
    qtbot.waitUntil(lambda: canvas.array() is not None and canvas.array().shape == strip.shape
                    and np.allclose(canvas.array(), strip, atol=1e-6), timeout=WAIT_MS)
    _, latents, _ = m.traversal_plan()
    with torch.no_grad():
        grid = tile(images_of(torch.from_numpy(latents)).numpy(), nrow=m.traversal.columns, padding=1)
    traversal = window.traversal_view.canvas
    qtbot.waitUntil(lambda: traversal.array() is not None and traversal.array().shape == grid.shape
                    and np.allclose(traversal.array(), grid, atol=1e-6), timeout=WAIT_MS)

    # the window's bundle: no checkpoint, and its README says why
    with qtbot.waitSignal(window.exporter.bundleWritten, timeout=WAIT_MS):
        assert window.exporter.export_bundle(str(tmp_path / "bundle"))
    readme = (tmp_path / "bundle" / "README.md").read_text()
    assert "checkpoint.pt: the model was trained outside vaegui" in readme
    assert not (tmp_path / "bundle" / "checkpoint.pt").exists()
    # no empty training figures: the README says the model has no losses, and why
    assert not list((tmp_path / "bundle").glob("losses.*")) and not list((tmp_path / "bundle").glob("kl_per_dimension.*"))
    assert "losses, kl_per_dimension (figures): the model was trained outside vaegui" in readme
    assert (tmp_path / "bundle" / "latent_map.png").is_file()
    np.testing.assert_allclose(np.load(tmp_path / "bundle" / "latents.npz")["z"], want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("out, signed", [("tanh", True), ("logits", False)])
def test_tanh_and_logits_outputs_are_shown_in_0_1(qtbot, out, signed):
    model = um.TupleVAE(out=out)
    x, y = um.images(signed=signed)
    window = _open(qtbot, model, x, y)
    assert window.explore_mode.model.output == out
    assert out in window.statusBar().currentMessage()
    z = np.array([2.5, -2.5], np.float32)
    window.explorer.pick(z)
    with torch.no_grad():
        raw = model.decode(torch.from_numpy(z[None])).numpy()[0]
    expected = (raw + 1) / 2 if out == "tanh" else 1 / (1 + np.exp(-raw))
    assert raw.min() < 0  # shown as given, these pixels would be out of range
    qtbot.waitUntil(lambda: window.point_view.result is not None
                    and np.allclose(window.point_view.result.image, expected, atol=1e-6), timeout=WAIT_MS)
    image = window.point_view.result.image
    assert 0.0 <= image.min() and image.max() <= 1.0


def test_a_model_raising_in_decode_during_a_drag_shows_it_once_in_the_view(qtbot, capfd):
    window = _open(qtbot, um.TupleVAE())
    user = window.explore_mode.model
    user.module.fail_decode = True  # the copy the explorer decodes with
    capfd.readouterr()
    xy = window.explorer.encoded.xy
    _drag(window, xy[0], xy[5])
    qtbot.waitUntil(lambda: "decode exploded" in window.point_view.canvas.hint(), timeout=WAIT_MS)
    hint = window.point_view.canvas.hint()
    assert hint.startswith("Cannot decode: ModelError: model.decode(z) raised ValueError: decode exploded")
    assert window.error_box is None  # in the view, not a box per move of the drag
    window.explorer.pick(np.zeros(2, np.float32))
    qtbot.waitUntil(lambda: window.decode_worker.idle(), timeout=WAIT_MS)
    assert capfd.readouterr().err.count("Traceback") <= 1  # the user's traceback once, for them
    user.module.fail_decode = False  # the app kept running: the next move decodes
    window.explorer.pick(np.ones(2, np.float32))
    qtbot.waitUntil(lambda: window.point_view.result is not None, timeout=WAIT_MS)


class _Slow(um.TupleVAE):
    """A model that stays inside itself long enough for two unserialised threads to meet there."""

    def encode(self, x):
        with um.GUARD:
            threading.Event().wait(0.002)  # widens the race window; nothing waits on it
        return super().encode(x)

    def decode(self, z):
        with um.GUARD:
            threading.Event().wait(0.002)
        return super().decode(z)


def test_the_model_is_entered_by_one_thread_at_a_time_and_never_by_the_gui_thread(qtbot):
    x, y = um.images(n=700)  # three chunks to encode while every view decodes
    model = _Slow()
    with um.GUARD.watch() as guard:
        window = vaegui.explore(model, x, y, block=False)
        qtbot.addWidget(window)
        window.explorer.pick(np.zeros(2, np.float32))  # decoded while the map is encoded
        qtbot.waitUntil(lambda: window.explorer.encoded is not None, timeout=WAIT_MS)
        for k in range(5):
            window.explorer.pick(window.explorer.encoded.latents[k])
        qtbot.waitUntil(lambda: window.decode_worker.idle() and window.point_view.result is not None,
                        timeout=WAIT_MS)
    assert guard.overlaps == 0 and not window.decode_worker.failures
    gui = threading.get_ident()
    # The GUI thread only checked the model before the window opened: one encode and one decode,
    # each entering the guard twice (_Slow's wait, then the model); then the map's encoder and
    # the decoding thread did the rest.
    assert guard.threads[gui] == 4
    assert len(guard.threads) == 3 and sum(guard.threads.values()) > 4 + 2 * 3


def test_errors_come_before_any_window(qtbot):
    before = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
    with pytest.raises(ModelError, match="model Linear has neither"):
        vaegui.explore(torch.nn.Linear(2, 2), um.images()[0], block=False)
    after = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
    assert after == before


def test_block_runs_the_loop_until_the_window_closes(qtbot):
    closed = []

    def close_it():
        for w in QApplication.topLevelWidgets():
            if isinstance(w, MainWindow) and w.explore_mode is not None and w.isVisible():
                w.closed.connect(lambda: closed.append(True))
                w.close()
    QTimer.singleShot(0, close_it)
    assert vaegui.explore(um.TupleVAE(), um.images()[0], block=True) is None
    assert closed == [True]


def test_the_readme_example_runs(qtbot):
    """README's "Use your own model" example, as a user pastes it, with a few training steps."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Use your own model", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert "range(500)" in code and code.rstrip().endswith("class_names=data.class_names)")
    code = code.replace("range(500)", "range(3)").rstrip()[:-1] + ", block=False)"
    code = code.replace("vaegui.explore(", "window = vaegui.explore(")
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - our own README's example
    window = scope["window"]
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.explorer.encoded is not None, timeout=WAIT_MS)
    assert window.explorer.encoded.latents.shape == (500, 2)
    assert window.explorer.encoded.class_names == ("square", "ellipse", "triangle")


def test_ctrl_c_closes_the_window_with_exit_code_130(qtbot, capsys):
    from vaegui.gui.explore_window import run_until_closed

    window = vaegui.explore(um.TupleVAE(), um.images()[0], block=False)
    qtbot.addWidget(window)
    before = signal.getsignal(signal.SIGINT)
    QTimer.singleShot(50, lambda: os.kill(os.getpid(), signal.SIGINT))
    assert run_until_closed(window) == 130
    assert not window.isVisible()
    assert "vaegui: interrupted" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is before  # the previous handler is back


def test_a_latent_of_shape_4_2_2_on_the_map_in_another_projection(qtbot):
    model = um.TupleVAE(latent_shape=(4, 2, 2))
    x, y = um.images()
    window = _open(qtbot, model, x, y)
    m = window.explorer
    with torch.no_grad():
        mu = model.encode(torch.from_numpy(x))[0]
    np.testing.assert_allclose(m.encoded.latents, mu.reshape(len(x), 16).numpy(), rtol=1e-6, atol=1e-6)
    m.set_projection("axes:1,3")
    np.testing.assert_allclose(m.encoded.xy, m.encoded.latents[:, [0, 2]], rtol=1e-6)
    m.pick_plane(np.array([0.5, -0.25]))
    z = m.point.copy()
    assert z[0] == pytest.approx(0.5) and z[2] == pytest.approx(-0.25)
    with torch.no_grad():
        expected = torch.sigmoid(model.decode(torch.from_numpy(z).reshape(1, 4, 2, 2))).numpy()[0]
    qtbot.waitUntil(lambda: window.point_view.result is not None
                    and np.allclose(window.point_view.result.image, expected, atol=1e-6), timeout=WAIT_MS)
