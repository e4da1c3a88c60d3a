"""The views read at every size: decoded images at a whole number of device pixels per image
pixel (never below one; a grid that does not fit shows fewer cells and says so), hover gives a
cell's value, legends are never over the data (in the window and in an export), tick labels
never overlap and keep their minus signs, the traversal is exported with its labels, and the
bundle's chooser makes a folder that is not there yet."""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QFontMetrics, QMouseEvent
from PySide6.QtWidgets import QApplication, QLineEdit, QMessageBox

from vaegui.core import explorer_images
from vaegui.core.dataset_loader import make_shapes
from vaegui.core.decoder import Decoder
from vaegui.core.explorer import ExplorerModel
from vaegui.core.explorer_images import MINUS
from vaegui.core.latent import EncodedSet, Projection, dimension_name
from vaegui.core.progress import EvalResult
from vaegui.core.run_model import RunModel
from vaegui.gui import plot_legend
from vaegui.gui.explorer.decode_worker import DecodeWorker
from vaegui.gui.explorer.image_canvas import ImageCanvas
from vaegui.gui.explorer.interpolation_view import HINT_NO_ENDS, InterpolationView
from vaegui.gui.explorer.latent_map import LatentMap
from vaegui.gui.explorer.manifold_view import ManifoldView
from vaegui.gui.explorer.point_view import PointView, format_latent
from vaegui.gui.explorer.samples_view import SamplesView
from vaegui.gui.explorer.traversal_view import TraversalView
from vaegui.gui.export import plot_export
from vaegui.gui.export.bundle_chooser import BundleFolderDialog
from vaegui.gui.export.image_figure import write_image_figure
from vaegui.gui.kl_view import KLDimView
from vaegui.gui.loss_view import LossView

from layout_checks import axis_labels
from test_explorer_views import trained_like
from test_loss_view import fake_run, make_eval, make_progress

TIMEOUT = 5000
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def shapes():
    return make_shapes(n_train=100, n_test=200, image_size=16)


@pytest.fixture
def explorer(shapes):
    """A model of L = 4 with its map, an evaluation and a picked point, and its decode thread."""
    model = ExplorerModel()
    worker = DecodeWorker(model)
    snapshot, encoded = trained_like(shapes, latent_dim=4)
    model.set_snapshot(snapshot)
    model.set_encoded(encoded)
    model.set_examples(shapes.test_images.numpy()[:8])
    kl = np.array([0.2, 3.0, 1.0, 0.01])
    model.set_evaluation(EvalResult(epoch=1, step=3, neg_elbo=1, recon=1, kl=1, bits_per_dim=1, kl_per_dim=kl,
                                    active_units=3, active=kl > 0.1))
    model.pick(encoded.latents[3])
    model.set_endpoint("a", encoded.latents[0])
    model.set_endpoint("b", encoded.latents[1])
    yield model, worker
    worker.shutdown()


def settle() -> None:
    for _ in range(3):
        QApplication.processEvents()


def check_whole_pixels(canvas: ImageCanvas) -> None:
    """Drawn at a whole number >= 1 of device pixels per image pixel, from a device pixel."""
    rows, columns = canvas.shown_cells
    scale, rect, ratio = canvas.display_scale, canvas.drawn_rect, canvas.devicePixelRatioF()
    assert isinstance(scale, int) and scale >= 1
    if not canvas.notice:  # all of it shown (else: fewer cells, see the test below)
        _, h, w = canvas.array().shape
        assert rect.width() * ratio == pytest.approx(w * scale)
        assert rect.height() * ratio == pytest.approx(h * scale)
    assert (rect.left() * ratio) == pytest.approx(round(rect.left() * ratio))
    assert (rect.top() * ratio) == pytest.approx(round(rect.top() * ratio))
    assert QRectF(canvas.rect()).contains(rect)


VIEWS = {"point": (PointView, ["canvas", "nearest_canvas"]),
         "interpolation": (InterpolationView, ["strip_canvas", "frame_canvas"]),
         "traversal": (TraversalView, ["canvas"]), "manifold": (ManifoldView, ["canvas"]),
         "samples": (SamplesView, ["recon_canvas", "samples_canvas"])}


@pytest.mark.parametrize("size", [(420, 300), (1400, 1000)])
@pytest.mark.parametrize("name", list(VIEWS))
def test_image_views_draw_at_a_whole_scale_at_small_and_large_sizes(explorer, show_widget, qtbot, name, size):
    model, worker = explorer
    model.set_grid(size=12)
    kind, canvases = VIEWS[name]
    view = show_widget(kind(model, worker), *size)
    canvases = [getattr(view, c) for c in canvases]
    qtbot.waitUntil(lambda: all(c.array() is not None for c in canvases), timeout=TIMEOUT)
    settle()
    for canvas in canvases:
        check_whole_pixels(canvas)
    if size[0] >= 1400:  # room for every cell, enlarged
        assert all(not c.notice for c in canvases)
        assert all(c.display_scale >= 2 for c in canvases)


def test_a_grid_that_does_not_fit_shows_fewer_cells_and_says_so(explorer, show_widget, qtbot):
    model, worker = explorer
    model.set_traversal(columns=25, rows=4, span=3.0)
    view = show_widget(TraversalView(model, worker), 360, 260)
    canvas = view.canvas
    qtbot.waitUntil(lambda: canvas.array() is not None and canvas.array().shape[2] == 25 * 17 + 1, timeout=TIMEOUT)
    settle()
    rows, columns = canvas.shown_cells
    assert columns < 25 and canvas.display_scale == 1
    assert f"showing {columns} of 25 columns" in canvas.notice and "enlarge" in canvas.notice
    # The columns kept span the whole range: the first and last offsets are still there.
    texts = [t for _, t in canvas.label_rects()]
    assert f"{MINUS}3.0" in texts
    assert canvas.drawn_rect.width() == pytest.approx(columns * 17 + 1)
    # The notice is painted: the canvas's pixels under the image are not all background.
    shot = canvas.grab().toImage()
    below = int(canvas.drawn_rect.bottom()) + 4
    assert len({shot.pixel(x, below + 5) for x in range(canvas.width())}) > 1
    view.resize(1600, 900)  # room again: every cell
    settle()
    assert canvas.shown_cells == (4, 25) and canvas.notice == ""


def test_scale_counts_device_pixels(show_widget):
    canvas = show_widget(ImageCanvas(), 200, 150)
    canvas.devicePixelRatioF = lambda: 2.0  # a high-DPI screen
    canvas.set_image(np.zeros((1, 28, 28), np.uint8))
    assert canvas.display_scale == (2 * 150) // 28  # 10 device pixels a pixel: 5 logical
    assert canvas.drawn_rect.width() == pytest.approx(28 * 10 / 2)
    canvas.resize(20, 20)  # smaller than the image: never below one device pixel a pixel
    canvas.set_image(np.zeros((1, 28, 28), np.uint8))
    assert canvas.display_scale >= 1 and canvas.minimumSize().width() >= 14


def cell_centre(canvas: ImageCanvas, row: int, column: int) -> QPoint:
    rect = canvas.drawn_rect
    rows, columns = canvas.shown_cells
    return QPoint(int(rect.left() + (column + 0.5) * rect.width() / columns),
                  int(rect.top() + (row + 0.5) * rect.height() / rows))


def hover(canvas: ImageCanvas, pos: QPoint) -> str:
    QApplication.sendEvent(canvas, QMouseEvent(QEvent.Type.MouseMove, QPointF(pos), QPointF(canvas.mapToGlobal(pos)),
                                               Qt.MouseButton.NoButton, Qt.MouseButton.NoButton,
                                               Qt.KeyboardModifier.NoModifier))
    return canvas.toolTip()


def test_hovering_a_cell_gives_its_value(explorer, show_widget, qtbot):
    model, worker = explorer
    model.set_traversal(columns=5, rows=3, span=2.0)
    model.set_grid(size=4)
    model.set_samples(count=4)
    traversal = show_widget(TraversalView(model, worker), 900, 500)
    manifold = show_widget(ManifoldView(model, worker), 600, 600)
    samples = show_widget(SamplesView(model, worker), 600, 500)
    qtbot.waitUntil(lambda: traversal.canvas.array() is not None and manifold.canvas.array() is not None
                    and samples.samples_canvas.array() is not None, timeout=TIMEOUT)
    settle()
    dims = model.traversal_plan()[0]  # by KL: z2, z3, z1
    text = hover(traversal.canvas, cell_centre(traversal.canvas, 1, 0))
    assert text.startswith(f"{dimension_name(dims[1])} {MINUS}2.00 SD") and "KL 1.00" in text
    assert traversal.canvas.cell_at(cell_centre(traversal.canvas, 2, 4)) == (2, 4)
    text = hover(manifold.canvas, cell_centre(manifold.canvas, 1, 2))
    assert format_latent(model.grid_latents()[1 * 4 + 2]) in text
    assert hover(samples.samples_canvas, cell_centre(samples.samples_canvas, 1, 0)) == "sample 3 of 4"
    assert hover(samples.samples_canvas, QPoint(0, 0)) == ""  # off the image: no tooltip


# ---- tick labels -------------------------------------------------------------------------------
def no_overlaps(rects: list[QRectF]) -> bool:
    return not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:])


@pytest.mark.parametrize("width", [500, 1918])
def test_traversal_headers_never_overlap_and_keep_their_minus_signs(explorer, show_widget, qtbot, width):
    model, worker = explorer
    model.set_traversal(columns=11, rows=4, span=3.0)
    view = show_widget(TraversalView(model, worker), width, 500)
    qtbot.waitUntil(lambda: view.canvas.array() is not None and view.canvas.array().shape[2] == 11 * 17 + 1,
                    timeout=TIMEOUT)
    settle()
    labels = view.canvas.label_rects()
    header = [(r, t) for r, t in labels if r.bottom() < view.canvas.drawn_rect.top()]
    assert no_overlaps([QRectF(r) for r, _ in header]) and no_overlaps([QRectF(r) for r, _ in labels])
    texts = [t for _, t in header]
    assert texts[0] == f"{MINUS}3.0" and all(t.startswith((MINUS, "+")) or t == "0.0" for t in texts)
    assert QFontMetrics(view.canvas.font()).inFontUcs4(ord(MINUS))  # the font draws it
    if width >= 1918:
        assert len(texts) == 11
    rows = [t for r, t in labels if r.bottom() >= view.canvas.drawn_rect.top()]
    assert rows[0] == f"{dimension_name(1)}  KL 3.00"


@pytest.mark.parametrize("dims, width, every", [(8, 500, True), (32, 320, False), (32, 1400, True)])
def test_kl_bars_label_every_dimension_that_fits_and_hover_gives_the_rest(show_widget, dims, width, every):
    run = RunModel()
    view = show_widget(KLDimView(run), width, 300)
    kl = np.linspace(3, 0, dims)
    view.set_eval(make_eval(1, 10, 90.0, float(kl.sum()), kl_per_dim=kl, active=dims // 2))
    settle()
    labels = axis_labels(view.plot_widget.getPlotItem().getAxis("bottom"))
    texts = [t for _, t in labels]
    assert no_overlaps([r for r, _ in labels])
    assert texts[0] == "z1"
    if every:
        assert texts == [dimension_name(k) for k in range(dims)]
    else:
        step = int(texts[1][1:]) - 1
        assert step > 1 and texts == [dimension_name(k) for k in range(0, dims, step)]
    # Hover a bar (one without a label, when some have none): its dimension and value.
    plot = view.plot_widget.getPlotItem()
    scene = plot.getViewBox().mapViewToScene(QPointF(dims - 2, 0.01))
    assert view.text_at(scene) == f"{dimension_name(dims - 2)}: KL {kl[dims - 2]:.3f} nats, inactive (collapsed)"
    view._on_scene_mouse_moved(scene)
    assert view.plot_widget.toolTip() == view.text_at(scene)


# ---- legends -----------------------------------------------------------------------------------
def scene_points(plot, data) -> np.ndarray:
    """(n, 2) scene positions of plotted points and of points along their segments."""
    view = plot.getViewBox()
    out = []
    for x, y in data:
        x, y = np.asarray(x, float), np.asarray(y, float)
        keep = np.isfinite(x) & np.isfinite(y)
        x, y = x[keep], y[keep]
        if 1 < len(x) < 2000:
            t = np.linspace(0, 1, 5, endpoint=False)[:, None]
            x = np.concatenate([(x[:-1] + t * np.diff(x)).ravel(), x[-1:]])
            y = np.concatenate([(y[:-1] + t * np.diff(y)).ravel(), y[-1:]])
        for px, py in zip(x, y):
            p = view.mapViewToScene(QPointF(px, py))
            out.append((p.x(), p.y()))
    return np.array(out)


def outside_of(rect: QRectF, area: QRectF) -> bool:
    """No more than a rounding (under a pixel) of ``rect`` in ``area``."""
    common = rect.intersected(area)
    return common.isEmpty() or min(common.width(), common.height()) < 1


def inside(rect: QRectF, points: np.ndarray, pad: float = 0.0) -> int:
    r = rect.adjusted(-pad, -pad, pad, pad)
    return int(((points[:, 0] >= r.left()) & (points[:, 0] <= r.right())
                & (points[:, 1] >= r.top()) & (points[:, 1] <= r.bottom())).sum())


@pytest.fixture
def loss_view(show_widget):
    view = show_widget(LossView(RunModel()), 700, 420)
    t, recon, kl = fake_run(600, 100)
    for e in range(6):
        a, b = 100 * e, 100 * (e + 1)
        view.run.add_progress(make_progress(t[a:b], recon[a:b], kl[a:b], kl_weight=0.5,
                                            eval=make_eval(e + 1, b, recon[b - 1] + 5, kl[b - 1])))
    view.flush()
    settle()
    return view


def test_the_loss_legend_is_off_the_curves_movable_and_hideable(loss_view):
    plot = loss_view.plot_widget.getPlotItem()
    legend = loss_view.legend
    # By default below the axes (the plot has room): nowhere over the plot area.
    assert legend.shown() is legend.outside and legend.mode == "auto"
    assert outside_of(legend.scene_rect(), plot.getViewBox().sceneBoundingRect())
    assert len(legend.items) == 7  # train and test of recon, KL, -ELBO, and beta*KL
    # Inside: the emptiest corner, over no curve or marker.
    loss_view.legend_actions["inside"].trigger()
    settle()
    assert legend.shown() is legend.inside
    assert plot.getViewBox().sceneBoundingRect().contains(legend.scene_rect())
    assert inside(legend.scene_rect(), scene_points(plot, loss_view._plotted())) == 0
    assert legend.corner == (1, 0)  # decaying curves: the top right is empty
    # Hidden: no legend at all.
    loss_view.legend_actions["hidden"].trigger()
    assert legend.shown() is None and not legend.inside.isVisible() and not legend.outside.isVisible()
    loss_view.set_legend_mode("outside")
    assert legend.shown() is legend.outside and loss_view.legend_actions["outside"].isChecked()


def test_a_short_loss_plot_has_its_legend_in_an_empty_corner(show_widget):
    """By default the legend goes inside when below it would take much of a short plot's height,
    in a corner the curves leave empty (losses that rise late: the top left)."""
    view = show_widget(LossView(RunModel()), 700, 480)
    steps = np.arange(1, 401)
    recon = np.where(steps < 320, 10.0, 10.0 + (steps - 320) * 90 / 80)  # flat, then rising late
    view.run.add_progress(make_progress(steps, recon, np.full(400, 1.0)))
    view.flush()
    settle()
    legend, plot = view.legend, view.plot_widget.getPlotItem()
    assert legend.shown() is legend.outside  # room below
    view.resize(560, 230)
    settle()
    assert legend.shown() is legend.inside and legend.corner == (0, 0)
    assert inside(legend.scene_rect(), scene_points(plot, view._plotted())) == 0
    legend.inside.moved_by_user = True  # dragged by the user: it stays, shown, where it was put
    view.resize(560, 240)
    settle()
    assert legend.shown() is legend.inside and legend.inside.isVisible()


def test_an_exported_figure_never_has_the_legend_over_data(loss_view, tmp_path, monkeypatch):
    plot = loss_view.plot_widget.getPlotItem()
    legend = loss_view.legend
    loss_view.log_check.setChecked(True)
    loss_view.resize(360, 260)
    loss_view.set_legend_mode("inside")
    settle()
    legend.inside.moved_by_user = True  # dragged over the curves by the user
    legend.inside.anchor(itemPos=(0, 1), parentPos=(0, 1), offset=(30, -30))
    settle()
    assert legend.covers_data()
    drawn = []
    original = plot_export.outside_for_export

    @contextlib.contextmanager
    def spy(item):
        with original(item):
            placement = plot_legend.placement(item)
            drawn.append(placement.shown() is placement.outside and outside_of(
                placement.scene_rect(), item.getViewBox().sceneBoundingRect()))
            yield
    monkeypatch.setattr(plot_export, "outside_for_export", spy)
    for fmt in ("png", "svg", "pdf"):
        plot_export.write_plot(plot, tmp_path / f"losses.{fmt}")
    assert drawn == [True, True, True]
    assert legend.shown() is legend.inside  # the window is as it was


@pytest.fixture
def map_view(show_widget):
    return show_widget(LatentMap(ExplorerModel()), 640, 520)


def uniform_map(shapes, n: int = 200) -> EncodedSet:
    """A map whose points fill a square evenly: no corner is empty."""
    rng = np.random.default_rng(0)
    z = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    z[:4] = [[-1, -1], [-1, 1], [1, -1], [1, 1]]
    projection = Projection.fit(z)
    return EncodedSet(latents=z, xy=projection.transform(z), projection=projection,
                      labels=shapes.test_labels.numpy()[:n], class_names=tuple(shapes.class_names),
                      images=shapes.test_images.numpy()[:n])


def test_the_map_legend_is_never_over_points_and_an_empty_map_has_none(map_view, shapes):
    legend = map_view.legend
    assert legend.shown() is None and not legend.inside.isVisible() and not legend.outside.isVisible()
    _, encoded = trained_like(shapes)
    map_view.model.set_encoded(encoded)
    settle()
    plot = map_view.plot_widget().getPlotItem()
    assert legend.shown() is not None
    points = scene_points(plot, map_view._shown_points())
    assert inside(legend.scene_rect(), points, pad=3) == 0
    # Points everywhere: the legend goes right of the plot.
    map_view.model.set_encoded(uniform_map(shapes))
    settle()
    assert legend.shown() is legend.outside
    assert outside_of(legend.scene_rect(), plot.getViewBox().sceneBoundingRect())
    map_view.model.set_encoded(None)
    settle()
    assert legend.shown() is None and not legend.outside.isVisible()


# ---- the traversal's figure, the chooser, the hint, the overlay --------------------------------
def test_the_exported_traversal_has_its_row_and_column_labels(explorer, tmp_path):
    model, _ = explorer
    model.set_traversal(columns=7, rows=3, span=3.0)
    image = explorer_images.traversal(model, Decoder.from_snapshot(model.snapshot))
    assert image.row_labels[0] == f"{dimension_name(1)}  KL 3.00"
    assert image.column_labels == (f"{MINUS}3.0", f"{MINUS}2.0", f"{MINUS}1.0", "0.0", "+1.0", "+2.0", "+3.0")
    svg = write_image_figure(tmp_path / "traversal.svg", image, factor=4)
    texts = [("".join(e.itertext())).strip() for e in ET.parse(svg).getroot().iter(SVG + "text")]
    assert {f"{dimension_name(1)}  KL 3.00", f"{MINUS}3.0", "+3.0", "0.0"} <= set(texts)
    from PIL import Image
    png = write_image_figure(tmp_path / "traversal.png", image, factor=4)
    with Image.open(png) as picture:
        _, h, w = image.array.shape
        assert picture.size[0] > 4 * w + 40 and picture.size[1] > 4 * h + 10  # room for the labels
        pixels = np.asarray(picture.convert("L"))
    # The images, enlarged without smoothing, sit at the bottom right of the labels.
    assert pixels.std() > 10
    pdf = write_image_figure(tmp_path / "traversal.pdf", image, factor=4)
    assert pdf.read_bytes().startswith(b"%PDF-") and b"/Font" in pdf.read_bytes()


def test_the_bundle_chooser_makes_a_new_folder_or_says_why_not(show_widget, tmp_path, monkeypatch):
    warned = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text: warned.append(text))

    def choose(name: str) -> BundleFolderDialog:
        dialog = show_widget(BundleFolderDialog(None, str(tmp_path)), 600, 400)
        dialog.findChild(QLineEdit, "fileNameEdit").setText(name)
        dialog.accept()
        return dialog
    dialog = choose("new/bundle")
    assert dialog.result() == BundleFolderDialog.DialogCode.Accepted
    assert (tmp_path / "new" / "bundle").is_dir() and dialog.folder() == str(tmp_path / "new" / "bundle")
    (tmp_path / "file").write_text("")
    dialog = choose("file/bundle")
    assert dialog.result() != BundleFolderDialog.DialogCode.Accepted and dialog.isVisible()
    assert warned and str(tmp_path / "file" / "bundle") in warned[0] and "cannot create the folder" in warned[0]
    assert choose("new").result() == BundleFolderDialog.DialogCode.Accepted  # an existing one


def test_the_interpolation_hint_is_shown_once(shapes, show_widget):
    model = ExplorerModel()
    worker = DecodeWorker(model)
    try:
        snapshot, encoded = trained_like(shapes)
        model.set_snapshot(snapshot)
        model.set_encoded(encoded)
        view = show_widget(InterpolationView(model, worker), 600, 400)
        settle()
        shown = [view.strip_canvas.hint(), view.frame_canvas.hint(), view.message.text()]
        assert shown.count(HINT_NO_ENDS) == 1
    finally:
        worker.shutdown()


def test_the_manifold_overlay_reads_as_a_grid_of_cells(explorer, show_widget, qtbot):
    model, worker = explorer
    map_view = show_widget(LatentMap(model), 900, 400)  # a wide view: wide cells
    show_widget(ManifoldView(model, worker), 300, 300)  # it decodes the grid the overlay shows
    model.set_grid(size=5, overlay=True)
    overlay = map_view.overlay
    qtbot.waitUntil(lambda: overlay.tiles.isVisible() and model.grid.region is not None
                    and model.grid_image_region == model.grid.region
                    and model.grid_image.shape[1] == 5 * 16, timeout=TIMEOUT)  # the map's view
    x0, x1, y0, y1 = model.grid_image_region
    assert (x1 - x0) / (y1 - y0) > 1.5
    alpha = overlay.tiles.image[..., 3]  # (rows, columns) of the tiles' image, flipped for y up
    # Tiles do not touch down a column (no bar): transparent rows between them, and around them.
    opaque_rows = (alpha > 0).any(1)
    runs = np.flatnonzero(np.diff(opaque_rows.astype(int)) == 1)
    assert len(runs) + opaque_rows[0] == 5 and not opaque_rows[0] and not opaque_rows[-1]
    # The cells are outlined: 6 vertical and 6 horizontal lines over the region.
    x, y = overlay.outlines.getData()
    assert overlay.outlines.isVisible() and len(x) == 2 * 12
    assert set(np.round(x[:12:2], 6)) == set(np.round(np.linspace(x0, x1, 6), 6))
    assert set(np.round(y[12::2], 6)) == set(np.round(np.linspace(y0, y1, 6), 6))
