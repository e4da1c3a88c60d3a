"""A run folder: ``checkpoint.pt``, ``metrics.jsonl`` and a lock, written by one process at a time.

A new run never writes into a folder that already holds a run (it would overwrite the checkpoint
and mix two runs' metrics); resuming may. While a run writes the folder it holds an OS lock
(``fcntl.flock`` on ``.lock``, which also records the writer's pid for the message a second
writer gets); the OS releases it when the process ends, however it ends, so a killed run never
leaves the folder locked. Where ``fcntl`` is missing (Windows) runs are not locked.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .atomic import atomic_write, remove_stale_temp_files
from .errors import RunFolderError, os_reason
from .paths import user_cache_dir

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

RUNS_ENV_VAR = "VAEGUI_RUNS_DIR"
CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.jsonl"
LOCK_NAME = ".lock"


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
    """Use as ``with RunFolder(path).open(resume=False) as folder: ...``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.checkpoint = self.path / CHECKPOINT_NAME
        self.metrics = self.path / METRICS_NAME
        self._lock_fd: int | None = None
        self._created = False

    def holds_run(self) -> bool:
        try:
            return self.checkpoint.exists() or (self.metrics.exists() and self.metrics.stat().st_size > 0)
        except OSError:
            return False

    def open(self, *, resume: bool, resumed_checkpoint: str | os.PathLike | None = None) -> "RunFolder":
        """Create the folder and lock it. A folder that holds a run is refused unless ``resume``
        and the resumed checkpoint is that run's (``resumed_checkpoint`` None: any run)."""
        self._create()
        self._lock()
        remove_stale_temp_files(self.metrics)  # a rewrite that a kill interrupted
        if self.holds_run() and not (resume and self._is_this_run(resumed_checkpoint)):
            self.close()
            what = ", ".join(p.name for p in (self.checkpoint, self.metrics) if p.exists())
            raise RunFolderError(self.path, f"already holds {'another' if resume else 'a'} run "
                                            f"({what}); resume it or choose another folder")
        return self

    def _is_this_run(self, resumed: str | os.PathLike | None) -> bool:
        if resumed is None or not self.checkpoint.exists():
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

    def _lock(self) -> None:
        lock_path = self.path / LOCK_NAME
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunFolderError(self.path, f"cannot write in it: {os_reason(exc)}") from None
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_pid(fd)
            os.close(fd)
            raise RunFolderError(self.path, f"another run (process {owner or '?'}) is writing it; "
                                            "wait for it to end or choose another folder") from None
        except OSError:
            pass  # a file system without locks (some network mounts): go on unlocked
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as exc:
            os.close(fd)
            raise RunFolderError(self.path, f"cannot write in it: {os_reason(exc)}") from None
        self._lock_fd = fd

    def close(self) -> None:
        """Release the lock; a folder this run created and left empty is removed again."""
        if self._lock_fd is None:
            return
        if self._created and not self.holds_run():
            try:
                (self.path / LOCK_NAME).unlink()
                self.path.rmdir()
            except OSError:
                pass
        os.close(self._lock_fd)
        self._lock_fd = None

    def __enter__(self) -> "RunFolder":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- metrics -------------------------------------------------------------------------------
    def append_metrics(self, record: dict[str, Any]) -> None:
        """One JSON line per epoch, flushed to disk before the next epoch starts."""
        try:
            with open(self.metrics, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise RunFolderError(self.path, f"cannot write {METRICS_NAME}: {os_reason(exc)}") from None

    def read_metrics(self) -> list[dict[str, Any]]:
        """The records in metrics.jsonl; a line a killed run left half-written is skipped."""
        try:
            lines = self.metrics.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise RunFolderError(self.path, f"cannot read {METRICS_NAME}: {os_reason(exc)}") from None
        records = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def write_metrics(self, records: list[dict[str, Any]]) -> None:
        """Replace metrics.jsonl with ``records`` (atomically; untouched when they are what it
        holds already)."""
        text = "".join(json.dumps(r) + "\n" for r in records)
        try:
            if self.metrics.exists() and text == self.metrics.read_text(encoding="utf-8", errors="replace"):
                return
            if not text and not self.metrics.exists():
                return
            atomic_write(self.metrics, lambda f: f.write(text.encode("utf-8")))
        except OSError as exc:
            raise RunFolderError(self.path, f"cannot rewrite {METRICS_NAME}: {os_reason(exc)}") from None


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""
