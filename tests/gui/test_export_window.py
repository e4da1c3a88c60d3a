"""Export from the window: every plot as PNG (the chosen scale, not blank), SVG (XML with the
map's points and the axes as vector elements) and PDF (a page of vector paths); image views as
enlarged PNGs, the animation as a GIF, the data as CSV and NPZ that read back to the app's
numbers, and the bundle. Right-click > Export opens our dialog; a failed write names the file."""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QFileDialog, QInputDialog

from vaegui import cli
from vaegui.core import explorer_images
from vaegui.gui.export.plot_export import plot_size
from vaegui.gui.main_window import MainWindow

TIMEOUT = 30_000
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "shapes"
    assert cli.main(["train", "--dataset", "shapes", "--epochs", "1", "--image-size", "16", "--hidden", "16",
                     "--train-limit", "512", "--test-limit", "128", "--device", "cpu", "--no-progress",
                     "--out", str(out)]) == 0
    return out


@pytest.fixture
def window(qtbot, settings, run_dir):
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    with qtbot.waitSignal(window.mapUpdated, timeout=TIMEOUT):
        window.open_checkpoint(str(run_dir))
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

    assert ex.export_gif(str(tmp_path / "path.gif"), factor=2)
    frames = explorer_images.animation_frames(m, decoder)
    distinct = 1 + sum(not np.array_equal(*pair) for pair in zip(
        *(np.round(np.clip(f, 0, 1) * 255).astype(np.uint8) for f in (frames[1:], frames[:-1]))))
    with Image.open(tmp_path / "path.gif") as gif:
        assert gif.format == "GIF" and gif.size == (32, 32)
        assert gif.n_frames == distinct and distinct > len(frames) // 2

    assert ex.export_losses(str(tmp_path / "losses.csv"))
    with open(tmp_path / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    history = window.loss_view.history
    assert len(rows) == len(history.steps) > 0
    np.testing.assert_array_equal([float(r["neg_elbo"]) for r in rows], history.losses[:, 2])
    np.testing.assert_array_equal([int(r["step"]) for r in rows], history.steps)

    assert ex.export_latents(str(tmp_path / "latents.npz"))
    assert ex.export_latents(str(tmp_path / "latents.csv"))
    enc = m.encoded
    with np.load(tmp_path / "latents.npz") as npz:
        np.testing.assert_array_equal(npz["z"], enc.latents)
        np.testing.assert_array_equal(npz["label"], enc.labels)
        np.testing.assert_array_equal(npz["x"], enc.xy[:, 0])
    with open(tmp_path / "latents.csv") as f:
        header, *rows = list(csv.reader(f))
    assert header == ["index", "label", "z_1", "z_2", "x", "y"]
    table = np.array(rows, dtype=np.float64)
    np.testing.assert_array_equal(table[:, 2:4], enc.latents.astype(np.float64))
    np.testing.assert_array_equal(table[:, 1], enc.labels)


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
