"""From a nonlinear map's plane back to the latent space, and how far a plane point is from the
data: what a drag on a UMAP or t-SNE map decodes.

:class:`LearnedInverse` is a small MLP fitted on the (map position, latent mean) pairs, as
parametric UMAP's decoder is (Sainburg, McInnes and Gentner 2021), in a second or two on the
CPU, corrected near the map's points by a :class:`ResidualKernel`: a kernel average of the
network's residuals at the nearest points. It is evaluated in numpy (a drag asks for it at every
mouse move: ~0.3 ms a point, no torch call and no lock on the model). Far from the points the
correction fades and the network extrapolates, which :class:`PlaneDistance` measures so a view
can say so.

Why both: a t-SNE map's plane-to-latent function varies at the scale of the neighbour spacing,
finer than a network fitted in a second follows (held-out error 0.48 of the spread on 10,000
MNIST means, against 0.39 for a 10-NN regression); a kernel regression alone has nothing to say
between clusters. Corrected, 0.39. On UMAP maps both are near the floor that the layout itself
sets (see benchmarks/projection_quality.py: no function of the plane point does much better).
"""

from __future__ import annotations

import numpy as np

HIDDEN = 128  # units in each of the two hidden layers
FIT_STEPS = 1000  # Adam steps of FIT_BATCH pairs (a cosine schedule to 0)
FIT_BATCH = 256
FIT_LR = 3e-3
# Steps of a fit that starts from the last epoch's network (its means moved a little): the
# inverse of each epoch placed during training must not cost training a core for seconds.
WARM_FIT_STEPS = 100
# Random Fourier features of the standardised plane point (Tancik et al. 2020, "Fourier features
# let networks learn high frequency functions in low dimensional domains"): a plain MLP of
# (x, y) fits a UMAP map's sharp cluster edges too smoothly.
FOURIER_FEATURES = 64
# The frequencies' standard deviation, per standardised unit. On a UMAP map of 10,000 MNIST
# means (held-out median relative error; 10-NN regression 0.168): none 0.192, 1.0 0.180, 2.0
# 0.174; but 2.0 made a smooth function 10 times worse between its samples (1.0: as none).
FOURIER_SCALE = 1.0
# The typical neighbour spacing of a map: the median distance of a map point to its
# SPACING_NEIGHBOUR-th nearest other one. (The nearest one alone is a poor unit on UMAP maps,
# which pack a cluster's points tightly: a step of a few pixels was 20 of them.)
SPACING_NEIGHBOUR = 10
# A plane point farther than this many spacings from every map point lies where no image of
# the data set was mapped: its decoding is an extrapolation.
EXTRAPOLATING_SPACINGS = 3.0
PLACEMENT_NEIGHBOURS = 10
# The residual kernel's widths, chosen per map by leave-one-out on KERNEL_SAMPLE of its points:
# (k, c) is a Gaussian of width c times the distance to the k-th nearest map point, so it
# narrows where a UMAP map packs its points. Each is tried; on MNIST's t-SNE map (5, 0.5) won,
# on UMAP's wider ones (the tightly packed points there carry more noise than detail).
KERNEL_CHOICES = ((3, 0.5), (5, 0.5), (8, 0.5), (5, 0.75), (8, 0.75), (12, 0.75))
KERNEL_SAMPLE = 2000
# Points the kernel sums over: enough that the last one's weight is below 1e-3 for every
# choice above (the weights stay continuous as the cursor moves the neighbour set).
KERNEL_POINTS = 64
# The correction is whole within FADE_FROM spacings of a map point and gone at
# EXTRAPOLATING_SPACINGS, where the network alone extrapolates.
FADE_FROM = 1.0


class LearnedInverse:
    """plane (n, 2) -> latent (n, L). ``weights``: the MLP's layers as (W, b) numpy pairs,
    ``xy_centre``/``xy_scale`` and ``z_mean``/``z_scale`` its input and output standardisation;
    all plain arrays, so it is cached in the run folder and shared between threads as is.
    ``kernel``: the correction near the map's points (None: the network alone)."""

    def __init__(self, weights: list[tuple[np.ndarray, np.ndarray]], xy_centre: np.ndarray,
                 xy_scale: float, z_mean: np.ndarray, z_scale: np.ndarray, frequencies: np.ndarray | None = None,
                 kernel: "ResidualKernel | None" = None):
        self.frequencies = np.zeros((2, 0), np.float32) if frequencies is None else \
            np.asarray(frequencies, np.float32)  # (2, F)
        self.weights = [(np.asarray(w, np.float32), np.asarray(b, np.float32)) for w, b in weights]
        self.xy_centre = np.asarray(xy_centre, np.float32)  # (2,)
        self.xy_scale = float(xy_scale)
        self.z_mean = np.asarray(z_mean, np.float32)  # (L,)
        self.z_scale = np.asarray(z_scale, np.float32)  # (L,)
        self.kernel = kernel

    @classmethod
    def fit(cls, xy: np.ndarray, latents: np.ndarray, *, steps: int = FIT_STEPS, seed: int = 0,
            start: "LearnedInverse | None" = None, kernel: bool = True) -> "LearnedInverse":
        """Least squares on standardised latents: the network learns the mean latent of the
        images mapped near each plane point; then (``kernel``) the residual kernel is fitted on
        its residuals. ``start``: a network to go on from (the last epoch's), with its
        standardisation and kernel widths; give it fewer ``steps``."""
        import torch

        xy, latents = np.asarray(xy, np.float32), np.asarray(latents, np.float32)
        if start is not None and start.z_mean.shape == (latents.shape[1],):
            centre, scale, frequencies = start.xy_centre, start.xy_scale, start.frequencies
            z_mean, z_scale = start.z_mean, start.z_scale
        else:
            start = None
            centre, scale = xy.mean(0), float(xy.std()) or 1.0
            frequencies = np.random.default_rng(seed).normal(0, FOURIER_SCALE, (2, FOURIER_FEATURES)).astype(np.float32)
            z_mean, z_scale = latents.mean(0), np.maximum(latents.std(0), 1e-6)
        # One thread: a network this small gains nothing from more, and beside training (or
        # numba's threads) spinning OpenMP workers made a 2-second fit take a minute. The
        # setting is the calling thread's own under OpenMP; it is put back all the same.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            inverse = cls._fit(torch, xy, latents, centre, scale, z_mean, z_scale, frequencies, steps, seed, start)
        finally:
            torch.set_num_threads(threads)
        if kernel:
            width = start.kernel.width if start is not None and start.kernel is not None else None
            inverse.kernel = ResidualKernel.fit(xy, latents - inverse.network(xy), width, seed=seed)
        return inverse

    @classmethod
    def _fit(cls, torch, xy, latents, centre, scale, z_mean, z_scale, frequencies, steps, seed, start):
        gen = torch.Generator().manual_seed(seed)
        x = torch.from_numpy(features((xy - centre) / scale, frequencies))  # (N, 2 + 2F)
        y = torch.from_numpy((latents - z_mean) / z_scale)  # (N, L)
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], HIDDEN), torch.nn.SiLU(), torch.nn.Linear(HIDDEN, HIDDEN),
                                  torch.nn.SiLU(), torch.nn.Linear(HIDDEN, latents.shape[1]))
        layers = [m for m in net if isinstance(m, torch.nn.Linear)]
        if start is not None and [w.shape for w, _ in start.weights] == [tuple(m.weight.T.shape) for m in layers]:
            with torch.no_grad():
                for m, (w, b) in zip(layers, start.weights):
                    m.weight.copy_(torch.from_numpy(w.T.copy()))
                    m.bias.copy_(torch.from_numpy(b))
        opt = torch.optim.Adam(net.parameters(), lr=FIT_LR)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        batch = min(FIT_BATCH, len(x))
        for _ in range(steps):
            idx = torch.randint(len(x), (batch,), generator=gen)
            loss = torch.nn.functional.mse_loss(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        weights = [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in layers]
        return cls(weights, centre, scale, z_mean, z_scale, frequencies)

    def __call__(self, p: np.ndarray) -> np.ndarray:
        p = np.atleast_2d(np.asarray(p, np.float32))
        z = self.network(p)
        return z if self.kernel is None else (z + self.kernel(p)).astype(np.float32)

    def network(self, p: np.ndarray) -> np.ndarray:
        """(n, 2) -> (n, L): the network alone."""
        h = features((np.atleast_2d(np.asarray(p, np.float32)) - self.xy_centre) / self.xy_scale, self.frequencies)
        for k, (w, b) in enumerate(self.weights):
            h = h @ w + b
            if k < len(self.weights) - 1:
                h = h / (1.0 + np.exp(-h))  # SiLU
        return (h * self.z_scale + self.z_mean).astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        """Its arrays by name, for np.savez; :meth:`from_arrays` reads them back. The kernel's
        residuals are not among them: they follow from the map's points and the network."""
        out = {"xy_centre": self.xy_centre, "xy_scale": np.float32(self.xy_scale),
               "z_mean": self.z_mean, "z_scale": self.z_scale, "frequencies": self.frequencies,
               "kernel_width": np.array(self.kernel.width if self.kernel is not None else (0, 0.0), np.float64)}
        for k, (w, b) in enumerate(self.weights):
            out[f"w{k}"], out[f"b{k}"] = w, b
        return out

    @classmethod
    def from_arrays(cls, arrays, latent_dim: int, xy: np.ndarray | None = None,
                    latents: np.ndarray | None = None) -> "LearnedInverse":
        """Raises ValueError for arrays that do not make an inverse to ``latent_dim``. With the
        map's points ``xy`` (N, 2) and ``latents`` (N, L) the kernel comes back too (an inverse
        saved before the kernel existed gets the first of KERNEL_CHOICES)."""
        frequencies = np.asarray(arrays["frequencies"]) if "frequencies" in arrays else np.zeros((2, 0))
        if frequencies.ndim != 2 or frequencies.shape[0] != 2:
            raise ValueError(f"frequencies of shape {frequencies.shape}")
        weights, k, width = [], 0, 2 + 2 * frequencies.shape[1]
        while f"w{k}" in arrays:
            w, b = np.asarray(arrays[f"w{k}"]), np.asarray(arrays[f"b{k}"])
            if w.ndim != 2 or w.shape[0] != width or b.shape != (w.shape[1],):
                raise ValueError(f"layer {k} has shape {w.shape}, {b.shape}")
            weights.append((w, b))
            width, k = w.shape[1], k + 1
        if not weights or width != latent_dim:
            raise ValueError(f"the network ends in {width} values, not {latent_dim}")
        inv = cls(weights, arrays["xy_centre"], float(arrays["xy_scale"]), arrays["z_mean"], arrays["z_scale"],
                  frequencies)
        if inv.xy_centre.shape != (2,) or inv.z_mean.shape != (latent_dim,) or inv.z_scale.shape != (latent_dim,):
            raise ValueError("its standardisation has the wrong shapes")
        if not all(np.isfinite(a).all() for a in inv.arrays().values()) or inv.xy_scale <= 0:
            raise ValueError("it holds values that are not finite")
        width = np.asarray(arrays["kernel_width"], np.float64) if "kernel_width" in arrays else \
            np.array(KERNEL_CHOICES[0], np.float64)
        if width.shape != (2,) or not np.isfinite(width).all() or width[0] < 0 or width[1] < 0:
            raise ValueError(f"kernel width {width}")
        if xy is not None and latents is not None and width[0] >= 1 and width[1] > 0:
            kernel_width = (int(width[0]), float(width[1]))
            inv.kernel = ResidualKernel(xy, np.asarray(latents, np.float32) - inv.network(xy), kernel_width)
        return inv


def features(p: np.ndarray, frequencies: np.ndarray) -> np.ndarray:
    """(n, 2) standardised plane points -> (n, 2 + 2F): the point, then sin and cos of its
    projections on the frequencies."""
    p = np.asarray(p, np.float32)
    if not frequencies.shape[1]:
        return p
    phase = 2 * np.pi * (p @ frequencies)
    return np.concatenate([p, np.sin(phase), np.cos(phase)], axis=1).astype(np.float32)


class ResidualKernel:
    """The correction a :class:`LearnedInverse` adds to its network near the map's points: the
    Nadaraya-Watson average of the network's residuals ``z - net(xy)`` at the KERNEL_POINTS
    nearest points, weighted by a Gaussian of width c times the query's distance to its k-th
    nearest point (``width`` = (k, c)), times a fade from whole within FADE_FROM spacings of
    the nearest point to nothing at EXTRAPOLATING_SPACINGS. Smooth as the cursor moves."""

    def __init__(self, xy: np.ndarray, residuals: np.ndarray, width: tuple[int, float]):
        self.distance = PlaneDistance(xy)
        self.residuals = np.asarray(residuals, np.float32)[self.distance.kept]  # (N, L)
        self.width = (int(width[0]), float(width[1]))

    @classmethod
    def fit(cls, xy: np.ndarray, residuals: np.ndarray, width: tuple[int, float] | None = None, *,
            seed: int = 0) -> "ResidualKernel":
        """``width`` None: the one of KERNEL_CHOICES that predicts each of KERNEL_SAMPLE map
        points best from the others (median error, as the benchmark judges)."""
        kernel = cls(xy, residuals, width or KERNEL_CHOICES[0])
        if width is None and len(kernel.residuals) > KERNEL_POINTS + 1:
            points = kernel.distance.points
            rng = np.random.default_rng(seed)
            sample = rng.choice(len(points), min(KERNEL_SAMPLE, len(points)), replace=False)
            d, idx = kernel.distance.tree.query(points[sample], k=KERNEL_POINTS + 1)
            d, idx = d[:, 1:], idx[:, 1:]  # each point is left out of its own estimate
            errors = [np.median(np.linalg.norm(kernel.residuals[sample] - kernel._average(d, idx, choice), axis=1))
                      for choice in KERNEL_CHOICES]
            kernel.width = KERNEL_CHOICES[int(np.argmin(errors))]
        return kernel

    def _average(self, d: np.ndarray, idx: np.ndarray, width: tuple[int, float]) -> np.ndarray:
        """(n, K) distances and indices of each query's nearest points -> (n, L)."""
        k, c = min(width[0], d.shape[1]), width[1]
        h = np.maximum(c * d[:, k - 1:k], 1e-9 * self.distance.spacing)
        w = np.exp(-0.5 * (d / h) ** 2)  # (n, K); the nearest's is >= exp(-0.5 / c^2)
        w /= w.sum(1, keepdims=True)
        return np.einsum("nk,nkl->nl", w, self.residuals[idx])

    def __call__(self, p: np.ndarray) -> np.ndarray:
        """(n, 2) -> (n, L)."""
        p = np.atleast_2d(np.asarray(p, np.float64))
        k = min(KERNEL_POINTS, len(self.residuals))
        d, idx = self.distance.tree.query(p, k=k)
        d, idx = d.reshape(len(p), k), idx.reshape(len(p), k)
        # smoothstep from 1 at FADE_FROM spacings to 0 at EXTRAPOLATING_SPACINGS
        t = np.clip((d[:, 0] / self.distance.spacing - FADE_FROM) / (EXTRAPOLATING_SPACINGS - FADE_FROM), 0, 1)
        fade = 1 - t * t * (3 - 2 * t)
        return (fade[:, None] * self._average(d, idx, self.width)).astype(np.float32)


class PlaneDistance:
    """How far plane points are from a map's points, in units of the map's typical neighbour
    spacing (see SPACING_NEIGHBOUR). ``points``: the map's finite points, ``kept`` their rows
    in the ``xy`` given, ``tree`` their k-d tree."""

    def __init__(self, xy: np.ndarray):
        from scipy.spatial import cKDTree

        xy = np.asarray(xy, np.float64)
        self.kept = np.isfinite(xy).all(1)
        self.points = xy = xy[self.kept]
        self.tree = cKDTree(xy)
        if len(xy) >= 2:
            k = min(SPACING_NEIGHBOUR, len(xy) - 1)
            d, _ = self.tree.query(xy, k=k + 1)
            spacing = float(np.median(d[:, k]))
        else:
            spacing = 0.0
        # Duplicated points (a collapsed latent) give a zero median: fall back to the span.
        self.spacing = spacing if spacing > 0 else max(float(np.ptp(xy, 0).max()) / 100, 1e-6) if len(xy) else 1.0

    def __call__(self, p: np.ndarray) -> np.ndarray:
        """(n, 2) -> (n,) distances to the nearest map point, in spacings."""
        d, _ = self.tree.query(np.atleast_2d(np.asarray(p, np.float64)), k=1)
        return np.asarray(d, np.float64) / self.spacing

    @staticmethod
    def extrapolating(distance: float) -> bool:
        return bool(distance > EXTRAPOLATING_SPACINGS)


class NeighbourPlacement:
    """Places latent vectors on a fitted layout at the inverse-distance-weighted mean of their
    nearest fitted latents' positions: the start from which umap-learn's ``transform``
    optimises, without the optimisation. For layouts whose library model is not in memory."""

    def __init__(self, latents: np.ndarray, xy: np.ndarray, k: int = PLACEMENT_NEIGHBOURS):
        from scipy.spatial import cKDTree

        self._tree = cKDTree(np.asarray(latents, np.float64))
        self._xy = np.asarray(xy, np.float64)
        self._k = min(k, len(self._xy))

    def __call__(self, z: np.ndarray) -> np.ndarray:
        d, idx = self._tree.query(np.atleast_2d(np.asarray(z, np.float64)), k=self._k)
        d, idx = d.reshape(len(d), -1), idx.reshape(len(idx), -1)
        w = 1.0 / np.maximum(d, 1e-12)
        w /= w.sum(1, keepdims=True)
        return np.einsum("nk,nkc->nc", w, self._xy[idx]).astype(np.float32)
