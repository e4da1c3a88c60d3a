"""Atomic file replacement, and the clean-up of what interrupted replacements leave behind.

A file is written to a temporary file in the same folder (named after the target and the
writer's pid), flushed to disk and renamed over the target, so a reader sees the old file or the
new one, never half of one, whatever happens to the writer. A writer killed with SIGKILL cannot
remove its temporary file; the next write (or read) of the same target does, once the pid in the
name belongs to no live process.
"""

from __future__ import annotations

import glob
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# A temporary file that names no pid (another naming, or one from another machine) is only
# treated as abandoned after this long.
STALE_TEMP_SECONDS = 3600.0


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Replace ``path`` with what ``write(file)`` writes, atomically and durably. Any exception
    (OSError included) leaves the old file as it was and no temporary file."""
    path = Path(path)
    remove_stale_temp_files(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temp_files(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that interrupted writes of ``path`` left behind (best effort:
    a folder that cannot be written is left alone); returns those removed. A live writer's
    file is kept."""
    path = Path(path)
    removed = []
    pattern = os.path.join(glob.escape(str(path.parent)), f".{glob.escape(path.name)}.*.tmp")
    for tmp in glob.glob(pattern):
        try:
            if _is_stale(Path(tmp), path.name):
                os.unlink(tmp)
                removed.append(Path(tmp))
        except OSError:
            pass
    return removed


def remove_stale_temp_files_in(folder: str | os.PathLike) -> list[Path]:
    """The same for every target in ``folder``: for targets an interrupted writer will never
    write again (an epoch's file, when the run resumes from before that epoch)."""
    removed = []
    for tmp in Path(folder).glob(".*.tmp"):
        name = tmp.name[1:].rsplit(".", 3)[0]  # .{name}.{pid}.{random}.tmp
        try:
            if _is_stale(tmp, name):
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            pass
    return removed


def _is_stale(tmp: Path, name: str) -> bool:
    pid_text = tmp.name[len(name) + 2:].split(".", 1)[0]
    if pid_text.isdigit() and int(pid_text) != os.getpid() and not _process_alive(int(pid_text)):
        return True
    return time.time() - tmp.stat().st_mtime > STALE_TEMP_SECONDS


def _process_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # no cheap check: fall back to the file's age
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, someone else's
        return True
    return True


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
