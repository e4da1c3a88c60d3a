"""Is the window responsive while training runs at full speed, and does the window slow training?

Same training settings throughout (MNIST, mlp, L = 2, bernoulli, batch 128, the GUI defaults
otherwise), in alternating segments: headless, window, window, headless, headless, window, ...
so that the machine's changing speed (other programs, clocks) weighs on both modes alike.
  headless: the Trainer in a plain thread with its own torch thread count, as the GUI worker runs it,
            writing its run folder as the worker and `vaegui train` do;
  window:   the real MainWindow (offscreen unless a display is set) trains on its worker thread while
            a 10 ms QTimer measures how late the GUI event loop serves it, and a simulated user
            picks a point on the map every 250 ms (decoded on the explorer's decoding thread).
Prints timer lateness (median, 99th percentile, max), the throughput of both modes (images per
second of wall time from the trainer's start to the run's end, its last checkpoint saved, so the
window's map refresh at each epoch end counts against it), their ratio, and whether the targets
are met:
p99 lateness < 50 ms, window / headless throughput >= 0.85. The ratio is that of the pooled
throughputs; the median of the per-pair ratios is printed beside it (this machine's speed drifts
by +-20% within a minute, so single pairs range widely).

    python benchmarks/gui_responsiveness.py [--data-dir DIR] [--epochs 2] [--pairs 6]
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from PySide6.QtCore import QEventLoop, QObject, QSettings, Qt, QTimer
from PySide6.QtWidgets import QApplication

from vaegui.core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vaegui.core.dataset_loader import dataset_available, load_dataset
from vaegui.core.run_folder import RUNS_ENV_VAR, RunFolder, default_runs_dir, new_run_path
from vaegui.core.run_writer import RunWriter
from vaegui.core.trainer import Trainer
from vaegui.gui.torch_threads import init_threads, one_torch_thread_here
from vaegui.gui.main_window import MainWindow

REPO = Path(__file__).resolve().parents[1]
TIMER_MS = 10
PICK_MS = 250
P99_TARGET_MS = 50.0
RATIO_TARGET = 0.85


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder holding MNIST/raw (default $VAEGUI_DATA_DIR, "
                                           "else ../shared/data)")
    parser.add_argument("--epochs", type=int, default=2, help="MNIST epochs per segment (default 2)")
    parser.add_argument("--pairs", type=int, default=6,
                        help="segments per mode (default 6: about 40 s of training each)")
    args = parser.parse_args()
    if (setup := set_up(args)) is None:
        return 2
    config, data, torch_threads, app = setup  # noqa: F841 - the app must stay alive
    bench = WindowBench(config, torch_threads)
    headless, pair_ratios = [], []
    for i in range(args.pairs):
        order = ("headless", "window") if i % 2 == 0 else ("window", "headless")
        for mode in order:
            if mode == "headless":
                headless.append(run_headless(config, data, torch_threads))
            else:
                bench.run_once()
        pair_ratios.append(_rate(bench.results[-1]) / _rate(headless[-1]))
    print("window / headless per pair: " + ", ".join(f"{r:.2f}" for r in pair_ratios))
    return report(_total(headless), bench.figures(), pair_ratios)


def set_up(args: argparse.Namespace):
    """What both GUI benchmarks start from, as the app starts: (config, data, training thread
    count, QApplication), MNIST with L = 2; None (and a line on stderr) without MNIST."""
    data_dir = args.data_dir or os.environ.get("VAEGUI_DATA_DIR") or str(REPO.parent / "shared" / "data")
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if not dataset_available("mnist", data_dir):
        print(f"MNIST not found in {data_dir}: pass --data-dir", file=sys.stderr)
        return None
    # Every run, the window's and the headless ones, goes to a scratch folder, never the user's.
    runs = tempfile.mkdtemp(prefix="vaegui-bench-runs-")
    atexit.register(shutil.rmtree, runs, ignore_errors=True)
    os.environ[RUNS_ENV_VAR] = runs
    init_threads()  # as the app does, before any torch work on this thread
    torch_threads = one_torch_thread_here()
    config = RunConfig(DataConfig(dataset="mnist", data_dir=data_dir),
                       ModelConfig(family="mlp", latent_dim=2, likelihood="bernoulli"),
                       TrainConfig(epochs=args.epochs, batch_size=128))
    print(f"{os.cpu_count()} CPUs, torch threads for training: {torch_threads}; "
          f"{args.pairs} segments of {args.epochs} MNIST epochs per mode, alternating")
    data = load_dataset(config.data)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    return config, data, torch_threads, app


def report(headless: dict, window: dict, pair_ratios: list[float]) -> int:
    for name, f in (("headless", headless), ("window", window)):
        print(f"{name + ':':9} {f['images']:,} images in {f['wall']:.1f} s = {f['rate']:,.0f} img/s "
              f"(training steps alone: {f['step_rate']:,.0f} img/s)")
    print(writes_line(headless))
    late = window["lateness_ms"]
    p50, p99, worst = np.percentile(late, 50), np.percentile(late, 99), late.max()
    ratio = window["rate"] / headless["rate"]
    print(f"window: {window['picks']} map points picked (decoded on the decoding thread); GUI thread "
          f"busy {100 * window['gui_cpu'] / window['wall']:.0f}% of the time (CPU)")
    print(f"GUI timer ({TIMER_MS} ms, {len(late)} ticks) lateness: median {p50:.1f} ms, "
          f"p99 {p99:.1f} ms, max {worst:.1f} ms")
    print(f"throughput window / headless: {ratio:.3f} (median of the pairs "
          f"{np.median(pair_ratios):.3f}; training steps alone: "
          f"{window['step_rate'] / headless['step_rate']:.3f})")
    ok_late, ok_ratio = p99 < P99_TARGET_MS, ratio >= RATIO_TARGET
    print(f"targets: p99 lateness < {P99_TARGET_MS:g} ms: {'met' if ok_late else 'NOT met'}; "
          f"throughput ratio >= {RATIO_TARGET}: {'met' if ok_ratio else 'NOT met'}")
    return 0


def run_headless(config: RunConfig, data, torch_threads: int) -> dict:
    """The Trainer in a plain thread, as the worker runs it, writing its run folder as the
    worker and `vaegui train` both do, without any window. The window's time includes those
    writes (each epoch's checkpoint, best, map and decoder, made durable; the report prints
    their share): they are the run's cost, not the window's."""
    result = {}

    def work() -> None:
        torch.set_num_threads(torch_threads)
        trainer = Trainer(config, data, report_interval=0.05, keep_test_means=True)  # as the worker makes it
        with RunFolder(new_run_path(default_runs_dir(), data.name)).open(resume=False) as folder:
            writer = RunWriter(folder, trainer)
            start, writes = time.perf_counter(), 0.0
            for p in trainer.run():
                mark = time.perf_counter()
                writer.record(p)
                writes += time.perf_counter() - mark
            mark = time.perf_counter()
            writer.save()
            writer.close()
            end = time.perf_counter()
            result.update(_figures(p, end - start), writes=writes + end - mark)
        shutil.rmtree(folder.path, ignore_errors=True)

    thread = threading.Thread(target=work, name="headless-training")
    thread.start()
    thread.join()
    return result


class WindowBench(QObject):
    """Window segments, with the GUI-thread measurements: timer ticks during training, a simulated
    user, and each run's bounds. (Worker signals reach its methods queued, as they reach the
    window's.)

    Each segment opens a fresh window and closes it after the run, ending its training thread:
    libgomp counts the threads of every live OpenMP pool and stops spinning when they outnumber
    the CPUs, so a window left open would slow the headless segments (the trap in the issue)."""

    def __init__(self, config: RunConfig, torch_threads: int):
        super().__init__()
        self.config, self.torch_threads = config, torch_threads
        self.folder = tempfile.mkdtemp(prefix="vaegui-bench-")  # never the user's settings
        self.window: MainWindow | None = None
        self.ticks: list[list[float]] = []
        self.results: list[dict] = []
        self.picks = 0
        self.gui_cpu = 0.0
        self._start = self._cpu = None
        self._rng = np.random.default_rng(0)
        self.timer = QTimer(timerType=Qt.TimerType.PreciseTimer, interval=TIMER_MS)
        self.timer.timeout.connect(self.on_tick)
        self.picker = QTimer(interval=PICK_MS)
        self.picker.timeout.connect(self.on_pick)

    def run_once(self) -> None:
        """Open a window, train once in it while measuring, close it."""
        settings = QSettings(os.path.join(self.folder, "settings.ini"), QSettings.Format.IniFormat)
        self.window = MainWindow(settings, config=self.config, torch_threads=self.torch_threads)
        self.window.resize(1280, 800)
        self.window.show()
        self.window.worker.runStarted.connect(self.on_started)
        self.window.runFinished.connect(self.on_finished)
        self.timer.start()
        self.picker.start()
        QTimer.singleShot(0, self.window.start_training)
        # A local loop: quitting the application would close the window (Qt 6 closes all
        # windows on quit) before the run ends.
        self._loop = QEventLoop()
        self._loop.exec()
        self.timer.stop()
        self.picker.stop()
        self.window.close()
        self.window.deleteLater()
        self.window = None

    def on_started(self, _info) -> None:
        self._start, self._cpu = time.perf_counter(), time.thread_time()
        self.ticks.append([])

    def on_tick(self) -> None:
        if self._start is not None:
            self.ticks[-1].append(time.perf_counter())

    def on_pick(self) -> None:  # a user clicking around the map while it trains
        encoded = self.window.explorer.encoded if self.window is not None else None
        if encoded is not None and self._start is not None:
            self.window.explorer.pick_plane(encoded.xy[self._rng.integers(len(encoded.xy))])
            self.picks += 1

    def on_finished(self, final) -> None:
        if final is not None and self._start is not None:
            self.results.append(_figures(final, time.perf_counter() - self._start))
            self.gui_cpu += time.thread_time() - self._cpu
            self._start = None
        self._loop.quit()

    def figures(self) -> dict:
        figures = _total(self.results)
        late = [np.diff(np.asarray(t)) * 1000 - TIMER_MS for t in self.ticks if len(t) > 1]
        figures["lateness_ms"] = np.maximum(np.concatenate(late), 0.0)
        figures["picks"], figures["gui_cpu"] = self.picks, self.gui_cpu
        return figures


def _figures(final, wall: float) -> dict:
    return {"images": final.images_seen, "wall": wall, "train_seconds": final.train_seconds}


def _rate(part: dict) -> float:
    return part["images"] / part["wall"]


def _total(parts: list[dict]) -> dict:
    images = sum(p["images"] for p in parts)
    wall = sum(p["wall"] for p in parts)
    train = sum(p["train_seconds"] for p in parts)
    writes = sum(p.get("writes", 0.0) for p in parts)
    return {"images": images, "wall": wall, "rate": images / wall, "step_rate": images / train,
            "writes_share": writes / wall}


def writes_line(headless: dict) -> str:
    """What the run folder's writes cost the headless segments (the window pays the same)."""
    return (f"run-folder writes: {100 * headless['writes_share']:.1f}% of the headless segments' "
            f"time (the window writes the same files; the ratio counts them on both sides)")


if __name__ == "__main__":
    raise SystemExit(main())
