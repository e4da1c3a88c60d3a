"""Geometry checks of the main window's layout, shared by the layout tests and their subprocess
at device pixel ratio 2: what a user would see as a clipped view or a dock that scrolls both ways."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QAbstractScrollArea, QDockWidget, QScrollArea

from vaegui.gui.explorer.image_canvas import ImageCanvas


def layout_problems(window, process_events: Callable[[], None]) -> list[str]:
    """Every problem of the current workspace, each of its docks raised in turn (a dock behind a
    tab is checked as it is when its tab is chosen): a dock hidden, or outside the window; its
    content smaller than its minimum and not in a scroll area; a scroll area showing both bars,
    or a horizontal one (a dock may scroll down, never sideways); the map below its minimum."""
    problems = []
    for key in window.docks.keys_of(window.docks.workspace):
        dock = window.docks.docks[key]
        if not dock.isVisible():
            problems.append(f"{key}: its dock is hidden in its workspace")
            continue
        dock.raise_()
        process_events()
        if not window.rect().contains(dock.geometry()):
            problems.append(f"{key}: dock {_size(dock.geometry())} outside the window {_size(window.rect())}")
        problems += [f"{key}: {p}" for p in dock_problems(dock)]
    central = window.centralWidget()
    if central.width() < central.minimumSizeHint().width() or central.height() < central.minimumSizeHint().height():
        problems.append(f"map: {_size(central)} below its minimum {_size(central.minimumSizeHint())}")
    return problems


def dock_problems(dock: QDockWidget) -> list[str]:
    """A shown dock's clipped content, or a scroll area in it with both bars."""
    problems = []
    content = dock.widget()
    areas = ([content] if isinstance(content, QAbstractScrollArea) else []) + content.findChildren(QAbstractScrollArea)
    for area in areas:
        if not area.isVisible():
            continue
        if area.horizontalScrollBar().isVisible() and area.verticalScrollBar().isVisible():
            problems.append(f"{type(area).__name__} of {_size(area)} shows both scroll bars")
        elif area.horizontalScrollBar().isVisible():  # its columns are sized so that none is needed
            problems.append(f"{type(area).__name__} of {_size(area)} scrolls sideways")
    if not isinstance(content, QScrollArea):
        hint = content.minimumSizeHint()
        if content.width() < hint.width() or content.height() < hint.height():
            problems.append(f"content of {_size(content)} below its minimum {_size(hint)}, not scrolled")
    return problems


def readability_problems(window) -> list[str]:
    """What would not read on screen: a shown image drawn below one device pixel per image
    pixel or outside its view, labels of a grid or an axis that overlap, a legend over data."""
    problems = []
    for canvas in window.findChildren(ImageCanvas):
        if not canvas.isVisible() or canvas.display_scale == 0:
            continue  # hidden behind a tab, or nothing to draw yet
        if canvas.display_scale < 1:
            problems.append(f"{canvas.objectName() or type(canvas.parent()).__name__}: scale {canvas.display_scale}")
        if not canvas.rect().toRectF().contains(canvas.drawn_rect):
            problems.append(f"{type(canvas.parent()).__name__}: image drawn outside its view")
        problems += _overlaps([r.toRectF() for r, _ in canvas.label_rects()], type(canvas.parent()).__name__)
    for name, view in (("losses", window.loss_view), ("map", window.latent_map)):
        if view.isVisible() and view.legend.covers_data():
            problems.append(f"{name}: the legend covers data")
    for name, plot in (("KL", window.kl_view.plot_widget), ("losses", window.loss_view.plot_widget)):
        if plot.isVisible():
            for side in ("bottom", "left"):
                problems += _overlaps([r for r, _ in axis_labels(plot.getPlotItem().getAxis(side))], f"{name} {side} axis")
    return problems


def axis_labels(axis) -> list:
    """The (QRectF, text) of each tick label a pyqtgraph axis draws now."""
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _, _, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [(QRectF(rect), text) for rect, _, text in texts]


def _overlaps(rects, where: str) -> list[str]:
    return [f"{where}: labels overlap at {a.getRect()} and {b.getRect()}"
            for i, a in enumerate(rects) for b in rects[i + 1:] if a.intersects(b)]


def _size(thing) -> str:
    if hasattr(thing, "x") and hasattr(thing, "topLeft"):
        return f"{thing.width()}x{thing.height()}+{thing.x()}+{thing.y()}"
    return f"{thing.width()}x{thing.height()}"
