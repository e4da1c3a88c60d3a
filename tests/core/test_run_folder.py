"""Run folders: one writer at a time, no run overwritten, no epoch recorded twice."""

import errno
import json
import os

import pytest

from vaegui.core import run_folder as rf_module
from vaegui.core.errors import RunFolderError
from vaegui.core.run_folder import RunFolder


def test_a_new_run_refuses_a_folder_that_holds_a_run(tmp_path):
    with RunFolder(tmp_path / "run").open(resume=False) as folder:
        folder.append_metrics({"epoch": 1, "step": 8})
    with pytest.raises(RunFolderError, match=r"already holds a run \(metrics.jsonl\)"):
        RunFolder(tmp_path / "run").open(resume=False)
    RunFolder(tmp_path / "run").open(resume=True).close()  # resuming may


def test_resuming_another_run_into_a_folder_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"x")
    (tmp_path / "other.pt").write_bytes(b"y")
    with pytest.raises(RunFolderError, match="already holds another run"):
        RunFolder(tmp_path / "run").open(resume=True, resumed_checkpoint=tmp_path / "other.pt")
    RunFolder(tmp_path / "run").open(resume=True, resumed_checkpoint=tmp_path / "run" / "checkpoint.pt").close()


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path):
    first = RunFolder(tmp_path / "run").open(resume=False)
    with pytest.raises(RunFolderError, match=f"another run \\(process {os.getpid()}\\) is writing it"):
        RunFolder(tmp_path / "run").open(resume=False)
    first.close()
    RunFolder(tmp_path / "run").open(resume=False).close()  # free again


def test_a_folder_created_for_a_run_that_wrote_nothing_is_removed(tmp_path):
    RunFolder(tmp_path / "new").open(resume=False).close()
    assert not (tmp_path / "new").exists()


def test_a_run_stopped_before_its_first_save_leaves_no_folder_but_keeps_what_it_did_not_make(tmp_path):
    # What a writer makes as a run starts, before its first checkpoint (Ctrl-C while loading).
    folder = RunFolder(tmp_path / "new").open(resume=False)
    for name in (rf_module.RUN_JSON, rf_module.STEPS_CSV, rf_module.HEARTBEAT_NAME):
        (tmp_path / "new" / name).write_text("{}")
    for name in (rf_module.MAPS_DIR, rf_module.DECODERS_DIR):
        (tmp_path / "new" / name).mkdir()
    folder.close()
    assert not (tmp_path / "new").exists()
    folder = RunFolder(tmp_path / "kept").open(resume=False)
    (tmp_path / "kept" / rf_module.RUN_JSON).write_text("{}")
    (tmp_path / "kept" / rf_module.MAPS_DIR).mkdir()
    (tmp_path / "kept" / rf_module.MAPS_DIR / "notes.txt").write_text("the user's")
    folder.close()
    assert (tmp_path / "kept" / rf_module.MAPS_DIR / "notes.txt").read_text() == "the user's"
    assert not (tmp_path / "kept" / rf_module.RUN_JSON).exists()
    (tmp_path / "mine").mkdir()
    RunFolder(tmp_path / "mine").open(resume=False).close()
    assert (tmp_path / "mine").is_dir()  # the user's folder stays


@pytest.mark.parametrize("make,reason", [
    (lambda p: p.write_text("x"), "is a file, not a folder"),
    (lambda p: None, "File name too long"),
])
def test_unusable_paths_are_one_error(tmp_path, make, reason):
    path = tmp_path / "out" if "file" in reason else tmp_path / ("x" * 300)
    make(path)
    with pytest.raises(RunFolderError, match=reason) as info:
        RunFolder(path).open(resume=False)
    assert info.value.path == str(path)


def test_a_full_disk_is_one_error(tmp_path, monkeypatch):
    folder = RunFolder(tmp_path / "run").open(resume=False)

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(rf_module.os, "fsync", no_space)
    with pytest.raises(RunFolderError, match="cannot write metrics.jsonl: No space left on device"):
        folder.append_metrics({"epoch": 1, "step": 1})
    folder.close()


def test_metrics_survive_a_torn_line_and_are_rewritten_atomically(tmp_path):
    folder = RunFolder(tmp_path).open(resume=True)
    for epoch in (1, 2, 3):
        folder.append_metrics({"epoch": epoch, "step": 8 * epoch})
    with open(folder.metrics, "a") as f:
        f.write('{"epoch": 4, "st')  # a run killed half-way through a line
    records = folder.read_metrics()
    assert [r["epoch"] for r in records] == [1, 2, 3]
    folder.write_metrics(records[:2])
    assert [json.loads(x)["epoch"] for x in folder.metrics.read_text().splitlines()] == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "metrics.jsonl"]
    folder.close()


def test_opening_removes_a_metrics_rewrite_that_a_kill_interrupted(tmp_path):
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # its pid now names no process
    stale = tmp_path / f".metrics.jsonl.{child.pid}.x.tmp"
    stale.write_text('{"epoch": 1')
    RunFolder(tmp_path).open(resume=True).close()
    assert not stale.exists()


def test_a_read_only_folder_is_one_error(tmp_path, monkeypatch):
    # As root, permissions do not stop writes; a read-only file system is what it looks like.
    real_open = os.open

    def read_only(path, flags, *args, **kw):
        if flags & os.O_CREAT:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(rf_module.os, "open", read_only)
    with pytest.raises(RunFolderError, match="cannot write in it: Read-only file system"):
        RunFolder(tmp_path).open(resume=False)
