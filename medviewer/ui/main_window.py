"""The main window: views, panels, menus, status bar; loading happens off the GUI thread."""
from __future__ import annotations

import os

import numpy as np

from medviewer.core.hanging import choose_layout, describe_choice
from medviewer.core.linking import Linker
from medviewer.core.session import Session, same_grid
from medviewer.core.workspace import Workspace
from medviewer.io.session_store import load_measurements, save_measurements
from medviewer.ui import hand_over
from medviewer.ui.actions import build_actions
from medviewer.ui.ai_bridge import AIBridge
from medviewer.ui.ai_panel import AIPanel
from medviewer.ui.annotation_wiring import AnnotationWiring
from medviewer.ui.fusion_panel import FusionPanel
from medviewer.ui.images_panel import ImagesPanel
from medviewer.ui.loader import Loader, discover_paths, load_failure
from medviewer.ui.panels import LayerPanel, MeasurementPanel
from medviewer.ui.processing_panel import ProcessingPanel
from medviewer.ui.qt import Qt, QtCore, QtWidgets
from medviewer.ui.reading_toolbar import ReadingToolbar
from medviewer.ui.registration_panel import RegistrationPanel
from medviewer.ui.series_browser import SeriesBrowser
from medviewer.ui.tag_browser import TagBrowser
from medviewer.ui.viewer_grid import LAYOUTS, ViewerGrid
from medviewer.ui.volume_slider import VolumeBar

NOTICE = "Research and demonstration software — NOT FOR CLINICAL USE"
MAX_RECENT = 10


def series_title(source, volume) -> str:
    """What layers and the status bar call an image: a DICOM series by its description and number
    ("T1 MPRAGE (series 3)"), a file by its name; never a UID."""
    if source.kind == "dicom":
        meta = volume.metadata
        description = str(meta.get("SeriesDescription") or source.description or "").strip()
        number = str(meta.get("SeriesNumber") or "").strip()
        number = "" if number in ("None", "") else number
        name = description or f"{source.modality or 'DICOM'} series"
        return f"{name} (series {number})" if number else name
    path = volume.metadata.get("path") or (source.files[0] if source.files else source.id)
    return os.path.basename(str(path).rstrip("/")) or source.id


def _scrollable(panel: QtWidgets.QWidget) -> QtWidgets.QScrollArea:
    """A tall panel keeps its rows' heights and scrolls instead of squeezing them."""
    scroll = QtWidgets.QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QtWidgets.QFrame.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
    panel.setSizePolicy(QtWidgets.QSizePolicy.Ignored, QtWidgets.QSizePolicy.Preferred)
    scroll.setWidget(panel)
    return scroll


def settings() -> QtCore.QSettings:
    path = os.environ.get("MEDVIEWER_SETTINGS")
    if path:
        return QtCore.QSettings(path, QtCore.QSettings.IniFormat)
    return QtCore.QSettings("MedViewer", "MedViewer")


class MainWindow(QtWidgets.QMainWindow):
    volume_shown = QtCore.Signal(str)  # source id, once an image is on screen
    problem = QtCore.Signal(str)

    def __init__(self, parent=None, persistent: bool = True, model_dirs: list[str] | None = None,
                 ai_service=None):
        """persistent=False (screenshots): neither restore nor save window settings.
        model_dirs: extra model folders for the AI panel (`--models`).
        ai_service: the inference service behind the AI panel (default an in-process
        ai.service.InferenceService; the app passes an ai.process_service.ProcessInferenceService)."""
        super().__init__(parent)
        self.persistent = persistent
        self.setWindowTitle(f"MedViewer — {NOTICE}")
        self.session = Session()
        self.workspace = Workspace(self.session)  # the primary image (self.session) and the images beside it
        self._hung_ids: list[str] = []  # the images the hanging rule opened beside the primary
        self.linker = Linker(self.workspace)  # cursors / scrolling / window linked in world coordinates
        self.loader = Loader(self)
        self.problems: list[str] = []
        self.sources: list = []
        self.current_source = None
        self.grid = ViewerGrid(self.session, workspace=self.workspace, linker=self.linker)
        self.setCentralWidget(self.grid)
        self.series_browser = SeriesBrowser()
        self.tag_browser = TagBrowser()
        self.layer_panel = LayerPanel(self.session, self.grid)
        self.measurement_panel = MeasurementPanel(self.session, self.grid)
        self.annotation = AnnotationWiring(self)
        bridge = AIBridge(ai_service, parent=self) if ai_service is not None else None
        self.ai_panel = AIPanel(self.session, bridge=bridge, model_dirs=model_dirs, parent=self)
        self.ai_panel.result_shown.connect(self._on_ai_result)
        self.images_panel = ImagesPanel(self)  # the open images (workspace)
        self.processing_panel = ProcessingPanel(self)  # filters, thresholds, clustering (issue 14)
        self.registration_panel = RegistrationPanel(self)
        self.fusion_panel = FusionPanel(self.workspace, self.session)  # an image fused over the primary
        self.docks = {}
        for name, widget, area in [("Series", self.series_browser, Qt.LeftDockWidgetArea),
                                   ("Layers", self.layer_panel, Qt.LeftDockWidgetArea),
                                   ("Images", self.images_panel, Qt.LeftDockWidgetArea),
                                   ("AI", _scrollable(self.ai_panel), Qt.RightDockWidgetArea),
                                   ("Process", _scrollable(self.processing_panel), Qt.RightDockWidgetArea),
                                   ("Register", _scrollable(self.registration_panel), Qt.RightDockWidgetArea),
                                   ("Fusion", _scrollable(self.fusion_panel), Qt.RightDockWidgetArea),
                                   ("Annotation", _scrollable(self.annotation.panel), Qt.RightDockWidgetArea),
                                   ("Measurements", self.measurement_panel, Qt.RightDockWidgetArea),
                                   ("DICOM tags", self.tag_browser, Qt.RightDockWidgetArea)]:
            dock = QtWidgets.QDockWidget(name, self)
            dock.setObjectName(f"dock-{name}")
            # panels keep the width the user gives them; their contents must not push the views aside
            widget.setSizePolicy(QtWidgets.QSizePolicy.Ignored, QtWidgets.QSizePolicy.Preferred)
            widget.setMinimumWidth(140)
            dock.setWidget(widget)
            self.addDockWidget(area, dock)
            self.docks[name] = dock
        self.tabifyDockWidget(self.docks["AI"], self.docks["Process"])
        self.tabifyDockWidget(self.docks["Process"], self.docks["Register"])
        self.tabifyDockWidget(self.docks["Register"], self.docks["Fusion"])
        self.tabifyDockWidget(self.docks["Register"], self.docks["Annotation"])
        self.tabifyDockWidget(self.docks["Layers"], self.docks["Images"])
        self.tabifyDockWidget(self.docks["Annotation"], self.docks["Measurements"])
        self.tabifyDockWidget(self.docks["Measurements"], self.docks["DICOM tags"])
        self.docks["AI"].raise_()
        self.docks["Layers"].raise_()
        self._build_status_bar()
        self.reading_toolbar = ReadingToolbar(self.grid, self)  # slab; oblique MPR actions (issue 13)
        self.actions_ = build_actions(self)
        self.addToolBar(self.reading_toolbar)  # beside the main toolbar: the views keep their height
        self.volume_bar = VolumeBar(self.loader, self)  # shown for a series of several volumes
        self.addToolBarBreak()
        self.addToolBar(self.volume_bar)
        self.addActions(self.volume_bar.shortcut_actions())
        self.volume_bar.volume_ready.connect(self._on_volume_switched)
        self.volume_bar.failed.connect(self.report_problem)
        self.volume_bar.set_fps(self.actions_.fps.value())  # plays at the cine rate
        self.actions_.fps.valueChanged.connect(self.volume_bar.set_fps)
        self.annotation.build_menus()
        self.cine_timer = QtCore.QTimer(self)
        self.cine_timer.timeout.connect(self._cine_step)
        self.setAcceptDrops(True)

        self.loader.discovered.connect(self._on_discovered)
        self.loader.loaded.connect(self._on_loaded)
        self.loader.failed.connect(self.report_problem)
        self.series_browser.series_activated.connect(self.load_source)
        self.series_browser.open_beside_requested.connect(self.open_source_beside)
        self.session.cursor_changed.connect(self._sync_slider)
        self.session.measurements_changed.connect(self._save_measurements)
        self.grid.active_changed.connect(lambda *_: self._sync_slider())
        for view in self.grid.views.values():
            view.hovered.connect(self.show_probe)
        if persistent:
            self._restore_settings()
        else:
            self._size_docks = True
        self.volume_bar.show_source(None)  # hidden until an image of several volumes is open

    # --- status bar -----------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_index = QtWidgets.QLabel("")
        self.status_world = QtWidgets.QLabel("")
        self.status_value = QtWidgets.QLabel("")
        for label in (self.status_index, self.status_world, self.status_value):
            label.setMinimumWidth(150)
            bar.addWidget(label)
        notice = QtWidgets.QLabel(f"<b style='color:#c00'>{NOTICE}</b>")
        notice.setObjectName("clinical-notice")
        bar.addPermanentWidget(notice)

    def show_probe(self, probe: dict) -> None:
        if not probe:
            return
        if not probe["inside"]:  # the mouse is off the image: no voxel to describe
            for label in (self.status_index, self.status_world, self.status_value):
                label.setText("")
            self.status_index.setText("outside the image")
            return
        i, w = probe["index"], probe["world"]
        self.status_index.setText(f"voxel ({i[0]}, {i[1]}, {i[2]})")
        self.status_world.setText(f"({w[0]:.1f}, {w[1]:.1f}, {w[2]:.1f}) mm")
        value = probe["value"]
        text = ", ".join(f"{v}" for v in value) if np.ndim(value) else f"{value:.6g}"
        self.status_value.setText(f"{text} {probe['unit']}".strip())

    # --- opening ------------------------------------------------------------------------
    def open_paths(self, paths: list[str], wait: bool = False) -> None:
        paths = [str(p) for p in paths]
        self._pending_paths = paths
        self._wait = wait
        self.statusBar().showMessage("Reading " + ", ".join(os.path.basename(p) or p for p in paths) + " …")
        self.loader.open_paths(paths, wait=wait)
        if wait:
            hand_over.flush()  # the panels' deferred refreshes, so the caller sees the new image everywhere

    def _on_discovered(self, sources: list, problems: list[str]) -> None:
        for p in problems:
            self.report_problem(p)
        if not sources:
            if not problems:
                self.report_problem("No images found")
            return  # the open study stays open
        self.sources = sources
        self.volume_bar.set_sources(sources)
        self.series_browser.set_sources(sources)
        for p in getattr(self, "_pending_paths", []) if self.persistent else []:
            self._add_recent(p)
        wait = getattr(self, "_wait", False)
        layout, chosen = choose_layout(sources) if self.hanging_enabled() else ("", sources[:1])
        self._hang = (layout, chosen[1:])  # opened beside once the first series is on screen
        self.load_source(sources[0], wait=wait)

    def load_source(self, source, wait: bool = False) -> None:
        self.statusBar().showMessage(f"Loading {source.id} …")
        self.loader.load(source, wait=wait or getattr(self, "_wait", False))

    def _on_loaded(self, source, volume) -> None:
        self.current_source = source
        key = self._image_key(source)
        title = series_title(source, volume)
        self.session.set_volume(volume, source.id, measurements=load_measurements(key), title=title)
        self.workspace.primary_replaced()
        self.volume_bar.show_source(source, volume)
        self.grid.set_layout(self.grid.layout_name)  # a 2D image: the single view (or the compare panes)
        self.actions_.sync_to_volume(volume)
        self.series_browser.highlight(source.id)
        self.tag_browser.set_source(source)
        for w in volume.warnings:
            self.problems.append(f"{source.id}: {w}")
        self.statusBar().showMessage(f"{title}: {volume.describe()}"
                                     + (f" — {volume.warnings[0]}" if volume.warnings else ""), 10000)
        self._sync_slider()
        self.annotation.load_linked_labels(source)  # a SEG / RTSTRUCT found beside the series
        self.annotation.offer_recovery()
        self._hang_series()
        self.volume_shown.emit(source.id)

    # --- several images: open beside, the hanging rule -------------------------------------
    def hanging_enabled(self) -> bool:
        """Whether opening a study of several series hangs them side by side (View menu; saved)."""
        return str(settings().value("hanging", "true")).lower() in ("true", "1")

    def set_hanging(self, on: bool) -> None:
        settings().setValue("hanging", "true" if on else "false")

    def set_linking(self, cursors: bool | None = None, window: bool | None = None) -> None:
        if cursors is not None:
            self.linker.enabled = bool(cursors)
            if cursors:
                self.linker.follow(self.grid.active_entry())  # the others catch up with the one in use
        if window is not None:
            self.linker.link_window = bool(window)

    def _hang_series(self) -> None:
        layout, others = getattr(self, "_hang", ("", []))
        self._hang = ("", [])
        if not layout:
            return
        for entry in [e for e in self.workspace.others() if e.id in self._hung_ids]:
            self.workspace.remove(entry)  # the previous study's hung series
        self._hung_ids = []
        self._hung = {"layout": layout, "left": len(others),
                      "text": describe_choice(layout, [self.current_source] + others)}
        for source in others:
            self._load_beside(source, hung=True, wait=getattr(self, "_wait", False))

    def open_beside(self, paths: list[str], wait: bool = False) -> None:
        """Open a file or folder as another image beside the one shown (its first series)."""
        paths = [str(p) for p in paths]
        self.statusBar().showMessage("Reading " + ", ".join(os.path.basename(p) or p for p in paths) + " beside …")

        def found(result):
            sources, problems = result
            for p in problems:
                self.report_problem(p)
            if sources:
                self._load_beside(sources[0], wait=wait)
            elif not problems:
                self.report_problem("No images found")

        if wait:
            found(discover_paths(paths))
            hand_over.flush()
        else:
            self.loader.run("discover-beside", discover_paths, paths, on_done=found,
                            on_error=lambda exc: self.report_problem(str(exc)))

    def open_source_beside(self, source, wait: bool = False) -> None:
        """A series of the open study beside the one shown (series browser: Open beside)."""
        self._load_beside(source, wait=wait)

    def _load_beside(self, source, hung: bool = False, wait: bool = False) -> None:
        if wait:
            try:
                volume = source.load()
            except Exception as exc:
                self._add_beside(source, None, hung)
                self.report_problem(load_failure(source, exc))
                return
            self._add_beside(source, volume, hung)
        else:
            def failed(exc):
                self._add_beside(source, None, hung)
                self.report_problem(load_failure(source, exc))

            self.loader.run(f"beside-{source.id}", source.load,
                            on_done=lambda volume: self._add_beside(source, volume, hung), on_error=failed)

    def _add_beside(self, source, volume, hung: bool = False) -> None:
        """volume None: it could not be read (a hung series is then left out)."""
        entry = None
        if volume is not None:
            entry = self.workspace.add(volume, series_title(source, volume), source_id=source.id)
        plan = getattr(self, "_hung", None)
        if hung and plan is not None:
            if entry is not None:
                self._hung_ids.append(entry.id)
            plan["left"] -= 1
            if plan["left"] <= 0:  # every hung series is read: their layout, one image a pane
                self._hung = None
                shown = [self.workspace.primary] + [e for e in self.workspace.others() if e.id in self._hung_ids]
                if len(shown) > 1:
                    self.set_layout(plan["layout"] if len(shown) > 2 else "compare-1x2")
                    for pane, image in zip(self.grid.compare_panes(), shown):
                        pane.set_entry(image)
                    self.statusBar().showMessage(plan["text"], 15000)
            return
        if entry is None:
            return
        self.grid.show_beside(entry, pane=self._free_pane())
        self.actions_.check_layout(self.grid.layout_name)
        self.statusBar().showMessage(f"{entry.title} beside {self.workspace.primary.title}: {volume.describe()}", 10000)

    def _free_pane(self) -> int:
        """Where an image opened beside goes: the second pane, or in a 2x2 layout the first pane
        that shows no other image yet (the last one when all do)."""
        panes = self.grid.compare_panes()
        if self.grid.layout_name != "compare-2x2":
            return 1
        shown = [p.entry for p in panes]
        for i, pane in enumerate(panes[1:], 1):
            if pane.entry is self.workspace.primary or shown.count(pane.entry) > 1:
                return i
        return len(panes) - 1

    def _image_key(self, source) -> str:
        """Measurements and autosaved labels are kept under this key; the volumes of one
        acquisition share theirs (the first volume's)."""
        source = self.volume_bar.first_of_group(source)
        return "|".join(sorted(source.files)[:1] + [source.id])

    def _on_volume_switched(self, source, volume) -> None:
        """Another volume of the series on screen (the volume bar): on the same voxel grid only the
        image changes; slice, crosshair, zoom, window, labels and measurements stay."""
        shown = self.session.volume
        if shown is None or not same_grid(volume, shown):
            if self.annotation.unsaved():
                self.volume_bar.show_source(self.current_source, shown)  # the slider goes back
                self.report_problem(f"{source.id}: this volume is on another voxel grid than the one shown; "
                                    "save the labels (Labels > Save labels as…) before showing it")
                return
            self._on_loaded(source, volume)  # a new image; nothing unsaved is lost
            return
        self.current_source = source
        self.session.replace_image(volume, source.id)
        self.tag_browser.set_source(source)
        self.series_browser.highlight(source.id)
        self.statusBar().showMessage(f"{self.session.title}: {self.volume_bar.caption.text()}", 5000)
        self.volume_shown.emit(source.id)

    def _save_measurements(self) -> None:
        if self.current_source is not None and self.session.volume is not None:
            try:
                save_measurements(self._image_key(self.current_source), self.session.measurements)
            except OSError as exc:
                self.statusBar().showMessage(f"Could not save measurements: {exc}", 5000)

    def report_problem(self, message: str) -> None:
        """Tell the user without blocking; the open study stays open."""
        self.problems.append(message)
        self.statusBar().showMessage(message, 15000)
        self.problem.emit(message)
        if os.environ.get("MEDVIEWER_NO_DIALOGS"):
            return
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Warning, "MedViewer", message,
                                    QtWidgets.QMessageBox.Ok, self)
        box.setAttribute(Qt.WA_DeleteOnClose)
        box.open()

    # --- recent files and settings ----------------------------------------------------
    def recent_files(self) -> list[str]:
        value = settings().value("recent", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _add_recent(self, path: str) -> None:
        recent = [path] + [p for p in self.recent_files() if p != path]
        settings().setValue("recent", recent[:MAX_RECENT])
        self.actions_.refresh_recent()

    def _restore_settings(self) -> None:
        s = settings()
        if s.value("geometry") is not None:
            self.restoreGeometry(s.value("geometry"))
        else:
            self.resize(1400, 850)
            self._size_docks = True
        if s.value("state") is not None:
            self.restoreState(s.value("state"))
        layout = s.value("layout", "1x3")
        if layout in LAYOUTS:
            self.set_layout(layout)

    def showEvent(self, ev) -> None:
        super().showEvent(ev)
        if getattr(self, "_size_docks", False):  # first run: give the views the room
            self._size_docks = False
            side = max(160, min(260, self.width() // 6))
            self.resizeDocks([self.docks["Series"], self.docks["Measurements"]], [side, side], Qt.Horizontal)

    def warm_ai_backend(self) -> None:
        """Have the inference service get ready for the first Run (torch imported, each available
        model run once) while the user looks at the image: call it once the window is shown. Only a
        service of its own process does this (ai.process_service): warming torch in this process
        would freeze the window while torch loads."""
        warm_up = getattr(self.ai_panel.bridge.service, "warm_up", None)
        if warm_up is None:
            return
        selected = self.ai_panel.selected_entry()
        entries = [e for e in self.ai_panel.entries if e.available]
        # only the models that can run on the image on screen (a warm-up still running when Run is
        # clicked delays it: loading a large forest is not cancellable), the one a Run would use
        # first, then the torch models (torch's first run costs most); with none that fits (no image,
        # a CT), the torch models, for the import of torch
        fitting = [e for e in entries if not self.ai_panel.compatibility(e)]
        entries = fitting or [e for e in entries if e.spec.manifest.get("framework", "torch") == "torch"]
        entries.sort(key=lambda e: (e is not selected, e.spec.manifest.get("framework", "torch") != "torch"))
        warm_up([e.spec for e in entries])

    def closeEvent(self, ev) -> None:
        if not getattr(self, "_no_questions", False) and not self.annotation.confirm_close():
            ev.ignore()
            return
        self.cine_timer.stop()
        self.volume_bar.show_source(None)  # stops playing through the volumes
        if self.persistent:
            s = settings()
            s.setValue("geometry", self.saveGeometry())
            s.setValue("state", self.saveState())
            s.setValue("layout", self.grid.layout_name)
        self.loader.shutdown()
        self.series_browser.shutdown()
        self.ai_panel.shutdown()  # cancels running models; their results are dropped
        self.processing_panel.shutdown()
        self.registration_panel.shutdown()
        self.grid.close_3d()
        if getattr(self, "_no_questions", False):
            self.annotation.autosave()
        self.annotation.finish_background()
        super().closeEvent(ev)

    def close_for_signal(self) -> None:
        """Close because the process was asked to stop: no question asked, labels autosaved (the
        recovery file is offered back at the next start)."""
        self._no_questions = True
        self.close()
        QtWidgets.QApplication.quit()

    def open_train_classifier(self):
        """The "Train classifier" dialog (non-modal: annotate while it trains)."""
        from medviewer.ui.train_classifier_dialog import TrainClassifierDialog

        dialog = getattr(self, "train_dialog", None)
        if dialog is None:
            dialog = self.train_dialog = TrainClassifierDialog(self)
        dialog.show()
        dialog.raise_()
        return dialog

    def _on_ai_result(self, run) -> None:
        """A model's segmentation becomes the active label layer, ready for the annotation tools."""
        if run.labels is not None and run.labels in self.session.label_maps:
            self.session.set_active(run.labels, next((lab.value for lab in run.labels.table), 1))

    # --- view commands (menus, toolbar, CLI) ---------------------------------------------
    def set_layout(self, name: str, plane: str | None = None) -> None:
        self.grid.set_layout(name, plane)
        self.actions_.check_layout(self.grid.layout_name)
        self._sync_slider()
        if self.grid.showing_3d:
            self._show_3d_panel()

    def _show_3d_panel(self) -> None:
        """The "3D" dock, made with the 3D view; the 3D view's problem (no OpenGL ...) is reported once."""
        if "3D" not in self.docks:
            from medviewer.ui.view3d.panel import View3DPanel

            view3d = self.grid.view3d()
            panel = View3DPanel(view3d)
            panel.message.connect(self.report_problem)
            view3d.scene_changed.connect(panel.sync)
            dock = QtWidgets.QDockWidget("3D", self)
            dock.setObjectName("dock-3D")
            panel.setSizePolicy(QtWidgets.QSizePolicy.Ignored, QtWidgets.QSizePolicy.Preferred)
            dock.setWidget(_scrollable(panel))
            self.addDockWidget(Qt.RightDockWidgetArea, dock)
            self.tabifyDockWidget(self.docks["DICOM tags"], dock)
            self.docks["3D"] = dock
            self.panel_3d = panel
            if view3d.problem:
                self.report_problem(f"3D view: {view3d.problem}")
        self.docks["3D"].show()
        self.docks["3D"].raise_()

    def apply_preset(self, name: str) -> None:
        """A built-in or user window preset on the image in use (the active compare pane's)."""
        from medviewer.ui.window_presets import user_presets

        session = self.grid.active_session()
        mine = user_presets()
        if name in mine:
            session.set_window(mine[name])
        else:
            session.apply_preset(name)

    def set_tool(self, tool: str) -> None:
        """navigate, distance or angle; a paint tool is chosen through self.annotation.controller."""
        self.annotation.controller.set_tool(None)
        for view in self.grid.views.values():
            view.set_tool(tool)

    def set_cine(self, playing: bool, fps: float | None = None) -> None:
        if fps:
            self.cine_timer.setInterval(int(1000 / fps))
        if playing:
            self.cine_timer.start()
        else:
            self.cine_timer.stop()

    def _cine_step(self) -> None:
        view = self.grid.active_view()
        g = view.geometry_
        if g is None:
            return
        k = (int(self.session.cursor[g.normal_axis]) + 1) % g.n_slices
        view.set_slice(k)

    def _sync_slider(self, *_args) -> None:
        view = self.grid.active_view()
        g = view.geometry_
        slider = self.actions_.slice_slider
        if g is None:
            return
        slider.blockSignals(True)
        slider.setRange(0, g.n_slices - 1)
        slider.setValue(int(self.session.cursor[g.normal_axis]))
        slider.blockSignals(False)

    # --- drag and drop -------------------------------------------------------------------
    def dragEnterEvent(self, ev) -> None:
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev) -> None:
        paths = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.open_paths(paths)
