"""The latent map's projections for L > 2: PCA (latent.Projection), UMAP, t-SNE and two latent
axes, each able to place new points (``transform``) and to go back from the plane to a latent
vector (``inverse``).

PCA and two axes are linear: their inverse is exact on the plane. UMAP and t-SNE have no
inverse of their own worth using (umap-learn's ``inverse_transform`` takes ~57 ms a point and
misses by half the data's spread), so a :class:`~.plane_inverse.LearnedInverse` is fitted on
the (map position, latent mean) pairs, as parametric UMAP's decoder is.

Nothing heavy is imported here: umap-learn (numba, seconds to import and to compile) and
openTSNE load inside :func:`fit_projection`, on the thread that fits, never the GUI's.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError
from .latent import Projection, dimension_name
from .plane_inverse import WARM_FIT_STEPS, LearnedInverse, NeighbourPlacement

KINDS = ("pca", "umap", "tsne", "axes")
NONLINEAR = ("umap", "tsne")
# umap-learn's defaults (McInnes et al. 2018): the parameters the map's title names.
UMAP_PARAMS = {"n_neighbors": 15, "min_dist": 0.1}
# openTSNE's defaults (Policar et al. 2024); perplexity 30 as van der Maaten's t-SNE.
TSNE_PARAMS = {"perplexity": 30.0}
# umap-learn's own default for more than 10,000 points (500 up to 10,000). On 10,000 MNIST
# means (L = 16) 200 epochs from a PCA start kept the 10-NN accuracy (0.949) and the
# trustworthiness (0.967) of 500 from a spectral one, in 40% of the optimisation's time.
UMAP_EPOCHS = 200
UMAP_INIT = "pca"
# A layout started from the previous epoch's needs fewer optimisation epochs to settle.
UMAP_EPOCHS_FROM_PREVIOUS = 100
# ... and a gentler step (umap-learn's default is 1.0), which otherwise moves whole clusters
# about: a warm start on slightly moved means kept per-axis correlations of 0.81 at 1.0, 0.96 at 0.2.
UMAP_LEARNING_RATE_FROM_PREVIOUS = 0.25
TSNE_ITERATIONS_FROM_PREVIOUS = 250


class Cancelled(Exception):
    """A fit was stopped through its ``should_stop``."""


@dataclass(frozen=True)
class ProjectionSpec:
    """Which projection a map shows: a kind of :data:`KINDS` and, for "axes", the two latent
    dimensions (0-based) on x and y."""

    kind: str = "pca"
    dims: tuple[int, int] = (0, 1)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"projection {self.kind!r} is not one of pca, umap, tsne, axes:I,J")
        i, j = self.dims
        if self.kind == "axes" and (min(i, j) < 0 or i == j):
            raise ConfigError(f"projection axes {i + 1},{j + 1}: two different dimensions from 1 up")

    @classmethod
    def parse(cls, text: str) -> "ProjectionSpec":
        """"pca", "umap", "tsne" or "axes:I,J" (I, J 1-based, as the views name z1, z2, ...)."""
        text = str(text).strip().lower()
        if text.startswith("axes"):
            _, _, dims = text.partition(":")
            try:
                i, j = (int(v) for v in dims.split(","))
            except ValueError:
                raise ConfigError(f"projection {text!r}: write axes:I,J with two dimension numbers, "
                                  "e.g. axes:1,2") from None
            return cls("axes", (i - 1, j - 1))
        return cls(text)

    @property
    def name(self) -> str:
        """The spec as :meth:`parse` reads it back."""
        return f"axes:{self.dims[0] + 1},{self.dims[1] + 1}" if self.kind == "axes" else self.kind

    @property
    def is_nonlinear(self) -> bool:
        return self.kind in NONLINEAR

    @classmethod
    def argument(cls, text: str) -> "ProjectionSpec":
        """An argparse type: :meth:`parse`, its error as argparse's one line."""
        import argparse

        try:
            return cls.parse(text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    def check_dim(self, latent_dim: int) -> None:
        if self.kind == "axes" and max(self.dims) >= latent_dim:
            raise ConfigError(f"projection {self.name}: the model has {latent_dim} latent dimensions")


def describe(projection) -> tuple[str, str, str]:
    """(x label, y label, title) of a map drawn in ``projection``'s plane."""
    name = getattr(projection, "name", "pca")
    if name == "pca":
        if projection.is_exact:
            latent = projection.components.shape[1]
            return dimension_name(0), dimension_name(1) if latent >= 2 else "(none: L = 1)", "Latent means"
        share = 100 * np.asarray(projection.explained)
        aligned = " (aligned to the last epoch's)" if getattr(projection, "aligned", False) else ""
        return (f"PC1 ({share[0]:.0f}% var)", f"PC2 ({share[1]:.0f}% var)",
                f"PCA of the latent means{aligned}")
    if isinstance(projection, AxesProjection):
        i, j = projection.dims
        return dimension_name(i), dimension_name(j), "Two latent axes (the others at the data's mean)"
    params = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                       for k, v in projection.params.items())
    label = {"umap": "UMAP", "tsne": "t-SNE"}[name]
    return f"{label} 1", f"{label} 2", f"{label} of the latent means ({params})"


def plane_name(projection) -> str:
    """"latent plane", "PCA plane", "UMAP plane (learned inverse)", ...: what a caption calls it."""
    name = getattr(projection, "name", "pca")
    if projection.is_exact:
        return "latent plane"
    if name.startswith("axes"):
        return f"plane of {describe(projection)[0]} and {describe(projection)[1]}"
    if name in NONLINEAR:
        return f"{describe(projection)[0][:-2]} plane (learned inverse)"
    return "PCA plane"


# ---- linear projections ---------------------------------------------------------------------
class AxesProjection(Projection):
    """Two latent dimensions as the plane; the inverse puts the others at the data's mean."""

    name = "axes"

    def __init__(self, mean: np.ndarray, dims: tuple[int, int]):
        latent = len(mean)
        components = np.zeros((2, latent))
        components[0, dims[0]] = components[1, dims[1]] = 1.0
        base = np.asarray(mean, np.float64).copy()
        base[list(dims)] = 0.0  # transform is then z[:, dims] exactly
        super().__init__(base, components, explained=np.full(2, np.nan))
        self.dims = tuple(int(d) for d in dims)
        self.name = ProjectionSpec("axes", self.dims).name


def turn_projection(projection: Projection, rotation: np.ndarray) -> Projection:
    """``projection`` followed by ``rotation`` (xy -> xy @ R): its components become R^T C, still
    orthonormal rows, so the inverse stays exact. The variance share of each new axis mixes the
    old ones' (principal components are uncorrelated)."""
    components = rotation.T @ projection.components
    explained = None
    if projection.explained is not None:
        explained = (rotation ** 2).T @ np.asarray(projection.explained, np.float64)
    return Projection(projection.mean, components, explained)


def align_pca(new: Projection, previous: Projection | None) -> Projection:
    """``new`` with its plane turned (and mirrored) to match ``previous``'s as nearly as possible,
    so a map history reads as a movie: PCA's axes come out in any sign and, when the two
    leading variances are close, in any rotation. The rotation R is the orthogonal Procrustes
    solution (Schoenemann 1966) between the two planes' bases; the plane itself and its inverse
    stay exact, and each axis's explained variance is recomputed along the turned axes."""
    if previous is None or new.is_exact or previous.is_exact or \
            getattr(previous, "name", "pca") != "pca" or previous.components.shape != new.components.shape:
        return new
    from scipy.linalg import orthogonal_procrustes

    r, _ = orthogonal_procrustes(new.components.T, previous.components.T)  # (2, 2)
    aligned = turn_projection(new, r)
    aligned.aligned = not np.allclose(r, np.eye(2), atol=1e-9)
    return aligned


# ---- nonlinear projections ------------------------------------------------------------------
class NonlinearProjection:
    """A fitted UMAP or t-SNE layout of ``latents``: ``xy`` is where they lie on the map.

    ``transform`` places new latents at the distance-weighted mean of their nearest fitted
    latents' positions (the start from which umap-learn's own transform optimises), in
    milliseconds, for the views; ``place`` is the library's optimised placement while the model
    is in memory and can (a layout read back from the run folder's cache has none: models are
    not pickled; a UMAP fitted on exact neighbours has no search index to place with).
    ``inverse`` is the learned one.
    """

    is_exact = False
    is_linear = False
    explained = None

    def __init__(self, name: str, params: dict, latents: np.ndarray, xy: np.ndarray,
                 inverse: LearnedInverse, model=None, fit_seconds: float = 0.0):
        self.name = name
        self.params = dict(params)
        self.latents = np.asarray(latents, np.float32)  # (N, L) the fitted means
        self.xy = np.asarray(xy, np.float32)  # (N, 2)
        self.learned_inverse = inverse
        self.model = model  # umap.UMAP or openTSNE.TSNEEmbedding; None when read from a cache
        self.fit_seconds = fit_seconds
        self.fitted = True  # laid out on these latents; False: placed on another layout (placed())
        self._placement: NeighbourPlacement | None = None

    def transform(self, z: np.ndarray) -> np.ndarray:
        """Fast placement (milliseconds): what the views use for a path, a marker or a past
        epoch's means, whether the model is in memory or the layout came from the cache."""
        if self._placement is None:
            self._placement = NeighbourPlacement(self.latents, self.xy)
        return self._placement(np.atleast_2d(np.asarray(z, np.float32)))

    def place(self, z: np.ndarray) -> np.ndarray:
        """The library's own placement (umap-learn's ``transform``, openTSNE's ``transform``):
        it optimises each point against the layout, from half a second for a path to 12 s of a
        core for 10,000 means here, too dear beside training, where the app places an epoch's
        means with :meth:`transform` and lays them out anew once training stops. Without the
        model (a cached layout, or a UMAP without a search index) it is :meth:`transform`."""
        if self.model is None or getattr(self.model, "knn_search_index", False) is None:
            return self.transform(z)
        return np.asarray(self.model.transform(np.atleast_2d(np.asarray(z, np.float32))), np.float32)

    def placed(self, latents: np.ndarray, xy: np.ndarray) -> "NonlinearProjection":
        """This layout's model and parameters for other means placed at ``xy`` (a new epoch's),
        with the inverse fitted on from this one's."""
        inverse = LearnedInverse.fit(xy, latents, start=self.learned_inverse, steps=WARM_FIT_STEPS)
        placed = NonlinearProjection(self.name, self.params, latents, xy, inverse, self.model, self.fit_seconds)
        placed.fitted = False
        return placed

    def inverse(self, p: np.ndarray) -> np.ndarray:
        return self.learned_inverse(p)


def fit_projection(spec: ProjectionSpec, latents: np.ndarray, previous=None, *,
                   progress: Callable[[float, str], None] | None = None,
                   should_stop: Callable[[], bool] = lambda: False, seed: int | None = None,
                   n_jobs: int = -1):
    """The projection ``spec`` fitted on ``latents`` (N, L). ``previous`` (a projection of the
    last epoch, same N) seeds the layout so points stay where they were: UMAP's ``init=`` and
    openTSNE's ``initialization=``; PCA is aligned to it. ``progress(fraction, what)`` is
    called from this thread; ``should_stop`` is polled where the libraries allow (openTSNE's
    callbacks; before and after UMAP's optimisation, which cannot be interrupted) and raises
    :class:`Cancelled`."""
    latents = np.asarray(latents, np.float32)
    spec.check_dim(latents.shape[1])
    if spec.kind == "pca":
        return align_pca(Projection.fit(latents), previous if isinstance(previous, Projection) else None)
    if spec.kind == "axes":
        return AxesProjection(latents.mean(0), spec.dims)
    report = progress or (lambda fraction, what: None)
    init = None
    if isinstance(previous, NonlinearProjection) and previous.name == spec.kind \
            and previous.xy.shape == (len(latents), 2):
        init = previous.xy.astype(np.float64)
    start = time.perf_counter()
    if spec.kind == "umap":
        model, xy = _fit_umap(latents, init, report, should_stop, seed, n_jobs)
        params = dict(UMAP_PARAMS)
    else:
        model, xy = _fit_tsne(latents, init, report, should_stop, seed, n_jobs)
        params = dict(TSNE_PARAMS)
    if should_stop():
        raise Cancelled()
    report(0.95, "fitting the inverse")
    inverse = LearnedInverse.fit(xy, latents, seed=0 if seed is None else seed)
    return NonlinearProjection(spec.kind, params, latents, xy, inverse, model,
                               fit_seconds=time.perf_counter() - start)


def _fit_umap(latents, init, report, should_stop, seed, n_jobs):
    report(0.0, "loading umap-learn (its first use compiles it: tens of seconds, once per install)")
    import umap  # numba compiles on first use, here on the fitting thread

    cache_umap_compiles()
    # Exact neighbours come without pynndescent's search index, which only umap-learn's own
    # transform needs (NonlinearProjection.place falls back to the fast placement). Added at
    # each fit: a test runner resets the filters; an identical filter replaces itself.
    warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]", category=UserWarning)
    if should_stop():
        raise Cancelled()
    report(0.03, "finding each mean's nearest neighbours")
    n_jobs = 1 if seed is not None else n_jobs
    neighbours = exact_neighbours(latents, UMAP_PARAMS["n_neighbors"], n_jobs)
    if should_stop():
        raise Cancelled()
    report(0.05, "fitting UMAP")
    kwargs = dict(UMAP_PARAMS, n_components=2, random_state=seed, n_jobs=n_jobs, precomputed_knn=neighbours,
                  n_epochs=UMAP_EPOCHS, init=UMAP_INIT)
    if init is not None:
        kwargs.update(init=init, n_epochs=UMAP_EPOCHS_FROM_PREVIOUS, learning_rate=UMAP_LEARNING_RATE_FROM_PREVIOUS)
    model = umap.UMAP(**kwargs)
    xy = model.fit_transform(latents)
    return model, np.asarray(xy, np.float32)


def exact_neighbours(latents: np.ndarray, k: int, n_jobs: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(indices, distances), each (N, k), of every row's k nearest rows, itself first: the
    neighbour graph umap-learn would otherwise find with pynndescent. Exact, and faster here:
    0.4 s for 10,000 means of 16 dimensions, where pynndescent's first call in a process takes
    over a minute (its descent cannot be kept in numba's disk cache: it uses dynamic globals)."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(latents))
    distances, indices = NearestNeighbors(n_neighbors=k, n_jobs=n_jobs).fit(latents).kneighbors(latents)
    return indices, distances.astype(np.float32)


_UMAP_CACHED = threading.Lock()
_umap_cache_enabled = False


def cache_umap_compiles() -> None:
    """Keep umap-learn's numba functions in numba's disk cache, as pynndescent's already are
    (umap-learn does not ask for it): the compile, a minute of a busy core, then happens once
    per install instead of in every process (benchmarks/RESULTS.md has the figures). numba writes the cache beside the package, or in the user's cache folder when that
    is read-only, and drops it when umap-learn's source changes. ``enable_caching`` is
    numba's public Dispatcher method that ``cache=True`` calls; functions numba cannot cache
    are compiled as before (it warns, once each)."""
    global _umap_cache_enabled
    with _UMAP_CACHED:
        if _umap_cache_enabled:
            return
        import numba
        import umap.distances
        import umap.layouts
        import umap.sparse
        import umap.spectral
        import umap.umap_
        import umap.utils

        for module in (umap.umap_, umap.layouts, umap.utils, umap.spectral, umap.distances, umap.sparse):
            for value in list(vars(module).values()):
                if isinstance(value, numba.core.dispatcher.Dispatcher):
                    try:
                        value.enable_caching()
                    except RuntimeError:  # numba finds no place to keep it: compiled as before
                        pass
        _umap_cache_enabled = True


def _fit_tsne(latents, init, report, should_stop, seed, n_jobs):
    report(0.0, "loading openTSNE")
    import openTSNE
    from openTSNE.initialization import rescale

    total = [750]  # openTSNE's early exaggeration (250) + its main phase (500)

    def callback(iteration, error, embedding):
        report(0.05 + 0.9 * min(1.0, iteration / total[0]), "fitting t-SNE")
        return bool(should_stop())  # True stops openTSNE's optimisation

    kwargs = dict(TSNE_PARAMS, n_components=2, n_jobs=n_jobs, random_state=seed,
                  callbacks=callback, callbacks_every_iters=25)
    if init is not None:
        # openTSNE wants a start of small spread (its own rescale); the previous layout then
        # needs no early exaggeration to untangle.
        kwargs.update(initialization=rescale(init), early_exaggeration_iter=0,
                      n_iter=TSNE_ITERATIONS_FROM_PREVIOUS)
        total[0] = TSNE_ITERATIONS_FROM_PREVIOUS
    report(0.05, "fitting t-SNE")
    try:
        embedding = openTSNE.TSNE(**kwargs).fit(np.asarray(latents, np.float64))
    except openTSNE.tsne.OptimizationInterrupt:
        raise Cancelled() from None
    # openTSNE's transform centres the embedding in place before it places new points: centred
    # now, the positions kept as ``xy`` stay those the model places against.
    embedding -= (np.max(embedding, axis=0) + np.min(embedding, axis=0)) / 2
    return embedding, np.asarray(embedding, np.float32)
