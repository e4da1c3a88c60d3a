"""Does the latent map stay quick with a million points, and does a big image folder stay small?

The test split of ``shapes`` at 1,000,000 images (28 x 28, uint8) is encoded by an MLP VAE with
L = 2 and shown on a LatentMap (offscreen), then the same at 10,000 points, so the growth with N
shows. For each size:

- encode_seconds: encoding the images to their means (``encode_means``: chunks of 1,024, its
  thread count measured between 1 and 2), and encode_vs_bare: its time over that of a bare
  2-thread torch loop doing the same matmuls, both on the first ENCODE_REF images in this run
  (the machine is shared: the ratio is the steadier figure);
- new_map_gui_ms: GUI-thread time from the new map to its first paint (the spatial index and
  the density image are built on worker threads meanwhile);
- pan_frame_p95_ms: 95th percentile of a pan or zoom frame (the view moved, then the events
  that follow: its handlers and the one repaint), pausing now and then so the density image
  follows the view;
- hover_ms_median: the hover card's look-up of the point under the cursor;
- drag_decode_ms_median: what the decoding thread does for each move of a drag (decode the
  point, find the nearest real image), one torch thread;
- rss_mb: the process's resident memory with the map shown, and its anonymous and file-backed
  parts. A million shapes are a memory-mapped cache file (rendered on the first run into the
  user's cache folder, read from it afterwards); the pages the encoding read are given back
  after it, as the app does, so they count only while a pass reads them.

Then a folder of small PNGs (100,000 of 28 x 28 by default, in three class folders) is loaded
twice, each time in a fresh process: the first load decodes it into the cache, the second reads
the cache. Their seconds and RSS are printed.

The load average (1 minute) is printed at the start and the end: on a shared machine every CPU
figure grows with it.

Targets (issue 24): new map <= 300 ms, pan frames p95 <= 33 ms, hover <= 2 ms, drag decode <= 5
ms, RSS <= 1,500 MB, encoding a million <= 30 s. Ratios are figure / target (<= 1 meets it).
Heavy (minutes, GBs): run it alone, e.g. under ``flock`` on a shared machine. Last line: JSON.

    python benchmarks/big_map.py [--points 1000000] [--small 10000] [--folder-images 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGETS = {"encode_seconds": 30.0, "new_map_gui_ms": 300.0, "pan_frame_p95_ms": 33.0,
           "hover_ms_median": 2.0, "drag_decode_ms_median": 5.0, "rss_mb": 1500.0}
PAN_FRAMES = 120
PAUSE_EVERY = 20  # frames; then the view rests long enough for the density image to follow
ENCODE_REF = 100_000  # images encoded by both encode_means and the bare loop for their ratio


def rss_mb(field: str = "VmRSS") -> float:
    """A field of /proc/self/status in MB: VmRSS, or its parts RssAnon and RssFile."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def bare_encode_seconds(model, images) -> float:
    """A bare torch loop through the MLP encoder's two layers (what encode_means computes), with
    2 threads and chunks of 2,000 made float by ``.float()``: the reference for encode_vs_bare."""
    import torch

    torch.set_num_threads(2)
    enc = model.encoder
    w1, b1, w2, b2 = (p.detach() for p in (enc.hidden.weight, enc.hidden.bias, enc.head.weight, enc.head.bias))
    out = torch.empty(len(images), model.latent_dim)
    t = time.perf_counter()
    with torch.inference_mode():
        for s in range(0, len(images), 2000):
            x = images[s:s + 2000].flatten(1).float().div_(255)
            out[s:s + 2000] = torch.addmm(b2, torch.relu(torch.addmm(b1, x, w1.t())), w2.t())[:, :model.latent_dim]
    return time.perf_counter() - t


def encode_ratio(model, images) -> dict:
    from vaegui.core.decoder import encode_means

    import torch

    torch.set_num_threads(2)
    t = time.perf_counter()
    encode_means(model, images)
    ours = time.perf_counter() - t
    bare = bare_encode_seconds(model, images)
    return {"encode_ref_images": len(images), "encode_ref_seconds": round(ours, 2),
            "encode_bare_seconds": round(bare, 2), "encode_vs_bare": round(ours / bare, 2)}


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def wait_ms(app, ms: float) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(int(ms), loop.quit)
    loop.exec()


def measure_map(app, data, model, n: int, rng) -> dict:
    import torch

    from vaegui.core.decoder import Decoder, encode_means
    from vaegui.core.explorer import ExplorerModel
    from vaegui.core.latent import encoded_set
    from vaegui.core.model import model_state
    from vaegui.core.spatial_index import plane_index
    from vaegui.gui.explorer.latent_map import LatentMap
    from vaegui.gui.explorer.point_view import decode_point
    from PySide6.QtCore import QPoint

    torch.set_num_threads(2)
    images = data.test_images[:n]
    t = time.perf_counter()
    means = encode_means(model, images)
    encode_s = time.perf_counter() - t
    enc = encoded_set(data, means, "test", limit=n)

    widget = LatentMap(ExplorerModel())
    widget.resize(900, 700)
    widget.show()
    wait_ms(app, 300)
    viewport = widget.plot_widget().viewport()
    t = time.perf_counter()
    widget.model.set_encoded(enc)
    viewport.repaint()
    new_map_ms = 1000 * (time.perf_counter() - t)
    # Let the index and the first density image come.
    deadline = time.monotonic() + 60
    while (plane_index(enc, build=False) is None or widget.density.busy()) and time.monotonic() < deadline:
        wait_ms(app, 20)
    wait_ms(app, 200)

    view = widget.plot_widget().getPlotItem().getViewBox()
    (x0, x1), _ = view.viewRange()
    frames = []
    for k in range(PAN_FRAMES):
        t = time.perf_counter()
        if k % 10 == 9:
            view.scaleBy((0.9, 0.9) if (k // 10) % 2 else (1 / 0.9, 1 / 0.9))
        else:
            view.translateBy(x=(x1 - x0) * 0.01 * (1 if (k // 30) % 2 else -1))
        app.processEvents()  # the range change's handlers, then the one paint it asked for
        frames.append(1000 * (time.perf_counter() - t))
        if k % PAUSE_EVERY == PAUSE_EVERY - 1:
            wait_ms(app, 150)
    density_shown = widget.density.showing_density

    w, h = viewport.width(), viewport.height()
    hover = []
    for _ in range(500):
        pos = QPoint(int(rng.integers(10, w - 10)), int(rng.integers(10, h - 10)))
        t = time.perf_counter()
        widget._nearest_point(pos)
        hover.append(1000 * (time.perf_counter() - t))

    # The decoding thread's work for a drag's move, with its one torch thread.
    torch.set_num_threads(1)
    snapshot_state = model_state(model)
    decoder = Decoder(model.config, data.image_shape, snapshot_state)
    lo, hi = enc.latents.min(0), enc.latents.max(0)
    drag = []
    for _ in range(300):
        z = rng.uniform(lo, hi).astype(np.float32)
        t = time.perf_counter()
        decode_point(decoder, z, enc)
        drag.append(1000 * (time.perf_counter() - t))
    figures = {"points": n, "encode_seconds": round(encode_s, 2), "new_map_gui_ms": round(new_map_ms, 1),
               "pan_frame_p95_ms": round(float(np.percentile(frames, 95)), 1),
               "hover_ms_median": round(float(np.median(hover)), 3),
               "drag_decode_ms_median": round(float(np.median(drag)), 3), "rss_mb": round(rss_mb()),
               "rss_anon_mb": round(rss_mb("RssAnon")), "rss_file_mb": round(rss_mb("RssFile")),
               "density_shown": density_shown}
    widget.wait_for_workers()
    widget.close()
    widget.deleteLater()
    wait_ms(app, 50)
    return figures


def write_folder(root: Path, count: int) -> None:
    from PIL import Image

    from vaegui.core.dataset_loader import make_shapes

    data = make_shapes(count, 1, image_size=28, seed=1)
    images, labels = data.train_images.numpy()[:, 0], data.train_labels.numpy()
    for k, name in enumerate(data.class_names):
        (root / name).mkdir(parents=True, exist_ok=True)
    for i, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(image, "L").save(root / data.class_names[label] / f"{i:06d}.png", compress_level=1)


LOAD_SCRIPT = """
import json, sys, time
from vaegui.core.dataset_loader import load_folder
t = time.perf_counter()
data = load_folder(sys.argv[1], image_size=28)
seconds = time.perf_counter() - t
# Touch every image once, as an epoch of training does (the cached pages then count in RSS
# until the kernel wants them back), a chunk at a time as training does: a sum of the whole
# uint8 tensor would first make an int64 copy of it (564 MB at 90,000 images).
total = sum(int(chunk.sum()) for images in (data.train_images, data.test_images) for chunk in images.split(4096))
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
print(json.dumps({"seconds": seconds, "images": len(data.train_images) + len(data.test_images),
                  "rss_mb": int(status["VmRSS"].split()[0]) / 1024, "peak_rss_mb": int(status["VmHWM"].split()[0]) / 1024}))
"""


def measure_folder(count: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="vaegui-folder-") as tmp:
        root = Path(tmp) / "pics"
        t = time.perf_counter()
        write_folder(root, count)
        print(f"wrote {count:,} PNGs in {time.perf_counter() - t:.0f} s", flush=True)
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache")}
        loads = []
        for _ in range(2):
            out = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, str(root)], env=env, check=True,
                                 capture_output=True, text=True).stdout
            loads.append(json.loads(out.strip().splitlines()[-1]))
    first, cached = loads
    return {"folder_images": first["images"], "folder_first_load_s": round(first["seconds"], 2),
            "folder_cached_load_s": round(cached["seconds"], 2),
            "folder_first_peak_rss_mb": round(first["peak_rss_mb"]),
            "folder_cached_peak_rss_mb": round(cached["peak_rss_mb"]),
            "folder_cached_rss_after_touching_all_mb": round(cached["rss_mb"])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--folder-images", type=int, default=100_000, help="0 skips the folder")
    args = ap.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6.QtWidgets import QApplication

    from vaegui.core.config import ModelConfig
    from vaegui.core.dataset_loader import make_shapes
    from vaegui.core.model import VAE

    app = QApplication.instance() or QApplication([])
    load_start = load_average()
    print(f"load average at the start: {load_start}", flush=True)
    t = time.perf_counter()
    data = make_shapes(1, args.points, image_size=28)
    print(f"generated {args.points:,} shapes in {time.perf_counter() - t:.0f} s (rendered into the cache the "
          "first time, then read from it)", flush=True)
    model = VAE(ModelConfig(family="mlp", latent_dim=2), data.image_shape)
    rng = np.random.default_rng(0)
    print(f"RSS with the images, before any map: {rss_mb():.0f} MB (anonymous {rss_mb('RssAnon'):.0f}, "
          f"file-backed {rss_mb('RssFile'):.0f})", flush=True)
    small = measure_map(app, data, model, args.small, rng)
    print(f"{args.small:,} points: {small}", flush=True)
    big = measure_map(app, data, model, args.points, rng)
    print(f"{args.points:,} points: {big}", flush=True)
    # After the maps: the bare loop's own buffers are no part of the app's RSS.
    reference = encode_ratio(model, data.test_images[:min(ENCODE_REF, args.points)])
    print(f"encoding against a bare torch loop: {reference}", flush=True)
    for key, target in TARGETS.items():
        print(f"  {key}: {big[key]} (target {target:g}, ratio {big[key] / target:.2f}; "
              f"at {args.small:,} points {small[key]})")
    met = all(big[k] <= v for k, v in TARGETS.items())
    print(f"targets at {args.points:,} points: {'met' if met else 'NOT met'}")
    result = {**big, **reference, "small": small, "load_average_start": load_start,
              "ratios": {k: round(big[k] / v, 3) for k, v in TARGETS.items()}}
    del data, model  # the folder's loads run in processes of their own
    if args.folder_images:
        folder = measure_folder(args.folder_images)
        print(f"folder: {folder}")
        result.update(folder)
    result["load_average_end"] = load_average()
    print(f"load average at the end: {result['load_average_end']}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
