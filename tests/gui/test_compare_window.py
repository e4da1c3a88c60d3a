"""The comparison window: maps linked by hover and brushing (the same data indices in every
map), picks decoded by every model, a sortable table, a sweep folder opened from the main
window's launcher, and a run still being written followed live."""

from __future__ import annotations

import json
import os
import shutil
import threading

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QEventLoop, QPoint, QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QMainWindow, QMenu

from vaegui.core import sweep as core_sweep
from vaegui.core.sweep import PlannedRun
from vaegui.gui.compare.compare_window import CompareWindow
from vaegui.gui.compare.launcher import CompareLauncher

OPEN_MS = 30_000
MOVE_GAP_MS = 15


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory, train_shapes):
    """A sweep's folder of two tiny runs (latent_dim 2 and 5) with its summary."""
    root = tmp_path_factory.mktemp("compare") / "sweep"
    runs = []
    for dim in ("2", "5"):
        name = f"latent_dim={dim}"
        train_shapes(root / name, "--latent-dim", dim, "--threads", "1")
        runs.append(PlannedRun(name, {"latent_dim": int(dim)}, ()))
    rows = [core_sweep.summary_row(r, root / r.name, core_sweep.FINISHED, 1.0) for r in runs]
    core_sweep.write_summary(root, rows, ["latent_dim"], False, [r.name for r in runs])
    return root


@pytest.fixture
def open_compare(qtbot):
    """open_compare(paths, **kwargs) -> a shown CompareWindow that has drawn its maps; closed
    (its thread stopped) at the end of the test."""
    windows = []

    def open_(paths, **kwargs):
        window = CompareWindow([str(p) for p in paths], **kwargs)
        windows.append(window)
        window.resize(1300, 760)
        with qtbot.waitSignal(window.mapsDrawn, timeout=OPEN_MS):
            window.show()
        qtbot.waitExposed(window)
        _settle(qtbot, window.figure)
        return window
    yield open_
    for window in windows:
        window.close()


def _settle(qtbot, figure) -> None:
    """Wait for the maps' layout and ranges to settle after the window is shown (a test maps
    points to pixels from them)."""
    seen = []

    def still():
        seen.append([tuple(m.view.sceneBoundingRect().getRect()) + tuple(m.view.viewRect().getRect())
                     for m in figure.maps])
        return len(seen) > 3 and seen[-1] == seen[-2] == seen[-3]
    qtbot.waitUntil(still, timeout=5000)


def _scene_pos(m, index):
    return m.view.mapViewToScene(QPointF(m.x[index], m.y[index]))


def _send(widget, kind, pos: QPoint, buttons, button=Qt.MouseButton.LeftButton):
    event = QMouseEvent(kind, QPointF(pos), widget.mapToGlobal(QPointF(pos)), button, buttons,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def _pause(ms: int) -> None:
    """Let pyqtgraph's mouse-move rate limit (100 a second) pass: a move sooner is dropped, as a
    real pointer's moves are when they come faster."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def _move(figure, pos: QPoint, buttons=Qt.MouseButton.NoButton) -> None:
    _pause(MOVE_GAP_MS)
    _send(figure.viewport(), QEvent.Type.MouseMove, pos, buttons, Qt.MouseButton.NoButton)


def test_hover_rings_the_same_image_in_every_map(open_compare, sweep_folder, qtbot):
    window = open_compare([sweep_folder])
    figure = window.figure
    assert [m.plot.titleLabel.text.count("latent_dim") for m in figure.maps] == [1, 1]
    first, second = figure.maps
    assert len(first.x) == len(second.x) == 128
    index = int(np.argmax(second.x))  # an outlying point: no neighbour within the radius
    viewport_pos = figure.mapFromScene(_scene_pos(second, index))
    _move(figure, viewport_pos)
    qtbot.waitUntil(lambda: figure.hovered == index, timeout=5000)
    for m in figure.maps:
        x, y = m.hover.getData()
        assert (x[0], y[0]) == (m.x[index], m.y[index])
    far = figure.mapFromScene(second.view.sceneBoundingRect().topLeft()) + QPoint(2, 2)
    _move(figure, far)
    qtbot.waitUntil(lambda: figure.hovered is None, timeout=5000)
    assert all(len(m.hover.getData()[0]) == 0 for m in figure.maps)


def test_brushing_a_rectangle_highlights_the_same_images_in_every_map(open_compare, sweep_folder, qtbot):
    window = open_compare([sweep_folder])
    figure, links = window.figure, window.links
    first, second = figure.maps
    # A real left drag over the left half of the first map.
    x0, x1 = first.x.min(), np.median(first.x)
    y0, y1 = first.y.min(), first.y.max()
    viewport = figure.viewport()
    a = figure.mapFromScene(first.view.mapViewToScene(QPointF(x0 - 1e-3, y1 + 1e-3)))
    b = figure.mapFromScene(first.view.mapViewToScene(QPointF(x1, y0 - 1e-3)))
    brushed = []
    links.brushed.connect(brushed.append)
    _send(viewport, QEvent.Type.MouseButtonPress, a, Qt.MouseButton.LeftButton)
    for t in np.linspace(0, 1, 6)[1:]:
        _move(figure, a + (b - a) * t, Qt.MouseButton.LeftButton)
    _pause(MOVE_GAP_MS)
    _send(viewport, QEvent.Type.MouseButtonRelease, b, Qt.MouseButton.NoButton)
    assert len(brushed) >= 2  # the selection follows the drag, and ends with it
    index = brushed[-1]
    assert np.array_equal(figure.brushed, index) and not first.view.band.isVisible()
    lo, hi = first.view.mapSceneToView(figure.mapToScene(a)), first.view.mapSceneToView(figure.mapToScene(b))
    expected = np.flatnonzero((first.x >= lo.x()) & (first.x <= hi.x()) & (first.y >= hi.y()) & (first.y <= lo.y()))
    assert 0 < len(index) < len(first.x) and np.array_equal(index, expected)
    for m in figure.maps:
        x, y = m.brushed.positions()
        assert np.array_equal(x, m.x[index]) and np.array_equal(y, m.y[index])
    # Brushing in the second map replaces the selection, again in both.
    i = int(np.argmin(second.x))
    index = links.brush(1, QRectF(second.x[i], second.y[i], 0.0, 0.0))
    assert list(index) == [i] and all(np.array_equal(m.brushed.positions()[0], m.x[index]) for m in figure.maps)


def test_picks_decode_in_every_model_and_in_the_maps_own_model(open_compare, sweep_folder, qtbot):
    window = open_compare([sweep_folder])
    worker, first = window.worker, window.figure.maps[0]
    with qtbot.waitSignal(worker.reconstructed, timeout=OPEN_MS) as got:
        window.links.click(0, QPointF(first.x[7], first.y[7]))
    index, image, images = got.args
    assert index == 7 and image.shape == (1, 16, 16) and len(images) == 2
    assert all(r is not None and r.shape == (1, 16, 16) for r in images)
    assert not np.allclose(images[0], images[1])  # two models, two reconstructions
    qtbot.waitUntil(lambda: window.strip.row.array() is not None, timeout=5000)
    assert window.strip.row.array().shape[2] > 3 * 16  # the image and its two reconstructions side by side
    far = QPointF(first.x.max() + 5.0, first.y.max() + 5.0)
    with qtbot.waitSignal(worker.decoded, timeout=OPEN_MS) as got:
        window.links.click(1, far)
    run, point, decoded = got.args
    assert run == 1 and decoded.shape == (1, 16, 16)
    qtbot.waitUntil(lambda: window.strip.point.array() is not None, timeout=5000)
    assert "latent_dim=5 decodes" in window.strip.point_caption.text()


def test_picks_queued_behind_a_busy_worker_decode_only_the_newest(open_compare, sweep_folder, qtbot):
    window = open_compare([sweep_folder])
    worker, first = window.worker, window.figure.maps[0]
    busy = threading.Event()
    QTimer.singleShot(0, worker, lambda: busy.wait(10))  # holds the worker's thread
    decoded = []
    worker.decoded.connect(lambda run, point, image: decoded.append((run, point)))
    points = [np.array([first.x[i], first.y[i]], np.float32) for i in range(20)]
    for p in points:
        worker.decode(0, p)
    busy.set()
    qtbot.waitUntil(lambda: len(decoded) >= 1, timeout=OPEN_MS)
    with qtbot.waitSignal(worker.reconstructed, timeout=OPEN_MS):  # queued after them all
        worker.reconstruct(3)
    assert len(decoded) == 1 and decoded[0][0] == 0
    np.testing.assert_array_equal(decoded[0][1], points[-1])


def test_the_table_sorts_and_the_exports_write(open_compare, sweep_folder, tmp_path):
    window = open_compare([sweep_folder])
    table = window.table
    assert table.columns[:2] == ["run", "latent_dim"] and "test_kl" in table.columns
    c = table.columns.index("test_elbo")
    table.sortItems(c, Qt.SortOrder.DescendingOrder)
    values = table.column_values("test_elbo")
    assert values == sorted(values, reverse=True)
    assert window.export_figure(str(tmp_path / "f.svg")).stat().st_size > 1000
    assert (tmp_path / "f.svg").read_text().lstrip().startswith("<?xml")
    text = window.export_table(str(tmp_path / "t.csv")).read_text().splitlines()
    assert text[0].startswith("run,latent_dim,") and len(text) == 3
    shot = window.grab()
    assert not shot.isNull() and shot.width() >= 1300
    shot.save(str(tmp_path / "compare.png"))


def test_the_launcher_opens_a_sweep_folder_as_a_comparison(qtbot, sweep_folder):
    host = QMainWindow()
    qtbot.addWidget(host)
    menu = QMenu("File", host)
    anchor = menu.addAction("Recent runs")
    launcher = CompareLauncher(host, menu, anchor, lambda: [], lambda: None)
    assert menu.actions()[0] is launcher.action
    assert not launcher.opens(str(sweep_folder / "latent_dim=2"))  # a run folder: the main window's
    assert launcher.opens(str(sweep_folder))
    (window,) = launcher.windows
    with qtbot.waitSignal(window.mapsDrawn, timeout=OPEN_MS):
        pass
    assert window.comparison.names == ["latent_dim=2", "latent_dim=5"]
    window.close()


def test_a_run_still_being_written_is_followed(open_compare, sweep_folder, tmp_path, qtbot):
    live = tmp_path / "live"
    shutil.copytree(sweep_folder / "latent_dim=2", live)
    info = json.loads((live / "run.json").read_text())
    info["config"]["train"]["epochs"] = 3  # a run of 3 epochs, 1 done
    (live / "run.json").write_text(json.dumps(info))
    (live / "heartbeat").write_text("{}")  # a writer is alive: its heartbeat is fresh
    window = open_compare([live, sweep_folder / "latent_dim=5"], follow_ms=100)
    assert window.comparison.runs[0].status == "running"
    curve = window.figure.curves[0][0]
    assert len(curve.getData()[0]) == 1
    last = json.loads((live / "metrics.jsonl").read_text().splitlines()[-1])
    with open(live / "metrics.jsonl", "a") as f:
        f.write(json.dumps({**last, "epoch": 2, "step": 2 * last["step"], "test_elbo": 1.0}) + "\n")
    os.utime(live / "heartbeat")
    view = window.figure.maps[0].view
    view.scaleBy((0.5, 0.5))  # the user zooms in: the followed run's updates keep the zoom
    zoomed = view.viewRange()
    qtbot.waitUntil(lambda: len(curve.getData()[0]) == 2, timeout=10_000)
    assert curve.getData()[1][-1] == 1.0
    assert view.viewRange() == zoomed
    (live / "heartbeat").unlink()  # the writer is gone: following stops
    qtbot.waitUntil(lambda: window.comparison.runs[0].status != "running", timeout=10_000)
    qtbot.waitUntil(lambda: not window.follow_timer.isActive(), timeout=10_000)


def test_hiding_a_run_in_the_legend_hides_all_its_curves(open_compare, sweep_folder, qtbot):
    window = open_compare([sweep_folder])
    figure = window.figure
    first_curves = figure.curves[0]
    assert len(first_curves) == 2 and all(c.isVisible() for c in first_curves)
    sample = figure.legend.items[0][0]  # (sample, label): a click on the sample toggles its item
    with qtbot.waitSignal(figure.runToggled, timeout=5000) as toggled:
        sample.item.setVisible(False)  # what pyqtgraph's ItemSample does on a click
    assert toggled.args == [0, False]
    assert not any(c.isVisible() for c in first_curves)
    assert all(c.isVisible() for c in figure.curves[1])
    assert not figure.is_run_shown(0) and figure.is_run_shown(1)


def test_the_run_picker_takes_two_to_eight_runs(qtbot, sweep_folder):
    from PySide6.QtWidgets import QDialogButtonBox

    from vaegui.gui.compare.run_picker import RunPicker

    picker = RunPicker([str(sweep_folder / "latent_dim=2" / "checkpoint.pt")], None)
    qtbot.addWidget(picker)
    ok = picker.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert picker.list.count() == 1 and picker.chosen() == [] and not ok.isEnabled()
    picker.add_folder(str(sweep_folder))  # a sweep's folder: both its runs, ticked
    assert picker.list.count() == 2 and ok.isEnabled()
    assert [p.split("/")[-1] for p in picker.chosen()] == ["latent_dim=2", "latent_dim=5"]
    picker.list.item(0).setCheckState(Qt.CheckState.Unchecked)
    assert not ok.isEnabled() and "1 chosen" in picker.count_label.text()


def test_an_alt_drag_lassoes_the_same_images_in_every_map(open_compare, sweep_folder, qtbot):
    window = open_compare([sweep_folder])
    figure, links = window.figure, window.links
    first = figure.maps[0]
    viewport = figure.viewport()
    cx, cy = float(np.median(first.x)), float(np.median(first.y))
    sx, sy = float(np.ptp(first.x)), float(np.ptp(first.y))
    # A triangle around the middle of the first map, drawn with Alt held.
    corners = [(cx - 0.4 * sx, cy - 0.3 * sy), (cx + 0.4 * sx, cy - 0.3 * sy), (cx, cy + 0.4 * sy)]
    pixels = [figure.mapFromScene(first.view.mapViewToScene(QPointF(*c))) for c in corners]
    alt = Qt.KeyboardModifier.AltModifier
    got = []
    links.brushed.connect(got.append)

    def send(kind, pos, buttons, button=Qt.MouseButton.LeftButton):
        event = QMouseEvent(kind, QPointF(pos), viewport.mapToGlobal(QPointF(pos)), button, buttons, alt)
        QApplication.sendEvent(viewport, event)
    send(QEvent.Type.MouseButtonPress, pixels[0], Qt.MouseButton.LeftButton)
    for p in (pixels[1], pixels[2], pixels[0]):
        for t in (0.5, 1.0):
            _pause(MOVE_GAP_MS)
            prev = pixels[(pixels.index(p) - 1) % 3]
            send(QEvent.Type.MouseMove, prev + (p - prev) * t, Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton)
    _pause(MOVE_GAP_MS)
    send(QEvent.Type.MouseButtonRelease, pixels[0], Qt.MouseButton.NoButton)
    assert got and not first.view.lasso.isVisible()
    index = got[-1]
    assert 0 < len(index) < len(first.x)
    from vaegui.core.selection import inside_polygon
    traced = np.array([(v.x(), v.y()) for v in (first.view.mapSceneToView(figure.mapToScene(p)) for p in pixels)])
    expected = np.flatnonzero(inside_polygon(first.x, first.y, traced))
    assert len(set(index) ^ set(expected)) <= 2  # the traced path is the triangle, to a pixel
    for m in figure.maps:
        assert np.array_equal(m.brushed.positions()[0], m.x[index])
