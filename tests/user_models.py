"""Tiny models written as users write theirs, one per convention vaegui.explore accepts, for
the core, GUI and CLI tests of exploring a user's model."""

from __future__ import annotations

import collections
import contextlib
import threading
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

SHAPE = (1, 8, 8)


class Guard:
    """While ``watching``, fails when two threads are inside a model at once, and notes which
    threads entered. Module level: a deepcopy of the model shares it (and a threading.Lock
    cannot be deep-copied anyway). Off by default, so a test can call its own model for the
    expected values while the window decodes with the copy."""

    def __init__(self):
        self._lock = threading.Lock()
        self.watching = False
        self.entries = 0
        self.overlaps = 0
        self.threads: collections.Counter[int] = collections.Counter()  # entries by thread id
        self._held = threading.local()

    @contextlib.contextmanager
    def watch(self):
        self.watching, self.entries, self.overlaps, self.threads = True, 0, 0, collections.Counter()
        try:
            yield self
        finally:
            self.watching = False

    def __enter__(self):
        self._held.lock = self.watching
        if not self.watching:
            return self
        if not self._lock.acquire(blocking=False):
            self._held.lock = False
            self.overlaps += 1
            raise AssertionError("the model was entered by two threads at once")
        self.entries += 1
        self.threads[threading.get_ident()] += 1
        return self

    def __exit__(self, *exc):
        if self._held.lock:
            self._lock.release()


GUARD = Guard()


class TupleVAE(nn.Module):
    """Convention 1: encode -> (mu, logvar) (or a Normal, or mu alone); decode -> logits, a
    sigmoid or a tanh image; the latent any shape."""

    def __init__(self, latent_shape=(2,), returns: str = "tuple", out: str = "logits", seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.latent_shape, self.returns, self.out = tuple(latent_shape), returns, out
        d, latent = int(np.prod(SHAPE)), int(np.prod(latent_shape))
        self.enc = nn.Linear(d, 2 * latent)
        self.dec = nn.Linear(latent, d)
        self.fail_decode = False

    def encode(self, x):
        with GUARD:
            mu, logvar = self.enc(x.flatten(1)).chunk(2, dim=1)
            mu = mu.reshape(len(x), *self.latent_shape)
            logvar = logvar.reshape(len(x), *self.latent_shape)
            if self.returns == "normal":
                return torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
            if self.returns == "mu":
                return mu
            return [mu, logvar] if self.returns == "list" else (mu, logvar)

    def decode(self, z):
        with GUARD:
            if self.fail_decode:
                raise ValueError("decode exploded")
            y = 3.0 * self.dec(z.flatten(1)).reshape(len(z), *SHAPE)
            return {"logits": y, "sigmoid": torch.sigmoid(y), "tanh": torch.tanh(y)}[self.out]


class PythaeStyle(nn.Module):
    """Convention 2: encoder(x) -> .embedding, .log_covariance; decoder(z) -> ["reconstruction"]."""

    def __init__(self, latent: int = 3):
        super().__init__()
        torch.manual_seed(1)
        d = int(np.prod(SHAPE))
        self.enc = nn.Linear(d, 2 * latent)
        self.dec = nn.Linear(latent, d)

    def encoder(self, x):
        with GUARD:
            mu, logvar = self.enc(x.flatten(1)).chunk(2, dim=1)
            return SimpleNamespace(embedding=mu, log_covariance=logvar)

    def decoder(self, z):
        with GUARD:
            return {"reconstruction": torch.sigmoid(self.dec(z)).reshape(len(z), *SHAPE)}


def callables(latent: int = 2):
    """Convention 3: two functions over one module; decode returns (n, C*H*W) logits."""
    torch.manual_seed(2)
    enc, dec = nn.Linear(int(np.prod(SHAPE)), latent), nn.Linear(latent, int(np.prod(SHAPE)))

    def encode(x):
        with GUARD:
            return enc(x.flatten(1))

    def decode(z):
        with GUARD:
            return dec(z)
    return encode, decode


def images(n: int = 60, signed: bool = False, seed: int = 0):
    """(n, 1, 8, 8) float images in [0, 1] (or [-1, 1]) and labels 0..2."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    x = rng.random((n, *SHAPE)).astype(np.float32) * 0.3
    for k in range(3):
        x[labels == k, :, 2 * k:2 * k + 3, :] += 0.7  # a band per class
    x = np.clip(x, 0, 1)
    return (x * 2 - 1 if signed else x), labels
