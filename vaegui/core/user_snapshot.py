"""A user's model as the explorer sees vaegui's own: a snapshot the explorer model holds and the
decoding thread compares, a decoder it makes from it, and the encoded map of the user's images.

Every explorer view (map, drag, nearest real image, interpolation, traversal, manifold grid,
samples, reconstructions, hover cards, projections, export) asks a snapshot for a decoder and
calls ``decode`` (and ``reconstruct``) on it; a user's model answers those the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .decoder import ChunkedDecoding
from .explorer import ExplorerModel
from .latent import EncodedSet, Projection, example_indices
from .user_model import UserModel

WHY_NO_CHECKPOINT = ("the model was trained outside vaegui: vaegui saves checkpoints only of the "
                     "models it trains (save yours with torch.save(model.state_dict(), path))")


@dataclass(frozen=True, eq=False)
class UserSnapshot:
    """A :class:`~vaegui.core.latent.Snapshot` of a user's model: it has no state to copy (the
    model was copied once, see core/user_model.py), and its architecture is the model itself."""

    model: UserModel
    step: int = 0
    state: dict = field(default_factory=dict)
    why_no_checkpoint = WHY_NO_CHECKPOINT
    has_encoder = True

    @property
    def latent_dim(self) -> int:
        return self.model.latent_dim

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.model.image_shape

    @property
    def architecture(self) -> tuple[str, int]:
        return "user model", id(self.model)

    def make_decoder(self) -> "UserDecoder":
        return UserDecoder(self.model)


class UserDecoder(ChunkedDecoding):
    """The explorer's decoder interface over a :class:`UserModel` (whose calls hold its lock)."""

    has_encoder = True

    def __init__(self, model: UserModel):
        self.model = model
        self.image_shape = model.image_shape
        self.latent_dim = model.latent_dim

    def fits(self, snapshot) -> bool:
        return getattr(snapshot, "model", None) is self.model

    def load_state(self, state: dict) -> None:
        """Nothing to load: the model's weights never change while it is explored."""

    def decode(self, z: np.ndarray) -> np.ndarray:
        return self.model.decode(z)

    def reconstruct(self, images: np.ndarray) -> np.ndarray:
        """uint8 previews (n, C, H, W) -> the decoded encoder means, in [0, 1]."""
        model = self.model
        return model.decode(model.encode(model.images.to_inputs(images)))


def user_encoded(model: UserModel, latents: np.ndarray) -> EncodedSet:
    """The map of the user's images from their flat encoder means (N, L), in PCA's plane (the
    explorer turns it into the chosen projection)."""
    images = model.images
    if latents.shape != (len(images.previews), model.latent_dim):
        raise ValueError(f"{latents.shape} latents for {len(images.previews)} images of a "
                         f"{model.latent_dim}-D model")
    projection = Projection.fit(latents)
    return EncodedSet(latents=latents, xy=projection.transform(latents), projection=projection,
                      labels=images.labels, class_names=images.class_names, images=images.previews)


def show_model(explorer: ExplorerModel, model: UserModel, examples: int | None = None) -> None:
    """The explorer on ``model``: its snapshot and, for reconstructions, example images spread
    over the classes."""
    explorer.clear()
    explorer.set_snapshot(UserSnapshot(model))
    labels = model.images.labels
    explorer.set_examples(model.images.previews[example_indices(labels, examples or explorer.samples.count)])


def pick_examples(explorer: ExplorerModel) -> None:
    """The prior's mode as the picked point, and an interpolation between the first images of
    the first two classes (of the first two images with one class): what an export shows."""
    encoded = explorer.encoded
    explorer.pick(np.zeros(explorer.latent_dim, np.float32))
    if encoded is None or len(encoded.latents) < 2:
        return
    ends = example_indices(encoded.labels, 2)
    if len(ends) < 2:
        ends = np.array([0, 1])
    explorer.set_endpoint("a", explorer.dataset_latent(int(ends[0])))
    explorer.set_endpoint("b", explorer.dataset_latent(int(ends[1])))
