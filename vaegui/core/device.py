"""Choosing the compute device and placing the in-memory dataset on it."""

from __future__ import annotations

import torch

from .errors import ConfigError

# Keep the uint8 images on the GPU only when they take at most this share of its free memory;
# otherwise batches are copied from pinned host memory.
GPU_DATA_SHARE = 0.5


def resolve_device(name: str = "auto") -> torch.device:
    """"auto" = CUDA when available, else Apple MPS, else CPU; a forced device must exist."""
    mps_ok = mps_available()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_ok else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was asked for but no CUDA GPU is available "
                          "(use --device auto or cpu)")
    if name == "mps" and not mps_ok:
        raise ConfigError("device: mps was asked for but Apple MPS is not available")
    if name not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device: {name!r} is not one of auto, cpu, cuda, mps")
    return torch.device(name)


def mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def release_cached_memory() -> None:
    """Hand the memory an accelerator's allocator keeps cached back (after a run), on whichever
    accelerator this machine has."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if mps_available():
        torch.mps.empty_cache()


def describe_device(device: torch.device) -> str:
    """"cpu", "mps" or "cuda (NVIDIA H200)": what the user sees as the device in use."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def place_images(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Put uint8 images where training reads them: on the device when they fit, else in
    (pinned, for fast copies) host memory. Never converts the whole set to float."""
    if device.type == "cpu":
        return images
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if images.numel() * images.element_size() <= GPU_DATA_SHARE * free:
            return images.to(device)
        return images.pin_memory()
    return images.to(device)
