"""The point view: the image decoded at the picked point, large, and beside it the nearest real
image of the map's set, so a user sees what lives there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from vaegui.core.explorer import ExplorerModel
from vaegui.core.latent import EncodedSet, nearest_index
from vaegui.core.spatial_index import latent_index

from .decode_worker import DecodeFailure, DecodeWorker
from .decoding_view import DecodingView
from .image_canvas import ImageCanvas

if TYPE_CHECKING:
    from vaegui.core.decoder import Decoder

CHANNEL = "point"
HINT_NO_DECODER = "No decoder yet: start training or open a checkpoint"
HINT_NO_POINT = "Click or drag on the latent map to decode a point"
MAX_SHOWN_DIMS = 8  # longer latent vectors are shown as their first and last values


def format_latent(z: np.ndarray) -> str:
    """``z = [0.12, -1.30]``; long vectors elided in the middle, with their length."""
    values = [f"{v:.2f}" for v in np.asarray(z, dtype=np.float64).ravel()]
    if len(values) > MAX_SHOWN_DIMS:
        values = values[:MAX_SHOWN_DIMS - 2] + ["...", values[-1]]
        return f"z = [{', '.join(values)}]  (L = {len(z)})"
    return f"z = [{', '.join(values)}]"


@dataclass(frozen=True, eq=False)
class PointResult:
    z: np.ndarray  # (L,)
    image: np.ndarray  # (C, H, W) in [0, 1]
    encoded: EncodedSet | None  # the set searched for the nearest image
    nearest: int = -1
    distance: float = 0.0


def decode_point(decoder: Decoder, z: np.ndarray, encoded: EncodedSet | None) -> PointResult:
    image = decoder.decode(z[None])[0]
    if encoded is None or not len(encoded.latents):
        return PointResult(z, image, None)
    # On the decoding thread: the first pick of a map builds its index here if the map's
    # own build has not finished.
    tree = latent_index(encoded)
    index, distance = tree.nearest(z) if tree is not None else nearest_index(encoded.latents, z)
    return PointResult(z, image, encoded, index, distance)


def plane_note(m: ExplorerModel) -> str:
    """How the picked plane point became a latent vector, and for a learned inverse how far it
    is from the data (it extrapolates beyond PlaneDistance's threshold)."""
    from vaegui.core.plane_inverse import PlaneDistance
    from vaegui.core.projection import describe

    projection = m.encoded.projection
    if getattr(projection, "is_linear", True):
        if projection.name.startswith("axes"):
            return "with the other dimensions at the data's mean"
        return "through the PCA inverse"
    label = describe(projection)[0].rsplit(" ", 1)[0]  # "UMAP 1" -> "UMAP"
    text = f"through the {label} map's learned inverse"
    distance = None if m.point_xy is None else m.plane_distance(m.point_xy)
    if distance is not None:
        text += f"; {distance:.1f} neighbour spacings from the nearest map point"
        if PlaneDistance.extrapolating(distance):
            text += ": extrapolating, far from any image of the data"
    return text


class _LineBox(QWidget):
    """A label in a box of fixed height that places it itself, for text that changes at every
    move of a drag. Qt asks the layout holding a widget to lay out again at each setText of a
    label whose size is not fixed, and here that was the whole view with the scroll area around
    it, 60 times a second."""

    def __init__(self, label: QLabel, lines: int = 1):
        super().__init__()
        label.setParent(self)
        self._label = label
        self.setFixedHeight(lines * label.fontMetrics().height() + 4)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

    def resizeEvent(self, event) -> None:
        self._label.setGeometry(self.rect())


class PointView(DecodingView):
    imageShown = Signal()  # a decoded image has just been put on screen (benchmarks time it)

    def __init__(self, model: ExplorerModel, decoder: DecodeWorker, parent: QWidget | None = None):
        super().__init__(model, decoder, [CHANNEL], parent)
        self.result: PointResult | None = None
        self._nearest_shown: tuple[EncodedSet, int] | None = None  # the set and index shown
        self.canvas = ImageCanvas()
        self.nearest_canvas = ImageCanvas(minimum=56)
        self.canvas.setObjectName("point")  # names as export targets
        self.nearest_canvas.setObjectName("nearest_image")
        self.nearest_label = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.note_label = QLabel(wordWrap=True)
        self.note_label.setStyleSheet("color: #555;")
        # Two lines, wrapped after a comma: at L = 8 one line was cut off in a narrow dock.
        self.latent_label = QLabel(wordWrap=True)
        self.latent_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.latent_label.setStyleSheet("font-family: monospace;")
        nearest = QGridLayout()
        nearest.addWidget(QLabel("Nearest real image", alignment=Qt.AlignmentFlag.AlignCenter), 0, 0)
        nearest.addWidget(self.nearest_canvas, 1, 0)
        nearest.addWidget(_LineBox(self.nearest_label, lines=2), 2, 0)
        nearest.setRowStretch(1, 1)
        row = QGridLayout()
        row.addWidget(self.canvas, 0, 0)
        row.addLayout(nearest, 0, 1)
        row.setColumnStretch(0, 3)
        row.setColumnStretch(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(row, 1)
        layout.addWidget(_LineBox(self.latent_label, lines=2))
        layout.addWidget(self.note_label)
        decoder.register(CHANNEL, self._on_decoded, priority=0)  # what the user drags comes first
        for event in (model.events.point, model.events.snapshot, model.events.encoded):
            event.connect(self.refresh)
        self._show_hint()

    def current_image(self) -> np.ndarray | None:
        return None if self.result is None else self.result.image

    def _send_requests(self) -> None:
        m = self.model
        self.latent_label.setText("" if m.point is None else format_latent(m.point))
        self._update_note()
        if m.snapshot is None or m.point is None:
            self.result = None
            self._show_hint()
            self.decoder.cancel(CHANNEL)
            return
        z, encoded = m.point.copy(), m.encoded
        self.decoder.request(CHANNEL, lambda d: decode_point(d, z, encoded))

    def _show_hint(self) -> None:
        hint = HINT_NO_DECODER if self.model.snapshot is None else HINT_NO_POINT
        self.canvas.set_image(None, hint)
        self.nearest_canvas.set_image(None, "")
        self._nearest_shown = None
        self.nearest_label.setText("")

    def _update_note(self) -> None:
        m, dim = self.model, self.model.latent_dim
        note = ""
        if m.point is not None and m.point_on_plane and dim is not None and dim > 2 and m.encoded is not None:
            note = f"L = {dim}: this point of the map's plane was mapped back to a latent vector " + \
                plane_note(m)
        if note != self.note_label.text():
            self.note_label.setText(note)

    def _on_decoded(self, result) -> None:
        if isinstance(result, DecodeFailure):
            self.result = None
            self.canvas.set_image(None, f"Cannot decode: {result.message}")
            return
        self.result = result
        self.canvas.set_image(result.image)
        enc = result.encoded
        if enc is None:
            self.nearest_canvas.set_image(None, "no map yet")
            self._nearest_shown = None
            self.nearest_label.setText("")
        else:
            label = int(enc.labels[result.nearest])
            name = enc.class_names[label] if 0 <= label < len(enc.class_names) else str(label)
            # Along a drag the nearest image often stays the same: repainting it is then waste.
            shown = self._nearest_shown
            if shown is None or shown[0] is not enc or shown[1] != result.nearest:
                self._nearest_shown = (enc, result.nearest)
                self.nearest_canvas.set_image(enc.images[result.nearest])
            self.nearest_label.setText(f"{name}  (#{result.nearest})\ndistance {result.distance:.2f}")
        self.imageShown.emit()
