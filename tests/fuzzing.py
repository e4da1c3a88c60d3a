"""What the fuzz tests share: one in-process invocation of an entry point, under a deadline."""

from __future__ import annotations

import contextlib
import io
import signal


class Hang(Exception):
    pass


def invoke(entry, argv, deadline_s):
    """(exit code, stdout, stderr, exception or None) of ``entry(argv)``; a call still running
    after ``deadline_s`` seconds is stopped with Hang (SIGALRM: POSIX only)."""
    out, err = io.StringIO(), io.StringIO()

    def expired(*_):
        raise Hang(f"no answer within {deadline_s} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(deadline_s)
    code, failure = None, None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = entry(argv)
    except SystemExit as exc:  # argparse's own exit: the console script turns it into the code
        code = exc.code
    except BaseException as exc:  # noqa: BLE001 - anything else is a traceback for a user
        failure = exc
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return code, out.getvalue(), err.getvalue(), failure
