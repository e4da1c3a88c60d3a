"""A sweep: a grid of `vaegui train` runs in one folder, and its summary.

``vaegui sweep --beta 0.5,1,4 --latent-dim 2,16 --out DIR`` trains every combination of the
listed values (their product) in a run folder of its own under DIR, named after the swept
settings' values (``beta=4,latent_dim=16``, sorted by name, so that the same sweep typed in
another order finds the same folders). ``DIR/summary.csv`` and ``DIR/summary.json`` hold one row
per run that has started, rewritten atomically as each run starts and ends.

What a run folder holds decides what a sweep that starts again does with it (the folder, not the
summary, is the truth: a sweep killed between a run's end and its summary row loses nothing):
a run whose metrics reach its last epoch is finished and left alone; one with a checkpoint is
resumed from it; any other starts afresh.

Torch-free, like the sweep command itself, which only starts `vaegui train` processes.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import atomic_write
from .errors import RunFolderError, os_reason
from .run_folder import CHECKPOINT_NAME, metrics_of

SUMMARY_CSV = "summary.csv"
SUMMARY_JSON = "summary.json"
SWEEP_FORMAT = "vaegui-sweep"
SWEEP_VERSION = 1
LOGS_DIR = "logs"  # DIR/logs/<run>.log: each run's output, appended across resumes
SINGLE_RUN_NAME = "run"  # the folder of a "sweep" that sweeps nothing

# Statuses of a summary row. "interrupted": stopped by Ctrl-C (its checkpoint is saved); the next
# sweep of the folder resumes it, as it does a "running" run whose sweep was killed.
RUNNING, FINISHED, FAILED, INTERRUPTED = "running", "finished", "failed", "interrupted"
# A run's result columns: metrics.jsonl's keys of its last epoch -> the summary's names.
RESULT_KEYS = {"test_elbo": "test_elbo", "test_recon": "test_recon", "test_kl": "test_kl",
               "active_units": "active_units", "test_nll_iw": "iwae_nll"}
IWAE_COLUMN = "iwae_nll"


@dataclass(frozen=True)
class Axis:
    """One setting of the sweep and its values; swept when it has more than one."""

    setting: str  # its name in run.json's settings ("latent_dim")
    option: str  # the `vaegui train` option that sets it ("--latent-dim")
    texts: tuple[str, ...]  # the values as given to `vaegui train`
    values: tuple[Any, ...]  # the same values parsed (the summary's cells)

    @property
    def swept(self) -> bool:
        return len(self.values) > 1


@dataclass(frozen=True)
class PlannedRun:
    name: str  # its folder's name under the sweep's folder
    settings: dict[str, Any]  # the swept settings' values, by setting name
    args: tuple[str, ...]  # its `vaegui train` options (all axes, swept or not)


def split_list(text: str) -> list[str]:
    """"0.5, 1,4" -> ["0.5", "1", "4"]; an empty item is an error (a typo, not a value)."""
    items = [t.strip() for t in text.split(",")]
    if not all(items):
        raise ValueError(f"{text!r} has an empty item")
    return items


def value_text(value: Any) -> str:
    """A value as a folder name shows it: 4.0 -> "4", 0.0005 -> "0.0005", "folder:a/b" -> "folder-a_b"."""
    if isinstance(value, float):
        text = str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    else:
        text = str(value)
    return text.replace(os.sep, "_").replace("/", "_").replace(":", "-")


def run_name(settings: dict[str, Any]) -> str:
    """``beta=4,latent_dim=16``: the swept settings, sorted by name."""
    if not settings:
        return SINGLE_RUN_NAME
    return ",".join(f"{k}={value_text(settings[k])}" for k in sorted(settings))


def plan(axes: Sequence[Axis]) -> list[PlannedRun]:
    """Every combination of the axes' values (the last axis varies fastest), each with its name.
    Two combinations that would share a folder (``1`` and ``1.0``) are an error."""
    runs, seen = [], set()
    for choice in itertools.product(*(range(len(a.values)) for a in axes)):
        settings = {a.setting: a.values[k] for a, k in zip(axes, choice) if a.swept}
        args = tuple(itertools.chain.from_iterable((a.option, a.texts[k]) for a, k in zip(axes, choice)))
        name = run_name(settings)
        if name in seen:
            raise ValueError(f"two runs would share the folder {name!r}: list each value once")
        seen.add(name)
        runs.append(PlannedRun(name, settings, args))
    return runs


# ---- a run folder's state ----------------------------------------------------------------------
def last_metrics(folder: Path) -> dict[str, Any] | None:
    """The metrics line of the run's last epoch, or None."""
    if not folder.is_dir():
        return None
    records = [r for r in metrics_of(folder) if isinstance(r.get("epoch"), int)]
    return records[-1] if records else None


def is_finished(folder: Path, epochs: int, iw_samples: int) -> bool:
    """Its metrics reach epoch ``epochs`` (with the IWAE bound when one was asked for), which a
    run writes only after that epoch's checkpoint."""
    last = last_metrics(folder)
    return (last is not None and last["epoch"] >= epochs
            and (not iw_samples or isinstance(last.get("test_nll_iw"), (int, float))))


def can_resume(folder: Path) -> bool:
    return (folder / CHECKPOINT_NAME).is_file()


# ---- the summary -----------------------------------------------------------------------------
def columns(swept: Iterable[str], iwae: bool) -> list[str]:
    results = [c for c in RESULT_KEYS.values() if iwae or c != IWAE_COLUMN]
    return ["run", *sorted(swept), *results, "seconds", "status"]


def summary_row(run: PlannedRun, folder: Path, status: str, seconds: float) -> dict[str, Any]:
    """A run's row: its swept settings, the results of its last epoch so far, its time, its status."""
    row: dict[str, Any] = {"run": run.name, **run.settings}
    last = last_metrics(folder) or {}
    for key, column in RESULT_KEYS.items():
        value = last.get(key)
        row[column] = value if isinstance(value, (int, float)) else None
    row["seconds"] = round(float(seconds), 3)
    row["status"] = status
    return row


def write_summary(out: Path, rows: Sequence[dict[str, Any]], swept: Sequence[str], iwae: bool,
                  planned: Sequence[str]) -> None:
    """summary.json (every planned run's name, the rows) and summary.csv (the rows), atomically."""
    cols = columns(swept, iwae)
    table = [{c: row.get(c) for c in cols} for row in rows]
    document = {"format": SWEEP_FORMAT, "version": SWEEP_VERSION, "swept": sorted(swept),
                "planned": list(planned), "columns": cols, "runs": table}
    for name, data in ((SUMMARY_JSON, json.dumps(document, indent=1)), (SUMMARY_CSV, csv_text(cols, table))):
        try:
            atomic_write(out / name, lambda f, data=data: f.write(data.encode("utf-8")))
        except OSError as exc:
            raise RunFolderError(out, f"cannot write {name}: {os_reason(exc)}") from None


def csv_text(cols: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV with a header of ``cols`` (a missing value: an empty cell)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(cols), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in cols})
    return text.getvalue()


def read_summary(out: Path) -> dict[str, Any] | None:
    """summary.json of a sweep folder; None when there is none or it is not a sweep's."""
    try:
        document = json.loads((Path(out) / SUMMARY_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("format") != SWEEP_FORMAT:
        return None
    if not isinstance(document.get("runs"), list):
        return None
    return document


def previous_seconds(document: dict[str, Any] | None) -> dict[str, float]:
    """Each run's training time in a summary written before (a resumed run adds to it)."""
    found = {}
    for row in (document or {}).get("runs", []):
        if isinstance(row, dict) and isinstance(row.get("run"), str):
            seconds = row.get("seconds")
            if isinstance(seconds, (int, float)) and math.isfinite(seconds):
                found[row["run"]] = float(seconds)
    return found


# ---- cores -----------------------------------------------------------------------------------
def threads_per_run(parallel: int, cores: int) -> int | None:
    """The fixed thread count of each of ``parallel`` runs sharing ``cores``; None for one run
    at a time, which keeps the default: the thread governor over all the cores."""
    if parallel <= 1:
        return None
    return max(1, cores // parallel)


def format_table(rows: Sequence[dict[str, Any]], cols: Sequence[str]) -> str:
    """The rows as an aligned text table (numbers to 4 significant digits)."""
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)
    body = [[cell(r.get(c)) for c in cols] for r in rows]
    widths = [max([len(c), *(len(b[i]) for b in body)]) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(b, widths)) for b in body]
    return "\n".join(line.rstrip() for line in lines)
