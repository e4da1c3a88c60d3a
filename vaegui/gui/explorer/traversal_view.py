"""The traversal grid: one row per latent dimension, sorted by KL with the active units first,
each moving its dimension across a range of prior standard deviations around the picked point
while the others stay put (as in the beta-VAE papers)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from vaegui.core.explorer import ExplorerModel
from vaegui.core.explorer_images import signed, traversal_labels
from vaegui.core.latent import dimension_name

from .decode_worker import DecodeFailure, DecodeWorker
from .decoding_view import DecodingView
from .image_canvas import Grid, ImageCanvas

CHANNEL = "traversal"
POINT_DELAY_MS = 100


class TraversalView(DecodingView):
    def __init__(self, model: ExplorerModel, decoder: DecodeWorker, parent: QWidget | None = None):
        super().__init__(model, decoder, [CHANNEL], parent)
        t = model.traversal
        self.span = QDoubleSpinBox(minimum=0.5, maximum=10.0, singleStep=0.5, value=t.span, suffix=" σ",
                                   toolTip="Each row runs from z_d − span to z_d + span (prior SDs)")
        self.columns = QSpinBox(minimum=2, maximum=25, value=t.columns, toolTip="Images per row")
        self.rows = QSpinBox(minimum=1, maximum=64, value=t.rows,
                             toolTip="Dimensions shown, by decreasing KL")
        self.span.valueChanged.connect(lambda v: model.set_traversal(span=v))
        self.columns.valueChanged.connect(lambda v: model.set_traversal(columns=v))
        self.rows.valueChanged.connect(lambda v: model.set_traversal(rows=v))
        self.caption = QLabel(wordWrap=True)
        self.caption.setStyleSheet("color: #555;")
        self.canvas = ImageCanvas(top=True)
        self.canvas.setObjectName("traversal")  # its name as an export target
        self.dims: np.ndarray | None = None  # the dimensions of the rows shown
        controls = QHBoxLayout()
        for text, widget in (("Range ±", self.span), ("Columns", self.columns), ("Rows", self.rows)):
            controls.addWidget(QLabel(text))
            controls.addWidget(widget)
        controls.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.caption)
        decoder.register(CHANNEL, self._on_decoded, priority=3)
        for event in (model.events.snapshot, model.events.traversal, model.events.evaluation):
            event.connect(self.refresh)
        model.events.traversal.connect(self._sync_controls)  # a change made elsewhere shows here
        # A drag moves the point on every mouse move; the grid follows at most this often, so
        # the point view (which must follow every move) keeps the decoder and the GUI thread.
        self._point_timer = QTimer(self, singleShot=True, interval=POINT_DELAY_MS)
        self._point_timer.timeout.connect(self.refresh)
        model.events.point.connect(self._on_model_point)

    def _sync_controls(self) -> None:
        t = self.model.traversal
        for widget, value in ((self.span, t.span), (self.columns, t.columns), (self.rows, t.rows)):
            widget.blockSignals(True)
            widget.setValue(value)
            widget.blockSignals(False)

    def _on_model_point(self) -> None:
        if not self._point_timer.isActive():
            self._point_timer.start()

    def _send_requests(self) -> None:
        m = self.model
        plan = m.traversal_plan() if m.snapshot is not None else None
        if plan is None:
            self.dims = None
            self.canvas.set_image(None, "No decoder yet: start training or open a checkpoint")
            self.decoder.cancel(CHANNEL)
            return
        dims, latents, kl = plan
        columns = m.traversal.columns
        labels, header = traversal_labels(m, dims, kl)
        offsets = np.linspace(-m.traversal.span, m.traversal.span, columns)
        where = "the picked point" if m.point is not None else "the origin (pick a point to move it)"
        order = "rows by KL per dimension (nats), active units first" if kl is not None else \
            "rows in dimension order until the first evaluation gives their KL"
        self.caption.setText(f"Around {where}; {order}. Columns: offsets in prior SDs.")

        def job(decoder):  # in chunks: a click's decode may run between them
            grid = yield from decoder.tile_in_chunks(latents, nrow=columns, padding=1)
            return grid, dims, labels, header, offsets, kl
        self.decoder.request(CHANNEL, job)

    def _on_decoded(self, result) -> None:
        if isinstance(result, DecodeFailure):
            self.canvas.set_image(None, f"Cannot decode: {result.message}")
            return
        image, self.dims, labels, header, offsets, kl = result
        dims = self.dims

        def cell_text(row: int, column: int) -> str:
            text = f"{dimension_name(dims[row])} {signed(offsets[column], 2)} SD from the centre"
            return text + ("" if kl is None else f" (KL {kl[row]:.2f} nats)")
        grid = Grid(len(dims), len(offsets), padding=1, keep_rows="first", keep_columns="spread",
                    cell_text=cell_text)
        self.canvas.set_image(image, row_labels=labels, column_labels=header, grid=grid)
