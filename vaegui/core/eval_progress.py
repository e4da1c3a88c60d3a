"""Progress of a long evaluation on stderr: what `vaegui eval` shows while the IWAE bound runs.

Thousands of importance samples take minutes, and a command that prints nothing for minutes
looks hung. On a terminal one line is rewritten in place (share done, time left); in a log (not
a terminal) a line is written now and then, the first only once the evaluation has run a while,
so that short evaluations print nothing but their result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

LOG_FIRST_S = 10.0  # not a terminal: the first line after this long
LOG_EVERY_S = 30.0  # ... and then at most this often
TTY_EVERY_S = 0.2


class EvalProgress:
    def __init__(self, stream: TextIO, what: str = "evaluating", clock: Callable[[], float] = time.monotonic):
        self.stream, self.what, self.clock = stream, what, clock
        try:
            self.tty = stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.started = clock()
        self._last = self.started - (TTY_EVERY_S if self.tty else LOG_EVERY_S - LOG_FIRST_S)
        self._shown = False

    def update(self, fraction: float) -> None:
        now = self.clock()
        if now - self._last < (TTY_EVERY_S if self.tty else LOG_EVERY_S) or not 0 < fraction < 1:
            return
        self._last = now
        line = f"vaegui: {self.what}: {fraction:.0%} done, {self.estimate(fraction, now)}"
        if self.tty:
            self.stream.write(f"\r{line}\033[K")
            self._shown = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def estimate(self, fraction: float, now: float) -> str:
        left = (now - self.started) * (1 - fraction) / fraction
        minutes, seconds = divmod(int(left + 0.5), 60)
        hours, minutes = divmod(minutes, 60)
        return f"about {hours}:{minutes:02d}:{seconds:02d} left" if hours else f"about {minutes}:{seconds:02d} left"

    def clear(self) -> None:
        """Remove a terminal's progress line (before the result, or an error, is printed)."""
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False
