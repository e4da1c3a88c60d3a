"""What exploring a user's own model costs over calling it directly.

An MLP VAE like the README's (784 -> 256 -> 2L, L = 8) in the encode/decode convention, on
28 x 28 images, one torch thread. Measured, as medians of repeats:

- decode_ms: one latent decoded the way a drag decodes it (core.user_model: the lock, eval mode,
  no_grad, the reshape and the output mapping to [0, 1]) against ``torch.sigmoid(model.decode(z))``
  under ``no_grad``;
- encode_s: the map's encoding of N images in chunks (core.user_model.encodings) against one
  ``model.encode`` over the same chunks.

Targets: the wrapper adds at most 0.1 ms to a decode (a drag's frame is 16 ms; the decoding
thread's own hand-offs cost more), and the map's encoding takes at most 1.2 times the direct
calls. Ratios are figure / target (<= 1 meets it). Last line: JSON.

    python benchmarks/user_model_overhead.py [--images 10000] [--repeats 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from torch import nn

from vaegui.core.user_images import user_images
from vaegui.core.user_model import ENCODE_CHUNK, UserModel

DECODE_OVERHEAD_MS = 0.1  # targets (see the docstring)
ENCODE_RATIO = 1.2


class VAE(nn.Module):
    def __init__(self, latent: int = 8):
        super().__init__()
        self.enc = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 2 * latent))
        self.dec = nn.Sequential(nn.Linear(latent, 256), nn.ReLU(), nn.Linear(256, 784), nn.Unflatten(1, (1, 28, 28)))

    def encode(self, x):
        return self.enc(x).chunk(2, dim=1)

    def decode(self, z):
        return self.dec(z)


def _median_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = VAE().eval()
    images = np.random.default_rng(0).integers(0, 256, (args.images, 1, 28, 28), dtype=np.uint8)
    user = UserModel(model, user_images(images))
    z = np.random.default_rng(1).standard_normal((1, 8)).astype(np.float32)
    zt = torch.from_numpy(z)

    def direct_decode():
        with torch.no_grad():
            torch.sigmoid(model.decode(zt)).numpy()
    for _ in range(20):  # warm-up
        user.decode(z)
        direct_decode()
    ours_decode = _median_s(lambda: user.decode(z), args.repeats)
    theirs_decode = _median_s(direct_decode, args.repeats)

    x = user.images.inputs

    def direct_encode():
        with torch.no_grad():
            for start in range(0, len(x), ENCODE_CHUNK):
                model.encode(x[start:start + ENCODE_CHUNK])[0].numpy()
    repeats = max(3, args.repeats // 40)
    ours_encode = _median_s(user.encode_all, repeats)
    theirs_encode = _median_s(direct_encode, repeats)
    overhead_ms = 1000 * (ours_decode - theirs_decode)
    encode_ratio = ours_encode / theirs_encode
    result = {
        "decode_ms": round(1000 * ours_decode, 3), "direct_decode_ms": round(1000 * theirs_decode, 3),
        "decode_overhead_ms": round(overhead_ms, 3), "decode_target_ratio": round(overhead_ms / DECODE_OVERHEAD_MS, 2),
        "encode_s": round(ours_encode, 3), "direct_encode_s": round(theirs_encode, 3),
        "encode_ratio": round(encode_ratio, 2), "encode_target_ratio": round(encode_ratio / ENCODE_RATIO, 2),
        "images": args.images,
    }
    print(f"decode: {result['decode_ms']} ms, direct {result['direct_decode_ms']} ms: overhead "
          f"{result['decode_overhead_ms']} ms, {result['decode_target_ratio']} of the {DECODE_OVERHEAD_MS} ms target")
    print(f"encode of {args.images:,} images: {result['encode_s']} s, direct {result['direct_encode_s']} s: "
          f"ratio {result['encode_ratio']}, {result['encode_target_ratio']} of the {ENCODE_RATIO} target")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
