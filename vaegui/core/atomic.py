"""Atomic file replacement, and the clean-up of what interrupted replacements leave behind.

A file is written to a temporary file in the same folder (named after the target and the
writer's pid), flushed to disk and renamed over the target, so a reader sees the old file or the
new one, never half of one, whatever happens to the writer. A writer killed with SIGKILL cannot
remove its temporary file; the next write (or read) of the same target does, once the pid in the
name belongs to no live process.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# A temporary file that names no pid (another naming, or one from another machine) is only
# treated as abandoned after this long.
STALE_TEMP_SECONDS = 3600.0
# .{target}.{pid}.{random}.tmp, as atomic_write (and tempfile.mkstemp before it) names them.
_OUR_TEMP = re.compile(r"^\.(?P<target>.+)\.\d+\.[a-z0-9_]{8}\.tmp$")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
# Folders reached through a descriptor (POSIX). Elsewhere by path: a link is then checked with
# lstat before use, which a racing attacker could beat, but Windows links need privileges.
DIR_FD = os.name == "posix" and {os.open, os.stat, os.unlink, os.mkdir, os.utime} <= os.supports_dir_fd
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None], *,
                 dir_fd: int | str | None = None) -> None:
    """Replace ``path`` with what ``write(file)`` writes, atomically and durably. Any exception
    (OSError included) leaves the old file as it was and no temporary file. With ``dir_fd``
    (an :func:`open_folder`), ``path`` is a name in that folder. The temporary file is created exclusively without
    following links, and the rename replaces a link at ``path`` rather than writing through it."""
    path = Path(path)
    folder_fd = dir_fd if dir_fd is not None else open_folder(path.parent)
    try:
        remove_stale_temp_files(path.name, dir_fd=folder_fd)
        tmp = None
        try:
            for _ in range(100):
                # Named before it exists, so that a Ctrl-C landing just after the file is made
                # still finds it below: the pid and the random token make the name this call's.
                tmp = f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
                target, kw = at(folder_fd, tmp)
                try:
                    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o644, **kw)
                    break
                except FileExistsError:
                    tmp = None
            if tmp is None:
                raise FileExistsError(errno.EEXIST, "no free temporary name", str(path))
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            if isinstance(folder_fd, int):
                os.replace(tmp, path.name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
                _fsync_fd(folder_fd)
            else:
                os.replace(at(folder_fd, tmp)[0], at(folder_fd, path.name)[0])
        except BaseException as exc:
            with contextlib.suppress(OSError):
                if tmp is not None:
                    target, kw = at(folder_fd, tmp)
                    os.unlink(target, **kw)
            # A failed write (a full disk) that a library reported as its own error (torch:
            # RuntimeError "unexpected pos") is the OSError it is, for a one-line message.
            if not isinstance(exc, (OSError, KeyboardInterrupt)) and \
                    context_of(exc, KeyboardInterrupt) is None and (cause := context_of(exc, OSError)):
                raise cause from None
            raise
    finally:
        if dir_fd is None:
            close_folder(folder_fd)


def context_of(exc: BaseException | None, kind: type) -> BaseException | None:
    """``exc``, or the first exception of ``kind`` it was raised while handling."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return exc
        seen.add(id(exc))
        exc = exc.__context__
    return None


def remove_stale_temp_files(path: str | os.PathLike | None, *, dir_fd: int | str | None = None) -> list[str]:
    """Delete the temporary files that interrupted writes of ``path`` left behind (best effort:
    a folder that cannot be written is left alone); returns the names removed. A live writer's
    file is kept. ``path`` None with ``dir_fd``: those of every target in that folder (for
    targets an interrupted writer will never write again: an epoch's file, when the run resumes
    from before that epoch). Only regular files are deleted, never what a link points at."""
    if dir_fd is None:
        path = Path(path)
        try:
            folder_fd = open_folder(path.parent)
        except OSError:
            return []
        try:
            return remove_stale_temp_files(path.name, dir_fd=folder_fd)
        finally:
            close_folder(folder_fd)
    target = None if path is None else Path(path).name
    removed = []
    try:
        names = os.listdir(dir_fd)
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(".") and name.endswith(".tmp")):
            continue
        if target is not None:
            if not name.startswith(f".{target}."):
                continue
            of = target
        elif (ours := _OUR_TEMP.match(name)) is not None:
            of = ours["target"]
        else:
            continue  # not named as atomic_write names its files: someone else's
        try:
            if _is_stale(name, of, dir_fd):
                where, kw = at(dir_fd, name)
                os.unlink(where, **kw)
                removed.append(name)
        except OSError:
            pass
    return removed


def _is_stale(tmp: str, name: str, dir_fd: int | str) -> bool:
    target, kw = at(dir_fd, tmp)
    st = os.stat(target, follow_symlinks=False, **kw)
    if not stat.S_ISREG(st.st_mode):
        return False  # not one of ours: left alone
    pid_text = tmp[len(name) + 2:].split(".", 1)[0]
    if pid_text.isdigit() and int(pid_text) != os.getpid() and not _process_alive(int(pid_text)):
        return True
    return time.time() - st.st_mtime > STALE_TEMP_SECONDS


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


def open_folder(folder: str | os.PathLike) -> int | str:
    """A folder to work in by name: its open descriptor, or, where the system has no descriptor
    for folders (Windows), its path."""
    if not DIR_FD:
        return os.fspath(folder)
    return os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC)


def close_folder(folder: int | str) -> None:
    if isinstance(folder, int):
        os.close(folder)


def at(folder: int | str, name: str) -> tuple[str, dict]:
    """(what to pass, keyword arguments) to reach ``name`` in an open_folder() folder."""
    if isinstance(folder, int):
        return name, {"dir_fd": folder}
    return os.path.join(folder, name), {}


def _fsync_fd(fd: int) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be synced."""
    with contextlib.suppress(OSError):
        os.fsync(fd)
