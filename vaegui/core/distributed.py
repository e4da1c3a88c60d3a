"""Multi-process training under torchrun: which process this is, the process group, and how a
global batch is shared out.

torchrun starts one process per rank and tells each its place through the environment
(``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``); without them, or with a world of one, training is the
ordinary single process and nothing here does anything. In a world of N:

- every rank draws the same seeded permutation of the training set each epoch and trains on its
  own slice of each global batch (:func:`rank_shard`), so the ranks together see exactly the
  batches one process would;
- gradients are averaged by DistributedDataParallel; each rank scales its loss so that the
  average is the global batch's mean even when the last batch does not split evenly;
- rank 0 alone evaluates, writes and prints.

The backend is gloo for CPU tensors and NCCL for CUDA tensors (one GPU per rank,
``cuda:LOCAL_RANK``).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import ConfigError, Reported, VaeguiError

ENV_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK")


class PeerFailed(VaeguiError):
    """Another rank could not start, or left the run (rank 0 says so)."""


@dataclass(frozen=True)
class Distributed:
    """This process's place among the training processes (a world of one when not under torchrun)."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "Distributed":
        """As torchrun describes it in the environment; a single process when it does not."""
        if "WORLD_SIZE" not in environ:
            return cls()
        try:
            world, rank, local = (int(environ.get(name, "0")) for name in ENV_VARS)
        except ValueError:
            raise ConfigError("torchrun's environment is not whole numbers: "
                              + ", ".join(f"{n}={environ.get(n)!r}" for n in ENV_VARS)) from None
        if not (world >= 1 and 0 <= rank < world and local >= 0):
            raise ConfigError(f"torchrun's environment is inconsistent: WORLD_SIZE={world}, "
                              f"RANK={rank}, LOCAL_RANK={local}")
        return cls(world, rank, local)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that evaluates, writes the run folder and prints."""
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """The device this rank trains on: its own GPU (``cuda:LOCAL_RANK``) under CUDA."""
        if not self.enabled:
            return device
        if device.type == "cuda":
            count = torch.cuda.device_count()
            if self.local_rank >= count:
                raise ConfigError(f"device: local rank {self.local_rank} needs cuda:{self.local_rank}, "
                                  f"but this node has {count} GPU(s); start at most {count} "
                                  "processes per node (--nproc-per-node)")
            return torch.device("cuda", self.local_rank)
        if device.type != "cpu":
            raise ConfigError(f"device: multi-process training runs on cpu or cuda, not "
                              f"{device.type} (use --device cpu)")
        return device

    def local_batch_size(self, batch_size: int) -> int:
        """This rank's share of the global batch size."""
        if batch_size % self.world_size:
            raise ConfigError(f"batch_size: {batch_size} is the global batch and must split evenly "
                              f"over the {self.world_size} processes (use a multiple of "
                              f"{self.world_size})")
        return batch_size // self.world_size

    def noise_seed(self, seed: int, step: int = 0) -> int:
        """The seed of this rank's reparameterisation noise: ``seed`` itself for one process (as
        before multi-process training existed); distinct per rank, and per resumed step, else."""
        if not self.enabled:
            return seed
        return (seed + (self.rank << 32) + step * 0x9E3779B97F4A7C15) % 2**64


def rank_shard(batch: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank ``rank``'s part of a global batch of indices: consecutive, disjoint parts whose sizes
    differ by at most one (the last batch of an epoch may not split evenly; a rank may even get
    none). With one process, the batch itself."""
    if world_size == 1:
        return batch
    return torch.tensor_split(batch, world_size)[rank]


@contextmanager
def process_group(d: Distributed) -> Iterator[Distributed]:
    """Join the other ranks for the duration of the block (nothing to join in a world of one),
    and leave cleanly however the block ends. CPU tensors travel by gloo, CUDA tensors by NCCL."""
    if not d.enabled:
        yield d
        return
    backend = "gloo"
    if torch.cuda.is_available():
        backend = "cpu:gloo,cuda:nccl"
        if d.local_rank < torch.cuda.device_count():
            torch.cuda.set_device(d.local_rank)
    try:
        dist.init_process_group(backend=backend, rank=d.rank, world_size=d.world_size)
    except (ValueError, RuntimeError) as exc:  # no MASTER_ADDR, a peer that never came, ...
        raise ConfigError(f"rank {d.rank} of {d.world_size} cannot join the others "
                          f"({' '.join(str(exc).split())[:300]}); start vaegui with torchrun") from None
    try:
        yield d
    finally:
        dist.destroy_process_group()


@contextmanager
def all_or_none(d: Distributed, report: Callable[[BaseException], bool]) -> Iterator[None]:
    """Run a block of set-up on every rank; when it fails on any rank, it fails on all, so that
    no rank waits forever for a peer that has already given up.

    ``report(exc)`` prints an error in one line (False: it is not a user's error, and is
    raised as it is). Rank 0 reports its own error, or names the ranks that failed; another
    rank reports only an error of its own that rank 0 did not also meet. Every rank then
    leaves with :class:`.errors.Reported`, once every report is out (torchrun stops all the
    ranks as soon as one leaves with an error)."""
    if not d.enabled:
        yield
        return
    try:
        yield
    except BaseException as exc:
        failed = _failed_ranks(d, True)
        if isinstance(exc, KeyboardInterrupt):  # Ctrl-C reaches every rank: rank 0 says it
            raise
        speaks = d.is_main or 0 not in failed
        reported = report(exc) if speaks else True
        wait_for_all(d)
        if reported:
            raise Reported from exc
        raise
    failed = _failed_ranks(d, False)
    if failed:
        if d.is_main:
            names = ", ".join(map(str, failed))
            report(PeerFailed(f"rank {names} could not start (its error is above); nothing was "
                              "trained"))
        wait_for_all(d)
        raise Reported


def _failed_ranks(d: Distributed, failed: bool) -> list[int]:
    flags = torch.zeros(d.world_size)
    flags[d.rank] = float(failed)
    dist.all_reduce(flags)
    return [r for r in range(d.world_size) if flags[r] > 0]


def wait_for_all(d: Distributed) -> None:
    """A barrier, through gloo (CPU) whatever the training device; nothing in a world of one."""
    if d.enabled:
        dist.all_reduce(torch.zeros(1))


def peer_lost(exc: BaseException) -> bool:
    """Whether a collective failed because another rank is gone (it crashed, was killed, or
    left with an error of its own, which it has reported)."""
    text = str(exc)
    return isinstance(exc, dist.DistError) or (isinstance(exc, RuntimeError) and any(
        sign in text for sign in ("Connection closed by peer", "Connection reset by peer", "NCCL")))


def agree_on_step(values: torch.Tensor, stop: bool, world_size: int) -> tuple[torch.Tensor, bool]:
    """Average ``values`` (a 1-D float tensor) over the ranks, and whether any rank asked to stop:
    one small all-reduce per step, so that all ranks stop after the same step."""
    both = torch.cat([values, values.new_tensor([float(stop)])])
    dist.all_reduce(both)
    return both[:-1] / world_size, bool(both[-1] > 0)


def data_parallel(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``module`` wrapped so that its gradients are averaged over the ranks during backward."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    # No buffer changes while training (the fixed sigma of a Gaussian likelihood is one), so
    # a broadcast of the buffers from rank 0 at every step would be wasted. Newer torch names
    # the option forward_sync_buffers and warns about the old name.
    no_buffer_sync = ({"forward_sync_buffers": False}
                      if "forward_sync_buffers" in inspect.signature(DDP.__init__).parameters
                      else {"broadcast_buffers": False})
    return DDP(module, device_ids=[device.index] if device.type == "cuda" else None, **no_buffer_sync)
