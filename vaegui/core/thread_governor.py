"""The torch CPU threads of training: pinning a thread's count, and a governor that tunes the
training thread's count to the step rate it measures.

torch's CPU thread count belongs to the thread that sets it (with OpenMP, each thread has its own
count, and each thread that runs a multi-threaded operation gets an OpenMP pool of its own). On
a shared machine a second pool, or more threads than the cores free, makes every operation wait
for a descheduled thread: training beside one busy process ran at a third of its 1-thread speed
with 2 threads here. Hence one multi-threaded pool per process (the training thread's), every
other thread pinned to 1, and a training count chosen by measurement, not by the core count.

A catch (ATen/ParallelOpenMP.cpp, pytorch#37461): ``torch.set_num_threads`` also stores the
count process-wide, and a thread adopts that stored count the first time torch initialises it,
which is lazily at its first parallel operation or ``torch.get_num_threads()``. A thread that
only calls ``set_num_threads(1)`` and then idles is switched to whatever count another thread
set meanwhile. :func:`pin_threads` initialises the thread first, so no later setting elsewhere
reaches it (tests/core/test_threads.py checks both behaviours).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .config import THREADS_AUTO

# A measurement window: this much training time (a few dozen steps of the reference MLP). Longer
# windows are steadier under load but cost more while a slower count is tried.
WINDOW_S = 0.3
# The first probe's windows are shorter: it starts at 1 thread, which on a quiet machine runs at
# about 0.7 of 2, so a whole window there cost 3-4% of a 3 s run (about 1% at 0.1 s). Its 1 and
# 2 threads differ by a third or more whichever way the machine is, which a dozen steps tell
# apart; the re-probes that follow (FIRST_REPROBE_S) measure with whole windows.
FIRST_WINDOW_S = 0.1
# Steps left unmeasured after the first change to a count: its first step starts the pool's
# threads. Later changes to it are measured at once: beside a busy process every unmeasured step
# at a slow count is a step lost.
SETTLE_STEPS = 1
# ... except that an unmeasured step far slower than the probe's best so far, below this share
# of its rate, ends the probe of its count at once. Starting 2 threads made a first step here up
# to 1.7 times as slow as a 1-thread step on a quiet machine, while beside a busy process 2-thread
# steps took 3 to 13 times as long, and the measured step that followed cost as much again.
SETTLE_CUT = 0.4
# A probe's window ends after a step that leaves its rate below this share of the best rate of
# the probe so far: beside a busy process a 2-thread step can take 15 times a 1-thread one, and a
# whole window of them would cost more than the probe could ever win back in a short run. On a
# quiet machine 1 thread runs at about 0.65 of 2, so a cut at 0.5 let every re-probe spend a
# whole window at 1 thread; at 0.8 it costs a step. A count cut by a burst of other work is
# measured again at the next probe.
CUT = 0.8
# Probe again after this much training time at the chosen count (conditions change: a build
# starts or ends), and at once when two windows in a row fall below DROP times the recent rate.
REPROBE_S = 20.0
# The first probes come sooner (after 2 s, then 4, 8, ... up to REPROBE_S): one window is a small
# sample, and a burst of other work during it must not decide a whole short run.
FIRST_REPROBE_S = 2.0
DROP = 0.75
# A candidate replaces the count in use only when faster by more than this share: noise must
# not make the count flap.
MARGIN = 0.03


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, e.g. under taskset or a container
    limit), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


THREADS_PER_CPU = 4  # the most threads per CPU a count may ask for (see max_threads)


def max_threads() -> int:
    """The most torch threads one training thread may have here: a few per CPU this process may
    use. Far more is never faster, and thousands abort the process inside the OpenMP runtime
    ("Thread creation failed") instead of failing cleanly."""
    return THREADS_PER_CPU * available_cpus()


def check_threads(count: int | str) -> int | str:
    """``count`` when this machine can run it (or "auto"), else ConfigError with the reason."""
    from .errors import ConfigError

    if isinstance(count, int) and count > max_threads():
        raise ConfigError(f"threads: {count:,} is more than {THREADS_PER_CPU} per CPU this process may "
                          f"use ({available_cpus()} CPUs, so at most {max_threads()})")
    return count


def pin_threads(count: int) -> None:
    """Give the calling thread ``count`` torch CPU threads, for good (see the module's note)."""
    import torch

    if torch.get_num_threads() != count:  # the call also initialises this thread
        torch.set_num_threads(count)


def ladder(top: int) -> list[int]:
    """The counts the governor tries: 1, 2, 4, ... up to ``top``, and ``top`` itself."""
    counts, n = [], 1
    while n < top:
        counts.append(n)
        n *= 2
    return counts + [top]


class ThreadGovernor:
    """Chooses a thread count by measuring the training step rate; torch-free and clock-free
    (the trainer reports each step's images and seconds, and ``apply`` sets the count), so it is
    tested with made-up rates.

    It probes each count of :func:`ladder` for one window, fewest threads first (the safe
    guess on a busy machine, against which a slow count is cut short), and keeps the fastest.
    Then it watches: after REPROBE_S of training, or when the rate drops, it probes again, the
    count in use and its neighbours on the ladder."""

    def __init__(self, top: int, apply: Callable[[int], None], *, window_s: float = WINDOW_S,
                 first_window_s: float = FIRST_WINDOW_S, settle_steps: int = SETTLE_STEPS,
                 reprobe_s: float = REPROBE_S, drop: float = DROP, margin: float = MARGIN,
                 cut: float = CUT):
        self.ladder = ladder(max(1, top))
        self._apply, self.window_s, self.settle_steps = apply, window_s, settle_steps
        self.first_window_s = min(first_window_s, window_s)
        self.reprobe_s, self.drop, self.margin, self.cut = reprobe_s, drop, margin, cut
        self.threads = self.ladder[0]
        self.probes = 1  # probes started, the first one included
        self._queue = list(self.ladder)  # counts to measure
        self._rates: dict[int, float] = {}  # of this probe
        self._before = self.threads  # the count in use when this probe started
        self._recent = 0.0  # the rate while holding (moving average of windows that did not drop)
        self._held_s = 0.0  # training time since the last probe ended
        self._reprobe_after = min(FIRST_REPROBE_S, reprobe_s)  # doubles up to reprobe_s
        self._low = 0  # windows in a row below DROP times the recent rate
        self._settle = settle_steps
        self._started = {self.threads}  # counts whose pool threads have been started
        self._images, self._seconds = 0, 0.0  # of the window being measured
        apply(self.threads)

    @property
    def probing(self) -> bool:
        return len(self.ladder) > 1 and bool(self._queue)

    def record(self, images: int, seconds: float) -> None:
        """One training step of ``images`` that took ``seconds``."""
        if len(self.ladder) == 1:
            return  # nothing to choose from
        if self._settle > 0:
            self._settle -= 1
            if self._queue and images / seconds < SETTLE_CUT * self._best():
                self._probed(images / seconds)
            return
        self._images += images
        self._seconds += seconds
        window_s = self.first_window_s if self.probes == 1 and self._queue else self.window_s
        if self._seconds < window_s and not self._hopeless():
            return
        rate, window = self._images / self._seconds, self._seconds
        self._images, self._seconds = 0, 0.0
        if self._queue:
            self._probed(rate)
        else:
            self._held(rate, window)

    def _best(self) -> float:
        """The best rate of this probe so far (0 while holding)."""
        return max(self._rates.values(), default=0.0) if self._queue else 0.0

    def _hopeless(self) -> bool:
        """The count being probed is already far slower than one probed before it."""
        return self._images / self._seconds < self.cut * self._best()

    def _probed(self, rate: float) -> None:
        self._rates[self._queue.pop(0)] = rate
        if self._queue:
            self._switch(self._queue[0])
            return
        best = max(self._rates, key=self._rates.get)
        if self._rates[best] <= self._rates[self._before] * (1 + self.margin):
            best = self._before
        self._recent, self._held_s, self._low = self._rates[best], 0.0, 0
        self._switch(best)

    def _held(self, rate: float, seconds: float) -> None:
        self._held_s += seconds
        if rate < self.drop * self._recent:
            self._low += 1
        else:
            self._low = 0
            self._recent = 0.7 * self._recent + 0.3 * rate
        if self._low >= 2 or self._held_s >= self._reprobe_after:
            self._reprobe_after = min(2 * self._reprobe_after, self.reprobe_s)
            self._start_probe()

    def _start_probe(self) -> None:
        """Measure the count in use again (conditions changed) and its neighbours."""
        i = self.ladder.index(self.threads)
        self._queue = [self.threads] + self.ladder[max(0, i - 1):i] + self.ladder[i + 1:i + 2]
        self._rates, self._before = {}, self.threads
        self.probes += 1

    def _switch(self, count: int) -> None:
        if count != self.threads:
            self.threads = count
            self._apply(count)
            self._settle = 0 if count in self._started else self.settle_steps
            self._started.add(count)


class FixedThreads:
    """A count given by the user: set once, never changed."""

    def __init__(self, count: int, apply: Callable[[int], None]):
        self.threads = count
        apply(count)

    def record(self, images: int, seconds: float) -> None:
        pass


def thread_control(setting: int | str, apply: Callable[[int], None] | None = None,
                   top: int | None = None) -> ThreadGovernor | FixedThreads:
    """What the training thread runs with: a governor for ``"auto"``, else the fixed count;
    ``apply`` sets the calling thread's count (default :func:`pin_threads`)."""
    apply = apply or pin_threads
    if setting == THREADS_AUTO:
        return ThreadGovernor(top or available_cpus(), apply)
    # A count saved on a bigger machine (a resumed checkpoint) runs with what this one can take;
    # a count asked for here is refused with the reason first (check_threads).
    return FixedThreads(min(int(setting), max_threads()), apply)
