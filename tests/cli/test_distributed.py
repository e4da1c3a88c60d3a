"""Multi-process training under torchrun (2 CPU processes, gloo) against one process, and how the
ranks share the data. The torchrun runs are real: a subprocess each, about 5 s on 2 cores."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vaegui.cli import main
from vaegui.core.distributed import Distributed, rank_shard
from vaegui.core.errors import ConfigError
from vaegui.core.run_reader import RunReader
from vaegui.core.trainer import epoch_permutation

REPO = Path(__file__).resolve().parents[2]  # the checkout these tests run from
TINY = ["--dataset", "shapes", "--image-size", "16", "--hidden", "16", "--train-limit", "512",
        "--test-limit", "128", "--batch-size", "64", "--device", "cpu", "--offline", "--no-progress"]
# How far the final test -ELBO of the 2-process run may be from one process's with the same seed
# and global batch. They share the initial weights and the data order and differ only in the
# reparameterisation noise (one stream per rank); over seeds 1-10 of this 3-epoch run the
# difference was 0.13 +- 0.15 nats (at most 0.37), while the seeds themselves spread by
# 1.9 nats (std). 1 nat is about six standard deviations of the difference.
ELBO_TOLERANCE = 1.0

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")


def torchrun(*args, timeout=120):
    """`torchrun --standalone --nproc-per-node 2 ...`, as torch's own module (no PATH needed)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", "2", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def vaegui_lines(text):
    return [line for line in text.splitlines() if line.startswith("vaegui:")]


@pytest.mark.parametrize("n,batch,world", [(512, 64, 2), (1000, 96, 3), (450, 64, 4), (66, 64, 4)])
def test_rank_shards_of_an_epoch_are_disjoint_and_cover_the_permutation(n, batch, world):
    order = epoch_permutation(seed=5, epoch=3, n=n)
    assert torch.equal(order, epoch_permutation(seed=5, epoch=3, n=n))  # every rank draws the same
    shards = {r: [] for r in range(world)}
    for start in range(0, n, batch):
        global_batch = order[start:start + batch]
        parts = [rank_shard(global_batch, r, world) for r in range(world)]
        assert torch.equal(torch.cat(parts), global_batch)  # each step: exactly the global batch
        assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1
        for r, p in enumerate(parts):
            shards[r].append(p)
    per_rank = [set(torch.cat(shards[r]).tolist()) for r in range(world)]
    assert sum(map(len, per_rank)) == n  # disjoint
    assert set().union(*per_rank) == set(order.tolist()) == set(range(n))  # and covering
    assert torch.equal(rank_shard(order[:batch], 0, 1), order[:batch])


def test_world_from_the_environment_and_the_global_batch():
    assert not Distributed.from_env({}).enabled
    assert not Distributed.from_env({"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0"}).enabled
    d = Distributed.from_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"})
    assert (d.enabled, d.is_main, d.rank, d.local_rank) == (True, False, 3, 1)
    assert d.local_batch_size(128) == 32
    with pytest.raises(ConfigError, match="batch_size: 130 is the global batch .* 4 processes"):
        d.local_batch_size(130)
    for bad in ({"WORLD_SIZE": "2", "RANK": "2"}, {"WORLD_SIZE": "x"}):
        with pytest.raises(ConfigError, match="torchrun's environment"):
            Distributed.from_env(bad)
    seeds = {Distributed(4, r).noise_seed(7) for r in range(4)}
    assert len(seeds) == 4 and Distributed().noise_seed(7) == 7


def test_two_processes_write_one_run_and_match_one_process(tmp_path, capsys):
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    result = torchrun("-m", "vaegui", "train", *TINY, "--epochs", "3", "--seed", "1", "--out", str(ddp))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()  # rank 0 alone prints: each epoch once, one summary
    assert [line[:9] for line in lines[:-1]] == ["epoch   1", "epoch   2", "epoch   3"]
    summary = json.loads(lines[-1])
    assert summary["steps"] == 24 and not vaegui_lines(result.stderr)
    run = RunReader(ddp)  # one run folder, as one process writes it
    assert [m["epoch"] for m in run.metrics()] == [1, 2, 3] == run.map_epochs()
    steps, _, _ = run.steps()
    assert steps.tolist() == list(range(1, 25))  # every step once, not once a rank
    assert run.map_means(3).shape == (128, 2)  # rank 0 encoded the whole test set

    assert main(["train", *TINY, "--epochs", "3", "--seed", "1", "--out", str(single)]) == 0
    alone = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert abs(summary["test_elbo"] - alone["test_elbo"]) < ELBO_TOLERANCE
    # Rank 0's evaluation is one process's evaluation of the same weights.
    assert main(["eval", str(ddp / "checkpoint.pt"), "--iw-samples", "1", "--offline"]) == 0
    assert json.loads(capsys.readouterr().out)["test_elbo"] == pytest.approx(summary["test_elbo"], abs=1e-9)

    resumed = torchrun("-m", "vaegui", "train", "--resume", str(ddp / "checkpoint.pt"), "--epochs",
                       "4", "--offline", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout.strip().splitlines()[-1])["steps"] == 32
    assert [json.loads(x)["epoch"] for x in (ddp / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4]


NO_NOISE = """
from vaegui.core.model import VAE
VAE.reparameterize = staticmethod(lambda mu, logvar, generator=None: mu + 0 * logvar)
from vaegui.cli import main
raise SystemExit(main())
"""


def test_without_sampling_noise_two_processes_train_exactly_as_one(tmp_path, capsys, monkeypatch):
    """Take the reparameterisation noise (the one thing that differs per rank) away: then the
    2-process run is one process's run up to rounding, also through a last batch of 3 images
    that splits 2 + 1 and a Gaussian likelihood with a learned sigma."""
    script = tmp_path / "no_noise.py"
    script.write_text(NO_NOISE)
    args = [*TINY, "--train-limit", "451", "--likelihood", "gaussian-learned", "--epochs", "2"]
    result = torchrun(str(script), "train", *args, "--out", str(tmp_path / "ddp"))
    assert result.returncode == 0, result.stderr
    ddp = json.loads(result.stdout.strip().splitlines()[-1])

    from vaegui.core.model import VAE
    monkeypatch.setattr(VAE, "reparameterize", staticmethod(lambda mu, logvar, generator=None: mu + 0 * logvar))
    assert main(["train", *args, "--out", str(tmp_path / "single")]) == 0
    alone = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert ddp["test_elbo"] == pytest.approx(alone["test_elbo"], rel=1e-5)


def test_a_rank_that_cannot_start_says_why_in_one_line_and_rank_0_names_it(tmp_path):
    """Two processes started by hand as torchrun would start them; rank 1 alone is given a batch
    the two cannot share (in a real run every rank has the same options, and rank 0 alone
    would say it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO), "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(port), "WORLD_SIZE": "2"}
    out = tmp_path / "run"
    ranks = [subprocess.Popen([sys.executable, "-m", "vaegui", "train", *TINY, "--batch-size",
                               str(64 - rank), "--out", str(out)], env={**env, "RANK": str(rank),
                               "LOCAL_RANK": str(rank)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    (out0, err0), (out1, err1) = (p.communicate(timeout=120) for p in ranks)
    assert [p.returncode for p in ranks] == [2, 2]
    assert (out0, out1) == ("", "")
    assert err1 == ("vaegui: error: rank 1: argument --batch-size: 63 is the global batch and must "
                    "split evenly over the 2 processes (use a multiple of 2)\n")
    assert err0 == "vaegui: error: rank 1 could not start (its error is above); nothing was trained\n"
    assert not out.exists()  # rank 0 had opened it, and removed it again
