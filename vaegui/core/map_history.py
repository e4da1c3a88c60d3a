"""A run's map history: the test set's latent means and (when kept) the decoder weights of each
epoch, as its run folder stores them, read lazily and a few at a time.

The folder is untrusted: an epoch whose map fails the reader's check is left out when it is
found (every map is read once then), and one whose decoder fails when it is first wanted shows
with the live decoder instead; ``problem`` says what was left out, for the window to show. So
nothing the history hands out can fail later, half-way through showing an epoch."""

from __future__ import annotations

import math
from collections import OrderedDict

from typing import TYPE_CHECKING

import numpy as np

from .errors import VaeguiError

if TYPE_CHECKING:  # the window holds a MapHistory before torch is imported
    import torch

    from .run_reader import RunReader

CACHED_EPOCHS = 8  # (N, L) float32 each: 10,000 x 20 is 0.8 MB
class MapHistory:
    def __init__(self, reader: RunReader):
        self.reader = reader
        self.epochs: list[int] = []
        self.problem = ""  # the first epoch left out, and why
        self._decoders: set[int] = set()
        self._means: OrderedDict[int, np.ndarray] = OrderedDict()
        self._bad: set[int] = set()  # epochs whose map failed its check
        self._bad_decoders: set[int] = set()  # ... whose decoder did
        self.refresh()

    @classmethod
    def of_run(cls, run_dir: str | None) -> "MapHistory | None":
        """The map history a run folder keeps (None for no folder or an unreadable one: the map
        then has no history, nothing else changes)."""
        from .errors import VaeguiError

        if run_dir is None:
            return None
        try:
            from .run_reader import RunReader  # torch: the window calls this once a run is shown

            return cls(RunReader(run_dir))
        except VaeguiError:
            return None

    def refresh(self) -> bool:
        """Look for epochs written since; True if there are new ones."""
        epochs = []
        for epoch in self.reader.map_epochs():
            if epoch in self._bad:
                continue
            if epoch not in self.epochs:
                try:
                    self.means(epoch)  # checked once here, so that showing it cannot fail
                except VaeguiError as exc:
                    self._left_out(epoch, exc)
                    continue
            epochs.append(epoch)
        changed = epochs != self.epochs
        self.epochs, self._decoders = epochs, set(self.reader.decoder_epochs()) - self._bad_decoders
        return changed

    def _left_out(self, epoch: int, exc: Exception) -> None:
        self._bad.add(epoch)
        if not self.problem:
            self.problem = f"The history leaves out epoch {epoch}: {exc}"

    def step_of(self, epoch: int) -> int:
        return epoch * self.reader.steps_per_epoch

    def means(self, epoch: int) -> np.ndarray:
        if epoch not in self._means:
            self._means[epoch] = self.reader.map_means(epoch)
            while len(self._means) > CACHED_EPOCHS:
                self._means.popitem(last=False)
        self._means.move_to_end(epoch)
        return self._means[epoch]

    def at(self, position: float) -> np.ndarray:
        """The means at a fractional epoch: a straight blend of the stored epochs around it,
        so points move smoothly from one epoch's place to the next one's."""
        epochs = self.epochs
        position = min(max(position, epochs[0]), epochs[-1])
        after = next(e for e in epochs if e >= position)
        before = max((e for e in epochs if e <= position), default=after)
        if after == before:
            return self.means(after)
        t = (position - before) / (after - before)
        return ((1 - t) * self.means(before) + t * self.means(after)).astype(np.float32)

    def nearest_epoch(self, position: float) -> int:
        return min(self.epochs, key=lambda e: (abs(e - position), -e))

    def decoder_state(self, epoch: int) -> dict[str, torch.Tensor] | None:
        """The decoder weights of ``epoch`` when the folder kept them, else None."""
        if epoch not in self._decoders:
            return None
        try:
            return self.reader.decoder_state(epoch)
        except VaeguiError as exc:  # shown with the live decoder; said once
            self._decoders.discard(epoch)
            self._bad_decoders.add(epoch)
            if not self.problem:
                self.problem = f"The history shows epoch {epoch} with the live decoder: {exc}"
            return None

    def __len__(self) -> int:
        return len(self.epochs)


def is_whole(position: float) -> bool:
    return math.isclose(position, round(position), abs_tol=1e-9)
