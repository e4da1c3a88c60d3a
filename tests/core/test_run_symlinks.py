"""A run folder's entries planted as links never make vaegui write, append or delete outside it,
and the lock is the folder's own, so deleting .lock lets no second writer in."""

import hashlib
import os

import pytest

from vaegui.cli import main
from vaegui.core.errors import RunFolderError
from vaegui.core.run_folder import RunFolder

TINY = ["--dataset", "shapes", "--train-limit", "256", "--test-limit", "64", "--hidden", "16",
        "--latent-dim", "2", "--batch-size", "64", "--device", "cpu", "--offline", "--no-progress"]


def snapshot(root):
    """Every file under ``root`` (links not followed) with its bytes' digest."""
    found = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return found


def outside(tmp_path):
    """A user's files and folder that planted links point at."""
    user = tmp_path / "user"
    (user / "maps").mkdir(parents=True)
    (user / "maps" / "epoch-0005.npy").write_bytes(b"precious map")
    (user / "maps" / ".notes.1.tmp").write_bytes(b"precious notes")
    (user / "decoders").mkdir()
    (user / "decoders" / "epoch-0009.pt").write_bytes(b"precious weights")
    (user / "V").write_text("precious\n")
    (user / "M").write_text('{"epoch": 1, "step": 4}\n')
    return user


PLANTS = {".lock": "V", "metrics.jsonl": "M", "maps": "maps", "decoders": "decoders",
          "heartbeat": "V", "steps.csv": "V"}


@pytest.mark.parametrize("name", sorted(PLANTS))
def test_a_planted_link_is_never_written_through(tmp_path, capsys, name):
    user = outside(tmp_path)
    before = snapshot(user)
    run = tmp_path / "run"
    # A run to resume (and so to refuse a new run into), then the link planted in it.
    assert main(["train", *TINY, "--epochs", "1", "--out", str(run)]) == 0
    capsys.readouterr()
    target = run / name
    if target.is_dir():
        for f in target.iterdir():
            f.unlink()
        target.rmdir()
    else:
        target.unlink(missing_ok=True)
    target.symlink_to(user / PLANTS[name])
    attempts = [["train", *TINY, "--epochs", "1", "--out", str(run)],  # refused: holds a run
                ["train", "--resume", str(run / "checkpoint.pt"), "--epochs", "2", "--offline",
                 "--no-progress"]]
    fresh = tmp_path / "fresh"  # a new run into a folder that holds only the link
    fresh.mkdir()
    (fresh / name).symlink_to(user / PLANTS[name])
    attempts.append(["train", *TINY, "--epochs", "1", "--out", str(fresh)])
    for argv in attempts:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and name in err[0] and "link" in err[0], err
    assert snapshot(user) == before
    assert os.path.islink(target)  # left as the user made it


def test_writes_in_a_run_folder_use_no_link_even_when_planted_after_opening(tmp_path):
    """A link that appears while the run writes (after the open checked the folder) is
    refused, never followed."""
    user = outside(tmp_path)
    before = snapshot(user)
    folder = RunFolder(tmp_path / "run").open(resume=False)
    (folder.path / "metrics.jsonl").symlink_to(user / "M")
    with pytest.raises(RunFolderError, match="metrics.jsonl is a symbolic link"):
        folder.append_metrics({"epoch": 1, "step": 1})
    with pytest.raises(RunFolderError, match="metrics.jsonl is a symbolic link"):
        folder.read_metrics()
    with pytest.raises(RunFolderError, match="metrics.jsonl is a symbolic link"):
        folder.write_metrics([{"epoch": 1, "step": 1}])
    (folder.path / "maps").symlink_to(user / "maps")
    with pytest.raises(RunFolderError, match="maps is a symbolic link"):
        folder.dir.subdir("maps", create=True)
    folder.close()
    assert snapshot(user) == before


def test_deleting_the_lock_file_lets_no_second_writer_in(tmp_path):
    first = RunFolder(tmp_path / "run").open(resume=False)
    (tmp_path / "run" / ".lock").unlink()
    with pytest.raises(RunFolderError, match=f"another run \\(process (\\?|{os.getpid()})\\) is writing it"):
        RunFolder(tmp_path / "run").open(resume=True)
    (tmp_path / "run" / ".lock").write_text("999999\n")  # replaced by hand: still locked
    with pytest.raises(RunFolderError, match="is writing it"):
        RunFolder(tmp_path / "run").open(resume=True)
    first.close()
    RunFolder(tmp_path / "run").open(resume=True).close()


def test_cleanup_deletes_only_the_run_s_own_files(tmp_path):
    """A folder the run created and left empty goes, but a file someone else put there stays
    (and so does the folder)."""
    folder = RunFolder(tmp_path / "run").open(resume=False)
    (folder.path / "notes.txt").write_text("mine")
    folder.close()
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"


@pytest.fixture
def by_path(monkeypatch):
    """As on a system without folder descriptors (Windows): entries are reached by path."""
    from vaegui.core import atomic, safe_dir

    monkeypatch.setattr(atomic, "DIR_FD", False)
    monkeypatch.setattr(safe_dir, "DIR_FD", False)


@pytest.mark.parametrize("name", [".lock", "maps", "metrics.jsonl"])
def test_without_folder_descriptors_runs_work_and_links_are_still_refused(tmp_path, capsys, by_path, name):
    from vaegui.core.run_reader import RunReader

    user = outside(tmp_path)
    before = snapshot(user)
    run = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "1", "--out", str(run)]) == 0
    reader = RunReader(run)
    assert [r["epoch"] for r in reader.metrics()] == [1] and reader.map_means(1).shape == (64, 2)
    assert set(reader.decoder_state(1)) == set(reader.decoder_shapes())
    capsys.readouterr()
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / name).symlink_to(user / PLANTS[name])
    assert main(["train", *TINY, "--epochs", "1", "--out", str(fresh)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and name in err[0] and "link" in err[0], err
    assert snapshot(user) == before
