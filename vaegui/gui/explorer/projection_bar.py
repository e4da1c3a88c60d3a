"""The latent map's projection choice, in its header: PCA, UMAP, t-SNE or two latent axes (two
dimension pickers, by decreasing KL), with the progress of a fit, Cancel and Refit. The fit runs
on a :class:`ProjectionWorker`; PCA is shown meanwhile, and a new epoch's means are placed on
the last layout rather than laid out anew while training runs (a fit is a minute of a core)."""

from __future__ import annotations

from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy,
                               QWidget)

from vaegui.core.errors import ConfigError
from vaegui.core.explorer import ExplorerModel
from vaegui.core.latent import dimension_name, traversal_order
from vaegui.core.layout_cache import map_epoch
from vaegui.core.projection import ProjectionSpec

from .projection_worker import LayoutRequest, ProjectionWorker

KINDS = (("PCA", "pca"), ("UMAP", "umap"), ("t-SNE", "tsne"), ("Two latent axes", "axes"))


class ProjectionBar(QWidget):
    def __init__(self, model: ExplorerModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self.worker = ProjectionWorker(self)
        self._refit = False  # the next request lays out anew even while training places
        self._cancelled_base = None  # the map whose fit the user cancelled: not restarted
        self.kind_combo = QComboBox()
        for text, kind in KINDS:
            self.kind_combo.addItem(text, kind)
        self.kind_combo.setToolTip("How the latent means are drawn in the plane when L > 2")
        self.dim_combos = (QComboBox(), QComboBox())
        for combo, axis in zip(self.dim_combos, "xy"):
            combo.setToolTip(f"The latent dimension on {axis} (listed by decreasing KL)")
            combo.activated.connect(self._on_choice_changed)
        self.kind_combo.activated.connect(self._on_choice_changed)
        self.progress = QProgressBar(maximumWidth=90, textVisible=False, maximum=100)
        self.status = QLabel()
        self.status.setStyleSheet("color: #555;")
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.cancel_button = QPushButton("Cancel", toolTip="Stop the fit; PCA stays shown")
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        self.refit_button = QPushButton("Refit", toolTip="Lay the current means out anew")
        self.refit_button.clicked.connect(self._on_refit_clicked)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Map"))
        for w in (self.kind_combo, *self.dim_combos, self.progress, self.cancel_button, self.refit_button):
            layout.addWidget(w)
        layout.addWidget(self.status, 1)
        self.worker.progressed.connect(self._on_worker_progressed)
        self.worker.finished.connect(self._on_worker_finished)
        self.worker.failed.connect(self._on_worker_failed)
        self.worker.cancelled.connect(self._on_worker_cancelled)
        for event in (model.events.encoded, model.events.projection, model.events.evaluation,
                      model.events.training):
            event.connect(self._sync)
        self._sync()

    def shutdown(self) -> None:
        self.worker.shutdown()

    # ---- state -> widgets -------------------------------------------------------------------
    def _sync(self) -> None:
        m = self.model
        dim = m.latent_dim or 0
        self.setVisible(dim > 2)
        spec = m.projection
        self.kind_combo.setCurrentIndex(self.kind_combo.findData(spec.kind))
        self._fill_dims(dim)
        for combo, d in zip(self.dim_combos, spec.dims):
            combo.setVisible(spec.kind == "axes")
            combo.setCurrentIndex(max(0, combo.findData(d)))
        self.refit_button.setVisible(spec.is_nonlinear)
        self._request_layout()
        self._show_busy(self.worker.busy)

    def _fill_dims(self, dim: int) -> None:
        ev = self.model.evaluation
        order = list(traversal_order(ev.kl_per_dim, ev.active)) if ev is not None and len(ev.kl_per_dim) == dim \
            else list(range(dim))
        items = [(dimension_name(d), int(d)) for d in order]
        for combo in self.dim_combos:
            if [(combo.itemText(i), combo.itemData(i)) for i in range(combo.count())] != items:
                combo.clear()
                for text, d in items:
                    combo.addItem(text, d)

    def _show_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)

    # ---- requests ---------------------------------------------------------------------------
    def _request_layout(self) -> None:
        wanted = self.model.layout_wanted()
        if wanted is None:
            if not self.model.projection.is_nonlinear:
                self.worker.cancel()
            return
        spec, base, previous = wanted
        place = (self.model.training and not self._refit and previous is not None and previous.model is not None
                 and previous.latents.shape == base.latents.shape)
        sent = self.worker.request_shown
        if base is self._cancelled_base or (sent is not None and sent.base is base and sent.spec == spec
                                            and sent.place == place):
            return
        history = self.model.history
        run, epoch = map_epoch(history.reader, base.step) if history is not None and base.split == "test" else (None, None)
        self._refit = False
        self.worker.request(LayoutRequest(spec, base, previous, place, run, epoch))
        self.status.setText("placing on the last layout…" if place else f"fitting {self.kind_combo.currentText()}…")
        self.progress.setRange(0, 0)  # busy until a fraction comes (umap-learn reports none)
        self._show_busy(True)

    def _on_choice_changed(self, _index: int = 0) -> None:
        kind = self.kind_combo.currentData()
        dims = tuple(int(c.currentData() or 0) for c in self.dim_combos)
        if kind == "axes" and dims[0] == dims[1]:
            dims = (dims[0], next(d for d in range(max(2, self.model.latent_dim or 2)) if d != dims[0]))
        self._cancelled_base = None
        try:
            self.model.set_projection(ProjectionSpec(kind, dims if kind == "axes" else (0, 1)))
        except ConfigError as exc:
            self.status.setText(str(exc))
        self._sync()

    def _on_cancel_clicked(self) -> None:
        sent = self.worker.request_shown
        self._cancelled_base = None if sent is None else sent.base
        self.worker.cancel()
        self.status.setText("cancelled: PCA shown (Refit lays it out)")
        self._show_busy(False)

    def _on_refit_clicked(self) -> None:
        self._cancelled_base = None
        self._refit = True
        self.model.layout = None  # the next fit starts from scratch, not from this layout
        self._request_layout()

    # ---- worker -> model --------------------------------------------------------------------
    def _on_worker_progressed(self, fraction: float, what: str) -> None:
        if fraction > 0.05:
            self.progress.setRange(0, 100)
            self.progress.setValue(round(100 * fraction))
        self.status.setText(what)

    def _on_worker_finished(self, layout, request: LayoutRequest) -> None:
        self._show_busy(self.worker.busy)
        if request is not self.worker.request_shown:
            return  # superseded while it ran
        self.model.set_layout(layout, request.base)
        self.status.setText(f"fitted in {layout.fit_seconds:.1f} s" if not request.place else "placed")

    def _on_worker_failed(self, message: str) -> None:
        self._show_busy(self.worker.busy)
        self.status.setText(f"cannot lay out: {message}")

    def _on_worker_cancelled(self) -> None:
        self._show_busy(self.worker.busy)
