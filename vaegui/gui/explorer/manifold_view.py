"""The manifold grid: a G x G grid of images decoded over the visible region of the latent map
(the latent plane for L = 2, the PCA plane otherwise), as in Kingma and Welling's figure. It
follows the map's pan and zoom, and the map can show it over the points as tiles."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSlider, QSpinBox, QVBoxLayout, QWidget

from vaegui.core.explorer import GRID_RANGE, ExplorerModel
from vaegui.core.projection import plane_name

from .decode_worker import DecodeFailure, DecodeWorker
from .decoding_view import DecodingView
from .image_canvas import Grid, ImageCanvas
from .point_view import format_latent

CHANNEL = "grid"


class ManifoldView(DecodingView):
    def __init__(self, model: ExplorerModel, decoder: DecodeWorker, parent: QWidget | None = None):
        super().__init__(model, decoder, [CHANNEL], parent)
        g = model.grid
        self.size = QSpinBox(minimum=GRID_RANGE[0], maximum=GRID_RANGE[1], value=g.size,
                             toolTip="The grid decodes G x G points of the visible map")
        self.size.valueChanged.connect(lambda v: model.set_grid(size=v))
        self.overlay = QCheckBox("Show on map", checked=g.overlay,
                                 toolTip="Draw the grid's images over the latent map, as tiles")
        self.overlay.toggled.connect(lambda on: model.set_grid(overlay=on))
        self.opacity = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100,
                               value=round(100 * g.opacity), toolTip="Opacity of the tiles on the map")
        self.opacity.valueChanged.connect(lambda v: model.set_grid(opacity=v / 100))
        self.caption = QLabel(wordWrap=True)
        self.caption.setStyleSheet("color: #555;")
        self.canvas = ImageCanvas()
        self.canvas.setObjectName("manifold_grid")  # its name as an export target
        controls = QHBoxLayout()
        controls.addWidget(QLabel("G"))
        controls.addWidget(self.size)
        controls.addWidget(self.overlay)
        controls.addWidget(QLabel("Opacity"))
        controls.addWidget(self.opacity, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.caption)
        decoder.register(CHANNEL, self._on_decoded, priority=4)
        for event in (model.events.snapshot, model.events.encoded, model.events.grid):
            event.connect(self.refresh)
        model.events.grid.connect(self._sync_controls)

    def wanted(self) -> bool:
        return self.isVisible() or self.model.grid.overlay

    def _sync_controls(self) -> None:
        g = self.model.grid
        for widget, value in ((self.size, g.size), (self.overlay, g.overlay),
                              (self.opacity, round(100 * g.opacity))):
            widget.blockSignals(True)
            widget.setChecked(value) if widget is self.overlay else widget.setValue(value)
            widget.blockSignals(False)

    def _send_requests(self) -> None:
        m = self.model
        latents, region = m.grid_latents(), m.grid_region()
        if m.snapshot is None or latents is None:
            self.canvas.set_image(None, "The grid needs a decoder and a map: train or open a model")
            self.decoder.cancel(CHANNEL)
            return
        size = m.grid.size
        x0, x1, y0, y1 = region
        plane = plane_name(m.encoded.projection)
        self.caption.setText(f"{size} x {size} over the visible {plane}: x {x0:.2f} … {x1:.2f}, "
                             f"y {y0:.2f} … {y1:.2f}")

        def job(decoder):  # in chunks: a click's decode may run between them
            grid = yield from decoder.tile_in_chunks(latents, nrow=size, padding=0)
            return grid, region, latents
        self.decoder.request(CHANNEL, job)

    def _on_decoded(self, result) -> None:
        if isinstance(result, DecodeFailure):
            self.canvas.set_image(None, f"Cannot decode: {result.message}")
            return
        image, region, latents = result
        size = round(len(latents) ** 0.5)
        x0, x1, y0, y1 = region

        def cell_text(row: int, column: int) -> str:
            # Cell centres, row 0 at the top (high y), as core.latent.grid_points lays them.
            x = x0 + (column + 0.5) * (x1 - x0) / size
            y = y1 - (row + 0.5) * (y1 - y0) / size
            return f"x {x:.2f}, y {y:.2f}\n{format_latent(latents[row * size + column])}"
        self.canvas.set_image(image, grid=Grid(size, size, 0, keep_rows="spread", keep_columns="spread",
                                               cell_text=cell_text, square=True))
        self.model.set_grid_image(image, region)
