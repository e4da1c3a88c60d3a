"""Latent-space tools: encoding a dataset, a 2-D projection with an inverse, interpolation,
traversals, grids, and decoding from a snapshot of decoder weights."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torchvision.utils import make_grid

from .config import ModelConfig
from .data import ImageData
from .evaluate import to_float
from .model import VAE


@torch.no_grad()
def encode_means(model: VAE, images: torch.Tensor, batch_size: int = 2000) -> np.ndarray:
    """Posterior means of uint8 images (N, C, H, W), in batches -> (N, L) float32."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = np.empty((images.shape[0], model.latent_dim), dtype=np.float32)
    for start in range(0, images.shape[0], batch_size):
        mu, _ = model.encode(to_float(images[start:start + batch_size], device))
        out[start:start + mu.shape[0]] = mu.float().cpu().numpy()
    model.train(was_training)
    return out


@dataclass(frozen=True, eq=False)
class EncodedSet:
    """A dataset split encoded for the latent map: plain arrays, safe to pass between threads."""

    latents: np.ndarray  # (N, L) posterior means
    xy: np.ndarray  # (N, 2) positions in the plane (projection.transform(latents))
    projection: "Projection"
    labels: np.ndarray  # (N,) int64
    class_names: tuple[str, ...]
    images: np.ndarray  # (N, C, H, W) uint8, for previews (a view of the dataset, not a copy)
    split: str = "test"  # "test" or "train"
    step: int = 0  # training step of the weights that encoded it
    factors: dict[str, np.ndarray] = field(default_factory=dict)  # (N,) each, shapes only


def encode_set(model: VAE, data: ImageData, split: str = "test", limit: int | None = None,
               step: int = 0, projection: "Projection | None" = None) -> EncodedSet:
    """Encode the test split, or the first ``limit`` training images, and project to 2-D
    (fitting a new projection unless one is given)."""
    images, _, _ = _split(data, split, limit)
    return encoded_set(data, encode_means(model, images), split, limit, step, projection)


def encoded_set(data: ImageData, latents: np.ndarray, split: str = "test", limit: int | None = None,
                step: int = 0, projection: "Projection | None" = None) -> EncodedSet:
    """An :class:`EncodedSet` from posterior means already computed for the same images as
    :func:`encode_set` takes (e.g. by the test evaluation that closes every epoch)."""
    images, labels, factors = _split(data, split, limit)
    if latents.shape[0] != images.shape[0]:
        raise ValueError(f"{latents.shape[0]} latent vectors for {images.shape[0]} {split} images")
    projection = projection or Projection.fit(latents)
    return EncodedSet(latents=latents, xy=projection.transform(latents), projection=projection,
                      labels=labels.numpy(), class_names=tuple(data.class_names),
                      images=images.numpy(), split=split, step=step, factors=dict(factors))


def _split(data: ImageData, split: str, limit: int | None):
    """Images, labels and factors of a split, the first ``limit`` of them when given."""
    images = data.test_images if split == "test" else data.train_images
    labels = data.test_labels if split == "test" else data.train_labels
    factors = data.test_factors if split == "test" else data.train_factors
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
        factors = {k: v[:limit] for k, v in factors.items()}
    return images, labels, factors


class Projection:
    """Maps latent vectors (N, L) to the plane (N, 2) and back.

    L = 2: the identity. L = 1: the latent on x, 0 on y. L > 2: PCA onto the two leading
    principal axes of the fitted means; :meth:`inverse` returns mean + p @ components, so
    ``transform(inverse(p)) == p`` exactly and a point in the plane is a concrete latent vector.
    """

    def __init__(self, mean: np.ndarray, components: np.ndarray, explained: np.ndarray | None):
        self.mean = mean  # (L,)
        self.components = components  # (2, L), orthonormal rows
        self.explained = explained  # (2,) share of variance along each axis; None if exact

    @classmethod
    def fit(cls, z: np.ndarray) -> "Projection":
        z = np.asarray(z, dtype=np.float64)
        latent = z.shape[1]
        if latent <= 2:
            return cls(np.zeros(latent), np.eye(2, latent), None)
        mean = z.mean(0)
        cov = np.cov(z - mean, rowvar=False)  # (L, L): cheap even for 70,000 points
        values, vectors = np.linalg.eigh(cov)  # ascending
        order = np.argsort(values)[::-1][:2]
        components = vectors[:, order].T
        # Fix each axis's sign so refits of similar data do not flip the map.
        signs = np.sign(components[np.arange(2), np.abs(components).argmax(1)])
        components *= signs[:, None]
        total = values.sum()
        explained = values[order] / total if total > 0 else np.zeros(2)
        return cls(mean, components, explained)

    @property
    def is_exact(self) -> bool:
        return self.explained is None

    def transform(self, z: np.ndarray) -> np.ndarray:
        return ((np.asarray(z, dtype=np.float64) - self.mean) @ self.components.T).astype(np.float32)

    def inverse(self, p: np.ndarray) -> np.ndarray:
        p = np.atleast_2d(np.asarray(p, dtype=np.float64))
        return (self.mean + p @ self.components).astype(np.float32)


def lerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """Linear interpolation a -> b, end points included: (steps, L)."""
    t = np.linspace(0.0, 1.0, steps)[:, None]
    return ((1 - t) * a + t * b).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """Spherical interpolation (Shoemake 1985; White 2016 for latent spaces): follows the arc
    between a and b, interpolating the norm linearly, so intermediate points keep a typical norm
    under a Gaussian prior. Falls back to lerp for (anti)parallel vectors."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return lerp(a, b, steps)
    cos = np.clip(a @ b / (na * nb), -1.0, 1.0)
    omega = np.arccos(cos)
    if np.sin(omega) < 1e-6:
        return lerp(a, b, steps)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    direction = (np.sin((1 - t) * omega) * a / na + np.sin(t * omega) * b / nb) / np.sin(omega)
    return (direction * ((1 - t) * na + t * nb)).astype(np.float32)


def traversal(z: np.ndarray, dim: int, values: Sequence[float]) -> np.ndarray:
    """Copies of z with dimension ``dim`` set to each value: (len(values), L)."""
    out = np.repeat(np.asarray(z, np.float32)[None, :], len(values), axis=0)
    out[:, dim] = values
    return out


def grid_points(x_range: tuple[float, float], y_range: tuple[float, float], size: int) -> np.ndarray:
    """A size x size grid over a plane region, row-major from the top (high y) left: (size^2, 2)."""
    xs = np.linspace(*x_range, size)
    ys = np.linspace(*y_range, size)[::-1]
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)


class Decoder:
    """Decodes latent vectors with a *copy* of the decoder weights (see ``model.decoder_state``),
    on the CPU, independent of the live training model."""

    def __init__(self, config: ModelConfig, image_shape: tuple[int, int, int],
                 state: dict[str, torch.Tensor]):
        self.config = config
        self.image_shape = tuple(image_shape)
        self.model = VAE(config, self.image_shape)
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("encoder.")]
        if missing or unexpected:
            raise ValueError(f"decoder state does not fit: missing {missing}, unexpected {unexpected}")
        self.model.eval()

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Swap in a newer snapshot of the decoder weights (same architecture)."""
        self.model.load_state_dict(state, strict=False)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @torch.no_grad()
    def decode(self, z: np.ndarray) -> np.ndarray:
        """(n, L) -> images (n, C, H, W) float32 in [0, 1] (the likelihood's mean)."""
        z = torch.as_tensor(np.atleast_2d(z), dtype=torch.float32)
        return torch.sigmoid(self.model.decode(z)).numpy()

    def decode_grid(self, z: np.ndarray, nrow: int, padding: int = 2) -> np.ndarray:
        """Decode (n, L) and tile the images into one (H', W', C) float image, nrow per row."""
        images = torch.from_numpy(self.decode(z))
        grid = make_grid(images, nrow=nrow, padding=padding, pad_value=1.0)  # (3, H', W')
        return grid[: self.image_shape[0]].permute(1, 2, 0).numpy()
