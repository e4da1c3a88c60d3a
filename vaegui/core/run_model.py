"""The run the app shows, free of Qt: its state, settings and folder, the losses so far, the
latest progress, the device, whether training can start, and the final results.

The window moves the model as the training worker and the run follower report (a run starts,
progresses, finishes or fails; a model is opened; a run is followed) and as the user commands
(start, pause, resume). Views take a :class:`RunModel` in their constructor, read its state and
connect to its events, as the explorer's views do with ``ExplorerModel``; the model never knows a
view exists. Every event is emitted with no arguments: listeners read what they need.

``controls()`` is the one rule for which buttons, actions and settings are enabled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from .config import RunConfig
from .events import Event
from .loss_history import History
from .progress import LOSS_COLUMNS, EvalResult, Progress
from .run_info import RunInfo

STATES = ("idle", "running", "paused", "finished", "failed")
EVENTS = ("state", "ready", "device", "info", "history", "progress", "evaluation", "results",
          "message", "writer", "skipped", "error")


@dataclass(frozen=True)
class Controls:
    """Which commands make sense now (see :meth:`RunModel.controls`)."""

    start: bool
    pause: bool
    resumes: bool  # the pause control resumes: the run is paused
    stop: bool
    open: bool  # open a checkpoint or a run, follow a run, recent runs
    model: bool  # a model is shown: save it, encode its map again
    settings: bool  # a run's fixed settings (data, model, optimiser) may be edited


def describe_results(e: EvalResult) -> str:
    """The test-set figures of an evaluation, as the app prints them."""
    text = f"test −ELBO {e.neg_elbo:.2f} nats"
    if e.nll_iw is not None:
        text += f", NLL {e.nll_iw:.2f} nats (IWAE, k = {e.iw_samples})"
    return text + f" at epoch {e.epoch}"


class RunModel:
    """State of the run shown. See the module docstring for how views use it.

    Events: ``state`` (the state, readiness, following or the model shown changed, so
    :meth:`controls` may differ), ``ready``, ``device``, ``info`` (another run or model),
    ``history`` (the losses were replaced), ``progress`` (new rows: read ``progress``),
    ``evaluation`` (a new test evaluation, or none), ``results``, ``message`` (a line for the
    status bar), ``writer`` (a followed run's writer came or went), ``skipped`` (files a folder
    dataset skipped), ``error``."""

    def __init__(self) -> None:
        self.events = SimpleNamespace(**{name: Event(name) for name in EVENTS})
        self.state = "idle"
        self.ready = False  # torch and the engine are loaded: training can start
        self.device = ""  # the device training runs on (or would, once ready)
        self.following = False  # the run is another process's, followed from its folder
        self.info: RunInfo | None = None  # the run or model shown
        self.history = History()  # every loss row and evaluation of the run shown
        self.steps_per_epoch = 1
        self.progress: Progress | None = None  # the latest progress of the run shown
        self.results: EvalResult | None = None  # the final evaluation, once the run has ended
        self.error: str | None = None  # the last error reported
        self.message = ""  # what the status bar says about the run
        self.message_seconds = 0  # how long it says it (0: until the next message)
        self.writer_alive: bool | None = None  # a followed run's writer (None: not following)
        self.skipped: tuple[str, str] = ("", "")  # a summary and one line per skipped file

    # ---- derived state ------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """A run is in progress: trained here (running or paused) or followed."""
        return self.state in ("running", "paused")

    @property
    def training(self) -> bool:
        """A run is being trained here (a stop must save it)."""
        return self.busy and not self.following

    @property
    def evaluation(self) -> EvalResult | None:
        """The latest test evaluation of the run shown."""
        return self.history.evals[-1] if self.history.evals else None

    def controls(self) -> Controls:
        busy = self.busy
        return Controls(start=self.ready and not busy, pause=self.training,
                        resumes=self.state == "paused", stop=busy, open=not busy,
                        model=self.info is not None, settings=not busy)

    def outcome(self) -> str:
        """How the progress line ends: "" while running (it shows the time left), else
        "paused", "finished", "stopped" (before its last step) or "failed"."""
        if self.state in ("idle", "running"):
            return ""
        if self.state != "finished":
            return self.state
        p = self.progress
        return "finished" if p is not None and p.done and not p.stopped and p.step >= p.total_steps \
            else "stopped"

    # ---- readiness and messages ----------------------------------------------------------------
    def set_ready(self, device: str) -> None:
        self.ready = True
        if not self.busy:  # a run shows its own device
            self._set_device(device)
        self.events.ready.emit()
        self.events.state.emit()

    def say(self, message: str, seconds: int = 0) -> None:
        self.message, self.message_seconds = message, seconds
        self.events.message.emit()

    def report_error(self, message: str) -> None:
        """A failure the user must see (a run that fails also ends: see :meth:`run_finished`)."""
        self.error = message
        self.events.error.emit()

    def set_skipped(self, summary: str, details: str) -> None:
        self.skipped = (summary, details)
        self.events.skipped.emit()

    # ---- a run trained here ----------------------------------------------------------------------
    def start(self, config: RunConfig) -> None:
        """Training was asked for; :meth:`run_started` follows (or :meth:`run_finished` with
        None when it cannot start)."""
        if self.busy:
            raise RuntimeError(f"cannot start a run while one is {self.state}")
        self.error, self.results, self.progress = None, None, None
        self.events.results.emit()
        self.events.progress.emit()
        self._set_state("running")
        self.say(f"Starting: {config.data.dataset}, {config.model.family}, L = {config.model.latent_dim}")

    def pause(self) -> None:
        if self.state == "running" and not self.following:
            self._set_state("paused")
            self.say("Paused: the map, decoder and saving still work")

    def resume(self) -> None:
        if self.state == "paused":
            self._set_state("running")
            self.say("Training")

    def stopping(self) -> None:
        if self.busy:
            self.say("Stopping…")

    def run_started(self, info: RunInfo) -> None:
        self._show(info, None)

    def add_progress(self, p: Progress) -> None:
        """New rows of the run shown (trained here or followed)."""
        self.history.append(p.new_steps, p.new_losses, p.new_kl_weights)
        if p.eval is not None:
            self.history.evals.append(p.eval)
        self.progress, self.steps_per_epoch = p, max(1, p.steps_per_epoch)
        self._set_device(p.device)
        self.events.progress.emit()
        if p.eval is not None:
            self.events.evaluation.emit()

    def run_finished(self, final: Progress | None) -> None:
        """The run ended with ``final`` (its rows came with :meth:`add_progress` already), or
        without one: it failed (an error was reported), or was stopped before its first step."""
        if final is None:
            self._set_state("failed" if self.error is not None else "idle")
            return
        self.progress = final
        self._end()
        self.say(f"Training {self.outcome()} at step {final.step:,}" + self._results_note(), 10)

    # ---- a model opened, a run followed ----------------------------------------------------------
    def opening(self, path: str) -> None:
        self.say(f"Opening {path}…")

    def opened(self, info: RunInfo) -> None:
        """A checkpoint or a run folder was opened: shown as a run that has ended, at its step."""
        self._show(info, _progress_at(info, self.device))
        self._end()
        c = info.config.data
        name = Path(info.run_dir).name if info.run_dir else "a model"
        if self.outcome() == "finished":
            what = (f"Opened {name} ({c.dataset}): finished, {info.step:,} steps; raise Epochs to "
                    "train further")
        else:
            what = (f"Opened {name} ({c.dataset}), trained {info.step:,} of {info.total_steps:,} "
                    "steps: Start continues its training")
        self.say(what + self._results_note())

    def follow(self, path: str) -> None:
        if self.busy:
            raise RuntimeError(f"cannot follow a run while one is {self.state}")
        self.following, self.error, self.results = True, None, None
        self._set_state("running")
        self.say(f"Following {path}…")

    def follow_started(self, info: RunInfo) -> None:
        self._show(info, None)

    def set_writer_alive(self, alive: bool) -> None:
        self.writer_alive = alive
        self.events.writer.emit()

    def follow_finished(self, because: str = "") -> None:
        """Following ended: the writer finished, or ``because`` (a damaged file, the folder gone)."""
        self.following, self.writer_alive = False, None
        self.events.writer.emit()
        if self.progress is None:
            self._set_state("idle")
        else:
            self._end()
        if because:  # kept in view longer: the user has to read why
            self.say(f"Stopped following: {because}", 15)
        else:
            self.say("Stopped following" + self._results_note(), 8)

    # ---- the run shown ---------------------------------------------------------------------------
    def set_history(self, history: History, steps_per_epoch: int) -> None:
        """Replace the losses shown (a copy is kept)."""
        self.history, self.steps_per_epoch = history.copy(), max(1, steps_per_epoch)
        self.events.history.emit()
        self.events.evaluation.emit()

    def clear(self) -> None:
        """Nothing shown: no run, no model (readiness and device stay)."""
        self.info, self.progress, self.results, self.error = None, None, None, None
        self.set_history(History(), 1)
        self.events.info.emit()
        self.events.progress.emit()
        self.events.results.emit()
        self._set_state("idle")

    # ---- helpers -------------------------------------------------------------------------------
    def _show(self, info: RunInfo, progress: Progress | None) -> None:
        self.info, self.progress = info, progress
        self.set_history(info.history or History(), info.steps_per_epoch)
        self.events.info.emit()
        self.events.progress.emit()
        self.events.state.emit()  # a model is shown: it can be saved

    def _end(self) -> None:
        self.results = self.evaluation
        self.events.progress.emit()
        self.events.results.emit()
        self._set_state("finished")

    def _results_note(self) -> str:
        return "" if self.results is None else " · " + describe_results(self.results)

    def _set_state(self, state: str) -> None:
        if state not in STATES:
            raise ValueError(f"unknown run state {state!r}")
        self.state = state
        self.events.state.emit()

    def _set_device(self, device: str) -> None:
        if device and device != self.device:
            self.device = device
            self.events.device.emit()


def _progress_at(info: RunInfo, device: str) -> Progress:
    """A model opened at ``info.step``, as the progress of a run that ended there."""
    total = info.total_steps
    return Progress(step=info.step, total_steps=total, steps_per_epoch=info.steps_per_epoch,
                    epochs=info.config.train.epochs, new_steps=np.zeros(0, np.int64),
                    new_losses=np.zeros((0, len(LOSS_COLUMNS))), new_kl_weights=np.zeros(0),
                    kl_weight=info.config.train.beta, images_per_s=0.0, images_seen=0,
                    train_seconds=0.0, seconds_left=None, device=device, done=True,
                    stopped=info.step < total)
