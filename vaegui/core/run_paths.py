"""What a path the user gives means, on the command line and in File > Open: a run folder
means its latest checkpoint, and a checkpoint inside a run folder belongs to that run.

`vaegui train --resume`, `vaegui eval`, `vaegui export`, the app's ``--checkpoint`` and its
File > Open all take either.
"""

from __future__ import annotations

import os
from pathlib import Path

from .run_folder import METRICS_NAME


def checkpoint_of(path: str | os.PathLike) -> Path:
    """The checkpoint ``path`` means: a run folder's latest checkpoint, or the file itself. A
    folder that is not a readable run is a RunFolderError naming it."""
    target = Path(path)
    if not target.is_dir():
        return target
    from .run_reader import RunReader  # imports torch: only once a folder is being opened

    return RunReader(target).checkpoint


def run_of(path: str | os.PathLike) -> tuple[Path, Path | None]:
    """(checkpoint, run folder or None) of ``path``: a run folder and its latest checkpoint, or a
    checkpoint file and the run folder it lies in (None for a file on its own)."""
    if Path(path).is_dir():
        return checkpoint_of(path), Path(path)
    from .run_writer import RUN_JSON  # imports torch, as above

    checkpoint = Path(path)
    folder = checkpoint.parent
    if (folder / RUN_JSON).is_file() or (folder / METRICS_NAME).is_file():
        return checkpoint, folder
    return checkpoint, None
