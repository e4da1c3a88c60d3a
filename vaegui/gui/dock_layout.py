"""The window's layout: the latent map in the centre and, around it, one dock per panel, grouped
into workspaces (Train, Explore) that are shown one at a time.

Each workspace remembers its own arrangement (a ``QMainWindow.saveState``); its default follows
the window's size, which at first launch follows the screen's available size. Where there is no
room for two docks side by side or one above the other, they share a place as tabs. Every dock's
content sits in a scroll area, so that no panel's minimum size can push the window past the
screen; the default widths are chosen so that the scroll areas need at most a vertical bar.

The panels are declared by the window as a list of :class:`Panel`; replacing a panel's widget is
a change to that list (or :meth:`DockLayout.set_widget` at run time).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import (QAbstractScrollArea, QDockWidget, QFrame, QMainWindow, QScrollArea, QStyle, QTabBar,
                               QWidget)

TRAIN, EXPLORE = "Train", "Explore"
WORKSPACES = (TRAIN, EXPLORE)

# Window sizes (logical pixels) from which a workspace spreads its docks over more room.
WIDE = QSize(1600, 900)  # from here: two columns of explorer docks
LARGE = QSize(2200, 1250)  # from here: no explorer dock behind a tab
DOCK_SHARE = 0.36  # of the window's width, the docks beside the map take at least this
MAP_MIN_WIDTH = 480  # the map keeps at least this much width when the docks need more
LAYOUT_VERSION = 2  # saveState's version: a state saved by another arrangement is not restored


@dataclass(frozen=True)
class Panel:
    """A view shown in a dock: ``key`` names the dock (``DockLayout.<key>``) and its saved state."""
    key: str
    title: str
    widget: QWidget
    workspace: str  # the workspace whose default layout shows it
    scroll: bool = True  # in a scroll area (a view that scrolls itself needs none)


# A column of docks beside the map: groups from top to bottom, each a tuple of keys that share one
# place as tabs (the first one raised), with its share of the column's height.
Column = tuple[tuple[tuple[str, ...], float], ...]


def default_plan(workspace: str, size: QSize) -> list[Column]:
    """The columns right of the map, left to right (Train also has the training panel on the
    left; see :meth:`DockLayout.apply_default`)."""
    if workspace == TRAIN:
        return [((("losses",), 0.6), (("kl",), 0.4))]
    wide = size.width() >= WIDE.width() and size.height() >= WIDE.height()
    large = size.width() >= LARGE.width() and size.height() >= LARGE.height()
    if large:
        return [((("point",), 0.42), (("interpolation",), 0.58)),
                ((("traversal",), 0.36), (("manifold",), 0.34), (("samples",), 0.30))]
    if wide:
        return [((("point",), 0.42), (("interpolation",), 0.58)),
                ((("traversal",), 0.5), (("manifold", "samples"), 0.5))]
    return [((("point",), 0.38), (("interpolation", "traversal", "manifold", "samples"), 0.62))]


def default_window_size(available: QSize) -> QSize:
    """The window's size at first launch and after View > Reset layout: all of a small screen,
    most of a larger one."""
    if available.width() <= 1440 or available.height() <= 900:
        return QSize(available)
    return QSize(round(available.width() * 0.9), round(available.height() * 0.9))


def needed_width(widget: QWidget) -> int:
    """The width at which ``widget`` shows without a horizontal scroll bar: its minimum, or for
    a scroll area inside it, its content's minimum plus a vertical scroll bar."""
    width = widget.minimumSizeHint().width()
    bar = widget.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
    areas = [widget] if isinstance(widget, QScrollArea) else []
    for area in areas + widget.findChildren(QScrollArea):
        inner = area.widget()
        if inner is not None and area.widgetResizable():
            frame = 2 * area.frameWidth()
            width = max(width, inner.minimumSizeHint().width() + bar + frame
                        + _outer_margins(inner=area, outer=widget))
    return width


def _outer_margins(inner: QWidget, outer: QWidget) -> int:
    """The layout margins, left and right, between ``outer``'s edges and ``inner``'s."""
    margins, widget = 0, inner
    while widget is not outer and widget is not None:
        widget = widget.parentWidget()
        if widget is not None and widget.layout() is not None:
            m = widget.layout().contentsMargins()
            margins += m.left() + m.right()
    return margins


class DockLayout(QObject):
    """The docks of ``window`` (attributes named after each panel's key) and its workspaces."""

    workspaceChanged = Signal(str)

    def __init__(self, window: QMainWindow, central: QWidget, panels: list[Panel]):
        super().__init__(window)
        self.window = window
        self.panels = {p.key: p for p in panels}
        self.docks: dict[str, QDockWidget] = {p.key: self._dock(p) for p in panels}
        self.all = list(self.docks.values())
        self.workspace = TRAIN
        self._left_out: set[str] = set()  # panels no default layout shows (see leave_out)
        self._states: dict[str, bytes] = {}  # each workspace's arrangement, as saveState's bytes
        window.setCentralWidget(central)
        window.setDockNestingEnabled(True)
        # The training panel on the left runs the window's full height.
        window.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        window.setCorner(Qt.Corner.TopLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        window.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        window.setCorner(Qt.Corner.TopRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.apply_default()

    def __getattr__(self, key: str) -> QDockWidget:
        docks = self.__dict__.get("docks", {})
        if key in docks:
            return docks[key]
        raise AttributeError(key)

    def _dock(self, panel: Panel) -> QDockWidget:
        dock = QDockWidget(panel.title, self.window)
        dock.setObjectName("dock_" + panel.key)  # saveState needs names
        dock.setWidget(_scrolled(panel.widget) if panel.scroll else panel.widget)
        return dock

    def set_widget(self, key: str, widget: QWidget, title: str | None = None) -> None:
        """Show ``widget`` in dock ``key`` instead of its panel (the old one is kept by its owner)."""
        dock = self.docks[key]
        old = dock.widget()
        if isinstance(old, QScrollArea) and isinstance(old.widget(), _Fitted):
            old.widget().view.setParent(None)  # its owner keeps it
        panel = self.panels[key]
        dock.setWidget(_scrolled(widget) if panel.scroll else widget)
        if title is not None:
            dock.setWindowTitle(title)
        self.panels[key] = Panel(key, title or panel.title, widget, panel.workspace, panel.scroll)

    def keys_of(self, workspace: str) -> list[str]:
        return [k for k, p in self.panels.items() if p.workspace == workspace and k not in self._left_out]

    def leave_out(self, *keys: str) -> None:
        """Panels the default layouts no longer show (a user's model has no losses to plot);
        View still shows them if asked. The current workspace is laid out again."""
        self._left_out.update(keys)
        self._states.clear()
        self.apply_default()

    # ---- workspaces ---------------------------------------------------------------------------
    def switch(self, workspace: str) -> None:
        """Show ``workspace`` as it was last arranged (its default the first time)."""
        if workspace not in WORKSPACES:
            raise ValueError(f"workspace {workspace!r}: not one of {', '.join(WORKSPACES)}")
        if workspace == self.workspace:
            return
        self._states[self.workspace] = bytes(self.window.saveState(LAYOUT_VERSION).data())
        self.workspace = workspace
        state = self._states.get(workspace)
        if state is None or not self.window.restoreState(state, LAYOUT_VERSION):
            self.apply_default()
        self.workspaceChanged.emit(workspace)

    def states(self) -> dict[str, bytes]:
        """Every workspace's arrangement, the current one as it is now (to save in settings)."""
        return {**self._states, self.workspace: bytes(self.window.saveState(LAYOUT_VERSION).data())}

    def restore(self, workspace: str | None, states: dict[str, bytes]) -> None:
        """The workspace and arrangements saved by :meth:`states` (the defaults where unreadable)."""
        self._states = {w: s for w, s in states.items() if w in WORKSPACES}
        if workspace not in WORKSPACES:
            workspace = TRAIN
        self.workspace = workspace
        state = self._states.get(workspace)
        if state is None or not self.window.restoreState(state, LAYOUT_VERSION):
            self.apply_default()
        self.workspaceChanged.emit(workspace)

    def reset(self) -> None:
        """Every workspace back to its default for the window's size (View > Reset layout)."""
        self._states.clear()
        self.apply_default()

    # ---- the default arrangement ----------------------------------------------------------------
    def apply_default(self) -> None:
        """The current workspace's docks at their default places and sizes; the others hidden
        (placed on the right, where View shows them if asked)."""
        w, size = self.window, self.window.size()
        right, left = Qt.DockWidgetArea.RightDockWidgetArea, Qt.DockWidgetArea.LeftDockWidgetArea
        for dock in self.all:
            dock.setFloating(False)
            w.removeDockWidget(dock)
        shown = set(self.keys_of(self.workspace))
        columns = _without(default_plan(self.workspace, size), self._left_out)
        placed: list[str] = []
        if self.workspace == TRAIN:
            w.addDockWidget(left, self.docks["training"])
            placed.append("training")
        column_heads = []
        for i, column in enumerate(columns):
            head = self.docks[column[0][0][0]]
            if i == 0:
                w.addDockWidget(right, head)
            else:
                w.splitDockWidget(column_heads[-1], head, Qt.Orientation.Horizontal)
            column_heads.append(head)
        for column in columns:
            above = None
            for keys, _share in column:
                first = self.docks[keys[0]]
                if above is not None:
                    w.splitDockWidget(above, first, Qt.Orientation.Vertical)
                for key in keys[1:]:
                    w.tabifyDockWidget(first, self.docks[key])
                placed.extend(keys)
                above = first
        for key, dock in self.docks.items():
            if key not in placed:  # another workspace's dock: hidden, on the right if shown
                w.addDockWidget(right, dock)
            dock.setVisible(key in shown)
        for column in columns:
            for keys, _share in column:
                self.docks[keys[0]].raise_()
        self._sizes = (columns, size)
        # Dock sizes take effect once the window has laid out its docks.
        QTimer.singleShot(0, self._apply_sizes)
        self._apply_sizes()

    def _apply_sizes(self) -> None:
        columns, size = self._sizes
        w = self.window
        heads, widths = [], []
        if self.workspace == TRAIN:
            heads.append(self.docks["training"])
            widths.append(needed_width(self.docks["training"].widget()))
        room = max(0, size.width() - sum(widths) - MAP_MIN_WIDTH)
        share = max(DOCK_SHARE * size.width(), 0) / len(columns)
        for column in columns:
            need = max(needed_width(self.docks[k].widget()) for keys, _ in column for k in keys)
            heads.append(self.docks[column[0][0][0]])
            widths.append(int(max(need, share)))
        if sum(widths[-len(columns):]) > room:  # a small window: the map keeps its minimum
            scale = room / max(1, sum(widths[-len(columns):]))
            widths[-len(columns):] = [max(1, int(x * scale)) for x in widths[-len(columns):]]
        w.resizeDocks(heads, widths, Qt.Orientation.Horizontal)
        height = max(100, size.height() - 120)  # menu, toolbar, status bar
        for column in columns:
            firsts = [self.docks[keys[0]] for keys, _ in column]
            w.resizeDocks(firsts, [int(height * share) for _, share in column], Qt.Orientation.Vertical)


class WorkspaceTabs(QTabBar):
    """The workspaces as tabs (for the toolbar), in step with the docks either way."""

    def __init__(self, docks: DockLayout):
        super().__init__()
        self.setObjectName("workspace_tabs")
        self.setDocumentMode(True)
        self.setDrawBase(False)
        for i, name in enumerate(WORKSPACES):
            self.addTab(name)
            self.setTabToolTip(i, f"{name} workspace (Ctrl+{i + 1})")
        self.setCurrentIndex(WORKSPACES.index(docks.workspace))
        self._docks = docks
        self.currentChanged.connect(self._on_currentChanged)
        docks.workspaceChanged.connect(self._on_docks_workspaceChanged)

    def _on_currentChanged(self, index: int) -> None:
        self._docks.switch(WORKSPACES[index])

    def _on_docks_workspaceChanged(self, name: str) -> None:
        self.setCurrentIndex(WORKSPACES.index(name))


def _without(columns: list[Column], keys: set[str]) -> list[Column]:
    """The plan without ``keys``: a group or column left empty goes too."""
    kept = []
    for column in columns:
        groups = tuple((g, share) for g, share in ((tuple(k for k in keys_ if k not in keys), share)
                                                    for keys_, share in column) if g)
        if groups:
            kept.append(groups)
    return kept


def _scrolled(view: QWidget) -> QWidget:
    """The view in a scroll area: on a small screen its dock shrinks and scrolls, rather than
    forcing the whole window to the views' minimum sizes. A view that scrolls itself is kept."""
    if isinstance(view, QAbstractScrollArea):
        return view
    area = QScrollArea()
    area.setWidget(_Fitted(view))
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    return area


class _Fitted(QWidget):
    """Holds a view at the scroll area's size, down to the view's minimum size.

    A scroll area gives a view whose height depends on its width (one with a wrapped label) its
    preferred height, not its minimum, and so scrolls where it need not: this holder has no
    height-for-width, and passes on the view's minimum and preferred sizes."""

    def __init__(self, view: QWidget):
        super().__init__()
        self.view = view
        view.setParent(self)
        view.installEventFilter(self)

    def minimumSizeHint(self) -> QSize:
        return self.view.minimumSizeHint().expandedTo(self.view.minimumSize())

    def sizeHint(self) -> QSize:
        return self.view.sizeHint()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.view.setGeometry(self.rect())

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.LayoutRequest:  # the view's sizes changed
            self.updateGeometry()
        return False
