"""A folder reached through one open descriptor, whose entries are never reached through a link.

A run folder is untrusted: it is copied from servers, mounted, edited by hand. An entry planted
there as a symbolic link (``.lock`` -> a user's file, ``maps/`` -> a user's folder) would make a
path-based writer truncate, append to or delete what the link points at. So every create, append,
replace and delete here is relative to the folder's descriptor (``dir_fd``) with ``O_NOFOLLOW``
(a link is refused, not followed), subfolders are opened with ``O_DIRECTORY | O_NOFOLLOW``, and
only regular files are ever deleted. Reads open with ``O_NONBLOCK`` and check ``fstat`` before
reading, so a named pipe or a device in the folder is refused instead of blocking for ever.

The folder the user named may itself be a link (a ``runs`` folder on another disk): that choice
is the user's, so only its entries are held to these rules.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from typing import BinaryIO

from .atomic import DIR_FD, at, atomic_write, close_folder, open_folder, remove_stale_temp_files
from .errors import RunFolderError, os_reason

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class SafeDir:
    """An open folder (``SafeDir.open(path)``); ``where`` names it in messages. ``fd`` is its
    descriptor, or its path where the system has none for folders (atomic.open_folder)."""

    def __init__(self, fd: int | str, path: str | os.PathLike, where: str = ""):
        self.fd, self.path, self.where = fd, os.fspath(path), where

    @classmethod
    def open(cls, path: str | os.PathLike) -> "SafeDir":
        try:
            if not DIR_FD and not os.path.isdir(path):
                raise FileNotFoundError(path) if not os.path.lexists(path) else NotADirectoryError(path)
            fd = open_folder(path)
        except FileNotFoundError:
            raise RunFolderError(path, "no such folder") from None
        except NotADirectoryError:
            raise RunFolderError(path, "is a file, not a folder") from None
        except OSError as exc:
            raise RunFolderError(path, f"cannot open it: {os_reason(exc)}") from None
        return cls(fd, path)

    def close(self) -> None:
        if self.fd is not None:
            close_folder(self.fd)
            self.fd = None

    def __enter__(self) -> "SafeDir":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _name(self, name: str) -> str:
        return f"{self.where}{name}"

    def _error(self, name: str, what: str, exc: OSError) -> RunFolderError:
        if exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR and what == "open"):
            reason = "is a symbolic link or not a folder; vaegui never writes through links"
            return RunFolderError(self.path, f"{self._name(name)} {reason}")
        return RunFolderError(self.path, f"cannot {what} {self._name(name)}: {os_reason(exc)}")

    # ---- what is there ----------------------------------------------------------------------
    def lstat(self, name: str) -> os.stat_result | None:
        """The entry itself (a link is not followed); None when there is none."""
        target, kw = at(self.fd, name)
        try:
            return os.stat(target, follow_symlinks=False, **kw)
        except FileNotFoundError:
            return None

    def kind(self, name: str) -> str | None:
        """"file", "folder", "link", "other" (a pipe, a device, a socket) or None."""
        st = self.lstat(name)
        if st is None:
            return None
        mode = st.st_mode
        return ("file" if stat.S_ISREG(mode) else "folder" if stat.S_ISDIR(mode)
                else "link" if stat.S_ISLNK(mode) else "other")

    def names(self) -> list[str]:
        return os.listdir(self.fd)

    def subdir(self, name: str, create: bool = False) -> "SafeDir":
        """The subfolder ``name`` (created when asked); a link or a file there is refused."""
        target, kw = at(self.fd, name)
        if create:
            try:
                os.mkdir(target, 0o755, **kw)
            except FileExistsError:
                pass
            except OSError as exc:
                raise self._error(name, "create", exc) from None
        if not DIR_FD:  # by path: a link is refused by looking first
            if self.kind(name) != "folder":
                raise self._error(name, "open", OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR)))
            return SafeDir(target, self.path, f"{self._name(name)}/")
        try:
            fd = os.open(target, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, **kw)
        except OSError as exc:
            raise self._error(name, "open", exc) from None
        return SafeDir(fd, self.path, f"{self._name(name)}/")

    # ---- writing ----------------------------------------------------------------------------
    def write_atomic(self, name: str, write: Callable[[BinaryIO], None]) -> None:
        """Replace the entry ``name`` with what ``write`` writes (a link there is replaced,
        never written through: the rename puts a new file in its place)."""
        try:
            atomic_write(name, write, dir_fd=self.fd)
        except OSError as exc:
            raise self._error(name, "write", exc) from None

    def append(self, name: str, data: bytes, sync: bool = False) -> None:
        target, kw = at(self.fd, name)
        if not DIR_FD and self.kind(name) == "link":  # no O_NOFOLLOW here: look first
            raise self._error(name, "write", OSError(errno.ELOOP, os.strerror(errno.ELOOP)))
        try:
            fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _NONBLOCK | _CLOEXEC,
                         0o644, **kw)
        except OSError as exc:
            raise self._error(name, "write", exc) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise RunFolderError(self.path, f"{self._name(name)} is not a regular file")
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if sync:
                os.fsync(fd)
        except OSError as exc:
            raise self._error(name, "write", exc) from None
        finally:
            os.close(fd)

    def touch(self, name: str) -> None:
        """Renew the entry's time stamp (best effort; a link's target is never touched)."""
        target, kw = at(self.fd, name)
        try:
            os.utime(target, follow_symlinks=False, **kw)
        except (OSError, NotImplementedError):
            pass

    def unlink(self, name: str) -> bool:
        """Delete ``name`` when it is a regular file; anything else is left alone."""
        try:
            if self.kind(name) != "file":
                return False
            target, kw = at(self.fd, name)
            os.unlink(target, **kw)
            return True
        except OSError:
            return False

    def remove_stale_temp_files(self, name: str | None = None) -> None:
        """The temporary files that interrupted writes (of ``name``, or of any target) left."""
        remove_stale_temp_files(name, dir_fd=self.fd)

    # ---- reading ----------------------------------------------------------------------------
    def read(self, name: str, cap: int, offset: int = 0) -> bytes | None:
        """The bytes of the regular file ``name`` after ``offset`` (None when there is none);
        a link, a pipe, a device or a folder there, or more than ``cap`` bytes, is refused."""
        return read_regular(name, cap, offset, dir_fd=self.fd, folder=self.path, shown=self._name(name))


def read_regular(name: str | os.PathLike, cap: int, offset: int = 0, *, dir_fd: int | str | None = None,
                 folder: str | os.PathLike = "", shown: str = "") -> bytes | None:
    """Read a regular file without following a link and without blocking on a pipe; None when
    there is none. Errors are RunFolderError(folder, "<shown> ...")."""
    shown = shown or os.fspath(name)
    target, kw = at(dir_fd, os.fspath(name)) if dir_fd is not None else (os.fspath(name), {})
    try:
        if not DIR_FD and os.path.islink(target):  # no O_NOFOLLOW here: look first
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
        fd = os.open(target, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC, **kw)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RunFolderError(folder, f"{shown} is a symbolic link; vaegui follows none in a run folder") from None
        raise RunFolderError(folder, f"{shown} cannot be read: {os_reason(exc)}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            what = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a pipe or a device)"
            raise RunFolderError(folder, f"{shown} is {what}")
        if st.st_size - offset > cap:
            raise RunFolderError(folder, f"{shown} is {st.st_size:,} bytes, more than the "
                                         f"{cap:,} such a file may have")
        chunks, left = [], cap + 1
        os.lseek(fd, offset, os.SEEK_SET)
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > cap:  # it grew while read
            raise RunFolderError(folder, f"{shown} is more than the {cap:,} bytes such a file may have")
        return data
    except OSError as exc:
        raise RunFolderError(folder, f"{shown} cannot be read: {os_reason(exc)}") from None
    finally:
        os.close(fd)
