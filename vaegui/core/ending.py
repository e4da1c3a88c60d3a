"""How a vaegui process ends when it is asked to: Ctrl-C (SIGINT) and SIGTERM take one path.

SIGTERM is what a service manager, a job scheduler or a closing terminal sends. Python's default
for it is to die at once, which loses a partial epoch and leaves temporary files behind. So
:func:`sigterm_as_ctrl_c` makes SIGTERM run whatever SIGINT's handler is at that moment (the
training loop's "stop within a step and save", the app's "stop, save and close", or Python's
KeyboardInterrupt), and the process then says so in its one line ("terminated") and exits with
128 + the signal's number, as a shell reports it: 130 for Ctrl-C, 143 for SIGTERM.
"""

from __future__ import annotations

import signal
import threading

from .errors import EXIT_INTERRUPTED, EXIT_TERMINATED

_state = {"terminated": False}


def sigterm_as_ctrl_c() -> None:
    """From now on SIGTERM does what Ctrl-C does (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        return
    signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum, frame) -> None:
    _state["terminated"] = True
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    elif handler == signal.SIG_DFL:
        raise KeyboardInterrupt
    # SIG_IGN: the process is already on its way out after a Ctrl-C; SIGTERM changes nothing


def terminated() -> bool:
    """Whether a SIGTERM came (the ending is then a termination, not an interrupt)."""
    return _state["terminated"]


def stop_word() -> str:
    """The word of the one line: "terminated" after a SIGTERM, else "interrupted"."""
    return "terminated" if terminated() else "interrupted"


def exit_code(code: int) -> int:
    """``code``, with an interrupt's 130 made SIGTERM's 143 when a SIGTERM caused it."""
    return EXIT_TERMINATED if code == EXIT_INTERRUPTED and terminated() else code
