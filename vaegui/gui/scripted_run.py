"""A scripted run of the app: autostart, open a checkpoint, take the screenshot when the window
has something to show, and leave; any error on the way ends it with one line and exit code 2."""

from __future__ import annotations

import argparse
import sys

import numpy as np
from PySide6.QtCore import QTimer

SCREENSHOT_DELAY_MS = 300  # lets the last plot updates paint before the window is grabbed
# The first decode of a map may wait for its spatial index (scipy's import, a second or more on a
# busy machine): the picture waits for the point's image, this long at the most.
POINT_WAIT_MS = 10_000
POLL_MS = 50
SCREENSHOT_SIZE = (1600, 1000)


class ScriptedRun:
    """Autostart, open a checkpoint, and take the screenshot when the window has something to show."""

    def __init__(self, window, args: argparse.Namespace):
        self.window = window
        self.args = args
        self.exit_code: int | None = None

    def begin(self) -> None:
        w, a = self.window, self.args
        if a.screenshot:
            w.errorShown.connect(self._on_window_errorShown)
            # The same picture whatever size and layout were saved (offscreen, a restored size is
            # clamped to the platform's 800x800 screen); --window-size has set its own.
            if getattr(a, "window_size", None) is None:
                w.set_window_size(*SCREENSHOT_SIZE)
        if a.checkpoint:
            w.open_checkpoint(a.checkpoint, epochs=a.epochs)
        if a.autostart:
            w.runFinished.connect(self._on_window_runFinished)
            if a.checkpoint:  # start from the checkpoint's settings, once they are in the panel
                w.checkpointOpened.connect(w.start_training)
            else:
                w.start_training()
        elif a.screenshot and (a.checkpoint or w.explore_mode is not None):  # once the map is shown
            w.mapUpdated.connect(self._on_window_mapUpdated)
        elif a.screenshot:  # the window as a user sees it once Start is enabled
            if w.engine_ready:
                self._on_window_engineReady()
            else:
                w.engineReady.connect(self._on_window_engineReady)

    def _on_window_engineReady(self) -> None:
        QTimer.singleShot(SCREENSHOT_DELAY_MS, self._take_screenshot)

    def _on_window_errorShown(self, text: str) -> None:
        # A scripted run cannot get to its picture: say why in one line and leave.
        print(f"vaegui: error: {text.splitlines()[0]}", file=sys.stderr)
        self._finish(2)

    def _on_window_runFinished(self, final) -> None:
        if not self.args.screenshot or self.exit_code is not None:
            return  # an interactive run: the window shows what happened and stays open
        if final is None:
            self._on_window_errorShown(self.window.last_error or "training failed")
        else:
            self._decode_example_point()
            self._later(self._take_screenshot)

    def _on_window_mapUpdated(self) -> None:
        self.window.mapUpdated.disconnect(self._on_window_mapUpdated)
        self._decode_example_point()
        self._later(self._take_screenshot)

    def _decode_example_point(self) -> None:
        """Pick a typical image of the first class (the one nearest its class mean), and
        interpolate between typical images of the two classes whose means lie furthest apart,
        with the animation a third of the way along."""
        explorer = self.window.explorer
        encoded = explorer.encoded
        if encoded is None or not len(encoded.xy):
            return
        labels = np.unique(encoded.labels)
        means = np.stack([encoded.latents[encoded.labels == k].mean(0) for k in labels])

        def typical(k: int) -> np.ndarray:
            index = np.flatnonzero(encoded.labels == labels[k])
            return index[np.argmin(((encoded.latents[index] - means[k]) ** 2).sum(1))]
        far = np.linalg.norm(means[:, None] - means[None], axis=2)
        i, j = np.unravel_index(np.argmax(far), far.shape)
        explorer.pick(encoded.latents[typical(0)])
        explorer.set_endpoint("a", encoded.latents[typical(i)])
        explorer.set_endpoint("b", encoded.latents[typical(j)])
        explorer.set_playback(position=1 / 3)

    def _later(self, slot, waited_ms: int = 0) -> None:
        w = self.window
        picked = w.explorer.point is not None
        if picked and w.point_view.result is None and waited_ms < POINT_WAIT_MS:
            QTimer.singleShot(POLL_MS, lambda: self._later(slot, waited_ms + POLL_MS))
            return
        QTimer.singleShot(SCREENSHOT_DELAY_MS, slot)

    def _take_screenshot(self) -> None:
        if self.args.screenshot:
            if not self.window.grab().save(self.args.screenshot, "PNG"):
                print(f"vaegui: error: --screenshot {self.args.screenshot}: cannot write the PNG",
                      file=sys.stderr)
                self._finish(2)
                return
            print(f"saved {self.args.screenshot}")
        self._finish(0)

    def _finish(self, code: int) -> None:
        if self.exit_code is not None:
            return
        self.exit_code = code
        w = self.window
        if w.run.busy:
            # An error while a run is on (its data, say): the run stops (or has failed already)
            # and reports its end; only then does the window close. Closing now would make the
            # window wait for a run that failed to save, and keep it open: a scripted run would
            # never end.
            w.runFinished.connect(self._on_failed_run_finished)
            w.stop_training()
            return
        w.close()  # ends the event loop (see _run_app)

    def _on_failed_run_finished(self, final) -> None:
        self.window.close()
