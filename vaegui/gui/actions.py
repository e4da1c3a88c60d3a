"""The window's actions, menus and toolbar, built in one place so main_window.py stays about
wiring. Every action is an attribute of :class:`Actions`; the window connects their triggers.
Which are enabled follows the run model's ``controls()``."""

from __future__ import annotations

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMainWindow, QToolBar

from vaegui.core.run_model import RunModel

from .dock_layout import WORKSPACES, DockLayout
from .icons import icon


class Actions:
    def __init__(self, window: QMainWindow, run: RunModel):
        self.run = run
        def make(text: str, icon_name: str | None = None, shortcut=None, tip: str = "") -> QAction:
            action = QAction(icon(icon_name), text, window) if icon_name else QAction(text, window)
            if shortcut is not None:
                action.setShortcut(QKeySequence(shortcut))
            if tip:
                action.setStatusTip(tip)
            return action

        self.open = make("&Open checkpoint…", "open", QKeySequence.StandardKey.Open,
                         "Open a model saved by vaegui train or by this window")
        self.open_run = make("Open &run…", None, "Ctrl+Shift+O",
                             "Open a run folder (a vaegui train run, or one of this window's)")
        self.follow_run = make("&Follow run…", None, None,
                               "Watch a run folder that another process is writing, as it grows")
        self.runs_folder = make("Runs &folder…", None, None, "Choose where this window keeps its runs")
        self.save = make("&Save checkpoint…", "save", QKeySequence.StandardKey.Save,
                         "Save the current model, optimizer and loss history")
        self.export_bundle = make("Export &bundle…", None, "Ctrl+E",
                                  "Write every figure, the data, the settings and the checkpoint into a folder")
        self.quit = make("&Quit", None, QKeySequence.StandardKey.Quit)
        self.start = make("&Start", "play", "Ctrl+Return", "Start training with the settings in Training")
        self.pause = make("&Pause", "pause", "Ctrl+P", "Pause or resume training")
        self.stop = make("S&top", "stop", "Ctrl+.", "Stop training (keeps the weights of the last step)")
        self.refresh_map = make("&Refresh map", "refresh", "F5", "Encode the map again with the latest weights")
        self.play = make("&Play / pause animation", None, "Space",
                         "Animate along the interpolation path, or pause")
        self.reset_layout = make("&Reset layout", None, None,
                                 "Every workspace's docks back to their default places for this screen")
        # View > Train / Explore (Ctrl+1, Ctrl+2), one checked: the workspace shown.
        self.workspace_group = QActionGroup(window)
        self.workspaces = {}
        for i, name in enumerate(WORKSPACES, start=1):
            action = make(f"&{name} workspace", None, f"Ctrl+{i}", f"Show the {name} workspace's docks")
            action.setCheckable(True)
            self.workspace_group.addAction(action)
            self.workspaces[name] = action
        # View > Theme: the system's colour scheme, or one chosen here (saved).
        self.theme_group = QActionGroup(window)
        self.themes = {}
        for mode, text in (("system", "&System"), ("light", "&Light"), ("dark", "&Dark")):
            action = make(text, None, None, f"Colours: {mode}" if mode != "system" else
                          "Colours: follow the system's light or dark scheme")
            action.setCheckable(True)
            self.theme_group.addAction(action)
            self.themes[mode] = action
        self.about = make("&About vaegui")

    def build_menus(self, window: QMainWindow, docks: DockLayout) -> None:
        bar = window.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addActions([self.open_run, self.open, self.follow_run])
        self.recent_menu = file_menu.addMenu("Recent &runs")
        file_menu.addActions([self.save, self.runs_folder])
        file_menu.addSeparator()
        self.export_menu = file_menu.addMenu("&Export")  # filled by the window's ExportController
        file_menu.addAction(self.export_bundle)
        file_menu.addSeparator()
        file_menu.addAction(self.quit)
        train_menu = bar.addMenu("&Train")
        train_menu.addActions([self.start, self.pause, self.stop])
        train_menu.addSeparator()
        train_menu.addAction(self.refresh_map)
        explore_menu = bar.addMenu("&Explore")
        explore_menu.addAction(self.play)
        view_menu = bar.addMenu("&View")
        view_menu.addActions(list(self.workspaces.values()))
        for name in WORKSPACES:  # each workspace's docks, to show or hide in the one shown
            view_menu.addSection(name)
            view_menu.addActions([docks.docks[key].toggleViewAction() for key in docks.keys_of(name)])
        view_menu.addSeparator()
        theme_menu = view_menu.addMenu("&Theme")
        theme_menu.addActions(list(self.themes.values()))
        view_menu.addAction(self.reset_layout)
        self.view_menu = view_menu
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.about)
        self.run.events.state.connect(self._on_run_state)
        self._on_run_state()

    def _on_run_state(self) -> None:
        c = self.run.controls()
        self.start.setEnabled(c.start)
        self.pause.setEnabled(c.pause)
        self.pause.setText("&Resume" if c.resumes else "&Pause")
        self.pause.setIcon(icon("play" if c.resumes else "pause"))
        self.stop.setEnabled(c.stop)
        for action in (self.open, self.open_run, self.follow_run, self.recent_menu.menuAction()):
            action.setEnabled(c.open)
        self.save.setEnabled(c.model)
        self.refresh_map.setEnabled(c.model)

    def build_toolbar(self, window: QMainWindow) -> QToolBar:
        toolbar = QToolBar("Main toolbar", window)
        toolbar.setObjectName("main_toolbar")  # saveState needs a name
        toolbar.setMovable(False)
        toolbar.addActions([self.start, self.pause, self.stop])
        toolbar.addSeparator()
        toolbar.addActions([self.open, self.save, self.refresh_map])
        window.addToolBar(toolbar)
        return toolbar
