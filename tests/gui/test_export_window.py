"""Export from the window: every plot as PNG (the chosen scale, not blank), SVG (XML with the
map's points and the axes as vector elements) and PDF (a page of vector paths); image views as
enlarged PNGs, the animation as a GIF, the data as CSV and NPZ that read back to the app's
numbers, and the bundle. Right-click > Export opens our dialog; a failed write names the file."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QFileDialog, QInputDialog

from vaegui.core import explorer_images, export
from vaegui.core.errors import CheckpointError
from vaegui.core.run_reader import RunReader
from vaegui.core import checkpoint
from vaegui.gui.export.plot_export import plot_size
from vaegui.gui.main_window import MainWindow

TIMEOUT = 30_000
REPO = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, train_shapes):
    return train_shapes(tmp_path_factory.mktemp("run") / "shapes")


@pytest.fixture
def window(open_in_window, run_dir):
    window = open_in_window(run_dir, (1400, 900))
    m = window.explorer
    m.pick_plane(m.encoded.xy[3])
    m.set_endpoint("a", m.encoded.latents[0])
    m.set_endpoint("b", m.encoded.latents[1])
    return window


# ---- what a valid file looks like ------------------------------------------------------------------
def check_png(path: Path, size: tuple[int, int]) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == size
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 10, f"{path.name} is blank"
    return pixels


def svg_elements(path: Path) -> dict[str, int]:
    root = ET.parse(path).getroot()  # parses as XML
    assert root.tag == SVG + "svg"
    counts: dict[str, int] = {}
    for element in root.iter():
        tag = element.tag.removeprefix(SVG)
        counts[tag] = counts.get(tag, 0) + 1
    return counts


def svg_texts(path: Path) -> list[str]:
    return [("".join(e.itertext())).strip() for e in ET.parse(path).getroot().iter(SVG + "text")]


def pdf_page_streams(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data.startswith(b"%PDF-")
    assert re.search(rb"/Type\s*/Page\b", data), "no page"
    streams = []
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        raw = match.group(1)
        try:
            streams.append(zlib.decompress(raw))
        except zlib.error:
            streams.append(raw)
    return streams


def check_vector_pdf(path: Path) -> None:
    content = b"\n".join(pdf_page_streams(path))
    # Path construction and painting operators: moveto/lineto/curveto, then fill or stroke.
    assert len(re.findall(rb"\s[ml]\n", content)) > 50 and re.search(rb"\s(f|f\*|S)\n", content), \
        "no vector paths in the page"


def shown_points(window) -> int:
    """Points of the map inside its view (the ones a figure draws)."""
    (x0, x1), (y0, y1) = window.latent_map.plot_widget().getPlotItem().getViewBox().viewRange()
    xy = window.explorer.encoded.xy
    return int(((xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)).sum())


# ---- tests ---------------------------------------------------------------------------------------
def test_plots_export_as_png_svg_and_pdf(window, tmp_path):
    ex = window.exporter
    assert {t.name for t in ex.plots} == {"latent_map", "losses", "kl_per_dimension"}
    for target in ex.plots:
        size = plot_size(target.plot)
        assert ex.export_plot(target, str(tmp_path / f"{target.name}.png"), scale=2.0)
        check_png(tmp_path / f"{target.name}.png", (round(2 * size.width()), round(2 * size.height())))
        assert ex.export_plot(target, str(tmp_path / f"{target.name}.svg"))
        counts = svg_elements(tmp_path / f"{target.name}.svg")
        assert counts.get("path", 0) + counts.get("polyline", 0) > 5  # axes, ticks, curves or bars
        assert counts.get("image", 0) == 0, "a plot exported as a bitmap"
        assert ex.export_plot(target, str(tmp_path / f"{target.name}.pdf"))
        check_vector_pdf(tmp_path / f"{target.name}.pdf")
    # The map: one circle per point in view, and its axes' tick labels as text.
    assert svg_elements(tmp_path / "latent_map.svg")["circle"] == shown_points(window) > 100
    texts = svg_texts(tmp_path / "latent_map.svg")
    assert any(t.startswith("z1") for t in texts) and any(t.startswith("z2") for t in texts)
    assert sum(bool(re.fullmatch(r"−?-?[\d.]+", t)) for t in texts) >= 6  # tick labels
    # Scale 1 is the on-screen size.
    size = plot_size(ex.plots[0].plot)
    ex.export_plot(ex.plots[0], str(tmp_path / "one.png"), scale=1.0)
    check_png(tmp_path / "one.png", (round(size.width()), round(size.height())))


def test_images_gif_and_data_export(window, qtbot, tmp_path):
    ex, m = window.exporter, window.explorer
    qtbot.waitUntil(lambda: window.point_view.canvas.array() is not None, timeout=TIMEOUT)
    shown = window.point_view.canvas.array()
    assert ex.export_image("point", str(tmp_path / "point.png"), factor=5)
    pixels = check_png(tmp_path / "point.png", (80, 80))
    # Integer upscaling without blur: every 5 x 5 block is one pixel of the decoded image.
    expected = np.round(np.clip(shown[0], 0, 1) * 255).astype(np.uint8).repeat(5, 0).repeat(5, 1)
    np.testing.assert_array_equal(pixels[..., 0], expected)
    # A view that shows nothing (never shown: it decodes only when shown) still exports.
    window.samples_view.samples_canvas.set_image(None, "No model yet")
    assert ex.export_image("samples", str(tmp_path / "samples.png"), factor=1)
    decoder = explorer_images.decoder_of(m)
    samples = explorer_images.samples(m, decoder).array
    np.testing.assert_array_equal(check_png(tmp_path / "samples.png", samples.shape[:0:-1])[..., 0],
                                  np.round(samples[0] * 255).astype(np.uint8))

    # The traversal keeps its labels: a figure, in any of the plots' formats.
    assert ex.export_image("traversal", str(tmp_path / "traversal.svg"), factor=4)  # room for every label
    rows, columns = explorer_images.traversal_labels(m, *[m.traversal_plan()[k] for k in (0, 2)])
    assert set(rows) | set(columns) <= set(svg_texts(tmp_path / "traversal.svg"))
    assert ex.export_image("traversal", str(tmp_path / "traversal.pdf"), factor=2)
    assert (tmp_path / "traversal.pdf").read_bytes().startswith(b"%PDF-")

    assert ex.export_gif(str(tmp_path / "path.gif"), factor=2)
    frames = explorer_images.animation_frames(m, decoder)
    distinct = 1 + sum(not np.array_equal(*pair) for pair in zip(
        *(np.round(np.clip(f, 0, 1) * 255).astype(np.uint8) for f in (frames[1:], frames[:-1]))))
    with Image.open(tmp_path / "path.gif") as gif:
        assert gif.format == "GIF" and gif.size == (32, 32)
        # One frame per distinct decoded frame (the encoder merges a frame equal to the one
        # before into it, adding its time): the animation lasts its frames' time.
        assert gif.n_frames == distinct and distinct > len(frames) // 2
        durations = []
        for k in range(gif.n_frames):
            gif.seek(k)
            durations.append(gif.info["duration"])
    assert sum(durations) == len(frames) * export.gif_frame_ms(explorer_images.frame_ms(m))

    assert ex.export_losses(str(tmp_path / "losses.csv"))
    with open(tmp_path / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    history = window.run.history
    assert len(rows) == len(history.steps) > 0
    np.testing.assert_array_equal([float(r["neg_elbo"]) for r in rows], history.losses[:, 2])
    np.testing.assert_array_equal([int(r["step"]) for r in rows], history.steps)

    assert ex.export_latents(str(tmp_path / "latents.npz"))
    assert ex.export_latents(str(tmp_path / "latents.csv"))
    enc = m.encoded
    with np.load(tmp_path / "latents.npz") as npz:
        np.testing.assert_array_equal(npz["index"], np.arange(len(enc.latents)))
        np.testing.assert_array_equal(npz["z"], enc.latents)
        np.testing.assert_array_equal(npz["label"], enc.labels)
        np.testing.assert_array_equal(np.stack([npz["x"], npz["y"]], 1), enc.xy)
    with open(tmp_path / "latents.csv") as f:
        header, *rows = list(csv.reader(f))
    assert header == ["index", "label", "z_1", "z_2", "x", "y", "projection"]
    assert {r[-1] for r in rows} == {"pca"}  # L = 2: the latent plane, drawn by the identity PCA
    table = np.array([r[:-1] for r in rows], dtype=np.float64)
    np.testing.assert_array_equal(table[:, 0], np.arange(len(enc.latents)))
    np.testing.assert_array_equal(table[:, 1], enc.labels)
    np.testing.assert_array_equal(table[:, 2:4], enc.latents.astype(np.float64))
    np.testing.assert_array_equal(table[:, 4:], enc.xy.astype(np.float64))
    # The map shows these points (L = 2: its plane is the latent plane).
    np.testing.assert_allclose(np.stack(window.latent_map.scatter.positions(), 1), enc.xy, rtol=1e-6)


def test_bundle_from_the_window(window, qtbot, tmp_path):
    folder = tmp_path / "bundle"
    with qtbot.waitSignal(window.exporter.bundleWritten, timeout=TIMEOUT):
        assert window.exporter.export_bundle(str(folder))
    names = {p.name for p in folder.iterdir()}
    for stem in ("latent_map", "losses", "kl_per_dimension", "manifold_overlay"):
        assert {f"{stem}.png", f"{stem}.svg", f"{stem}.pdf"} <= names
    assert {"point.png", "interpolation.png", "traversal.png", "manifold_grid.png", "samples.png",
            "reconstructions.png", "interpolation.gif", "losses.csv", "test_losses.csv", "latents.csv",
            "latents.npz", "settings.json", "checkpoint.pt", "README.md"} <= names
    readme = (folder / "README.md").read_text()
    assert all(f"`{n}`" in readme for n in names - {"README.md"})
    # The traversal as a figure with its labels: each row's dimension and KL, the columns' offsets.
    assert {"traversal.svg", "traversal.pdf"} <= names
    texts = svg_texts(folder / "traversal.svg")
    assert any(" KL " in t for t in texts) and any(t.startswith("\u2212") for t in texts)
    assert not window.explorer.grid.overlay  # the overlay figure put the map back as it was
    assert not [n for n in names if n.endswith(".tmp")]


def test_right_click_export_and_the_remembered_folder(window, tmp_path, monkeypatch):
    target = tmp_path / "picked" / "map.png"
    target.parent.mkdir()
    asked = []

    def save_name(parent, caption, start, filters):
        asked.append(start)
        return str(target), "PNG image (*.png)"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_name)
    monkeypatch.setattr(QInputDialog, "getDouble", lambda *a, **k: (1.5, True))
    plot = window.latent_map.plot_widget()
    plot.scene().contextMenu[0].trigger()  # pyqtgraph's right-click "Export..."
    size = plot_size(plot.getPlotItem())
    check_png(target, (round(1.5 * size.width()), round(1.5 * size.height())))
    window.exporter.gif_dialog()  # the next dialog starts where the last export went
    assert Path(asked[-1]).parent == target.parent


def test_a_failed_write_names_the_file_and_leaves_nothing(window, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    missing = out / "no-such-folder" / "map.pdf"
    assert not window.exporter.export_plot("latent_map", str(missing))
    assert str(missing) in window.last_error and "No such file" in window.last_error
    blocked = out / "file"
    blocked.write_text("")
    assert not window.exporter.export_bundle(str(blocked))
    assert str(blocked) in window.last_error
    window.point_view.nearest_canvas.set_image(None, "")
    assert not window.exporter.export_image("nearest_image", str(out / "x.png"))
    assert "nothing to export" in window.last_error
    assert sorted(p.name for p in out.iterdir()) == ["file"]


def test_right_click_on_an_image_view_exports_it_and_its_animation(window, qtbot, tmp_path, monkeypatch):
    qtbot.waitUntil(lambda: window.interpolation_view.strip_canvas.array() is not None, timeout=TIMEOUT)
    names = iter([tmp_path / "strip", tmp_path / "anim"])  # no suffix: the format's is added
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(next(names)), ""))
    monkeypatch.setattr(QInputDialog, "getInt", lambda *a, **k: (3, True))
    actions = {a.text(): a for a in window.interpolation_view.strip_canvas.actions()}
    actions["Export image…"].trigger()
    strip = window.interpolation_view.strip_canvas.array()
    check_png(tmp_path / "strip.png", (3 * strip.shape[2], 3 * strip.shape[1]))
    actions["Export animation as GIF…"].trigger()
    with Image.open(tmp_path / "anim.gif") as gif:
        assert gif.n_frames > 1


def test_a_window_never_shown_and_without_a_model_exports_or_says_why(qtbot, settings, tmp_path, monkeypatch):
    window = MainWindow(settings)  # never shown: no panel was ever laid out
    qtbot.addWidget(window)
    ex = window.exporter
    # Nothing to export: said at once, without asking for a file name first.
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: pytest.fail("asked for a file"))
    ex.image_dialog(ex._target("samples"))
    assert window.last_error == f"Nothing to export from Samples: {explorer_images.NO_MODEL}"
    ex.gif_dialog()
    assert window.last_error.startswith("Nothing to export as an animation: no model")
    ex.data_dialog("latents.csv", "CSV (*.csv)")
    assert window.last_error.startswith("Nothing to export as latents.csv: no latent map yet")
    for target in ex.plots:  # empty plots still export: axes (and a legend) at a default size
        assert ex.export_plot(target, str(tmp_path / f"{target.name}.png"), scale=1.0), window.last_error
        with Image.open(tmp_path / f"{target.name}.png") as image:
            assert min(image.size) > 100 and np.asarray(image.convert("L")).std() > 1
        assert ex.export_plot(target, str(tmp_path / f"{target.name}.svg"))
        counts = svg_elements(tmp_path / f"{target.name}.svg")
        assert counts.get("path", 0) + counts.get("polyline", 0) > 2 and counts.get("text", 0) > 2  # axes
        assert ex.export_plot(target, str(tmp_path / f"{target.name}.pdf"))
        assert (tmp_path / f"{target.name}.pdf").read_bytes().startswith(b"%PDF")
    assert not ex.export_image("samples", str(tmp_path / "samples.png"))
    assert str(tmp_path / "samples.png") in window.last_error and "no model" in window.last_error.lower()
    assert not ex.export_latents(str(tmp_path / "latents.csv"))
    assert "no latent map yet" in window.last_error
    assert not ex.export_losses(str(tmp_path / "losses.csv")) and "no training steps" in window.last_error
    assert not ex.export_gif(str(tmp_path / "a.gif")) and "no model" in window.last_error

    folder = tmp_path / "bundle"
    with qtbot.waitSignal(ex.bundleWritten, timeout=TIMEOUT):
        assert ex.export_bundle(str(folder))
    names = {p.name for p in folder.iterdir()}
    assert {"latent_map.pdf", "losses.svg", "kl_per_dimension.png", "README.md"} <= names
    readme = (folder / "README.md").read_text()
    not_exported = readme.split("Not exported:")[1]
    for name in ("samples.png", "interpolation.gif", "latents.csv", "losses.csv", "settings.json",
                 "checkpoint.pt", "manifold_overlay"):
        assert name in not_exported and name not in names  # each with its reason
    assert "- checkpoint.pt: no model" in not_exported


def test_a_bundle_of_a_past_epoch_says_so_and_holds_that_epochs_codes(window, qtbot, tmp_path, run_dir):
    m = window.explorer
    m.show_history(1.0)  # the slider under the map, at epoch 1
    assert m.history_position == 1.0
    folder = tmp_path / "past"
    with qtbot.waitSignal(window.exporter.bundleWritten, timeout=TIMEOUT):
        assert window.exporter.export_bundle(str(folder))
    assert "show epoch 1 of the run's map history" in (folder / "README.md").read_text()
    with np.load(folder / "latents.npz") as npz:
        np.testing.assert_array_equal(npz["z"], RunReader(run_dir).map_means(1))
        assert int(npz["step"]) == m.encoded.step


HIGH_DPI_SCRIPT = """
import json, sys
import numpy as np
from PySide6.QtWidgets import QApplication
from vaegui.core.explorer import ExplorerModel
from vaegui.core.latent import EncodedSet, Projection
from vaegui.gui.explorer.latent_map import LatentMap
from vaegui.gui.export.plot_export import default_scale, plot_size, screen_ratio, write_plot

app = QApplication([])
z = np.random.default_rng(0).standard_normal((300, 2)).astype(np.float32)
p = Projection.fit(z)
m = ExplorerModel()
m.set_encoded(EncodedSet(z, p.transform(z), p, np.arange(300) % 3, ("a", "b", "c"),
                         np.zeros((300, 1, 4, 4), np.uint8)))
view = LatentMap(m)
view.resize(500, 420)
view.show()
app.processEvents()
item = view.plot_widget().getPlotItem()
write_plot(item, sys.argv[1] + "/default.png", scale=default_scale(view.plot_widget()))
write_plot(item, sys.argv[1] + "/fixed.png", scale=3.0)
size = plot_size(item)
print(json.dumps({"ratio": screen_ratio(view.plot_widget()), "size": [size.width(), size.height()]}))
"""


def test_png_default_is_twice_the_screen_pixels_and_high_dpi_draws_the_same_figure(tmp_path):
    """A screen of pixel ratio 2 (QT_SCALE_FACTOR, in a process of its own) exports the same
    pixels at the same scale, and by default twice its own pixels: four times the logical size."""
    pixels = {}
    for ratio in (1, 2):
        out = tmp_path / str(ratio)
        out.mkdir()
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QT_SCALE_FACTOR": str(ratio),
               "PYTHONPATH": str(REPO)}
        done = subprocess.run([sys.executable, "-c", HIGH_DPI_SCRIPT, str(out)], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        info = json.loads(done.stdout.splitlines()[-1])
        assert info["ratio"] == ratio
        w, h = info["size"]
        check_png(out / "default.png", (round(2 * ratio * w), round(2 * ratio * h)))
        pixels[ratio] = check_png(out / "fixed.png", (round(3 * w), round(3 * h))).astype(int)
    assert np.abs(pixels[1] - pixels[2]).mean() < 1.0  # text, pens and points as at ratio 1


def test_file_export_lists_every_plot_and_image_view(window):
    texts = [a.text() for a in window.menu_actions.export_menu.actions()]
    ex = window.exporter
    assert {t.name for t in ex.images} == {"point", "nearest_image", "manifold_grid", "reconstructions",
                                           "samples", "interpolation", "interpolation_frame", "traversal"}
    for target in ex.plots:
        assert f"{target.title} (PNG, SVG, PDF)…" in texts
    for target in ex.images:
        assert f"{target.title} (PNG)…" in texts
    assert {"Interpolation animation (GIF)…", "Loss history (CSV)…", "Latent codes (CSV or NPZ)…"} <= set(texts)


def test_a_bundle_whose_checkpoint_cannot_be_saved_says_why(window, qtbot, tmp_path, monkeypatch):
    def refuse(path, state):
        raise CheckpointError(path, "cannot write: No space left on device")
    monkeypatch.setattr(checkpoint, "save_checkpoint", refuse)  # the worker imports it from there
    folder = tmp_path / "bundle"
    with qtbot.waitSignal(window.exporter.bundleWritten, timeout=TIMEOUT):
        assert window.exporter.export_bundle(str(folder))
    assert "- checkpoint.pt: not saved: " in (folder / "README.md").read_text()
    assert "No space left on device" in window.last_error and not (folder / "checkpoint.pt").exists()


def test_the_map_coloured_by_a_factor_exports_its_colour_bar(window, tmp_path):
    window.latent_map.colour_combo.setCurrentText("scale")
    assert window.exporter.export_plot("latent_map", str(tmp_path / "map.svg"))
    assert "scale" in svg_texts(tmp_path / "map.svg")  # the colour bar's axis label
    assert svg_elements(tmp_path / "map.svg").get("image", 0) == 1  # its gradient; the points stay circles
    assert svg_elements(tmp_path / "map.svg")["circle"] == shown_points(window)
