"""Encoding images to latent means and decoding latent points to images, with torch (the
array-only tools are in :mod:`.latent`)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from .config import ModelConfig
from .dataset_loader import ImageData
from .errors import VaeguiError
from .evaluate import to_float
from .latent import EncodedSet, Projection, Snapshot, dataset_split, encoded_set, tile
from .model import VAE
from .memory import release_free_memory, release_mapped_pages
from .thread_governor import ThreadGovernor


# Images per forward pass of an encoding. Measured with the MLP (784-400-4) on this 2-core
# machine, a million images took 8-14 s at 1,024 against 10-20 s at 4,096: a chunk's float copy
# (3 MB) and activations stay in cache, and a chunk is short enough for the thread governor.
ENCODE_CHUNK = 1024


@torch.inference_mode()
def encode_means(model: VAE, images: torch.Tensor, batch_size: int = ENCODE_CHUNK,
                 progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Posterior means of uint8 images (N, C, H, W), in chunks -> (N, L) float32.

    Each chunk is converted into one float buffer made once, so a million images never have a
    float copy (3 GB at 28 x 28) and no chunk allocates (and page-faults) its own. On the CPU the
    calling thread's torch thread count is chosen by measuring the chunks (a
    :class:`~.thread_governor.ThreadGovernor`) and restored after: beside a busy process, 2
    threads encoded a million images in 30-55 s where 1 thread took 8-14 s, and on a quiet
    machine 2 are faster. ``progress(done, total)`` is called after each chunk."""
    device = next(model.parameters()).device
    n = images.shape[0]
    was_training = model.training
    model.eval()
    # Filled on the device and copied once: no host round trip per chunk.
    out = torch.empty((n, model.latent_dim), dtype=torch.float32, device=device)
    buffer = torch.empty((min(batch_size, n), *images.shape[1:]), dtype=torch.float32, device=device)
    governor = _EncodeThreads() if device.type == "cpu" else None
    try:
        for start in range(0, n, batch_size):
            t = time.perf_counter()
            k = min(batch_size, n - start)
            x = buffer[:k]
            x.copy_(images[start:start + k], non_blocking=True)  # uint8 -> float, on the device
            mu, _ = model.encode(x.mul_(1.0 / 255.0))
            out[start:start + k] = mu
            if governor is not None:
                governor.record(k, time.perf_counter() - t)
            if progress is not None:
                progress(start + k, n)
    finally:
        if governor is not None:
            governor.restore()
        model.train(was_training)
        release_free_memory()  # the chunks' activations (see core.memory)
        release_mapped_pages(images)  # their pages, where they are a memory-mapped file
    return out.cpu().numpy()


class _EncodeThreads:
    """A thread governor for one encoding, which gives the thread back its count after."""

    def __init__(self):
        self._before = torch.get_num_threads()
        self._governor = ThreadGovernor(self._before, torch.set_num_threads)

    def record(self, images: int, seconds: float) -> None:
        self._governor.record(images, seconds)

    def restore(self) -> None:
        if torch.get_num_threads() != self._before:
            torch.set_num_threads(self._before)


def encode_set(model: VAE, data: ImageData, split: str = "test", limit: int | None = None,
               step: int = 0, projection: "Projection | None" = None,
               progress: Callable[[int, int], None] | None = None) -> EncodedSet:
    """Encode the test split, or the first ``limit`` training images, and project to 2-D
    (fitting a new projection unless one is given)."""
    images, _, _ = dataset_split(data, split, limit)
    return encoded_set(data, encode_means(model, images, progress=progress), split, limit, step, projection)



# Latents decoded between two chances for a more urgent request: 32 MNIST images through the MLP
# take about a millisecond on one CPU thread, a small wait for a click.
DECODE_CHUNK = 32


class NoEncoder(VaeguiError, ValueError):
    """Reconstructions were asked of weights that hold only a decoder (a history epoch): a
    request made for the previous weights can reach them, so it is a message, not a bug."""


def decoder_for(snapshot) -> "ChunkedDecoding":
    """A new decoder of a snapshot's weights: vaegui's own :class:`Decoder`, or the kind a
    snapshot of another model makes itself (``make_decoder``: a user's model, see
    core/user_snapshot.py). Every decoder the explorer and its exports use is made here."""
    make = getattr(snapshot, "make_decoder", None)
    return make() if make is not None else Decoder.from_snapshot(snapshot)


class ChunkedDecoding:
    """What every decoder the explorer uses offers on top of ``decode((n, L)) -> (n, C, H, W)``
    in [0, 1]: vaegui's own (:class:`Decoder`) and a user's model (core/user_snapshot.py)."""

    def decode(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def decode_in_chunks(self, z: np.ndarray, chunk: int = DECODE_CHUNK):
        """:meth:`decode` as a generator that yields after every ``chunk`` latents and returns
        all the images: ``images = yield from decoder.decode_in_chunks(z)`` in a job lets more
        urgent decodes run between its chunks (see gui/explorer/decode_worker.py)."""
        z = np.atleast_2d(z)
        parts = []
        for start in range(0, len(z), chunk):
            parts.append(self.decode(z[start:start + chunk]))
            if start + chunk < len(z):
                yield
        return np.concatenate(parts) if parts else self.decode(z)

    def tile_in_chunks(self, z: np.ndarray, nrow: int, padding: int = 2):
        """:meth:`decode_in_chunks`, the images then tiled ``nrow`` to a row (:func:`.latent.tile`):
        what every grid and strip of the explorer decodes."""
        images = yield from self.decode_in_chunks(z)
        return tile(images, nrow, padding)

    def decode_grid(self, z: np.ndarray, nrow: int, padding: int = 2) -> np.ndarray:
        """Decode (n, L) and tile the images into one (C, H', W') float image, nrow per row."""
        return tile(self.decode(z), nrow, padding)


class Decoder(ChunkedDecoding):
    """Decodes latent vectors (and, when the weights include the encoder, reconstructs images)
    with a *copy* of the weights, on the CPU, independent of the live training model."""

    def __init__(self, config: ModelConfig, image_shape: tuple[int, int, int],
                 state: dict[str, torch.Tensor]):
        self.config = config
        self.image_shape = tuple(image_shape)
        self.model = VAE(config, self.image_shape)
        self.has_encoder = False
        self._load(state)
        self.model.eval()

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> "Decoder":
        return cls(snapshot.config, snapshot.image_shape, snapshot.state)

    def fits(self, snapshot: Snapshot) -> bool:
        """Whether ``snapshot`` has this decoder's architecture (so load_state can take it)."""
        return snapshot.architecture == (self.config, self.image_shape)

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Swap in a newer snapshot of the weights (same architecture)."""
        self._load(state)

    def _load(self, state: dict[str, torch.Tensor]) -> None:
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        missing_decoder = [k for k in missing if not k.startswith("encoder.")]
        if missing_decoder or unexpected:
            raise ValueError(f"decoder state does not fit: missing {missing_decoder}, unexpected {unexpected}")
        self.has_encoder = not any(k.startswith("encoder.") for k in missing)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @torch.no_grad()
    def decode(self, z: np.ndarray) -> np.ndarray:
        """(n, L) -> images (n, C, H, W) float32 in [0, 1] (the likelihood's mean)."""
        z = torch.as_tensor(np.atleast_2d(z), dtype=torch.float32)
        return torch.sigmoid(self.model.decode(z)).numpy()

    @torch.no_grad()
    def reconstruct(self, images: np.ndarray) -> np.ndarray:
        """uint8 images (n, C, H, W) -> decoded posterior means, float32 in [0, 1]."""
        if not self.has_encoder:
            raise NoEncoder("these weights hold no encoder: reconstructions need the full model")
        mu, _ = self.model.encode(to_float(torch.as_tensor(images), "cpu"))
        return torch.sigmoid(self.model.decode(mu)).numpy()
