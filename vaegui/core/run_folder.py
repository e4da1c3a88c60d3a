"""A run folder: ``checkpoint.pt``, ``metrics.jsonl`` and a lock, written by one process at a time.

A new run never writes into a folder that already holds a run (it would overwrite the checkpoint
and mix two runs' metrics); resuming may. While a run writes the folder it holds an OS lock
(``fcntl.flock``) on the folder's own open descriptor, so deleting or replacing ``.lock`` (which
only records the writer's pid for the message a second writer gets) lets no second writer in;
the OS releases it when the process ends, however it ends, so a killed run never leaves the
folder locked. Where ``fcntl`` is missing (Windows) runs are not locked.

Every entry is reached through the folder's descriptor without following links (see
:mod:`.safe_dir`); a folder whose known entries are links, pipes or devices is refused before
anything is written, so a planted link cannot turn a run into a write outside its folder.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .errors import RunFolderError, os_reason
from .json_limits import loads_bounded
from .paths import user_cache_dir
from .safe_dir import SafeDir

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

RUNS_ENV_VAR = "VAEGUI_RUNS_DIR"
CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.jsonl"
LOCK_NAME = ".lock"
RUN_JSON = "run.json"
STEPS_CSV = "steps.csv"
BEST_NAME = "best.pt"
MAPS_DIR = "maps"
MAP_LABELS_NAME = "labels.npy"  # in MAPS_DIR: the test set's labels, in the order of the means
DECODERS_DIR = "decoders"
TENSORBOARD_DIR = "tensorboard"
HEARTBEAT_NAME = "heartbeat"
# What each known entry must be when it is there; anything else (a link above all) is refused.
ENTRY_KINDS = {LOCK_NAME: "file", RUN_JSON: "file", METRICS_NAME: "file", STEPS_CSV: "file",
               CHECKPOINT_NAME: "file", BEST_NAME: "file", HEARTBEAT_NAME: "file",
               MAPS_DIR: "folder", DECODERS_DIR: "folder", TENSORBOARD_DIR: "folder"}
METRICS_CAP = 256 << 20  # bytes of metrics.jsonl read at once (a line per epoch is ~1-60 kB)
LOCK_CAP = 64


def default_runs_dir() -> Path:
    """Where the app keeps its runs: $VAEGUI_RUNS_DIR, else beside the data cache
    (``~/.cache/vaegui/runs`` on Linux)."""
    chosen = os.environ.get(RUNS_ENV_VAR)
    return Path(chosen).expanduser() if chosen else user_cache_dir() / "runs"


def run_name(dataset: str, when: float | None = None) -> str:
    """The name of a new run's folder: ``<dataset>-<YYYYmmdd-HHMMSS>`` (a folder dataset's path
    made safe for a file name)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    return f"{dataset.replace(':', '-').replace('/', '_')}-{stamp}"


def new_run_path(runs_dir: str | os.PathLike, dataset: str) -> Path:
    """A folder for a new run in ``runs_dir`` that holds nothing yet: ``run_name``, with -2, -3,
    ... when a run started in the same second."""
    base = Path(runs_dir) / run_name(dataset)
    path, k = base, 1
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


class RunFolder:
    """Use as ``with RunFolder(path).open(resume=False) as folder: ...``; ``folder.dir`` is the
    open folder every file of the run is written through."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.checkpoint = self.path / CHECKPOINT_NAME
        self.metrics = self.path / METRICS_NAME
        self.dir: SafeDir | None = None
        self._created = False

    def holds_run(self) -> bool:
        if self.dir is None:
            return False
        try:
            metrics = self.dir.lstat(METRICS_NAME)
            return self.dir.lstat(CHECKPOINT_NAME) is not None or (metrics is not None and metrics.st_size > 0)
        except OSError:
            return False

    def open(self, *, resume: bool, resumed_checkpoint: str | os.PathLike | None = None) -> "RunFolder":
        """Create the folder and lock it. A folder that holds a run is refused unless ``resume``
        and the resumed checkpoint is that run's (``resumed_checkpoint`` None: any run); so is
        one whose known entries are not what this writer makes (a link, a pipe)."""
        try:
            self._create()
            self._lock()
            self._check_entries()
            self.dir.remove_stale_temp_files(METRICS_NAME)  # a rewrite that a kill interrupted
            if self.holds_run() and not (resume and self._is_this_run(resumed_checkpoint)):
                what = ", ".join(n for n in (CHECKPOINT_NAME, METRICS_NAME) if self.dir.lstat(n))
                raise RunFolderError(self.path, f"already holds {'another' if resume else 'a'} run "
                                                f"({what}); resume it or choose another folder")
            self._write_pid()
        except BaseException:
            self.close()
            raise
        return self

    def _is_this_run(self, resumed: str | os.PathLike | None) -> bool:
        if resumed is None or self.dir.lstat(CHECKPOINT_NAME) is None:
            return True
        try:
            return os.path.samefile(resumed, self.checkpoint)
        except OSError:
            return False

    def _create(self) -> None:
        try:
            if self.path.exists() and not self.path.is_dir():
                raise RunFolderError(self.path, "is a file, not a folder")
            self._created = not self.path.exists()
            self.path.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise RunFolderError(self.path, "a part of the path is a file, not a folder") from None
        except OSError as exc:
            raise RunFolderError(self.path, f"cannot create it: {os_reason(exc)}") from None
        except ValueError as exc:  # an embedded NUL, for one
            raise RunFolderError(self.path, f"not a usable folder name ({exc})") from None
        self.dir = SafeDir.open(self.path)

    def _lock(self) -> None:
        """Lock the folder's own descriptor: no file in it (which anyone may delete or replace)
        decides who writes."""
        if fcntl is None or not isinstance(self.dir.fd, int):
            return
        try:
            fcntl.flock(self.dir.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_pid(self.dir)
            raise RunFolderError(self.path, f"another run (process {owner or '?'}) is writing it; "
                                            "wait for it to end or choose another folder") from None
        except OSError:
            return  # a file system without locks (some network mounts): go on unlocked
        # The path must still name the folder locked (not one renamed away, with another put in
        # its place, between the open and the lock).
        try:
            same = os.path.samestat(os.stat(self.path), os.fstat(self.dir.fd))
        except OSError:
            same = False
        if not same:
            raise RunFolderError(self.path, "was replaced while it was being opened; try again")

    def _check_entries(self) -> None:
        for name, kind in ENTRY_KINDS.items():
            found = self.dir.kind(name)
            if found is not None and found != kind:
                what = {"link": "a symbolic link", "other": "a pipe, device or socket",
                        "file": "a file", "folder": "a folder"}[found]
                raise RunFolderError(self.path, f"{name} is {what}, not a {kind}; vaegui never "
                                                f"writes through it: remove it or choose another folder")

    def _write_pid(self) -> None:
        try:
            self.dir.write_atomic(LOCK_NAME, lambda f: f.write(f"{os.getpid()}\n".encode()))
        except RunFolderError as exc:
            raise RunFolderError(self.path, f"cannot write in it: {exc.reason.split(': ', 1)[-1]}") from None

    def close(self) -> None:
        """Release the lock; a folder this run created and left empty is removed again."""
        if self.dir is None:
            if self._created:  # made, then interrupted (Ctrl-C) before it was opened
                self._created = False
                try:
                    self.path.rmdir()  # only when empty
                except OSError:
                    pass
            return
        if self._created and not self.holds_run():
            # A run stopped before its first save (Ctrl-C while it starts) leaves no folder: only
            # the files and empty folders this writer makes go, so anything else keeps it.
            for name in (LOCK_NAME, HEARTBEAT_NAME, RUN_JSON, STEPS_CSV):
                self.dir.unlink(name)
                self.dir.remove_stale_temp_files(name)  # a write that Ctrl-C cut short
            for name in (MAPS_DIR, DECODERS_DIR):
                try:
                    if isinstance(self.dir.fd, int):
                        os.rmdir(name, dir_fd=self.dir.fd)  # an empty folder only; never a link
                    else:
                        (self.path / name).rmdir()
                except OSError:
                    pass
            try:
                self.path.rmdir()  # only when empty: nothing but this run's own files is deleted
            except OSError:
                pass
        self.dir.close()  # the lock goes with the descriptor
        self.dir = None

    def __enter__(self) -> "RunFolder":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- metrics -------------------------------------------------------------------------------
    def append_metrics(self, record: dict[str, Any]) -> None:
        """One JSON line per epoch, flushed to disk before the next epoch starts."""
        self.dir.append(METRICS_NAME, (json.dumps(record) + "\n").encode("utf-8"), sync=True)

    def read_metrics(self) -> list[dict[str, Any]]:
        """The records in metrics.jsonl; a line a killed run left half-written is skipped."""
        return _metrics_of(self.dir)

    def write_metrics(self, records: list[dict[str, Any]]) -> None:
        """Replace metrics.jsonl with ``records`` (atomically; untouched when they are what it
        holds already)."""
        text = "".join(json.dumps(r) + "\n" for r in records)
        old = self.dir.read(METRICS_NAME, METRICS_CAP)
        if (old is None and not text) or (old is not None and text == old.decode("utf-8", errors="replace")):
            return
        try:
            self.dir.write_atomic(METRICS_NAME, lambda f: f.write(text.encode("utf-8")))
        except RunFolderError as exc:
            raise RunFolderError(self.path, exc.reason.replace("cannot write", "cannot rewrite", 1)) from None


def _read_pid(folder: SafeDir) -> str:
    try:
        text = (folder.read(LOCK_NAME, LOCK_CAP) or b"").decode("ascii", "replace").strip()
    except RunFolderError:
        return ""
    return text if text.isdigit() else ""


def _metrics_of(folder: SafeDir) -> list[dict[str, Any]]:
    data = folder.read(METRICS_NAME, METRICS_CAP)
    records = []
    for line in (data or b"").decode("utf-8", errors="replace").splitlines():
        try:
            record = loads_bounded(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def metrics_of(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The metrics records of a run folder, read without taking it (another process may be
    writing it); a folder that cannot be read has none."""
    try:
        with SafeDir.open(path) as folder:
            return _metrics_of(folder)
    except (RunFolderError, OSError):
        return []


def writer_busy(path: str | os.PathLike) -> bool:
    """Whether a process holds the folder's writer lock (see RunFolder._lock)."""
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
