"""A user's images for exploring a model trained outside vaegui: a tensor or array of shape
(N, C, H, W), (N, H, W) or (N, H, W, C), uint8 or float, or a ``torch.utils.data.Dataset`` that
yields ``x`` or ``(x, y)``, turned into what the model takes and what the explorer shows.

The model gets the images as the user keeps them, in (N, C, H, W) order: floats as they are
(a model trained on images in [-1, 1] gets [-1, 1]), uint8 divided by 255. The explorer shows
uint8 previews in [0, 255], from which reconstructions are asked for, so how to map a preview
back to the model's range is kept too (``input_range``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .errors import VaeguiError

CHANNELS = (1, 3, 4)  # what a last axis must be to be read as channels (N, H, W, C)
MAX_CLASSES = 10_000  # labels above this are not classes (ids, say): one class then
INPUT_RANGES = ("unit", "signed", "byte")  # [0, 1], [-1, 1], [0, 255] floats


class ImagesError(VaeguiError, ValueError):
    """Images or labels given to explore or export_bundle cannot be used."""


@dataclass(frozen=True, eq=False)
class UserImages:
    inputs: torch.Tensor  # (N, C, H, W) float32 on the CPU, in the user's range: what the encoder takes
    previews: np.ndarray  # (N, C, H, W) uint8, what the explorer shows
    labels: np.ndarray  # (N,) int64, 0..len(class_names) - 1
    class_names: tuple[str, ...]
    input_range: str  # one of INPUT_RANGES: how a preview maps back to an input

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.inputs.shape[1:])

    def to_inputs(self, previews: np.ndarray) -> torch.Tensor:
        """uint8 previews (n, C, H, W) -> floats in the model's input range."""
        x = torch.as_tensor(np.asarray(previews)).float() / 255.0
        if self.input_range == "signed":
            return x * 2.0 - 1.0
        return x * 255.0 if self.input_range == "byte" else x


def user_images(images, labels=None, class_names: Sequence[str] | None = None) -> UserImages:
    """The images (and labels: given, from a dataset's ``y``, or none) checked and converted."""
    if isinstance(images, torch.utils.data.Dataset):
        images, found = _from_dataset(images)
        labels = found if labels is None else labels
    array = _as_nchw(images)
    inputs, previews, input_range = _inputs_and_previews(array)
    labels, class_names = _labels(labels, class_names, len(inputs))
    return UserImages(inputs, previews, labels, class_names, input_range)


def _from_dataset(dataset) -> tuple[torch.Tensor, np.ndarray | None]:
    try:
        count = len(dataset)
    except TypeError:
        raise ImagesError(f"images: the dataset {type(dataset).__name__} has no len()") from None
    if count == 0:
        raise ImagesError(f"images: the dataset {type(dataset).__name__} is empty")
    xs, ys = [], []
    for i in range(count):
        item = dataset[i]
        if isinstance(item, (tuple, list)):
            if not item:
                raise ImagesError(f"images: dataset item {i} is an empty {type(item).__name__}")
            xs.append(_tensor(item[0], f"dataset item {i}'s x"))
            ys.append(item[1] if len(item) > 1 else None)
        else:
            xs.append(_tensor(item, f"dataset item {i}"))
            ys.append(None)
    shapes = {tuple(x.shape) for x in xs}
    if len(shapes) > 1:
        raise ImagesError(f"images: the dataset's images differ in shape ({', '.join(map(str, sorted(shapes)[:3]))})")
    labels = None
    if all(y is not None for y in ys):
        try:
            labels = np.array([int(y) for y in ys], np.int64)
        except (TypeError, ValueError):
            labels = None  # y is not a class (a target image, say): no labels
    return torch.stack(xs), labels


def _tensor(x, what: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    try:
        return torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError, RuntimeError):
        raise ImagesError(f"images: {what} is a {type(x).__name__}, not an image array") from None


def _as_nchw(images) -> torch.Tensor:
    x = _tensor(images, "images")
    if x.dtype == torch.bool or x.is_complex() or not (x.is_floating_point() or x.dtype == torch.uint8):
        if x.dtype in (torch.int16, torch.int32, torch.int64) and len(x) and 0 <= int(x.min()) and int(x.max()) <= 255:
            x = x.to(torch.uint8)  # integer images in 0..255 (numpy's default int)
        else:
            raise ImagesError(f"images: dtype {str(x.dtype).replace('torch.', '')} is not uint8 or float")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in CHANNELS and x.shape[1] not in CHANNELS:
        x = x.permute(0, 3, 1, 2)
    if x.ndim != 4:
        raise ImagesError(f"images: shape {tuple(x.shape)} is not (N, C, H, W), (N, H, W) or (N, H, W, C)")
    if len(x) == 0 or min(x.shape[1:]) == 0:
        raise ImagesError(f"images: shape {tuple(x.shape)} holds no image")
    if x.is_floating_point() and not torch.isfinite(x).all():
        raise ImagesError("images: some values are not finite (NaN or inf)")
    return x.contiguous()


def _inputs_and_previews(x: torch.Tensor) -> tuple[torch.Tensor, np.ndarray, str]:
    if x.dtype == torch.uint8:
        return x.float() / 255.0, x.numpy().copy(), "unit"
    x = x.float()
    lo, hi = float(x.min()), float(x.max())
    if lo < 0:  # images normalised to [-1, 1] (the tanh convention)
        unit, input_range = (x + 1.0) / 2.0, "signed"
    elif hi > 1.0 + 1e-6:  # floats in 0..255
        unit, input_range = x / 255.0, "byte"
    else:
        unit, input_range = x, "unit"
    previews = (unit.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).numpy()
    return x, previews, input_range


def _labels(labels, class_names, n: int) -> tuple[np.ndarray, tuple[str, ...]]:
    if labels is None:
        names = tuple(class_names) if class_names else ("images",)
        return np.zeros(n, np.int64), names
    y = np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels).reshape(-1)
    if len(y) != n:
        raise ImagesError(f"labels: {len(y)} labels for {n} images")
    if not (np.issubdtype(y.dtype, np.integer) or (np.issubdtype(y.dtype, np.floating)
                                                     and np.all(np.isfinite(y)) and np.all(y == np.round(y)))):
        raise ImagesError(f"labels: dtype {y.dtype} is not whole numbers")
    y = y.astype(np.int64)
    if n and (y.min() < 0 or y.max() >= MAX_CLASSES):
        raise ImagesError(f"labels: values must be class numbers in 0..{MAX_CLASSES - 1}, "
                          f"got {int(y.min())}..{int(y.max())}")
    count = int(y.max()) + 1 if n else 1
    if class_names is None:
        return y, tuple(str(k) for k in range(count))
    names = tuple(str(c) for c in class_names)
    if len(names) < count:
        raise ImagesError(f"class_names: {len(names)} names for labels up to {count - 1}")
    return y, names
