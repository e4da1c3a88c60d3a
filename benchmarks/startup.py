"""Cold start of the app: from `python main.py` to a painted window, and to Start enabled.

Each repeat launches the app as a user does, in a fresh process with empty settings, and reads
the times it writes when VAEGUI_STARTUP_TIMES names a file (see vaegui/gui/app.py). For scale,
it also times what the window used to wait for before it was painted: importing torch and
torchvision. Repeats alternate the two; figures are medians.

    python benchmarks/startup.py [--repeats 5]

Targets (issue 11): window painted within 1.0 s of process start; ready to train (Start enabled)
within 4 s.
Uses the platform of $QT_QPA_PLATFORM, else the display, else offscreen.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAINTED_TARGET_S, READY_TARGET_S = 1.0, 4.0
TIMEOUT_S = 120


def launch_once(home: Path) -> dict[str, float]:
    times = home / "times.json"
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
           "XDG_CACHE_HOME": str(home / "cache"), "VAEGUI_STARTUP_TIMES": str(times)}
    if not (env.get("QT_QPA_PLATFORM") or env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        env["QT_QPA_PLATFORM"] = "offscreen"
    started = time.time()
    proc = subprocess.Popen([sys.executable, str(REPO / "main.py"), "--dataset", "shapes"], env=env,
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while time.time() - started < TIMEOUT_S:
            if times.exists():
                try:
                    got = json.loads(times.read_text())
                except ValueError:  # being written
                    got = {}
                if {"painted", "ready"} <= set(got):
                    return {k: v - started for k, v in got.items()}
            if proc.poll() is not None:
                raise SystemExit(f"the app exited with {proc.returncode}: {proc.stderr.read()}")
            time.sleep(0.01)
        raise SystemExit(f"the app was not ready within {TIMEOUT_S} s")
    finally:
        proc.kill()
        proc.wait()


def import_torch_once() -> float:
    started = time.time()
    subprocess.run([sys.executable, "-c", "import torch, torchvision"], check=True)
    return time.time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    painted, ready, imports = [], [], []
    for k in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            t = launch_once(Path(tmp))
        painted.append(t["painted"])
        ready.append(t["ready"])
        imports.append(import_torch_once())
        print(f"repeat {k + 1}: painted {t['painted']:.2f} s, ready {t['ready']:.2f} s; "
              f"python -c 'import torch, torchvision' {imports[-1]:.2f} s", flush=True)
    result = {
        "painted_s": statistics.median(painted), "ready_s": statistics.median(ready),
        "import_torch_torchvision_s": statistics.median(imports),
        "painted_vs_target": statistics.median(painted) / PAINTED_TARGET_S,
        "ready_vs_target": statistics.median(ready) / READY_TARGET_S,
        "repeats": args.repeats,
    }
    print(f"median: window painted {result['painted_s']:.2f} s (target {PAINTED_TARGET_S} s), ready to "
          f"train {result['ready_s']:.2f} s (target {READY_TARGET_S} s); importing torch and "
          f"torchvision alone takes {result['import_torch_torchvision_s']:.2f} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
