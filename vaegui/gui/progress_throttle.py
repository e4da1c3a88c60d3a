"""Throttling the progress snapshots that cross from the training thread to the GUI."""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from vaegui.core.progress import Progress


class ProgressThrottle:
    """Passes on at most one snapshot per ``interval`` seconds, always the ones that carry an
    evaluation, end the run or change the paused state. The loss rows of a held-back snapshot
    are merged into the next one passed on, so a consumer still receives every step."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self._held: list[Progress] = []
        self._last_time = -math.inf
        self._last_paused = False

    def offer(self, p: Progress, now: float | None = None) -> Progress | None:
        now = time.perf_counter() if now is None else now
        forced = p.eval is not None or p.done or p.paused != self._last_paused
        if not forced and now - self._last_time < self.interval:
            self._held.append(p)
            return None
        self._last_time, self._last_paused = now, p.paused
        held, self._held = self._held, []
        if not any(len(h.new_steps) for h in held):
            return p
        return dataclasses.replace(
            p, new_steps=np.concatenate([h.new_steps for h in held] + [p.new_steps]),
            new_losses=np.concatenate([h.new_losses for h in held] + [p.new_losses]),
            new_kl_weights=np.concatenate([h.new_kl_weights for h in held] + [p.new_kl_weights]))
