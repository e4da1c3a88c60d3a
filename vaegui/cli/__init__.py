"""The command line: ``vaegui train``, ``vaegui eval``, ``vaegui export``, and ``vaegui`` alone
for the desktop app. One module per command; shared options in :mod:`.options`."""

from .train import EXIT_INTERRUPTED, EXIT_USER_ERROR, OneLineParser, fail, int_at_least, main

__all__ = ["EXIT_INTERRUPTED", "EXIT_USER_ERROR", "OneLineParser", "fail", "int_at_least", "main"]
