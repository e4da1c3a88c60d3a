"""The explorer's state, free of Qt: the weights being explored, the encoded map, the picked
point, the interpolation and its playback, the traversal, the manifold grid and the samples.

Views take an :class:`ExplorerModel` in their constructor, read its state and connect to its
events (``model.events.point.connect(...)``); they change it through its methods, which validate
and then emit. The model never knows a view exists, so the same state drives the app, tests and
headless export. Every event is emitted with no arguments: listeners read what they need.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from .errors import ConfigError, VaeguiError
from .events import Event
from .latent import (INTERPOLATIONS, EncodedSet, Snapshot, grid_points, interpolate,
                     traversal, traversal_order)
from .map_history import MapHistory
from .progress import EvalResult
from .projection import NonlinearProjection, ProjectionSpec, align_pca

PLAYBACK_MODES = ("loop", "bounce")
STEPS_RANGE = (2, 64)
GRID_RANGE = (2, 30)
PASS_SECONDS = 3.0  # one pass along the path at speed 1
# Frames of one pass decoded ahead for playback (at speed 0.25 and 40 frames a second, one pass
# has 480): a bound on that batch's memory and decoding time.
MAX_ANIMATION_FRAMES = 481


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not objects
class Interpolation:
    a: np.ndarray | None = None  # (L,) end points, latent vectors
    b: np.ndarray | None = None
    steps: int = 10  # images in the strip, end points included
    method: str = "linear"  # one of latent.INTERPOLATIONS

    def __post_init__(self) -> None:
        _check(STEPS_RANGE[0] <= self.steps <= STEPS_RANGE[1],
               f"interpolation steps: {self.steps} is not in {STEPS_RANGE[0]}..{STEPS_RANGE[1]}")
        _check(self.method in INTERPOLATIONS, f"interpolation: {self.method!r} is not one of {INTERPOLATIONS}")

    @property
    def ready(self) -> bool:
        return self.a is not None and self.b is not None


@dataclass(frozen=True)
class Playback:
    playing: bool = False
    position: float = 0.0  # fraction of the way from a to b
    speed: float = 1.0  # passes per PASS_SECONDS
    mode: str = "bounce"  # "loop" jumps back to a; "bounce" turns round at each end
    direction: int = 1  # +1 towards b, -1 towards a (bounce)

    def __post_init__(self) -> None:
        _check(self.mode in PLAYBACK_MODES, f"playback: {self.mode!r} is not one of {PLAYBACK_MODES}")
        _check(0 < self.speed <= 100, f"playback speed: {self.speed} is not in (0, 100]")
        _check(0.0 <= self.position <= 1.0, f"playback position: {self.position} is not in [0, 1]")


@dataclass(frozen=True)
class Traversal:
    span: float = 3.0  # columns run from z_d - span to z_d + span, in prior standard deviations
    columns: int = 9
    rows: int = 10  # at most this many dimensions, by decreasing KL

    def __post_init__(self) -> None:
        _check(0 < self.span <= 10, f"traversal span: {self.span} is not in (0, 10]")
        _check(2 <= self.columns <= 25, f"traversal columns: {self.columns} is not in 2..25")
        _check(1 <= self.rows <= 64, f"traversal rows: {self.rows} is not in 1..64")


@dataclass(frozen=True)
class Grid:
    size: int = 15  # G: the grid decodes G x G points
    region: tuple[float, float, float, float] | None = None  # x0, x1, y0, y1 in the map's plane
    overlay: bool = False  # tiles drawn over the map
    opacity: float = 0.7

    def __post_init__(self) -> None:
        _check(GRID_RANGE[0] <= self.size <= GRID_RANGE[1],
               f"grid size: {self.size} is not in {GRID_RANGE[0]}..{GRID_RANGE[1]}")
        _check(0.0 <= self.opacity <= 1.0, f"grid opacity: {self.opacity} is not in [0, 1]")
        if self.region is not None:
            x0, x1, y0, y1 = self.region
            _check(all(np.isfinite(self.region)) and x1 > x0 and y1 > y0,
                   f"grid region: {self.region} is not a finite, non-empty rectangle")


@dataclass(frozen=True)
class Samples:
    count: int = 16  # prior samples, and reconstructed examples
    seed: int = 0  # of the fixed noise: the same samples sharpen as training goes on

    def __post_init__(self) -> None:
        _check(1 <= self.count <= 64, f"samples: {self.count} is not in 1..64")


class ExplorerModel:
    """State of the latent explorer. See the module docstring for how views use it."""

    def __init__(self) -> None:
        self.events = SimpleNamespace(**{name: Event(name) for name in (
            "snapshot", "encoded", "evaluation", "examples", "point", "interpolation", "playback",
            "traversal", "grid", "grid_image", "samples", "click_target", "history", "projection", "training")})
        self.snapshot: Snapshot | None = None
        self.encoded: EncodedSet | None = None
        self.evaluation: EvalResult | None = None
        self.examples: np.ndarray | None = None  # (n, C, H, W) uint8 test images to reconstruct
        self.point: np.ndarray | None = None  # (L,) the picked latent vector
        self.point_on_plane = False  # it came from the map's plane (through the PCA inverse when L > 2)
        self.point_xy: np.ndarray | None = None  # (2,) where on the plane, when it came from there
        self.interpolation = Interpolation()
        self.playback = Playback()
        self.traversal = Traversal()
        self.grid = Grid()
        self.samples = Samples()
        # What a click on the map sets: "point", or the end points "a" then "b".
        self.click_target = "point"
        # The decoded manifold grid, (C, H, W) in [0, 1], and the plane region its tiles cover.
        self.grid_image: np.ndarray | None = None
        self.grid_image_region: tuple[float, float, float, float] | None = None
        self._prior_rng = np.random.default_rng()
        # The map history of the run (None: none kept), and the epoch shown from it: None shows
        # the live map and weights; a fraction blends two epochs' maps (playing).
        self.history: MapHistory | None = None
        self.history_position: float | None = None
        self._live_snapshot: Snapshot | None = None  # what training sent, kept while history shows
        self._live_encoded: EncodedSet | None = None
        # The map's projection (a setting) and the last fitted layout of a nonlinear one: the
        # live map is drawn in it, placed there until a layout of its own means is fitted.
        self.projection = ProjectionSpec()
        self.layout: NonlinearProjection | None = None
        # Whether a run is training into this map: its epochs' means are then placed on the last
        # layout (a fit is a minute of a core), and laid out anew once it pauses or ends.
        self.training = False
        self._plane = None  # the projection the live map is drawn in
        self._distance = None  # (encoded, PlaneDistance) of the map shown

    # ---- what is explored -----------------------------------------------------------------
    @property
    def latent_dim(self) -> int | None:
        if self.snapshot is not None:
            return self.snapshot.latent_dim
        return None if self.encoded is None else int(self.encoded.latents.shape[1])

    def set_snapshot(self, snapshot: Snapshot | None) -> None:
        """New weights. A different latent dimension drops the points picked for the old one.
        While an epoch of the history is shown, they are kept for when the view goes live."""
        self._live_snapshot = snapshot
        if self.history_position is not None:
            return
        self._show_snapshot(snapshot)

    def _show_snapshot(self, snapshot: Snapshot | None) -> None:
        old = self.latent_dim
        self.snapshot = snapshot
        if snapshot is not None and old is not None and snapshot.latent_dim != old:
            self._forget_points(encoded_too=True)
        self.events.snapshot.emit()

    def set_encoded(self, encoded: EncodedSet | None) -> None:
        """A new map. Without weights, a map of another dimension drops the points picked.
        While an epoch of the history is shown, it is kept for when the view goes live."""
        self._live_encoded = encoded
        if self.history_position is not None:
            return
        self._show_encoded(encoded)

    def _show_encoded(self, encoded: EncodedSet | None, project: bool = True) -> None:
        if encoded is not None and project:
            encoded = self._in_plane(encoded)
        dim = None if encoded is None else encoded.latents.shape[1]
        if dim is not None and self.snapshot is not None and dim != self.snapshot.latent_dim:
            raise ValueError(f"a map of {dim}-D latents for a {self.snapshot.latent_dim}-D model")
        if dim is not None and self.latent_dim not in (None, dim):
            self._forget_points(encoded_too=False)
        if encoded is None or self.encoded is None or encoded.projection is not self.encoded.projection:
            self.point_xy = None  # a place on another plane
        self.encoded = encoded
        self.events.encoded.emit()

    def set_evaluation(self, evaluation: EvalResult | None) -> None:
        self.evaluation = evaluation
        self.events.evaluation.emit()
        if self.history is not None and self.history.refresh():  # the epoch's map was just written
            self.events.history.emit()

    # ---- map history ------------------------------------------------------------------------
    def set_history(self, history: MapHistory | None) -> None:
        self.history = history
        self.show_history(None)

    def history_usable(self) -> str:
        """"" when the history can be shown, else why not."""
        base = self._live_encoded
        if self.history is None or not len(self.history):
            return "no epochs kept yet"
        if base is None or base.split != "test":
            return "the history holds test-set maps: show the test set on the map"
        try:
            kept = len(self.history.means(self.history.epochs[-1]))
        except VaeguiError as exc:  # changed on disk since the history checked it
            return f"the history cannot be read: {exc}"
        if len(base.latents) != kept:
            return "the map shows another number of test images than the history holds"
        return ""

    def show_history(self, position: float | None) -> None:
        """Show the map (and, where kept, the decoder) of a past epoch, a fraction between two
        while playing; None goes back to the live map and weights."""
        if position is not None and self.history_usable():
            position = None
        was = self.history_position
        self.history_position = position
        if position is None:
            if was is not None:
                self._show_snapshot(self._live_snapshot)
                self._show_encoded(self._live_encoded)
            self.events.history.emit()
            return
        h, base = self.history, self._live_encoded
        try:
            means = h.at(position)
        except VaeguiError as exc:  # a map changed on disk since the history checked it
            h.problem = h.problem or f"The history stops: {exc}"
            self.history, self.history_position = None, None
            self._show_snapshot(self._live_snapshot)
            self._show_encoded(self._live_encoded)
            self.events.history.emit()
            return
        epoch = h.nearest_epoch(position)
        plane = self._plane or base.projection  # every epoch in the live map's plane
        self._show_encoded(dataclasses.replace(base, latents=means, xy=plane.transform(means), projection=plane,
                                               step=h.step_of(epoch)), project=False)
        live = self._live_snapshot
        state = h.decoder_state(epoch) if live is not None else None
        if was is None or h.nearest_epoch(was) != epoch:
            self._show_snapshot(live if state is None else
                                Snapshot(live.config, live.image_shape, state, h.step_of(epoch)))
        self.events.history.emit()

    def set_examples(self, images: np.ndarray | None) -> None:
        self.examples = None if images is None else np.asarray(images)
        self.events.examples.emit()

    def clear(self) -> None:
        """A new run or model: nothing from the old one is kept but the settings."""
        self.snapshot, self.evaluation, self.examples = None, None, None
        self._live_snapshot = self._live_encoded = None
        self.history, self.history_position = None, None
        self.layout = self._plane = self._distance = None
        self.events.history.emit()
        self._forget_points(encoded_too=True)
        for event in ("snapshot", "evaluation", "examples"):
            getattr(self.events, event).emit()

    def _forget_points(self, encoded_too: bool) -> None:
        self.point = None
        self.set_click_target("point")
        self.set_grid_image(None, None)
        self.interpolation = dataclasses.replace(self.interpolation, a=None, b=None)
        self.playback = dataclasses.replace(self.playback, playing=False, position=0.0, direction=1)
        if encoded_too:
            self.encoded = None
            self.events.encoded.emit()
        for event in ("point", "interpolation", "playback"):
            getattr(self.events, event).emit()

    # ---- the map's projection ---------------------------------------------------------------
    def set_projection(self, spec: ProjectionSpec | str) -> None:
        """Draw the map in another plane (PCA, UMAP, t-SNE, two latent axes); the picked point
        and the end points are latent vectors and stay as they are."""
        spec = ProjectionSpec.parse(spec) if isinstance(spec, str) else spec
        if self.latent_dim is not None:
            spec.check_dim(self.latent_dim)
        if spec == self.projection:
            return
        self.projection = spec
        self._refresh_plane()
        self.events.projection.emit()

    def layout_wanted(self) -> tuple[ProjectionSpec, EncodedSet, NonlinearProjection | None] | None:
        """(spec, live map, previous layout) when the projection is nonlinear and no layout of
        the live map's own means is shown: what a worker should fit (starting from the
        previous layout) and hand to :meth:`set_layout`."""
        base, spec = self._live_encoded, self.projection
        if not spec.is_nonlinear or base is None or base.latents.shape[1] <= 2:
            return None
        if self._fits(base) and (self.layout.fitted or self.training):
            return None
        previous = self.layout if self.layout is not None and self.layout.name == spec.kind else None
        return spec, base, previous

    def set_training(self, running: bool) -> None:
        """A run trains into this map (True), or paused or ended (False)."""
        if bool(running) != self.training:
            self.training = bool(running)
            self.events.training.emit()

    def set_layout(self, layout: NonlinearProjection, base: EncodedSet) -> None:
        """A layout fitted on ``base`` (the live map of :meth:`layout_wanted`); one for a map
        since replaced, or for another projection, is only kept as a start for the next fit."""
        if layout.name != self.projection.kind:
            return
        self.layout = layout
        if base is self._live_encoded:
            self._refresh_plane()

    def plane_distance(self, xy: np.ndarray) -> float | None:
        """How far a plane point is from the map's points, in typical neighbour spacings (see
        plane_inverse.PlaneDistance); None without a map."""
        from .plane_inverse import PlaneDistance

        if self.encoded is None or not len(self.encoded.xy):
            return None
        if self._distance is None or self._distance[0] is not self.encoded:
            self._distance = (self.encoded, PlaneDistance(self.encoded.xy))
        return float(self._distance[1](np.asarray(xy, np.float64).reshape(1, 2))[0])

    def _fits(self, base: EncodedSet) -> bool:
        layout = self.layout
        return layout is not None and layout.name == self.projection.kind and \
            layout.latents.shape == base.latents.shape and np.array_equal(layout.latents, base.latents)

    def _refresh_plane(self) -> None:
        if self._live_encoded is not None and self.history_position is None:
            self._show_encoded(self._live_encoded)

    def _in_plane(self, base: EncodedSet) -> EncodedSet:
        """``base`` (drawn in its own PCA plane) drawn in the chosen projection: PCA turned to the
        last map's plane; a nonlinear layout of its means when fitted, else the last layout's
        positions (same number of points) until they are placed, else PCA until one is fitted."""
        spec, z = self.projection, base.latents
        plane = base.projection
        if z.shape[1] > 2:
            if spec.kind == "axes" and max(spec.dims) < z.shape[1]:  # else PCA: a model of fewer dims
                from .projection import fit_projection

                plane = fit_projection(spec, z)
            elif spec.is_nonlinear and self._fits(base):
                self._plane = self.layout  # the map history's epochs are placed on it too
                return dataclasses.replace(base, xy=self.layout.xy, projection=self.layout)
            elif spec.is_nonlinear and self.layout is not None and self.layout.name == spec.kind \
                    and self.layout.latents.shape == z.shape:
                # Each point where it was in the last layout until the worker places the new
                # means (placing 10,000 here took 0.9 s of the GUI thread).
                self._plane = self.layout
                return dataclasses.replace(base, xy=self.layout.xy, projection=self.layout)
            elif plane.name == "pca":
                previous = self._plane if isinstance(self._plane, type(plane)) and self._plane.name == "pca" else None
                plane = align_pca(plane, previous)
        if plane is base.projection:
            self._plane = plane
            return base
        self._plane = plane
        return dataclasses.replace(base, xy=plane.transform(z), projection=plane)

    # ---- the picked point -----------------------------------------------------------------
    def pick(self, z: np.ndarray, on_plane: bool = False, xy: np.ndarray | None = None) -> None:
        z = self._latent(z, "point")
        self.point, self.point_on_plane = z, on_plane
        self.point_xy = None if xy is None else np.asarray(xy, np.float64).reshape(2).copy()
        self.events.point.emit()

    def pick_plane(self, xy: np.ndarray) -> None:
        """Pick the latent vector at a point of the map's plane (the projection's inverse when
        L > 2: exact for PCA and two axes, learned for UMAP and t-SNE)."""
        self.pick(self.plane_to_latent(xy), on_plane=True, xy=xy)

    def set_click_target(self, target: str) -> None:
        if target not in ("point", "a", "b"):
            raise ValueError(f"click target {target!r} is not 'point', 'a' or 'b'")
        self.click_target = target
        self.events.click_target.emit()

    def click_plane(self, xy: np.ndarray) -> None:
        """A click on the map: picks the point, or sets end point A (then B is next) or B."""
        target = self.click_target
        if target == "point":
            self.pick_plane(xy)
            return
        self.set_endpoint(target, self.plane_to_latent(xy))
        self.set_click_target("b" if target == "a" else "point")

    def nudge(self, dx: float, dy: float) -> None:
        """Move the picked point by (dx, dy) in the map's plane, keeping the part of it that
        lies off the plane (for L > 2, along the projection's axes)."""
        if self.point is None or self.encoded is None:
            return
        if not getattr(self.encoded.projection, "is_linear", True):
            # No latent direction is "along the map" of a nonlinear one: move on the plane.
            here = self.point_xy if self.point_xy is not None else self.to_plane(self.point)
            self.pick_plane(here + np.array([dx, dy], np.float32))
            return
        step = np.array([dx, dy], np.float64) @ self.encoded.projection.components  # (L,)
        self.pick(self.point + step.astype(np.float32), on_plane=self.point_on_plane)

    def plane_to_latent(self, xy: np.ndarray) -> np.ndarray:
        if self.encoded is None:
            raise ValueError("no map yet: the plane has no latent vectors")
        return self.encoded.projection.inverse(np.asarray(xy, np.float64).reshape(2))[0]

    def to_plane(self, z: np.ndarray) -> np.ndarray | None:
        """(n, L) or (L,) latent vectors -> (n, 2) or (2,) in the map's plane; None without a map."""
        if self.encoded is None:
            return None
        z = np.asarray(z, np.float32)
        xy = self.encoded.projection.transform(np.atleast_2d(z))
        return xy[0] if z.ndim == 1 else xy

    def dataset_latent(self, index: int) -> np.ndarray:
        """The posterior mean of image ``index`` of the map's set."""
        if self.encoded is None:
            raise ValueError("no map yet: encode a set first")
        n = len(self.encoded.latents)
        if not 0 <= index < n:
            raise ValueError(f"image index {index} is not in 0..{n - 1}")
        return self.encoded.latents[index].copy()

    def prior_sample(self) -> np.ndarray:
        dim = self.latent_dim
        if dim is None:
            raise ValueError("no model yet")
        return self._prior_rng.standard_normal(dim).astype(np.float32)

    # ---- interpolation and playback ---------------------------------------------------------
    def set_endpoint(self, which: str, z: np.ndarray) -> None:
        if which not in ("a", "b"):
            raise ValueError(f"end point {which!r} is not 'a' or 'b'")
        self.set_interpolation(**{which: self._latent(z, f"end point {which}")})

    def set_interpolation(self, **changes) -> None:
        self.interpolation = _replace(self.interpolation, changes)
        self.events.interpolation.emit()

    def interpolation_path(self) -> np.ndarray | None:
        """The strip's latent vectors, end points included: (steps, L)."""
        i = self.interpolation
        if not i.ready:
            return None
        return interpolate(i.a, i.b, np.linspace(0.0, 1.0, i.steps), i.method)

    def path_curve(self, points: int = 129) -> np.ndarray | None:
        """The path in the map's plane, finely sampled so slerp's arc shows: (points, 2)."""
        i = self.interpolation
        if not i.ready or self.encoded is None:
            return None
        return self.to_plane(interpolate(i.a, i.b, np.linspace(0.0, 1.0, points), i.method))

    def animation_latent(self) -> np.ndarray | None:
        i = self.interpolation
        return interpolate(i.a, i.b, self.playback.position, i.method) if i.ready else None

    def animation_frames(self, frame_seconds: float) -> np.ndarray | None:
        """The latents a playing animation shows, one per frame of ``frame_seconds`` along one
        pass at the playback's speed, end points included: (K, L). Decoded once, they make the
        frames of every pass (the path and the weights permitting); see :meth:`frame_index`."""
        i = self.interpolation
        if not i.ready:
            return None
        frames = PASS_SECONDS / self.playback.speed / frame_seconds
        count = int(min(max(round(frames), 1), MAX_ANIMATION_FRAMES - 1)) + 1
        return interpolate(i.a, i.b, np.linspace(0.0, 1.0, count), i.method)

    def frame_index(self, count: int) -> int:
        """Which of ``count`` animation frames (:meth:`animation_frames`) is the nearest to the
        playback position."""
        return int(round(self.playback.position * (count - 1)))

    def set_playback(self, **changes) -> None:
        if changes.get("playing") and not self.interpolation.ready:
            changes["playing"] = False  # nothing to play along
        self.playback = _replace(self.playback, changes)
        self.events.playback.emit()

    def toggle_playing(self) -> None:
        self.set_playback(playing=not self.playback.playing)

    def advance(self, seconds: float) -> None:
        """Move the animation on by ``seconds`` of play at its speed, looping or bouncing."""
        p = self.playback
        if not p.playing or not self.interpolation.ready:
            return
        position = p.position + p.direction * p.speed * seconds / PASS_SECONDS
        direction = p.direction
        if p.mode == "loop":
            position %= 1.0
        else:
            # Reflect off the ends (several times if the step is long).
            position %= 2.0
            if position > 1.0:
                position, direction = 2.0 - position, -direction
        self.playback = dataclasses.replace(p, position=float(min(max(position, 0.0), 1.0)),
                                            direction=direction)
        self.events.playback.emit()

    # ---- traversal, grid, samples ---------------------------------------------------------
    def set_traversal(self, **changes) -> None:
        self.traversal = _replace(self.traversal, changes)
        self.events.traversal.emit()

    def traversal_plan(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
        """(dims, latents, kl): the rows' latent dimensions, by decreasing KL with active units
        first; the (rows * columns, L) latent vectors, row-major, each row moving its dimension
        from z_d - span to z_d + span around the picked point (the origin if none); and each
        row's KL in nats (None before the first evaluation)."""
        dim = self.latent_dim
        if dim is None:
            return None
        t = self.traversal
        ev = self.evaluation
        if ev is not None and len(ev.kl_per_dim) == dim:
            order = traversal_order(ev.kl_per_dim, ev.active)
        else:
            order, ev = np.arange(dim), None
        dims = order[:t.rows]
        centre = self.point if self.point is not None else np.zeros(dim, np.float32)
        kl = None if ev is None else np.asarray(ev.kl_per_dim, np.float64)[dims]
        return dims, traversal(centre, dims, t.span, t.columns), kl

    def set_grid(self, **changes) -> None:
        self.grid = _replace(self.grid, changes)
        self.events.grid.emit()

    def grid_region(self) -> tuple[float, float, float, float] | None:
        """The region the grid covers: the one set (the map's view), else the map's extent."""
        if self.grid.region is not None:
            return self.grid.region
        if self.encoded is None or not len(self.encoded.xy):
            return None
        xy = self.encoded.xy[np.isfinite(self.encoded.xy).all(1)]
        if not len(xy):
            return None
        (x0, y0), (x1, y1) = xy.min(0), xy.max(0)
        return float(x0), float(max(x1, x0 + 1e-3)), float(y0), float(max(y1, y0 + 1e-3))

    def grid_latents(self) -> np.ndarray | None:
        """(G * G, L) latent vectors at the centres of a G x G grid over the region, row-major
        from the top left (as Kingma and Welling's manifold figure, over the map's plane)."""
        region = self.grid_region()
        if region is None or self.encoded is None:
            return None
        x0, x1, y0, y1 = region
        return self.encoded.projection.inverse(grid_points((x0, x1), (y0, y1), self.grid.size))

    def set_grid_image(self, image: np.ndarray | None,
                       region: tuple[float, float, float, float] | None) -> None:
        self.grid_image, self.grid_image_region = image, region
        self.events.grid_image.emit()

    def set_samples(self, **changes) -> None:
        self.samples = _replace(self.samples, changes)
        self.events.samples.emit()

    def new_noise(self) -> None:
        self.set_samples(seed=int(np.random.default_rng().integers(2 ** 31)))

    def sample_latents(self) -> np.ndarray | None:
        """Fixed draws from N(0, I): (count, L), the same until the seed or count changes."""
        dim = self.latent_dim
        if dim is None:
            return None
        rng = np.random.default_rng(self.samples.seed)
        return rng.standard_normal((self.samples.count, dim)).astype(np.float32)

    # ---- helpers ------------------------------------------------------------------------------
    def _latent(self, z: np.ndarray, what: str) -> np.ndarray:
        z = np.asarray(z, np.float32).reshape(-1).copy()
        dim = self.latent_dim
        if dim is not None and z.shape != (dim,):
            raise ValueError(f"{what}: {z.size} latent values for a {dim}-D model")
        if not np.isfinite(z).all():
            raise ValueError(f"{what}: latent values must be finite")
        return z


def _replace(settings, changes: dict):
    try:
        return dataclasses.replace(settings, **changes)
    except TypeError as exc:
        raise ConfigError(f"{type(settings).__name__}: {exc}") from None


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)
