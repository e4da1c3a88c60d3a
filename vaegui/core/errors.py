"""Errors a user can act on: each names the file or setting and the reason."""

from __future__ import annotations

import os


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
