"""Errors a user can act on: each names the file or setting and the reason."""

from __future__ import annotations

import os
import sys

# Exit codes of the command line and the app.
EXIT_USER_ERROR = 2  # a user's error, reported in one line (argparse's own code for a bad argument)
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as a shell reports a process that Ctrl-C ended
EXIT_TERMINATED = 143  # SIGTERM: 128 + SIGTERM, likewise (core/ending.py)


class VaeguiError(Exception):
    """Base class for every error shown to a user (GUI message box, CLI exit code 2)."""


class ConfigError(VaeguiError):
    """A setting has a value the engine cannot use."""


class DataError(VaeguiError):
    """A dataset cannot be found, downloaded or read."""


class TrainingError(VaeguiError):
    """Training cannot go on (for example the loss became non-finite)."""


class CheckpointError(VaeguiError):
    """A checkpoint file cannot be written or read."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"checkpoint {self.path}: {reason}")


class RunFolderError(VaeguiError):
    """A run folder cannot be used: it holds another run, another process writes it, or it
    cannot be created or written."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"run folder {self.path}: {reason}")


class Reported(Exception):
    """The error has been printed already (by this process or, in a multi-process run, by
    another rank): exit with code 2 without another word."""


def os_reason(exc: OSError) -> str:
    """An OSError in a few words, without the file name the caller names anyway
    ("Read-only file system", "No space left on device", "File name too long")."""
    return exc.strerror or str(exc) or type(exc).__name__


def describe_error(exc: BaseException) -> str:
    """A message a user can act on, for any exception raised by a run or an open."""
    torch = sys.modules.get("torch")  # not imported yet: the error cannot be torch's
    if torch is not None and isinstance(exc, torch.OutOfMemoryError):
        return ("The GPU ran out of memory. Try a smaller batch size or model, or the cpu device.\n"
                f"({str(exc).splitlines()[0] if str(exc) else 'out of memory'})")
    if isinstance(exc, VaeguiError):
        return str(exc)
    return f"Unexpected error: {type(exc).__name__}: {exc}"
