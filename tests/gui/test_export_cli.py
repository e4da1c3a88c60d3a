"""`vaegui export CKPT --out DIR`: the bundle from a checkpoint of `vaegui train`, written in a
process without a display, and bad input answered in one line with exit code 2."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vaegui import cli
from vaegui.core.explorer import ExplorerModel
from vaegui.core.explorer_images import GIF_FRAMES, animation_positions, frame_ms
from vaegui.core.export import gif_frame_ms
from vaegui.core.loss_history import History
from vaegui.cli.export import FIGURE_SIZES
from vaegui.cli.options import use_offscreen_qt

REPO = Path(__file__).resolve().parents[2]
# What the issue lists, beside every plot in every format.
BUNDLE = {"manifold_grid.png", "samples.png", "reconstructions.png", "traversal.png", "point.png",
          "interpolation.png", "interpolation.gif", "latents.csv", "latents.npz", "losses.csv",
          "test_losses.csv", "settings.json", "checkpoint.pt", "README.md"}
PLOTS = ("latent_map", "manifold_overlay", "losses", "kl_per_dimension")
FIGURES = ("traversal",)  # decoded grids with their labels: a figure in every format


def vaegui(*args: str, **env) -> subprocess.CompletedProcess:
    """The command line in a process of its own, with no display and no Qt platform chosen."""
    environ = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    environ.update(PYTHONPATH=str(REPO), **env)
    return subprocess.run([sys.executable, "-m", "vaegui", *args], env=environ, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("train") / "shapes"
    # `vaegui train --dataset shapes --epochs 1`, made small (the export does not care).
    done = vaegui("train", "--dataset", "shapes", "--epochs", "1", "--image-size", "16", "--hidden", "16",
                  "--train-limit", "512", "--test-limit", "200", "--device", "cpu", "--no-progress",
                  "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out / "checkpoint.pt"


def test_export_writes_the_bundle_without_a_display(checkpoint, tmp_path):
    out = tmp_path / "bundle"
    done = vaegui("export", str(checkpoint), "--out", str(out), "--dpi", "144")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    names = {p.name for p in out.iterdir()}
    assert names == set(summary["files"]) and summary["missing"] == []
    assert BUNDLE | {f"{stem}.{fmt}" for stem in PLOTS + FIGURES for fmt in ("png", "svg", "pdf")} == names
    texts = ["".join(e.itertext()) for e in ET.parse(out / "traversal.svg").getroot().iter("{http://www.w3.org/2000/svg}text")]
    assert any(t.startswith("z1") or " KL " in t for t in texts) and "\u22123.0" in texts and "+3.0" in texts
    readme = (out / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in names - {"README.md"})

    for stem in PLOTS:  # --dpi 144: one and a half times the figure's logical size
        w, h = FIGURE_SIZES["latent_map" if stem == "manifold_overlay" else stem]
        with Image.open(out / f"{stem}.png") as png:
            assert png.size == (round(1.5 * w), round(1.5 * h))
            assert np.asarray(png.convert("L")).std() > 10
        root = ET.parse(out / f"{stem}.svg").getroot()
        assert root.tag.endswith("svg") and len(list(root.iter("{http://www.w3.org/2000/svg}text"))) > 4
        assert (out / f"{stem}.pdf").read_bytes().startswith(b"%PDF-")
    circles = list(ET.parse(out / "latent_map.svg").getroot().iter("{http://www.w3.org/2000/svg}circle"))
    assert len(circles) > 100  # the map's points, one vector circle each
    # The animation: one pass A to B and back (the app's default "bounce"), a GIF frame per
    # decoded frame, but for frames equal to the one before, merged into it with their time.
    frames = len(animation_positions(ExplorerModel()))
    assert frames == 2 * GIF_FRAMES - 2
    with Image.open(out / "interpolation.gif") as gif:
        assert gif.is_animated and frames // 2 < gif.n_frames <= frames
        durations = []
        for k in range(gif.n_frames):
            gif.seek(k)
            durations.append(gif.info["duration"])
    assert sum(durations) == frames * gif_frame_ms(frame_ms(ExplorerModel()))
    with Image.open(out / "samples.png") as png:
        assert min(png.size) >= 512  # enlarged by a whole factor toward 1024 pixels

    # The data reads back to the checkpoint's own numbers.
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    history = History.from_dict(state["history"])
    with open(out / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    np.testing.assert_array_equal([int(r["step"]) for r in rows], history.steps)
    np.testing.assert_array_equal([[float(r[k]) for k in ("recon", "kl", "neg_elbo")] for r in rows],
                                  history.losses)
    with np.load(out / "latents.npz") as npz:
        header, table = read_latents_csv(out / "latents.csv")
        assert len(npz["z"]) == 200 and npz["z"].shape[1] == state["config"]["model"]["latent_dim"]
        assert header[-3:] == ["x", "y", "projection"] and set(table[:, -1]) == {"pca"} == {str(npz["projection"])}
        np.testing.assert_array_equal(table[:, 2:-3].astype(np.float64), npz["z"].astype(np.float64))
        np.testing.assert_array_equal(table[:, -3].astype(np.float64), npz["x"].astype(np.float64))
    assert json.loads((out / "settings.json").read_text()) == state["config"]
    assert (out / "checkpoint.pt").read_bytes() == checkpoint.read_bytes()


def read_latents_csv(path: Path) -> tuple[list[str], np.ndarray]:
    with open(path) as f:
        rows = list(csv.reader(f))
    return rows[0], np.array(rows[1:])


def test_export_of_a_run_folder_in_umap_writes_its_cached_layout(tmp_path):
    """`--projection umap` on a run folder: the latents carry the UMAP layout that the run
    folder's cache then holds (the app opens the run with it), and the README says so."""
    from vaegui.core.layout_cache import load_layout

    run = tmp_path / "run"
    done = vaegui("train", "--dataset", "shapes", "--epochs", "1", "--image-size", "16", "--hidden", "16",
                  "--latent-dim", "4", "--train-limit", "256", "--test-limit", "150", "--device", "cpu",
                  "--no-progress", "--out", str(run))
    assert done.returncode == 0, done.stderr
    out = tmp_path / "bundle"
    done = vaegui("export", str(run), "--out", str(out), "--format", "png", "--projection", "umap")
    assert done.returncode == 0, done.stderr
    header, table = read_latents_csv(out / "latents.csv")
    with np.load(out / "latents.npz") as npz:
        z, projection = npz["z"], str(npz["projection"])
        assert "projection_components" not in npz.files  # no matrix makes a UMAP plane
    layout = load_layout(run, 1, "umap", z)
    assert projection == "umap" and set(table[:, -1]) == {"umap"} and layout is not None
    np.testing.assert_array_equal(table[:, -3:-1].astype(np.float32), layout.xy)
    assert "UMAP of the latent means (n_neighbors 15, min_dist 0.1)" in (out / "README.md").read_text()


def test_bad_input_is_one_line_and_exit_code_2(checkpoint, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("")
    cases = {
        (str(tmp_path / "nope.pt"), "--out", str(tmp_path / "o")): f"vaegui: error: checkpoint {tmp_path / 'nope.pt'}: no such file",
        (str(corrupt), "--out", str(tmp_path / "o")): f"vaegui: error: checkpoint {corrupt}: corrupt",
        (str(checkpoint), "--out", str(tmp_path / "o"), "--format", "png,gif"): "vaegui export: error: argument --format: 'png,gif'",
        (str(checkpoint), "--out", str(in_the_way / "sub")): f"vaegui: error: export {in_the_way / 'sub'}: cannot create the folder",
        (str(checkpoint), "--out", str(tmp_path / "o"), "--dpi", "5"): "vaegui export: error: argument --dpi: 5 must be at least",
        (str(checkpoint), "--out", str(tmp_path / "o"), "--projection", "umapp"):
            "vaegui export: error: argument --projection: projection 'umapp' is not one of pca, umap, tsne, axes:I,J",
        (str(checkpoint), "--out", str(tmp_path / "o"), "--projection", "axes:1,3"):
            "vaegui: error: projection axes:1,3: the model has 2 latent dimensions",
    }
    for args, start in cases.items():
        try:
            code = cli.main(["export", *args])
        except SystemExit as exc:  # argparse's own exit, for a bad option
            code = exc.code
        err = capsys.readouterr().err
        assert code == 2 and err.startswith(start) and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


def test_qt_runs_offscreen_unless_a_display_can_take_the_platform_asked_for():
    def chosen(platform="linux", **env):
        use_offscreen_qt(env, platform)
        return env.get("QT_QPA_PLATFORM")
    assert chosen() == "offscreen"  # a server
    assert chosen(DISPLAY=":0") == "offscreen"  # the same figures with a display
    assert chosen(QT_QPA_PLATFORM="xcb") == "offscreen"  # xcb without a display would abort
    assert chosen(QT_QPA_PLATFORM="xcb", DISPLAY=":0") == "xcb"  # the user's choice, where it works
    assert chosen(QT_QPA_PLATFORM="minimal") == "minimal"
    assert chosen("darwin", QT_QPA_PLATFORM="cocoa") == "cocoa"


# SIGTERM lands while the bundle is half written (sent from inside, at a known point: as the
# settings are written, after the figures and images).
TERMINATED_EXPORT = """
import os, signal, sys
from vaegui.core import export
write_json = export.write_json
def terminated_here(path, value):
    os.kill(os.getpid(), signal.SIGTERM)
    return write_json(path, value)
export.write_json = terminated_here
from vaegui.cli import main
sys.argv = ["vaegui", *sys.argv[1:]]
main()
"""


def test_sigterm_during_export_leaves_no_partial_bundle(checkpoint, tmp_path):
    out = tmp_path / "bundle"
    environ = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    done = subprocess.run([sys.executable, "-c", TERMINATED_EXPORT, "export", str(checkpoint), "--out", str(out),
                           "--format", "png"], env={**environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                          text=True, timeout=600)
    assert (done.returncode, done.stderr, done.stdout) == (143, "vaegui: terminated\n", "")
    assert not out.exists() and list(tmp_path.iterdir()) == []  # nothing left, no .tmp either


def _latent_7(run):
    info = json.loads((run / "run.json").read_text())
    info["config"]["model"]["latent_dim"] = 7
    (run / "run.json").write_text(json.dumps(info))


def _infinite_steps(run):
    info = json.loads((run / "run.json").read_text())
    info["steps_per_epoch"] = float("inf")  # json writes Infinity
    (run / "run.json").write_text(json.dumps(info))


def _fifo_checkpoint(run):
    (run / "checkpoint.pt").unlink()
    os.mkfifo(run / "checkpoint.pt")


@pytest.mark.parametrize("damage, needle", [
    (lambda run: (run / "run.json").write_text("[" * 200_000), "run.json cannot be read (nested"),
    (_latent_7, "checkpoint.pt: model latent_dim 2 disagrees with run.json's 7"),
    (_infinite_steps, "run.json: steps_per_epoch"),
    (_fifo_checkpoint, "checkpoint.pt is not a regular file"),
])
def test_export_of_a_crafted_run_folder_is_one_line_and_exit_2(checkpoint, tmp_path, capsys, damage, needle):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(checkpoint.parent, run)
    damage(run)
    assert cli.main(["export", str(run), "--out", str(tmp_path / "bundle")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and str(run) in err[0], err
    assert not (tmp_path / "bundle").exists()
