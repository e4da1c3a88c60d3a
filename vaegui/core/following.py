"""Following a run folder that another process writes: :func:`follow` turns the growing folder
into the same Progress snapshots a local trainer yields, so a view cannot tell a followed run from
its own. Every read goes through the run reader (run_reader.py), the folder's one boundary."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

from .progress import EvalResult, Progress
from .run_reader import RunReader


def follow(reader: RunReader, *, poll_s: float = 0.5, should_stop: Callable[[], bool] = lambda: False,
           sleep: Callable[[float], None] = time.sleep) -> Iterator[Progress]:
    """Snapshots of a run folder as it grows, shaped as ``Trainer.run()``'s: the new step rows,
    and an evaluation when an epoch's metrics line lands. Ends with a ``done`` snapshot once the
    writer is gone and nothing more came, or when ``should_stop()``."""
    config, per_epoch = reader.config, reader.steps_per_epoch
    state = {"step": 0, "kl_weight": math.nan, "images_per_s": 0.0}

    def snapshot(steps, losses, weights, e: EvalResult | None, done: bool, stopped: bool) -> Progress:
        if len(steps):
            state["step"], state["kl_weight"] = int(steps[-1]), float(weights[-1])
        if e is not None:
            state["step"] = max(state["step"], e.step)
            state["images_per_s"] = _images_per_s(reader, e) or state["images_per_s"]
        return Progress(step=state["step"], total_steps=per_epoch * config.train.epochs,
                        steps_per_epoch=per_epoch, epochs=config.train.epochs, new_steps=steps,
                        new_losses=losses, new_kl_weights=weights, kl_weight=state["kl_weight"],
                        images_per_s=state["images_per_s"],
                        images_seen=state["step"] * config.train.batch_size, train_seconds=0.0,
                        seconds_left=None, device="followed", eval=e, done=done, stopped=stopped)

    while True:
        steps, losses, weights = reader.steps_since()
        evals = reader.evaluations(reader.metrics_since())
        stopped = should_stop()
        done = stopped or not (len(steps) or evals or reader.writer_alive())
        # The rows come with the first snapshot (they end at or before its epoch's end); the
        # other epochs' evaluations follow with none.
        none = (steps[:0], losses[:0], weights[:0])
        for k, e in enumerate(evals):
            yield snapshot(*((steps, losses, weights) if k == 0 else none), e, False, False)
        if len(steps) and not evals:
            yield snapshot(steps, losses, weights, None, False, False)
        if done:
            yield snapshot(*none, None, True, stopped)
            return
        sleep(poll_s)


def _images_per_s(reader: RunReader, e: EvalResult) -> float | None:
    for r in reversed(reader.metrics()):
        if r.get("step") == e.step and r.get("images_per_s") is not None:
            return float(r["images_per_s"])  # checked: finite, not negative
    return None
