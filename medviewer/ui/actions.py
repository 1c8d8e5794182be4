"""Menus, toolbar and keyboard shortcuts of the main window (listed in Help > Keyboard shortcuts)."""
from __future__ import annotations

from medviewer.core.display import CT_PRESETS
from medviewer.ui.qt import Qt, QtGui, QtWidgets

SHORTCUTS = [
    ("Scroll slices", "Mouse wheel, Up/Down or Left/Right arrows"),
    ("Scroll 10% of the slices", "Page Up / Page Down"),
    ("Next / previous volume (time point, diffusion direction, echo)", "Ctrl+Page Up / Ctrl+Page Down"),
    ("Zoom", "Ctrl + mouse wheel, or Ctrl++ / Ctrl+-"),
    ("Pan", "Middle-button drag"),
    ("Window / level", "Right-button drag (horizontal: width, vertical: level)"),
    ("Move crosshair", "Left click or drag (Navigate tool)"),
    ("Rotate the other two MPR planes (oblique MPR)", "Ctrl+Shift + left drag, or View > Rotate MPR planes"),
    ("Fit to window", "F (in a view) or Ctrl+0"),
    ("Layouts: single / 1x3 / 2x2 / 2x2 with 3D / 3D", "Ctrl+1 / Ctrl+2 / Ctrl+3 / Ctrl+4 / Ctrl+5"),
    ("Compare images side by side: 1x2 / 2x2", "Ctrl+6 / Ctrl+7"),
    ("3D view: rotate / zoom / pan / pick", "Left drag / wheel or right drag / middle drag / click"),
    ("Presets: brain, lung, bone, abdomen, mediastinum", "Alt+1 … Alt+5; auto window: Alt+0"),
    ("Active label 1 … 9", "1 … 9"),
    ("Undo / redo a label edit", "Ctrl+Z / Ctrl+Shift+Z or Ctrl+Y"),
    ("Close a polygon / cancel a shape", "Double-click or Enter / Esc"),
    ("Invert", "I"),
    ("Tools: navigate / distance / angle", "N / D / A; Esc cancels a measurement"),
    ("Cine play / stop", "Space"),
    ("Rotate / flip a 2D image", "R / H"),
    ("Open file / folder", "Ctrl+O / Ctrl+Shift+O"),
    ("Open a file beside the image shown", "Ctrl+Alt+O"),
]
IMAGE_FILTER = ("Images (*.dcm *.nii *.nii.gz *.hdr *.nrrd *.nhdr *.mha *.mhd *.png *.jpg *.jpeg DICOMDIR);;"
                "All files (*)")
LAYOUT_TEXTS = [("single", "Single view"), ("1x3", "1×3 MPR"), ("2x2", "2×2 MPR"), ("2x2-3d", "2×2 with 3D"),
                ("3d", "3D"), ("compare-1x2", "Compare 1×2"), ("compare-2x2", "Compare 2×2")]
PRESET_KEYS = {"brain": "Alt+1", "lung": "Alt+2", "bone": "Alt+3", "abdomen": "Alt+4", "mediastinum": "Alt+5"}


class Actions:
    def __init__(self, win):
        self.win = win
        self.layout_actions: dict[str, QtGui.QAction] = {}
        self.tool_actions: dict[str, QtGui.QAction] = {}
        self._build_menus()
        self._build_toolbar()

    def _action(self, menu, text, slot, shortcut=None, checkable=False):
        action = QtGui.QAction(text, self.win)
        if shortcut:
            action.setShortcut(QtGui.QKeySequence(shortcut))
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        if menu is not None:
            menu.addAction(action)
        self.win.addAction(action)  # shortcuts work whatever has focus
        return action

    def _build_menus(self) -> None:
        win, bar = self.win, self.win.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "Open file…", self.open_file, "Ctrl+O")
        self._action(file_menu, "Open folder…", self.open_folder, "Ctrl+Shift+O")
        self.recent_menu = file_menu.addMenu("Open recent")
        self._action(file_menu, "Open demo study", self.open_demo)
        file_menu.addSeparator()
        self._action(file_menu, "Open beside…", self.open_beside, "Ctrl+Alt+O")
        self._action(file_menu, "Open folder beside…", self.open_folder_beside)
        file_menu.addSeparator()
        self._action(file_menu, "Save screenshot…", self.save_screenshot, "Ctrl+Shift+S")
        self._action(file_menu, "Quit", win.close, "Ctrl+Q")
        self.refresh_recent()

        view_menu = bar.addMenu("&View")
        group = QtGui.QActionGroup(win)
        for key, (name, text) in enumerate(LAYOUT_TEXTS, 1):
            a = self._action(view_menu, text, lambda _=False, n=name: win.set_layout(n), f"Ctrl+{key}", True)
            group.addAction(a)
            self.layout_actions[name] = a
        plane_menu = view_menu.addMenu("Single view plane")
        for plane in ("axial", "coronal", "sagittal"):
            self._action(plane_menu, plane.capitalize(), lambda _=False, p=plane: win.set_layout("single", p))
        self.link_action = self._action(view_menu, "Link images (cursor, scrolling, zoom)",
                                        lambda on: win.set_linking(cursors=on), checkable=True)
        self.link_action.setChecked(win.linker.enabled)
        self.link_window_action = self._action(view_menu, "Link window between images of one modality",
                                               lambda on: win.set_linking(window=on), checkable=True)
        self.link_window_action.setChecked(win.linker.link_window)
        self.hanging_action = self._action(view_menu, "Hang a study's series side by side",
                                           lambda on: win.set_hanging(on), checkable=True)
        self.hanging_action.setChecked(win.hanging_enabled())
        view_menu.addSeparator()
        self._action(view_menu, "Fit to window", win.grid.fit_all, "Ctrl+0")
        self._action(view_menu, "Zoom in", lambda: win.grid.active_view().zoom(1.25), "Ctrl+=")
        self._action(view_menu, "Zoom out", lambda: win.grid.active_view().zoom(0.8), "Ctrl+-")
        self.invert_action = self._action(view_menu, "Invert", lambda c: win.session.set_invert(c), "I", True)
        self.rotate_action = self._action(view_menu, "Rotate 90° (2D)", self.rotate, "R")
        self.flip_action = self._action(view_menu, "Flip horizontally (2D)", self.flip, "H")
        view_menu.addSeparator()
        view_menu.addActions(win.reading_toolbar.mpr_actions)  # oblique MPR: rotate, reset, patient axes
        for dock in win.docks.values():
            view_menu.addAction(dock.toggleViewAction())

        window_menu = bar.addMenu("&Window")
        for name in CT_PRESETS:
            self._action(window_menu, f"CT {name}", lambda _=False, n=name: win.apply_preset(n), PRESET_KEYS.get(name))
        self._action(window_menu, "Automatic (percentiles)", lambda: win.apply_preset("auto"), "Alt+0")
        window_menu.addSeparator()
        self.user_preset_menu = window_menu.addMenu("My presets")
        self._action(window_menu, "Save window as preset…", self.save_window_preset)
        self.delete_preset_menu = window_menu.addMenu("Delete a preset")

        tools_menu = bar.addMenu("&Tools")
        tool_group = QtGui.QActionGroup(win)
        for name, key in (("navigate", "N"), ("distance", "D"), ("angle", "A")):
            a = self._action(tools_menu, name.capitalize(), lambda _=False, n=name: win.set_tool(n), key, True)
            tool_group.addAction(a)
            self.tool_actions[name] = a
        self.tool_actions["navigate"].setChecked(True)

        ai_menu = bar.addMenu("&AI")
        self._action(ai_menu, "Run the selected model", lambda: win.ai_panel.run(), "Ctrl+R")
        self._action(ai_menu, "Grad-CAM of the selected model", lambda: win.ai_panel.run("gradcam"))
        self._action(ai_menu, "Occlusion map of the selected model", lambda: win.ai_panel.run("occlusion"))
        self._action(ai_menu, "Cancel the running models", lambda: win.ai_panel.cancel())
        ai_menu.addSeparator()
        self._action(ai_menu, "Train classifier from ROIs…", win.open_train_classifier)

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "Keyboard shortcuts", self.show_shortcuts, "F1")
        self._action(help_menu, "About MedViewer", self.show_about)

    def _build_toolbar(self) -> None:
        win = self.win
        tb = win.addToolBar("Main")
        tb.setObjectName("toolbar-main")
        tb.addWidget(QtWidgets.QLabel(" Layout "))
        for name, _ in LAYOUT_TEXTS:
            tb.addAction(self.layout_actions[name])
        tb.addSeparator()
        tb.addWidget(QtWidgets.QLabel(" Window "))
        self.preset_combo = QtWidgets.QComboBox()
        self.preset_combo.textActivated.connect(lambda t: t != "—" and win.apply_preset(t))
        tb.addWidget(self.preset_combo)
        self.refresh_presets()
        tb.addAction(self.invert_action)
        tb.addSeparator()
        for a in self.tool_actions.values():
            tb.addAction(a)
        tb.addSeparator()
        self.cine_action = QtGui.QAction("▶ Cine", win)
        self.cine_action.setCheckable(True)
        self.cine_action.setShortcut(QtGui.QKeySequence("Space"))
        self.cine_action.toggled.connect(lambda on: win.set_cine(on, self.fps.value()))
        win.addAction(self.cine_action)
        tb.addAction(self.cine_action)
        self.fps = QtWidgets.QSpinBox()
        self.fps.setRange(1, 60)
        self.fps.setValue(10)
        self.fps.setSuffix(" fps")
        self.fps.valueChanged.connect(lambda v: win.set_cine(self.cine_action.isChecked(), v))
        tb.addWidget(self.fps)
        tb.addSeparator()
        tb.addWidget(QtWidgets.QLabel(" Slice "))
        self.slice_slider = QtWidgets.QSlider(Qt.Horizontal)
        self.slice_slider.setMinimumWidth(160)
        self.slice_slider.valueChanged.connect(lambda k: win.grid.active_view().set_slice(k))
        tb.addWidget(self.slice_slider)

    # --- state ------------------------------------------------------------------------
    def check_layout(self, name: str) -> None:
        if name in self.layout_actions:
            self.layout_actions[name].setChecked(True)

    def sync_to_volume(self, volume) -> None:
        self.invert_action.setChecked(self.win.session.invert)
        for name in ("1x3", "2x2", "2x2-3d", "3d"):  # the compare layouts take 2D images too
            self.layout_actions[name].setEnabled(not volume.is_2d)
            reason = "a 2D image has one plane and no 3D view" if volume.is_2d else ""
            self.layout_actions[name].setToolTip(reason or self.layout_actions[name].text())
        self.rotate_action.setEnabled(volume.is_2d)
        self.flip_action.setEnabled(volume.is_2d)
        self.preset_combo.setCurrentIndex(0)

    def refresh_presets(self) -> None:
        """The built-in and the user's window presets in the toolbar combo and the Window menu."""
        from medviewer.ui.window_presets import user_presets

        mine = list(user_presets())
        self.preset_combo.blockSignals(True)
        self.preset_combo.clear()
        self.preset_combo.addItems(["—", "auto"] + list(CT_PRESETS) + mine)
        self.preset_combo.blockSignals(False)
        for menu, slot in ((self.user_preset_menu, self.win.apply_preset), (self.delete_preset_menu, self.delete_preset)):
            menu.clear()
            for name in mine:
                menu.addAction(name, lambda n=name, slot=slot: slot(n))
            menu.setEnabled(bool(mine))

    def save_window_preset(self, name: str | None = None) -> str | None:
        """Save the active image's window under a name (asked for when not given)."""
        from medviewer.core.errors import MedViewerError
        from medviewer.ui.window_presets import save_preset

        window = self.win.grid.active_session().window
        if name is None:
            name, ok = QtWidgets.QInputDialog.getText(
                self.win, "Save window as preset", f"Name for W {window.width:.0f} L {window.level:.0f}:")
            if not ok:
                return None
        try:
            saved = save_preset(name, window)
        except MedViewerError as exc:
            self.win.report_problem(str(exc))
            return None
        self.refresh_presets()
        self.win.statusBar().showMessage(f"Window preset {saved!r} saved (W {window.width:.0f} L {window.level:.0f})", 5000)
        return saved

    def delete_preset(self, name: str) -> None:
        from medviewer.ui.window_presets import delete_preset

        delete_preset(name)
        self.refresh_presets()

    def refresh_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.win.recent_files():
            self.recent_menu.addAction(path, lambda p=path: self.win.open_paths([p]))
        self.recent_menu.setEnabled(bool(self.win.recent_files()))

    # --- slots ------------------------------------------------------------------------
    def _ask_files(self, title: str, then) -> None:
        paths, _ = QtWidgets.QFileDialog.getOpenFileNames(self.win, title, "", IMAGE_FILTER)
        if paths:
            then(paths)

    def _ask_folder(self, title: str, then) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self.win, title)
        if path:
            then([path])

    def open_file(self) -> None:
        self._ask_files("Open images", self.win.open_paths)

    def open_folder(self) -> None:
        self._ask_folder("Open a folder of images", self.win.open_paths)

    def open_beside(self) -> None:
        self._ask_files("Open images beside the one shown", self.win.open_beside)

    def open_folder_beside(self) -> None:
        self._ask_folder("Open a folder beside the image shown", self.win.open_beside)

    def open_demo(self) -> None:
        from medviewer.resources import demo_paths

        self.win.open_paths([str(p) for p in demo_paths()])

    def save_screenshot(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self.win, "Save screenshot", "medviewer.png", "PNG (*.png)")
        if path:
            self.win.grid.grab().save(path)

    def rotate(self) -> None:
        for view in self.win.grid.views.values():
            view.set_display_transform(view.rotation + 1, view.flip_h)

    def flip(self) -> None:
        for view in self.win.grid.views.values():
            view.set_display_transform(view.rotation, not view.flip_h)

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td>{a}</td><td><b>{k}</b></td></tr>" for a, k in SHORTCUTS)
        QtWidgets.QMessageBox.information(self.win, "Keyboard shortcuts", f"<table>{rows}</table>")

    def show_about(self) -> None:
        from medviewer import __version__

        QtWidgets.QMessageBox.about(self.win, "About MedViewer",
                                    f"MedViewer {__version__}<br><br><b>Not for clinical use.</b> "
                                    "Research and demonstration software; not a medical device.")


def build_actions(win) -> Actions:
    return Actions(win)
