"""Latent-space tools on plain arrays: an encoded set, a 2-D projection with an inverse,
interpolation, traversals, grids, tiling images, and weight snapshots.

No torch here (see :mod:`.decoder` for encoding and decoding): the window is built from these
before torch has been imported, which takes seconds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

import numpy as np

from .config import ModelConfig

if TYPE_CHECKING:
    import torch

    from .dataset_loader import ImageData


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


def encoded_set(data: ImageData, latents: np.ndarray, split: str = "test", limit: int | None = None,
                step: int = 0, projection: "Projection | None" = None) -> EncodedSet:
    """An :class:`EncodedSet` from posterior means already computed for the same images as
    :func:`encode_set` takes (e.g. by the test evaluation that closes every epoch)."""
    images, labels, factors = dataset_split(data, split, limit)
    if latents.shape[0] != images.shape[0]:
        raise ValueError(f"{latents.shape[0]} latent vectors for {images.shape[0]} {split} images")
    projection = projection or Projection.fit(latents)
    return EncodedSet(latents=latents, xy=projection.transform(latents), projection=projection,
                      labels=labels.numpy(), class_names=tuple(data.class_names),
                      images=images.numpy(), split=split, step=step, factors=dict(factors))


def dataset_split(data: ImageData, split: str, limit: int | None):
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

    name = "pca"  # see core/projection.py for the others
    is_linear = True  # a step in the plane is a step along ``components`` in latent space
    aligned = False  # turned to match a previous plane (projection.align_pca)

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


INTERPOLATIONS = ("linear", "spherical")


def dimension_name(index: int) -> str:
    """How every view names latent dimension ``index`` (0-based): z1, z2, ..."""
    return f"z{index + 1}"


def interpolate(a: np.ndarray, b: np.ndarray, t: np.ndarray | float, method: str = "linear") -> np.ndarray:
    """Points at fractions ``t`` (0 = a, 1 = b) of the way from a to b: (len(t), L), or (L,) for a
    scalar t. "spherical" is slerp (Shoemake 1985; White 2016 for latent spaces): it follows the
    arc between a and b and interpolates the norm linearly, so intermediate points keep a
    typical norm under a Gaussian prior; it falls back to linear for (anti)parallel or zero
    vectors."""
    if method not in INTERPOLATIONS:
        raise ValueError(f"interpolation {method!r} is not one of {INTERPOLATIONS}")
    scalar = np.ndim(t) == 0
    t = np.atleast_1d(np.asarray(t, np.float64))[:, None]  # (n, 1)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    out = (1 - t) * a + t * b
    if method == "spherical":
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        if na > 0 and nb > 0:
            omega = np.arccos(np.clip(a @ b / (na * nb), -1.0, 1.0))
            if np.sin(omega) >= 1e-6:
                direction = (np.sin((1 - t) * omega) * a / na + np.sin(t * omega) * b / nb) / np.sin(omega)
                out = direction * ((1 - t) * na + t * nb)
    out = out.astype(np.float32)
    return out[0] if scalar else out


def lerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """Linear interpolation a -> b, end points included: (steps, L)."""
    return interpolate(a, b, np.linspace(0.0, 1.0, steps), "linear")


def slerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """Spherical interpolation a -> b, end points included: (steps, L)."""
    return interpolate(a, b, np.linspace(0.0, 1.0, steps), "spherical")


def traversal(z: np.ndarray, dims: Sequence[int], span: float, columns: int) -> np.ndarray:
    """A latent traversal around z: (len(dims) * columns, L), row-major. Row r is z with
    dimension dims[r] moved from z[d] - span to z[d] + span in ``columns`` even steps, every
    other dimension held at z (Higgins et al. 2017, beta-VAE, Fig. 7's layout)."""
    z = np.asarray(z, np.float32).reshape(-1)
    dims = np.asarray(dims, np.int64)
    offsets = np.linspace(-span, span, columns, dtype=np.float32)
    out = np.repeat(z[None, None, :], len(dims), 0).repeat(columns, 1)  # (R, C, L)
    out[np.arange(len(dims)), :, dims] = z[dims][:, None] + offsets[None, :]
    return out.reshape(-1, len(z))


def traversal_order(kl_per_dim: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
    """Latent dimensions by decreasing KL, active units first (the beta-VAE papers' order)."""
    kl = np.nan_to_num(np.asarray(kl_per_dim, np.float64), nan=-np.inf)
    active = np.ones(len(kl), bool) if active is None else np.asarray(active, bool)
    return np.lexsort((np.arange(len(kl)), -kl, ~active))  # last key sorts first


def grid_points(x_range: tuple[float, float], y_range: tuple[float, float], size: int) -> np.ndarray:
    """The centres of a size x size grid of cells that tile a plane region, row-major from the
    top (high y) left: (size^2, 2). Decoded and tiled, they cover the region exactly."""
    def centres(lo: float, hi: float) -> np.ndarray:
        return lo + (np.arange(size) + 0.5) * (hi - lo) / size
    gx, gy = np.meshgrid(centres(*x_range), centres(*y_range)[::-1])
    return np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)


def nearest_index(latents: np.ndarray, z: np.ndarray) -> tuple[int, float]:
    """Index of the row of ``latents`` (N, L) nearest to z (Euclidean), and that distance."""
    latents, z = np.asarray(latents, np.float32), np.asarray(z, np.float32).reshape(-1)
    if latents.shape[1] <= 8:
        # Column by column: numpy's sum along a short last axis costs far more than the
        # arithmetic (10,000 points, L = 2: 16 us against 190 us), and every move of a drag
        # asks for it.
        d2, t = np.zeros(len(latents), np.float32), np.empty(len(latents), np.float32)
        for j in range(latents.shape[1]):
            np.subtract(latents[:, j], z[j], out=t)
            t *= t
            d2 += t
    else:
        d = latents - z
        d2 = np.einsum("ij,ij->i", d, d)
    index = int(np.argmin(d2))
    return index, float(np.sqrt(d2[index]))


def example_indices(labels: np.ndarray, count: int) -> np.ndarray:
    """``count`` indices spread over the classes: the first image of each class, then the second
    of each, ... A fixed, varied set of examples for reconstructions."""
    labels = np.asarray(labels)
    rank = np.empty(len(labels), np.int64)
    for label in np.unique(labels):
        where = np.flatnonzero(labels == label)
        rank[where] = np.arange(len(where))
    return np.lexsort((labels, rank))[:count]


@dataclass(frozen=True, eq=False)
class Snapshot:
    """A copy of a model's weights at a training step (see ``model.model_state``): CPU tensors,
    safe to hand to another thread while training goes on. ``state`` may hold the decoder only
    (see ``model.decoder_state``); reconstructions then cannot be made."""

    config: ModelConfig
    image_shape: tuple[int, int, int]
    state: dict[str, torch.Tensor]
    step: int = 0

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def has_encoder(self) -> bool:
        return any(k.startswith("encoder.") for k in self.state)

    @property
    def architecture(self) -> tuple[ModelConfig, tuple[int, ...]]:
        """What weights must share to load into one model: snapshots of one run share it, and
        so do checkpoints of runs with the same model settings and image size."""
        return self.config, tuple(self.image_shape)

    # Why an export has no checkpoint of these weights ("" when it has one). A user's own
    # model (core/user_snapshot.py) is explored with no vaegui checkpoint.
    why_no_checkpoint = ""


def tile(images: np.ndarray, nrow: int, padding: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """(n, C, H, W) images -> one (C, H', W') image, ``nrow`` per row: torchvision's make_grid
    in numpy (a test holds the two equal), because importing torchvision costs the app 3 s of
    start-up (it pulls in its models and torch's compiler)."""
    images = np.asarray(images, np.float32)
    n, c, h, w = images.shape
    if n == 1:  # as make_grid: one image comes back without a frame
        return images[0].copy()
    cols = min(nrow, n)
    rows = -(-n // cols)
    grid = np.full((c, rows * (h + padding) + padding, cols * (w + padding) + padding), pad_value, np.float32)
    for k in range(n):
        y, x = divmod(k, cols)
        top, left = y * (h + padding) + padding, x * (w + padding) + padding
        grid[:, top:top + h, left:left + w] = images[k]
    return grid


MAX_LETTERBOX = 8  # a cell at most this many tiles wide or tall (a region of extreme shape)


def letterbox_tiles(grid: np.ndarray, tile_hw: tuple[int, int], cell_aspect: float,
                    margin: float = 0.0) -> np.ndarray:
    """A grid of tiles without padding, (C, rows * h, cols * w) -> (4, rows * H, cols * W) RGBA
    in [0, 1], each tile centred in a cell of ``cell_aspect`` (width / height) at its own shape,
    the rest of the cell transparent.

    The manifold grid decodes G x G points over the map's visible region, so its cells take the
    view's shape: drawn over the map as one image stretched to the region, a wide view squashed
    every digit. Letterboxed, each tile keeps its shape on the map (its axes are locked to equal
    units) and still sits on the point it was decoded at. ``margin``: the least free space around
    a tile, a share of its side (tiles that touch in a column or row read as one bar)."""
    grid = np.asarray(grid, np.float32)
    c, gh, gw = grid.shape
    h, w = (int(v) for v in tile_hw)
    if h < 1 or w < 1 or gh % h or gw % w:
        raise ValueError(f"a {gh} x {gw} grid is not made of {h} x {w} tiles")
    if not (np.isfinite(cell_aspect) and cell_aspect > 0):
        raise ValueError(f"cell aspect {cell_aspect} is not a positive number")
    rows, cols = gh // h, gw // w
    bh, bw = h + round(h * margin), w + round(w * margin)  # the tile with its free space
    if cell_aspect >= bw / bh:  # a wide cell: the tile and its margin fill its height
        ch, cw = bh, min(max(bw, round(bh * cell_aspect)), MAX_LETTERBOX * bw)
    else:
        cw, ch = bw, min(max(bh, round(bw / cell_aspect)), MAX_LETTERBOX * bh)
    top, left = (ch - h) // 2, (cw - w) // 2
    out = np.zeros((4, rows, ch, cols, cw), np.float32)
    rgb = grid[:3] if c >= 3 else np.repeat(grid[:1], 3, axis=0)
    out[:3, :, top:top + h, :, left:left + w] = rgb.reshape(3, rows, h, cols, w)
    out[3, :, top:top + h, :, left:left + w] = 1.0
    return out.reshape(4, rows * ch, cols * cw)
