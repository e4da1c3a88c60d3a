"""Reconstructions and samples: a fixed set of test images above their reconstructions, and
decoded draws from N(0, I) with fixed noise, so a user watches the same samples sharpen as
training goes on. Both refresh with every new snapshot of the weights."""

from __future__ import annotations

import math

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from vaegui.core.explorer import ExplorerModel
from vaegui.core.explorer_images import originals_and_reconstructions

from .decode_worker import DecodeFailure, DecodeWorker
from .decoding_view import DecodingView
from .image_canvas import Grid, ImageCanvas

RECON, SAMPLES = "recon", "samples"


def samples_grid(n: int) -> Grid:
    """n samples in a square-ish grid, row by row (as the decode tiles them)."""
    columns = math.ceil(math.sqrt(n))
    return Grid(math.ceil(n / columns), columns, padding=1, keep_rows="first", keep_columns="first",
                cell_text=lambda r, c: f"sample {r * columns + c + 1} of {n}" if r * columns + c < n else "")


class SamplesView(DecodingView):
    def __init__(self, model: ExplorerModel, decoder: DecodeWorker, parent: QWidget | None = None):
        super().__init__(model, decoder, [RECON, SAMPLES], parent)
        self.count = QSpinBox(minimum=1, maximum=64, value=model.samples.count,
                              toolTip="How many samples and reconstructions")
        self.count.valueChanged.connect(lambda v: model.set_samples(count=v))
        self.noise_button = QPushButton("New noise", toolTip="Draw new fixed noise for the samples")
        self.noise_button.clicked.connect(model.new_noise)
        self.recon_canvas = ImageCanvas(minimum=40)
        self.samples_canvas = ImageCanvas(top=True)
        self.recon_canvas.setObjectName("reconstructions")  # names as export targets
        self._recon_grid: Grid | None = None  # how the images asked for last are laid out
        self._sample_grid: Grid | None = None
        self.samples_canvas.setObjectName("samples")
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Images"))
        controls.addWidget(self.count)
        controls.addWidget(self.noise_button)
        controls.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addWidget(QLabel("Test images (top) and their reconstructions"))
        layout.addWidget(self.recon_canvas, 1)
        layout.addWidget(QLabel("Samples: decoded draws from N(0, I), fixed noise"))
        layout.addWidget(self.samples_canvas, 2)
        decoder.register(RECON, self._on_recon_decoded, priority=6)
        decoder.register(SAMPLES, self._on_samples_decoded, priority=5)
        for event in (model.events.snapshot, model.events.samples, model.events.examples):
            event.connect(self.refresh)

    def _send_requests(self) -> None:
        m = self.model
        if m.snapshot is None:
            self.recon_canvas.set_image(None, "No model yet")
            self.samples_canvas.set_image(None, "No model yet")
            self.decoder.cancel(SAMPLES)
            self.decoder.cancel(RECON)
            return
        z = m.sample_latents()
        self._sample_grid = samples_grid(len(z))
        nrow = self._sample_grid.columns
        self.decoder.request(SAMPLES, lambda d: d.tile_in_chunks(z, nrow=nrow, padding=1))
        if m.examples is None or not len(m.examples):
            self.recon_canvas.set_image(None, "Reconstructions need the test images (load the data)")
            self.decoder.cancel(RECON)
        elif not m.snapshot.has_encoder:
            self.recon_canvas.set_image(None, "Reconstructions need the encoder's weights (the run "
                                              "kept only the decoder of this epoch)")
            self.decoder.cancel(RECON)  # the last request would run on these weights
        else:
            images = m.examples[:m.samples.count]
            self._recon_grid = Grid(2, len(images), padding=1, keep_rows="first", keep_columns="first",
                                    cell_text=lambda r, c: f"test image {c + 1}" if r == 0 else
                                    f"reconstruction of test image {c + 1}")
            self.decoder.request(RECON, lambda d: originals_and_reconstructions(d, images))

    def _on_recon_decoded(self, result) -> None:
        self._show(self.recon_canvas, result, self._recon_grid)

    def _on_samples_decoded(self, result) -> None:
        self._show(self.samples_canvas, result, self._sample_grid)

    @staticmethod
    def _show(canvas: ImageCanvas, result, grid: Grid | None) -> None:
        if isinstance(result, DecodeFailure):
            canvas.set_image(None, f"Cannot decode: {result.message}")
        else:
            canvas.set_image(result, grid=grid)  # (a grid of another count does not fit: ignored)
