"""A VAE trained outside vaegui, called as the explorer calls its own: encoder means of images,
and images in [0, 1] decoded from flat latent vectors.

Three conventions, tried in this order:

1. ``model.encode(x)`` returns ``(mu, logvar)`` (a tuple or list), a
   ``torch.distributions.Normal``, or ``mu`` alone; ``model.decode(z)`` returns the image
   (PyTorch-VAE and most tutorials);
2. ``model.encoder(x)`` returns an object or dict with ``embedding`` (and ``log_covariance``),
   ``model.decoder(z)`` one with ``reconstruction`` (Pythae);
3. two callables, ``encode(x)`` and ``decode(z)``, answering as in 1.

The latent may have any shape: it is flattened for the map and reshaped back for decoding. The
decoder's output may be logits, probabilities or a tanh image in [-1, 1]; "auto" decides from a
decoded batch (:func:`decide_output`).

Every call goes to one copy of the model (``copy.deepcopy``, in eval mode, under
``torch.no_grad``, on the model's own device) and holds one lock: the decoding thread, the map's
encoder and an export may all use the model, and none of them ever runs it while another does.
The user's own model object is never called.
"""

from __future__ import annotations

import copy
import math
import sys
import threading
import traceback
from collections.abc import Callable, Generator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from .config import USER_OUTPUTS
from .errors import VaeguiError
from .user_images import UserImages

CHECK_BATCH = 8  # images encoded and decoded to check the model fits, and to decide "auto"
ENCODE_CHUNK = 256  # images encoded at a time for the map (the lock is let go between chunks)

CONVENTIONS = {
    "encode/decode": "model.encode(x) -> (mu, logvar), a Normal, or mu; model.decode(z) -> image",
    "pythae": "model.encoder(x) -> .embedding (and .log_covariance); model.decoder(z) -> .reconstruction",
    "callables": "encode(x) -> (mu, logvar), a Normal, or mu; decode(z) -> image",
}


class ModelError(VaeguiError, TypeError):
    """A model's encode or decode does not fit any convention, or raised: the message names the
    call, what it returned (types and shapes) and the convention expected."""


def describe(value, depth: int = 0) -> str:
    """What a call returned, in a few words: 'tuple(Tensor(8, 2) float32, Tensor(8, 2) float32)'."""
    if isinstance(value, torch.Tensor):
        return f"Tensor{tuple(value.shape)} {str(value.dtype).replace('torch.', '')}"
    if isinstance(value, np.ndarray):
        return f"ndarray{value.shape} {value.dtype}"
    if depth < 2 and isinstance(value, (tuple, list)):
        return f"{type(value).__name__}({', '.join(describe(v, depth + 1) for v in value[:4])}{', ...' * (len(value) > 4)})"
    if depth < 2 and isinstance(value, Mapping):
        items = list(value.items())[:4]
        return f"{type(value).__name__}({', '.join(f'{k}={describe(v, depth + 1)}' for k, v in items)})"
    return type(value).__name__


def _field(value, name: str):
    """value[name] of a dict, value.name of an object (Pythae's ModelOutput is both)."""
    if isinstance(value, Mapping):
        return value.get(name)
    return getattr(value, name, None)


def _means(value) -> torch.Tensor | None:
    """mu of what an encode returned: (mu, logvar), a Normal (its mean), or mu; None if none."""
    if isinstance(value, (tuple, list)) and value:
        value = value[0]
    if isinstance(value, torch.distributions.Distribution):
        value = value.mean
    return value if isinstance(value, torch.Tensor) else None


def _image(value) -> torch.Tensor | None:
    if isinstance(value, torch.distributions.Distribution):
        value = value.mean
    return value if isinstance(value, torch.Tensor) else None


@dataclass(frozen=True)
class _Calls:
    convention: str  # a key of CONVENTIONS
    encode: Callable[[torch.Tensor], object]
    decode: Callable[[torch.Tensor], object]
    encode_name: str  # how a message names the call
    decode_name: str
    encode_result: Callable[[object], torch.Tensor | None]  # the means / the image, None if missing
    decode_result: Callable[[object], torch.Tensor | None]


class UserModel:
    """A user's model, checked against ``images`` (see the module docstring)."""

    def __init__(self, model: torch.nn.Module | None, images: UserImages, *, output: str = "auto",
                 encode: Callable | None = None, decode: Callable | None = None):
        if output not in USER_OUTPUTS:
            raise ModelError(f"output={output!r} is not one of {', '.join(USER_OUTPUTS)}")
        self.images = images
        self.image_shape = images.image_shape
        self.class_name, self.parameters = _name_and_size(model, encode)
        self._lock = threading.RLock()
        self._reported = False
        self.copied, self.copy_note = True, ""
        self.module, self._calls = self._copy_and_calls(model, encode, decode)
        if self.copied and self.module is not None:
            self.module.eval()  # once: the copy is only ever used for inference
        self.device = _device(self.module)
        self.convention = self._calls.convention
        self.latent_shape, self.output, self.output_reason = self._check(output)
        self.latent_dim = math.prod(self.latent_shape)

    # ---- set-up -----------------------------------------------------------------------------
    def _copy_and_calls(self, model, encode, decode):
        if model is None:
            if encode is None or decode is None or not (callable(encode) and callable(decode)):
                raise ModelError("explore needs a model, or two callables encode= and decode= "
                                 f"(convention 3: {CONVENTIONS['callables']})")
            encode, decode = self._copy((encode, decode))  # together: one copy of a model both use
            owner = getattr(encode, "__self__", None)  # a bound method's module: put in eval mode
            module = owner if isinstance(owner, torch.nn.Module) else None
            return module, _Calls("callables", encode, decode, "encode(x)", "decode(z)", _means, _image)
        module = self._copy(model)
        if callable(getattr(module, "encode", None)) and callable(getattr(module, "decode", None)):
            return module, _Calls("encode/decode", module.encode, module.decode, "model.encode(x)",
                                  "model.decode(z)", _means, _image)
        if callable(getattr(module, "encoder", None)) and callable(getattr(module, "decoder", None)):
            return module, _Calls("pythae", module.encoder, module.decoder, "model.encoder(x)", "model.decoder(z)",
                                  lambda v: _image(_field(v, "embedding")),
                                  lambda v: _image(_field(v, "reconstruction")))
        raise ModelError(f"model {type(model).__name__} has neither encode(x) and decode(z) "
                         f"(convention 1: {CONVENTIONS['encode/decode']}) nor encoder and decoder "
                         f"(convention 2, Pythae: {CONVENTIONS['pythae']}); or pass encode= and decode= callables")

    def _copy(self, thing):
        """A deep copy; the thing itself when it cannot be copied (every call still holds the
        lock, so it is never run by two threads at once)."""
        try:
            return copy.deepcopy(thing)
        except Exception as exc:  # noqa: BLE001 - anything a __deepcopy__ may raise
            self.copied = False
            self.copy_note = f"not copied ({type(exc).__name__}: {exc}): calls use the model itself, one at a time"
            return thing

    def _check(self, output: str) -> tuple[tuple[int, ...], str, str]:
        """Encode and decode a few images: the latent's shape, and the output mapping."""
        x = self.images.inputs[:CHECK_BATCH]
        mu = self._encode_batch(x)
        latent_shape = tuple(int(v) for v in mu.shape[1:])  # () for one number per image: z is (n,)
        self.latent_shape = latent_shape
        raw = self._decode_raw(mu.reshape(len(mu), *latent_shape))
        if output != "auto":
            return latent_shape, output, f"{output} (as asked)"
        chosen, reason = decide_output(raw.float().cpu().numpy(), self.images.input_range == "signed")
        return latent_shape, chosen, f"{chosen} (auto: {reason})"

    # ---- calls ------------------------------------------------------------------------------
    @contextmanager
    def _calling(self, name: str, arg: torch.Tensor):
        """One call into the model: alone (the lock), in eval mode, without gradients; what it
        raises becomes a ModelError naming the call (its traceback printed once, for the user)."""
        with self._lock, torch.no_grad():
            module = self.module
            was = module is not None and module.training  # the copy is in eval mode already
            if was:
                module.eval()
            try:
                yield
            except ModelError:
                raise
            except Exception as exc:  # noqa: BLE001 - the user's code: any error is theirs
                if not self._reported:
                    self._reported = True
                    traceback.print_exception(exc, file=sys.stderr)
                raise ModelError(f"{name} raised {type(exc).__name__}: {exc} (its argument: {describe(arg)})") from None
            finally:
                if was:
                    module.train(was)

    def _encode_batch(self, x: torch.Tensor) -> torch.Tensor:
        """(n, C, H, W) inputs -> means (n, *latent shape) on the model's device, checked."""
        c = self._calls
        x = x.to(self.device)
        with self._calling(c.encode_name, x):
            value = c.encode(x)
        mu = c.encode_result(value)
        expected = (f"(mu, logvar), a torch.distributions.Normal, or mu, a tensor of shape ({len(x)}, ...)"
                    if c.convention != "pythae" else f"an object or dict with embedding, a tensor of shape ({len(x)}, ...)")
        if mu is None or mu.ndim < 1 or mu.shape[0] != len(x) or not mu.is_floating_point():
            raise ModelError(f"{c.encode_name} returned {describe(value)} for x of shape {tuple(x.shape)}: expected "
                             f"{expected} (convention: {CONVENTIONS[c.convention]})")
        if not torch.isfinite(mu).all():
            raise ModelError(f"{c.encode_name} returned means that are not finite (NaN or inf)")
        return mu

    def _decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        """(n, *latent shape) -> the decoder's output as (n, C, H, W), not yet mapped to [0, 1]."""
        c = self._calls
        z = z.to(self.device)
        with self._calling(c.decode_name, z):
            value = c.decode(z)
        out = c.decode_result(value)
        n, shape = len(z), self.image_shape
        if out is not None and out.is_floating_point() and out.ndim >= 2 and out.shape[0] == n \
                and math.prod(out.shape[1:]) == math.prod(shape):
            return out.reshape(n, *shape)  # (n, C*H*W) from an MLP decoder, say
        what = "an image tensor" if c.convention != "pythae" else "an object or dict with reconstruction, a tensor"
        raise ModelError(f"{c.decode_name} returned {describe(value)} for z of shape {tuple(z.shape)}: expected "
                         f"{what} of shape ({n}, {', '.join(map(str, shape))}) (convention: {CONVENTIONS[c.convention]})")

    def encode(self, x: torch.Tensor) -> np.ndarray:
        """(n, C, H, W) inputs in the model's range -> flat means (n, L) float32."""
        mu = self._encode_batch(x)
        if tuple(mu.shape[1:]) != self.latent_shape and math.prod(mu.shape[1:]) != self.latent_dim:
            raise ModelError(f"{self._calls.encode_name} returned means of shape {tuple(mu.shape)}, "
                             f"then {('n', *self.latent_shape)} before")
        return mu.reshape(len(mu), -1).float().cpu().numpy()

    def decode(self, z: np.ndarray) -> np.ndarray:
        """Flat latents (n, L) -> images (n, C, H, W) float32 in [0, 1]."""
        z = torch.as_tensor(np.atleast_2d(np.asarray(z, np.float32)))
        if z.shape[1] != self.latent_dim:
            raise ModelError(f"decode: {z.shape[1]} latent values for a latent of shape {self.latent_shape}")
        return to_unit(self._decode_raw(z.reshape(len(z), *self.latent_shape)), self.output).cpu().numpy()

    def encodings(self, chunk: int = ENCODE_CHUNK) -> Generator[int, None, np.ndarray]:
        """Every image's flat means (N, L), a chunk at a time: yields the images done so far
        after each chunk (a worker reports progress and may stop there) and returns them."""
        x = self.images.inputs
        out = np.empty((len(x), self.latent_dim), np.float32)
        for start in range(0, len(x), chunk):
            out[start:start + chunk] = self.encode(x[start:start + chunk])
            yield min(start + chunk, len(x))
        return out

    def encode_all(self) -> np.ndarray:
        gen = self.encodings()
        while True:
            try:
                next(gen)
            except StopIteration as stop:
                return stop.value

    # ---- what the window says of it ----------------------------------------------------------
    def description(self) -> list[tuple[str, str]]:
        """(what, value) rows: the model panel's, and an export's notes."""
        c, h, w = self.image_shape
        rows = [("Model", self.class_name),
                ("Parameters", "—" if self.parameters is None else f"{self.parameters:,}"),
                ("Latent", f"{self.latent_dim}" + (f" (shape {' × '.join(map(str, self.latent_shape))})"
                                                   if len(self.latent_shape) > 1 else "")),
                ("Images", f"{len(self.images.inputs):,} of {c} × {h} × {w}"),
                ("Device", str(self.device)),
                ("Convention", self.convention),
                ("Decoder output", self.output_reason)]
        if not self.copied:
            rows.append(("Copy", self.copy_note))
        return rows


def decide_output(raw: np.ndarray, signed_inputs: bool) -> tuple[str, str]:
    """What a decoder's output is, from a decoded batch: values outside [-1, 1] are logits;
    values in [0, 1] probabilities; values in [-1, 1] with some below 0 a tanh image when the
    inputs were in [-1, 1] too, else logits (an untrained decoder's logits sit near 0)."""
    lo, hi = float(np.min(raw)), float(np.max(raw))
    seen = f"values in [{lo:.3g}, {hi:.3g}]"
    if lo < -1.0 - 1e-4 or hi > 1.0 + 1e-4:
        return "logits", seen
    if lo >= 0.0:
        return "probabilities", seen
    if signed_inputs:
        return "tanh", seen + ", images in [-1, 1]"
    return "logits", seen + ", images in [0, 1]"


def to_unit(out: torch.Tensor, output: str) -> torch.Tensor:
    """A decoder's output -> images in [0, 1], float32."""
    out = out.float()
    if output == "logits":
        return torch.sigmoid(out)
    if output == "tanh":
        return ((out + 1.0) / 2.0).clamp_(0.0, 1.0)
    return out.clamp(0.0, 1.0)


def _device(module) -> torch.device:
    for tensor in () if module is None else [*module.parameters(), *module.buffers()]:
        return tensor.device
    return torch.device("cpu")


def _name_and_size(model, encode) -> tuple[str, int | None]:
    if model is None:
        owner = getattr(encode, "__self__", None)
        name = getattr(encode, "__qualname__", type(encode).__name__)
        model = owner if isinstance(owner, torch.nn.Module) else None
        if model is None:
            return f"callables ({name})", None
    if isinstance(model, torch.nn.Module):
        return type(model).__name__, sum(p.numel() for p in model.parameters())
    return type(model).__name__, None
