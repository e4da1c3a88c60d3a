"""A widget that draws one image (a decoded image, a strip or a grid of them) crisp, at a whole
number of screen pixels per image pixel, with optional labels beside its rows and above its
columns, and the value of each cell of a grid on hover."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPoint, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QFontMetrics, QImage, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from ..minus_sign import drawable
from ..qimage import to_qimage

LABEL_GAP = 6  # pixels between labels and the image, and between two column labels


@dataclass(frozen=True)
class Grid:
    """How an image is made of tiles (as core.latent.tile lays them out: ``padding`` pixels
    around and between them), which cells show when not all fit, and what each cell is."""

    rows: int
    columns: int
    padding: int = 0
    # Which rows / columns stay when not all fit at one screen pixel per image pixel: "spread"
    # keeps the first and last and some evenly between (a range: offsets, a path, a region),
    # "first" keeps the first ones (an order: rows by KL, samples).
    keep_rows: str = "first"
    keep_columns: str = "spread"
    cell_text: Callable[[int, int], str] | None = None  # hover text of cell (row, column)
    square: bool = False  # as many rows as columns shown (a region's grid keeps its cells' spacing)


def label_step(count: int, pitch: float, room: float) -> int:
    """Label every k-th of ``count`` things ``pitch`` pixels apart, each label needing ``room``
    pixels: the least k that keeps them apart (1: all of them)."""
    return 1 if count <= 1 or pitch <= 0 else max(1, math.ceil(room / pitch))


def _kept(total: int, fit: int, how: str) -> np.ndarray:
    fit = max(1, min(total, fit))
    if fit == total or how == "first":
        return np.arange(fit)
    return np.unique(np.round(np.linspace(0, total - 1, fit)).astype(int))


class ImageCanvas(QWidget):
    """Draws an image enlarged by the largest whole factor that fits, in device pixels (so on a
    screen of pixel ratio 2 a factor of 3 is 1.5 logical pixels a pixel), without smoothing, and
    never below one device pixel per image pixel: a grid that does not fit shows fewer cells and
    says so under them. Shows a hint text when there is no image."""

    def __init__(self, parent: QWidget | None = None, minimum: int = 64, top: bool = False):
        """``minimum``: least side in pixels; ``top``: draw at the top (grids of rows), not
        centred."""
        super().__init__(parent)
        self._top = top
        self._minimum = minimum
        self._array: np.ndarray | None = None
        self._image: QImage | None = None
        self._painted: QImage | None = None  # what is drawn, in the paint engine's own format
        self._hint = ""
        self._row_labels: list[str] = []
        self._column_labels: list[str] = []
        self._grid: Grid | None = None
        self._geometry: _Geometry | None = None  # for the current size, image and pixel ratio
        self.setMinimumSize(minimum, minimum)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)  # hover shows a grid cell's value
        # paintEvent fills every pixel: Qt need not paint the views behind it first (a drag or an
        # animation repaints a canvas up to 60 times a second).
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def set_image(self, image: np.ndarray | None, hint: str = "",
                  row_labels: list[str] | None = None, column_labels: list[str] | None = None,
                  grid: Grid | None = None) -> None:
        """(C, H, W) float in [0, 1] or uint8, or None to show ``hint`` instead. ``grid``: how
        the image is made of tiles (None: one image); labels, when given, go with its rows
        (left) and columns (above)."""
        self._array = None if image is None else np.asarray(image)
        self._image = None if image is None else to_qimage(image)
        self._grid = grid if image is not None and _fits(grid, self._array.shape) else None
        self._hint = hint
        self._row_labels = list(row_labels or [])
        self._column_labels = list(column_labels or [])
        self._geometry = None
        self._painted = None
        self._update_minimum()
        self.update()

    # ---- what it shows (read-only; tests and screenshots check it) ----------------------------
    def array(self) -> np.ndarray | None:
        """The image shown, as given."""
        return self._array

    def qimage(self) -> QImage | None:
        return self._image

    def hint(self) -> str:
        return self._hint

    def labels(self) -> tuple[list[str], list[str]]:
        """The labels given for the rows and the columns (all of them, drawn or not)."""
        return list(self._row_labels), list(self._column_labels)

    @property
    def display_scale(self) -> int:
        """Device pixels per image pixel (a whole number >= 1), 0 with no image."""
        return 0 if self._image is None else self._layout().scale

    @property
    def drawn_rect(self) -> QRectF:
        """Where the image (or the cells of it that fit) is drawn, in logical pixels."""
        return QRectF() if self._image is None else QRectF(self._layout().rect)

    def image_rect(self) -> QRect:
        """drawn_rect, rounded to whole logical pixels."""
        return self.drawn_rect.toAlignedRect() if self._image is not None else QRect()

    @property
    def shown_cells(self) -> tuple[int, int]:
        """(rows, columns) of the grid drawn; (1, 1) for one image, (0, 0) for none."""
        if self._image is None:
            return 0, 0
        g = self._layout()
        return len(g.rows), len(g.columns)

    @property
    def notice(self) -> str:
        """What the canvas says under a grid that does not fit: "showing 10 of 15 columns — ..."."""
        return "" if self._image is None else self._layout().notice

    def label_rects(self) -> list[tuple[QRect, str]]:
        """The row and column labels drawn, with their boxes (tight around their text)."""
        return [] if self._image is None else list(self._layout().labels)

    def cell_at(self, pos: QPoint) -> tuple[int, int] | None:
        """The grid cell (row, column, as in the whole grid) under a widget position."""
        if self._image is None or self._grid is None:
            return None
        g = self._layout()
        rect = g.rect
        if not rect.contains(pos.x() + 0.5, pos.y() + 0.5):
            return None
        row = int((pos.y() + 0.5 - rect.top()) / rect.height() * len(g.rows))
        column = int((pos.x() + 0.5 - rect.left()) / rect.width() * len(g.columns))
        return int(g.rows[min(row, len(g.rows) - 1)]), int(g.columns[min(column, len(g.columns) - 1)])

    def cell_text(self, pos: QPoint) -> str:
        """The hover text of the cell under ``pos`` ("" where there is none)."""
        cell = self.cell_at(pos)
        if cell is None or self._grid.cell_text is None:
            return ""
        return self._text(self._grid.cell_text(*cell))

    # ---- geometry ---------------------------------------------------------------------------
    def _ratio(self) -> float:
        ratio = self.devicePixelRatioF()
        return ratio if math.isfinite(ratio) and ratio >= 1 else 1.0

    def _update_minimum(self) -> None:
        """At least one cell (the whole image, for one image) at one device pixel a pixel, and
        its labels: the image is never drawn smaller. Set only when it changes: each set lays
        out the view again (the point view gets a new image at every move of a drag)."""
        size = QSize(self._minimum, self._minimum)
        if self._image is not None:
            h, w = _cell_size(self._grid, self._array.shape)
            left, top = self._margins()
            ratio = self._ratio()
            size = size.expandedTo(QSize(left + math.ceil(w / ratio), top + math.ceil(h / ratio)))
        if size != self.minimumSize():
            self.setMinimumSize(size)

    def _margins(self) -> tuple[int, int]:
        metrics = QFontMetrics(self.font())
        left = max((metrics.horizontalAdvance(self._text(t)) for t in self._row_labels), default=0)
        return (left + LABEL_GAP if left else 0), (metrics.height() + 2 if self._column_labels else 0)

    def _layout(self) -> _Geometry:
        if self._geometry is None or self._geometry.key != (self.size(), self._ratio()):
            self._geometry = self._compute_layout()
            self._painted = None
        return self._geometry

    def _compute_layout(self) -> _Geometry:
        ratio = self._ratio()
        left, top = self._margins()
        metrics = QFontMetrics(self.font())
        shape = self._array.shape
        grid = self._grid or Grid(1, 1)
        pad = grid.padding if self._grid is not None else 0
        ch, cw = _cell_size(self._grid, shape)
        room = QRectF(self.rect()).adjusted(left, top, 0, 0)
        rows, columns = np.arange(grid.rows), np.arange(grid.columns)
        notice = ""
        for reserve in (0, 2 * metrics.height() + 2):  # a second pass makes room for the notice
            room_h = (room.height() - reserve) * ratio
            room_w = room.width() * ratio
            fit_rows = int((room_h - pad) // (ch + pad)) if self._grid is not None else 1
            fit_columns = int((room_w - pad) // (cw + pad)) if self._grid is not None else 1
            if grid.square:
                fit_rows = fit_columns = min(fit_rows, fit_columns)
            rows = _kept(grid.rows, fit_rows, grid.keep_rows)
            columns = _kept(grid.columns, fit_columns, grid.keep_columns)
            hidden = [f"{len(k)} of {n} {what}" for k, n, what in (
                (rows, grid.rows, "rows"), (columns, grid.columns, "columns")) if len(k) < n]
            notice = f"showing {' and '.join(hidden)} — enlarge the dock" if hidden else ""
            if not notice:
                break
            room = room.adjusted(0, 0, 0, -reserve)
        height = len(rows) * (ch + pad) + pad if self._grid is not None else shape[1]
        width = len(columns) * (cw + pad) + pad if self._grid is not None else shape[2]
        scale = max(1, int(min(room.width() * ratio // width, room.height() * ratio // height)))
        size_w, size_h = width * scale / ratio, height * scale / ratio
        x = room.left() + (room.width() - size_w) / 2
        y = room.top() if self._top else room.top() + (room.height() - size_h) / 2
        # On whole device pixels, so that every image pixel is a square of `scale` of them.
        x, y = max(room.left(), round(x * ratio) / ratio), max(room.top(), round(y * ratio) / ratio)
        rect = QRectF(x, y, size_w, size_h)
        geometry = _Geometry((self.size(), ratio), scale, rect, rows, columns, notice, [])
        geometry.labels = self._label_boxes(geometry, metrics, left)
        return geometry

    def _label_boxes(self, g: _Geometry, metrics: QFontMetrics, left: int) -> list[tuple[QRect, str]]:
        """Row labels beside their rows and column labels above their columns, every k-th when
        they would overlap (always the first)."""
        boxes = []
        rect, h = g.rect, metrics.height()
        rows = [(int(k), self._text(self._row_labels[k])) for k in g.rows if k < len(self._row_labels)]
        if rows:
            pitch = rect.height() / len(g.rows)
            step = label_step(len(rows), pitch, h)
            for i, (k, text) in enumerate(rows):
                if i % step:
                    continue
                width = metrics.horizontalAdvance(text)
                y = rect.top() + (i + 0.5) * pitch - h / 2
                boxes.append((QRect(round(rect.left() - LABEL_GAP - width), round(y), width, h), text))
        columns = [(int(k), self._text(self._column_labels[k])) for k in g.columns if k < len(self._column_labels)]
        if columns:
            pitch = rect.width() / len(g.columns)
            widest = max(metrics.horizontalAdvance(t) for _, t in columns)
            step = label_step(len(columns), pitch, widest + LABEL_GAP)
            for i, (k, text) in enumerate(columns):
                if i % step:
                    continue
                width = metrics.horizontalAdvance(text)
                x = rect.left() + (i + 0.5) * pitch - width / 2
                boxes.append((QRect(round(x), round(rect.top() - h - 2), width, h), text))
        return boxes

    def _text(self, text: str) -> str:
        return drawable(QFontMetrics(self.font()), text)

    def _painted_image(self) -> QImage:
        """The cells that fit, converted once (not at every paint) to the paint engine's 32-bit
        format: drawing a scaled grayscale or RGB888 image converts it first, each time (the
        point view repaints 60 times a second during a drag)."""
        if self._painted is None:
            g = self._layout()
            image = self._image
            if self._grid is not None and (len(g.rows) < self._grid.rows or len(g.columns) < self._grid.columns):
                image = to_qimage(_cells(self._array, self._grid, g.rows, g.columns))
            self._painted = image.convertToFormat(QImage.Format.Format_RGB32)
        return self._painted

    def sizeHint(self) -> QSize:
        # Modest: a view in a scroll area is laid out from its size hints (word-wrapped labels
        # make its layout height-for-width), and the canvases take what room there is anyway.
        return self.minimumSize() + QSize(32, 32)

    # ---- events -----------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().color(QPalette.ColorRole.Base))
        if self._image is None:
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.rect().adjusted(8, 8, -8, -8),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._hint)
            return
        g = self._layout()
        # Whole device pixels per image pixel: nearest neighbour is exact, no smoothing.
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(g.rect, self._painted_image())
        painter.setPen(self.palette().color(QPalette.ColorRole.Text))
        for box, text in g.labels:
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        if g.notice:
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            box = QRect(4, round(g.rect.bottom()) + 2, self.width() - 8, 2 * QFontMetrics(self.font()).height())
            painter.drawText(box, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap,
                             g.notice)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._geometry = None

    def mouseMoveEvent(self, event) -> None:
        text = self.cell_text(event.position().toPoint())
        if text != self.toolTip():
            self.setToolTip(text)
            if text:
                QToolTip.showText(event.globalPosition().toPoint(), text, self)
            else:
                QToolTip.hideText()
        super().mouseMoveEvent(event)


@dataclass
class _Geometry:
    key: tuple
    scale: int  # device pixels per image pixel
    rect: QRectF  # where the image is drawn, logical pixels
    rows: np.ndarray  # the grid's rows drawn (indices into all of them)
    columns: np.ndarray
    notice: str
    labels: list[tuple[QRect, str]]


def _fits(grid: Grid | None, shape: tuple[int, ...]) -> bool:
    """Whether an image of ``shape`` (C, H, W) is made as ``grid`` says (one image comes back
    from tile() without a frame: then it is shown as one image)."""
    if grid is None:
        return False
    _, height, width = shape
    h, w = _cell_size(grid, shape)
    return h >= 1 and w >= 1 and grid.rows * (h + grid.padding) + grid.padding == height \
        and grid.columns * (w + grid.padding) + grid.padding == width


def _cell_size(grid: Grid | None, shape: tuple[int, ...]) -> tuple[int, int]:
    _, height, width = shape
    if grid is None:
        return height, width
    p = grid.padding
    return (height - p) // grid.rows - p, (width - p) // grid.columns - p


def _cells(array: np.ndarray, grid: Grid, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The image made of only the given cells, laid out as the grid is (padding kept)."""
    p = grid.padding
    h, w = _cell_size(grid, array.shape)
    ys = np.concatenate([np.arange(p)] + [np.arange(r * (h + p) + p, (r + 1) * (h + p) + p) for r in rows])
    xs = np.concatenate([np.arange(p)] + [np.arange(c * (w + p) + p, (c + 1) * (w + p) + p) for c in columns])
    return array[:, ys][:, :, xs]
