"""The window's docks, one per panel, and their default arrangement (View > Reset layout)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QFrame, QMainWindow, QScrollArea, QSplitter, QWidget


class DockLayout:
    """Puts each view in a dock of ``window``; the docks are attributes named after their view."""

    def __init__(self, window: QMainWindow, *, training: QWidget, loss: QWidget, kl: QWidget,
                 latent_map: QWidget, point: QWidget, interpolation: QWidget, traversal: QWidget,
                 manifold: QWidget, samples: QWidget):
        self.window = window
        self.losses_splitter = losses = QSplitter(Qt.Orientation.Horizontal)
        losses.addWidget(loss)
        losses.addWidget(kl)
        losses.setStretchFactor(0, 1)
        losses.setStretchFactor(1, 0)
        losses.setSizes([600, 360])
        self.training = self._dock("Training", training)
        self.map = self._dock("Latent map", latent_map)
        self.point = self._dock("Point", _scrolled(point))
        self.interpolation = self._dock("Interpolation", _scrolled(interpolation))
        self.traversal = self._dock("Traversal", _scrolled(traversal))
        self.manifold = self._dock("Manifold grid", _scrolled(manifold))
        self.samples = self._dock("Samples", _scrolled(samples))
        self.losses = self._dock("Losses", losses)
        self.all = [self.training, self.losses, self.map, self.point, self.interpolation,
                    self.traversal, self.manifold, self.samples]
        window.setDockNestingEnabled(True)
        self.reset()

    def _dock(self, title: str, widget: QWidget) -> QDockWidget:
        dock = QDockWidget(title, self.window)
        dock.setObjectName("dock_" + title.lower().replace(" ", "_"))  # saveState needs names
        dock.setWidget(widget)
        return dock

    def reset(self) -> None:
        """Training left; the map large in the centre with Losses below it; on the right, full
        height, the Point view above Interpolation (Manifold grid behind it) and Traversal
        (Samples behind it)."""
        w = self.window
        for dock in self.all:
            dock.setFloating(False)
            dock.show()
        w.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.training)
        w.splitDockWidget(self.training, self.map, Qt.Orientation.Horizontal)
        w.splitDockWidget(self.map, self.point, Qt.Orientation.Horizontal)
        w.splitDockWidget(self.map, self.losses, Qt.Orientation.Vertical)
        w.splitDockWidget(self.point, self.interpolation, Qt.Orientation.Vertical)
        w.splitDockWidget(self.interpolation, self.traversal, Qt.Orientation.Vertical)
        w.tabifyDockWidget(self.interpolation, self.manifold)
        w.tabifyDockWidget(self.traversal, self.samples)
        self.interpolation.raise_()
        self.traversal.raise_()
        w.resizeDocks([self.training, self.map, self.point], [290, 620, 380], Qt.Orientation.Horizontal)
        w.resizeDocks([self.map, self.losses], [520, 260], Qt.Orientation.Vertical)
        w.resizeDocks([self.point, self.interpolation, self.traversal], [270, 330, 300],
                      Qt.Orientation.Vertical)


def _scrolled(view: QWidget) -> QScrollArea:
    """The view in a scroll area: on a small screen its dock shrinks and scrolls, rather than
    forcing the whole window to the views' minimum sizes."""
    area = QScrollArea()
    area.setWidget(view)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    return area
