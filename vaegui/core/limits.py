"""How much memory a size may take, checked before allocating it.

An allocation far beyond what the machine has does not fail cleanly: on Linux it may succeed
lazily and then swap for minutes or bring the OOM killer, and on a GPU it fails half-way through
a step. So the sizes a user chooses (images, batch, importance samples, hidden width) are
estimated first and refused with the reason when they cannot fit.
"""

from __future__ import annotations

import os

# Share of the machine's memory one dataset or one batch's activations may take.
HOST_SHARE = 0.5


def host_memory_bytes() -> int | None:
    """Physical memory of this machine, or None where it cannot be read (then nothing is refused)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def budget_bytes(device_type: str = "cpu") -> int | None:
    """What one allocation may take on ``device_type``: a share of host memory, or the GPU's."""
    if device_type == "cuda":
        import torch

        return int(torch.cuda.get_device_properties(0).total_memory * 0.9)
    if device_type == "mps":  # unified memory: what Metal recommends one process use
        import torch

        return int(torch.mps.recommended_max_memory() * 0.9)
    total = host_memory_bytes()
    return None if total is None else int(total * HOST_SHARE)


def fits(nbytes: int, device_type: str = "cpu") -> tuple[bool, str]:
    """(whether ``nbytes`` fits, "X.X GiB" of the budget for the message)."""
    budget = budget_bytes(device_type)
    return budget is None or nbytes <= budget, gib(budget or 0)


def gib(nbytes: int) -> str:
    """A size for a message: "12.3 GiB", or "45.6 MiB" below a GiB."""
    return f"{nbytes / 2**30:,.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:,.1f} MiB"
