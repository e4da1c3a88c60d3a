"""How fast is the comparison window with four MNIST runs of 10,000 map points each?

Four runs are trained once by `vaegui sweep` (MNIST, the first 2,000 training images, one epoch,
L in {2, 16} x beta in {1, 4}; every run maps the whole test set, 10,000 images) unless --runs
names a sweep folder made before. Then, in one process with torch imported already (as in the
app, which loads it at start-up), the figures, each the median of --repeats:

- open_s: from creating the CompareWindow on the four run folders to all four maps painted (the
  worker reads the folders on its thread, the figure is laid out and painted on the GUI thread).
- hover_ms: a hover in one map until every map has its ring and the figure has repainted what
  changed (the nearest-point search, the four rings, Qt's repaint of their regions, all on the
  GUI thread); over random images and maps. Wall time and the GUI thread's CPU time.
- brush_ms: brushing a rectangle over all 10,000 points of one map until the four maps show
  them highlighted and the figure has repainted (GUI thread).

Targets: open <= 2 s, hover <= 16 ms, brush <= 50 ms; each figure's ratio is figure / target
(below 1 meets it). Last line: one JSON object.

    flock /tmp/vaegui-heavy.lock python benchmarks/compare.py [--data-dir DIR] [--runs SWEEP_DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGETS = {"open_s": 2.0, "hover_ms": 16.0, "brush_ms": 50.0}
POINTS = 10_000


def make_runs(out: Path, data_dir: str | None) -> Path:
    command = [sys.executable, "-m", "vaegui", "sweep", "--dataset", "mnist", "--offline", "--train-limit",
               "2000", "--epochs", "1", "--latent-dim", "2,16", "--beta", "1,4", "--device", "cpu",
               "--out", str(out), *(["--data-dir", data_dir] if data_dir else [])]
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the sweep failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return out


def wait_for(signal, timeout_s: float = 60.0) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    signal.connect(loop.quit)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    signal.disconnect(loop.quit)


def open_once(paths: list[str]):
    """Seconds from creating the window to its four maps painted, and the window."""
    from vaegui.gui.compare.compare_window import CompareWindow

    started = time.perf_counter()
    window = CompareWindow(paths)
    window.resize(1600, 900)
    window.show()
    wait_for(window.mapsDrawn)
    window.figure.viewport().repaint()  # the maps painted, not only laid out
    seconds = time.perf_counter() - started
    counts = [len(m.x) for m in window.figure.maps]
    assert counts == [POINTS] * 4, counts
    return seconds, window


class PaintWatch:
    """Counts the paint events of a widget (the figure's viewport)."""

    def __init__(self, widget):
        from PySide6.QtCore import QEvent, QObject

        class Filter(QObject):
            def eventFilter(inner, watched, event):  # noqa: N805 - Qt's signature
                if event.type() == QEvent.Type.Paint:
                    self.paints += 1
                return False

        self.paints = 0
        self._filter = Filter()
        widget.installEventFilter(self._filter)


def timed(action, watch: PaintWatch) -> tuple[float, float]:
    """(wall ms, GUI-thread CPU ms) of ``action`` and of the repaint it causes: Qt's own, of the
    regions that changed, as the event loop does it after a pointer event."""
    from PySide6.QtWidgets import QApplication

    wall, cpu = time.perf_counter(), time.thread_time()
    before = watch.paints
    action()
    for _ in range(100):  # the scene's change notice, then the viewport's update request
        QApplication.processEvents()
        if watch.paints > before:
            break
    else:
        raise RuntimeError("the figure did not repaint")
    return (time.perf_counter() - wall) * 1e3, (time.thread_time() - cpu) * 1e3


def hover_times(window, rng, count: int) -> tuple[list[float], list[float]]:
    from PySide6.QtCore import QPointF

    figure, links = window.figure, window.links
    walls, cpus, watch = [], [], PaintWatch(figure.viewport())
    for _ in range(count):
        k = int(rng.integers(len(figure.maps)))
        m = figure.maps[k]
        i = int(rng.integers(len(m.x)))
        pos = m.view.mapViewToScene(QPointF(m.x[i], m.y[i]))

        w, c = timed(lambda: links.hover_scene_pos(pos), watch)
        walls.append(w)
        cpus.append(c)
    return walls, cpus


def brush_times(window, count: int) -> tuple[list[float], list[float], int]:
    from PySide6.QtCore import QRectF

    figure, links = window.figure, window.links
    walls, cpus, chosen, watch = [], [], 0, PaintWatch(figure.viewport())
    for r in range(count):
        k = r % len(figure.maps)
        m = figure.maps[k]
        rect = QRectF(m.x.min(), m.y.min(), m.x.max() - m.x.min(), m.y.max() - m.y.min())
        empty = QRectF(m.x.max() + 1, m.y.max() + 1, 0, 0)
        timed(lambda: links.brush(k, empty), watch)  # start from no selection

        def brush():
            nonlocal chosen
            chosen = len(links.brush(k, rect))
        w, c = timed(brush, watch)
        walls.append(w)
        cpus.append(c)
    return walls, cpus, chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("VAEGUI_DATA_DIR"),
                        help="where MNIST is (default $VAEGUI_DATA_DIR)")
    parser.add_argument("--runs", help="a sweep folder of four MNIST runs made before (default: train them)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory() as tmp:
        sweep = Path(args.runs) if args.runs else make_runs(Path(tmp) / "sweep", args.data_dir)
        return measure(sweep, args.repeats)


def measure(sweep: Path, repeats: int) -> int:
    from PySide6.QtWidgets import QApplication

    import torch  # noqa: F401 - the app has it loaded before anyone compares runs
    import vaegui.core.run_reader  # noqa: F401

    from vaegui.core.compare import expand_sweeps
    from vaegui.gui.torch_threads import one_torch_thread_here

    app = QApplication.instance() or QApplication(["vaegui-bench"])  # noqa: F841
    one_torch_thread_here()
    paths = [str(p) for p in expand_sweeps([sweep])]
    assert len(paths) == 4, paths
    rng = np.random.default_rng(0)
    opens, hover_w, hover_c, brush_w, brush_c = [], [], [], [], []
    for r in range(repeats):
        seconds, window = open_once(paths)
        opens.append(seconds)
        hw, hc = hover_times(window, rng, 40)
        bw, bc, chosen = brush_times(window, 8)
        hover_w, hover_c, brush_w, brush_c = hover_w + hw, hover_c + hc, brush_w + bw, brush_c + bc
        window.close()
        print(f"round {r + 1}: open {seconds:.3f} s, hover median {np.median(hw):.1f} ms, "
              f"brush of {chosen:,} points median {np.median(bw):.1f} ms", flush=True)
    figures = {
        "open_s": round(float(np.median(opens)), 3),
        "hover_ms": round(float(np.median(hover_w)), 2),
        "hover_p99_ms": round(float(np.percentile(hover_w, 99)), 2),
        "hover_cpu_ms": round(float(np.median(hover_c)), 2),
        "brush_ms": round(float(np.median(brush_w)), 2),
        "brush_cpu_ms": round(float(np.median(brush_c)), 2),
        "brushed_points": chosen, "maps": 4, "points_per_map": POINTS, "repeats": repeats,
    }
    for key, target in TARGETS.items():
        figures[f"{key}_ratio"] = round(figures[key] / target, 3)
    met = all(figures[f"{k}_ratio"] <= 1 for k in TARGETS)
    print(f"open {figures['open_s']} s (target {TARGETS['open_s']} s), hover {figures['hover_ms']} ms "
          f"(p99 {figures['hover_p99_ms']}, target {TARGETS['hover_ms']}), brush {figures['brush_ms']} ms "
          f"(target {TARGETS['brush_ms']}): {'met' if met else 'NOT met'}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
