"""The interpolation view: end points A and B, a strip of decoded images between them, and an
animation that plays along the path (the map draws the path, its end points and the moving
point)."""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QGridLayout, QHBoxLayout, QLabel, QPushButton, QSlider,
                               QSpinBox, QVBoxLayout, QWidget)

from vaegui.core.errors import VaeguiError
from vaegui.core.explorer import PLAYBACK_MODES, STEPS_RANGE, ExplorerModel
from vaegui.core.latent import INTERPOLATIONS

from .decode_worker import DecodeFailure, DecodeWorker
from .decoding_view import DecodingView
from .image_canvas import Grid, ImageCanvas

STRIP, FRAME, FRAMES = "strip", "frame", "frames"
SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0)
# The animation shows a frame this often (40 a second): smooth, and on 2 cores every frame's
# painting is taken from training. Frames come decoded ahead (see _show_ahead); one-frame
# decodes meanwhile are dropped when the decoder falls behind.
FRAME_INTERVAL_MS = 25
# A path held this long is worth decoding frame by frame ahead: not while an end point is dragged.
FRAMES_SETTLE_MS = 150
SLIDER_STEPS = 1000
HINT_NO_ENDS = "Set end points A and B: 'Pick on map' and click twice, or use the buttons"


class InterpolationView(DecodingView):
    frameShown = Signal()  # an animation frame has just been put on screen

    def __init__(self, model: ExplorerModel, decoder: DecodeWorker, parent: QWidget | None = None):
        super().__init__(model, decoder, [STRIP, FRAME, FRAMES], parent)
        self.strip_canvas = ImageCanvas(minimum=40)
        self.frame_canvas = ImageCanvas(minimum=72)
        self.strip_canvas.setObjectName("interpolation")  # names as export targets
        self.frame_canvas.setObjectName("interpolation_frame")
        self.message = QLabel(wordWrap=True)
        self.message.setStyleSheet("color: #555;")
        self._strip_grid: Grid | None = None  # how the strip asked for last is laid out
        self._build()
        self._timer = QTimer(self, interval=FRAME_INTERVAL_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._last_tick = 0.0
        # Playing shows the frames of one pass decoded ahead in one batch (ExplorerModel.
        # animation_frames), rather than decoding each frame as it comes: each of those decodes
        # took 0.6 ms of CPU (the weights fall out of the cache between frames) and a round trip
        # to the decoding thread, 40 times a second, all taken from training. Until the batch
        # is there (a new path, another model) frames are decoded one by one, as when paused.
        self._frames: tuple[tuple, np.ndarray] | None = None  # (key, images), see _show_ahead
        self._frames_asked: tuple | None = None  # the key whose batch is asked for, once settled
        self._single_asked = False  # a one-frame decode may be on its way
        self._frames_timer = QTimer(self, singleShot=True, interval=FRAMES_SETTLE_MS)
        self._frames_timer.timeout.connect(self._request_frames)
        decoder.register(FRAME, self._on_frame_decoded, priority=1)
        decoder.register(STRIP, self._on_strip_decoded, priority=2)
        decoder.register(FRAMES, self._on_frames_decoded, priority=3)
        m = model.events
        for event in (m.snapshot, m.interpolation):
            event.connect(self.refresh)
        for event in (m.snapshot, m.encoded, m.interpolation, m.click_target):
            event.connect(self._sync_controls)
        m.point.connect(self._sync_point_buttons)  # at every move of a drag: only what it changes
        m.playback.connect(self._on_model_playback)
        self._sync_controls()
        self._on_model_playback()

    # ---- building ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.pick_button = QPushButton("Pick on map", checkable=True,
                                       toolTip="The next two clicks on the map set A, then B")
        self.pick_button.clicked.connect(self._on_pick_button_clicked)
        self.a_from_point = QPushButton("A = point", toolTip="A is the picked point")
        self.b_from_point = QPushButton("B = point", toolTip="B is the picked point")
        self.b_from_prior = QPushButton("B = prior sample", toolTip="B is a random draw from N(0, I)")
        self.a_from_point.clicked.connect(lambda: self._set_end("a", self.model.point))
        self.b_from_point.clicked.connect(lambda: self._set_end("b", self.model.point))
        self.b_from_prior.clicked.connect(lambda: self._set_end("b", self.model.prior_sample()))
        self.a_index, self.b_index = QSpinBox(), QSpinBox()
        self.a_index_button, self.b_index_button = QPushButton("A = image #"), QPushButton("B = image #")
        for which, spin, button in (("a", self.a_index, self.a_index_button),
                                    ("b", self.b_index, self.b_index_button)):
            spin.setToolTip("An image of the map's set, by its index (shown on the map's hover card)")
            button.clicked.connect(lambda _=False, w=which, s=spin: self._set_end(
                w, self.model.dataset_latent(s.value())))
        self.steps = QSpinBox(minimum=STEPS_RANGE[0], maximum=STEPS_RANGE[1],
                              value=self.model.interpolation.steps, toolTip="Images in the strip")
        self.steps.valueChanged.connect(lambda v: self.model.set_interpolation(steps=v))
        self.method = QComboBox()
        self.method.addItems(INTERPOLATIONS)
        self.method.setCurrentText(self.model.interpolation.method)
        self.method.setToolTip("linear, or spherical (slerp): keeps a typical norm under the prior")
        self.method.currentTextChanged.connect(lambda t: self.model.set_interpolation(method=t))

        ends = QGridLayout()
        ends.addWidget(self.pick_button, 0, 0)
        ends.addWidget(self.a_from_point, 0, 1)
        ends.addWidget(self.b_from_point, 0, 2)
        ends.addWidget(self.b_from_prior, 0, 3)
        ends.addWidget(self.a_index_button, 1, 0)
        ends.addWidget(self.a_index, 1, 1)
        ends.addWidget(self.b_index_button, 1, 2)
        ends.addWidget(self.b_index, 1, 3)
        ends.addWidget(QLabel("Steps"), 2, 0, alignment=Qt.AlignmentFlag.AlignRight)
        ends.addWidget(self.steps, 2, 1)
        ends.addWidget(QLabel("Path"), 2, 2, alignment=Qt.AlignmentFlag.AlignRight)
        ends.addWidget(self.method, 2, 3)

        self.play_button = QPushButton("Play", checkable=True, toolTip="Play or pause (Space)")
        self.play_button.clicked.connect(lambda on: self.model.set_playback(playing=on))
        self.speed = QComboBox()
        self.speed.addItems([f"{s:g}x" for s in SPEEDS])
        self.speed.setCurrentIndex(SPEEDS.index(1.0))
        self.speed.currentIndexChanged.connect(lambda i: self.model.set_playback(speed=SPEEDS[i]))
        self.mode = QComboBox()
        self.mode.addItems(PLAYBACK_MODES)
        self.mode.setCurrentText(self.model.playback.mode)
        self.mode.currentTextChanged.connect(lambda t: self.model.set_playback(mode=t))
        self.position = QSlider(Qt.Orientation.Horizontal, maximum=SLIDER_STEPS,
                                toolTip="Where the animation is along the path")
        self.position.valueChanged.connect(self._on_position_valueChanged)
        controls = QHBoxLayout()
        for widget in (self.play_button, self.speed, self.mode):
            controls.addWidget(widget)
        controls.addWidget(self.position, 1)
        player = QHBoxLayout()
        player.addWidget(self.frame_canvas, 1)
        column = QVBoxLayout()
        column.addLayout(controls)
        column.addWidget(self.message)
        column.addStretch(1)
        player.addLayout(column, 3)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(ends)
        layout.addWidget(self.strip_canvas, 1)
        layout.addLayout(player, 1)

    # ---- model -> view ----------------------------------------------------------------------
    def _sync_controls(self) -> None:
        m = self.model
        has_model = m.latent_dim is not None
        n = 0 if m.encoded is None else len(m.encoded.latents)
        self.pick_button.setEnabled(m.encoded is not None)
        self.pick_button.setChecked(m.click_target != "point")
        self.pick_button.setText({"a": "Click A on map…", "b": "Click B on map…"}.get(
            m.click_target, "Pick on map"))
        self._sync_point_buttons()
        self.b_from_prior.setEnabled(has_model)
        for spin, button in ((self.a_index, self.a_index_button), (self.b_index, self.b_index_button)):
            if spin.maximum() != max(0, n - 1):  # setting it, even unchanged, lays the view out again
                spin.setMaximum(max(0, n - 1))
            spin.setEnabled(n > 0)
            button.setEnabled(n > 0)
        self.play_button.setEnabled(m.interpolation.ready)
        # Without end points the strip's canvas says how to set them: said once, not here too.
        self.message.setText("Drag A or B on the map: the strip follows" if m.interpolation.ready else "")

    def _sync_point_buttons(self) -> None:
        self.a_from_point.setEnabled(self.model.point is not None)
        self.b_from_point.setEnabled(self.model.point is not None)

    def _on_model_playback(self) -> None:
        p = self.model.playback
        self.play_button.setChecked(p.playing)
        self.play_button.setText("Pause" if p.playing else "Play")
        self.position.blockSignals(True)
        self.position.setValue(round(p.position * SLIDER_STEPS))
        self.position.blockSignals(False)
        if p.playing and not self._timer.isActive():
            self._last_tick = time.perf_counter()
            self._timer.start()
        elif not p.playing:
            self._timer.stop()
        if self.isVisible():
            self._request_frame()

    def _send_requests(self) -> None:
        path = self.model.interpolation_path()
        if self.model.snapshot is None or path is None:
            hint = HINT_NO_ENDS if self.model.snapshot is not None else "No decoder yet"
            self.strip_canvas.set_image(None, hint)
            self.frame_canvas.set_image(None, "")
            for channel in (STRIP, FRAME, FRAMES):  # the frames ahead were the old path's
                self.decoder.cancel(channel)
            self._frames = self._frames_asked = None
            self._frames_timer.stop()
            return
        self.decoder.request(STRIP, lambda d: d.tile_in_chunks(path, nrow=len(path)))
        n = len(path)
        self._strip_grid = Grid(1, n, padding=2, keep_columns="spread",
                                cell_text=lambda r, c: f"step {c + 1} of {n}: {c / max(1, n - 1):.0%} of the way A to B")
        self._request_frame()

    def _request_frame(self) -> None:
        z = self.model.animation_latent()
        if z is None or self.model.snapshot is None:
            return
        if self.model.playback.playing and self._show_ahead():
            return
        self._single_asked = True
        self.decoder.request(FRAME, lambda d: d.decode(z[None])[0])

    def _show_ahead(self) -> bool:
        """Show the frame decoded ahead for the playback position; False if there is none for
        this path (then it is asked for, once the path has settled)."""
        m = self.model
        key = self._frames_key()
        if self._frames is not None and self._frames[0] == key:
            if self._single_asked:  # a late one-frame decode would show an older position
                self._single_asked = False
                self.decoder.cancel(FRAME)
            images = self._frames[1]
            self.frame_canvas.set_image(images[m.frame_index(len(images))])
            self.frameShown.emit()
            return True
        if self._frames_asked != key:
            self._frames_asked = key
            self._frames_timer.start()  # restarted by every change of the path meanwhile
        return False

    def _frames_key(self) -> tuple:
        """What the frames decoded ahead depend on. The model replaces its Interpolation at
        every change, so identity tells a new path; the worker decodes them again for new
        weights of the same architecture, but not of another one."""
        m = self.model
        return m.interpolation, m.playback.speed, m.snapshot.architecture

    def _request_frames(self) -> None:
        latents = self.model.animation_frames(FRAME_INTERVAL_MS / 1000)
        if latents is None or self.model.snapshot is None or not self.wanted():
            return
        key = self._frames_key()

        def job(d):  # chunked (see decode_worker): a click or a frame may run between chunks
            images = yield from d.decode_in_chunks(latents)
            return key, images
        self.decoder.request(FRAMES, job)

    def _on_frames_decoded(self, result) -> None:
        # New weights of the same model run the request again, so the frames follow training;
        # meanwhile playing shows the previous weights' frames, a snapshot (a second) behind.
        if not isinstance(result, DecodeFailure):
            self._frames = result
            if self.model.playback.playing and self.model.snapshot is not None:
                # Show them now: this also drops a one-frame decode still on its way, which
                # would otherwise arrive after them and show an older position.
                self._show_ahead()

    def hideEvent(self, event) -> None:
        super().hideEvent(event)
        if not self.wanted():  # its channels were cancelled: the frames would not follow
            self._frames = self._frames_asked = None

    def _on_strip_decoded(self, result) -> None:
        if isinstance(result, DecodeFailure):
            self.strip_canvas.set_image(None, f"Cannot decode: {result.message}")
        else:
            self.strip_canvas.set_image(result, grid=self._strip_grid)

    def _on_frame_decoded(self, result) -> None:
        if not isinstance(result, DecodeFailure):
            self.frame_canvas.set_image(result)
            self.frameShown.emit()

    # ---- view -> model ----------------------------------------------------------------------
    def _set_end(self, which: str, z: np.ndarray | None) -> None:
        if z is None:
            return
        try:
            self.model.set_endpoint(which, z)
        except (ValueError, VaeguiError) as exc:
            self.message.setText(str(exc))

    def _on_pick_button_clicked(self, checked: bool) -> None:
        self.model.set_click_target("a" if checked else "point")

    def _on_position_valueChanged(self, value: int) -> None:
        self.model.set_playback(position=value / SLIDER_STEPS)

    def _on_timer_timeout(self) -> None:
        now = time.perf_counter()
        seconds, self._last_tick = now - self._last_tick, now
        self.model.advance(min(seconds, 0.25))  # after a stall, go on rather than jump
