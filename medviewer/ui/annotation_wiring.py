"""Connects annotation to the main window: dock, Edit/Labels menus, keys, saving, autosave."""
from __future__ import annotations

import os

from medviewer.core.errors import MedViewerError
from medviewer.io import recovery
from medviewer.ui.annotation_controller import AnnotationController
from medviewer.ui.annotation_panel import AnnotationPanel
from medviewer.ui.hand_over import Task
from medviewer.ui.qt import QtCore, QtGui, QtWidgets

AUTOSAVE_MS = 3000
LABEL_FILTER = "Label maps (*.nii.gz *.nii *.nrrd *.seg.nrrd);;DICOM SEG (*.dcm);;All files (*)"


class AnnotationWiring(QtCore.QObject):
    def __init__(self, win):
        super().__init__(win)
        self.win = win
        session = win.session
        self.controller = AnnotationController(session, self)
        for view in win.grid.views.values():
            view.annotator = self.controller
        self.panel = AnnotationPanel(session, self.controller)
        self.controller.message.connect(lambda m: win.statusBar().showMessage(m, 5000))
        self.controller.tool_changed.connect(self._tool_changed)
        self.panel.operation.connect(self.run_operation)
        self.panel.undo_button.clicked.connect(self.undo)
        self.panel.redo_button.clicked.connect(self.redo)
        self.panel.low.valueChanged.connect(self.update_threshold_preview)
        self.panel.high.valueChanged.connect(self.update_threshold_preview)
        self.panel.outline.toggled.connect(lambda on: [v.set_outline(on) for v in win.grid.views.values()])
        session.label_layers_changed.connect(self._watch_maps)
        self._watched: list = []
        self._dirty_since_autosave = False
        self.autosave_timer = QtCore.QTimer(self)
        self.autosave_timer.setInterval(AUTOSAVE_MS)
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start()
        self.stats_timer = QtCore.QTimer(self)
        self.stats_timer.setSingleShot(True)
        self.stats_timer.setInterval(400)
        self.stats_timer.timeout.connect(self.refresh_statistics)
        # compression of the autosave and statistics of large label maps run off the GUI thread
        self._autosave_task: Task | None = None
        self._stats_task: Task | None = None

    # --- menus and keys ------------------------------------------------------------------
    def build_menus(self) -> None:
        """Edit and Labels menus (called once the main menus exist)."""
        win = self.win
        bar = win.menuBar()
        edit = QtWidgets.QMenu("&Edit", win)
        bar.insertMenu(bar.actions()[1], edit)
        for text, slot, keys in (("Undo", self.undo, ["Ctrl+Z"]), ("Redo", self.redo, ["Ctrl+Shift+Z", "Ctrl+Y"])):
            a = QtGui.QAction(text, win)
            a.setShortcuts([QtGui.QKeySequence(k) for k in keys])
            a.triggered.connect(slot)
            edit.addAction(a)
            win.addAction(a)
        labels_menu = QtWidgets.QMenu("&Labels", win)
        bar.insertMenu(bar.actions()[-1], labels_menu)  # before Help
        for text, slot in (("New label map", lambda: win.session.add_label_map()),
                           ("Open labels…", self.open_labels_dialog),
                           ("Save labels as…", self.save_labels_dialog),
                           ("Recover autosaved labels", self.recover)):
            labels_menu.addAction(text, slot)
        labels_menu.addSeparator()
        for text, tool in (("Brush", "brush"), ("Eraser", "eraser"), ("Threshold paint", "threshold"),
                           ("Polygon", "polygon"), ("Lasso", "lasso"), ("Rectangle", "rectangle"),
                           ("Ellipse", "ellipse"), ("Flood fill", "fill"), ("Region growing", "grow")):
            labels_menu.addAction(text, lambda t=tool: self.controller.set_tool(t))
        for n in range(1, 10):  # number keys choose the active label, as in ITK-SNAP
            a = QtGui.QAction(f"Label {n}", win)
            a.setShortcut(QtGui.QKeySequence(str(n)))
            a.triggered.connect(lambda _=False, v=n: win.session.set_active(value=v))
            win.addAction(a)

    def update_threshold_preview(self, *_args) -> None:
        """Threshold paint shows, live, which voxels it may paint (ITK-SNAP's preview)."""
        ctl = self.controller
        limits = (ctl.low, ctl.high) if ctl.tool == "threshold" else None
        for view in self.win.grid.views.values():
            view.set_threshold_preview(limits)

    def _tool_changed(self, tool: str) -> None:
        self.update_threshold_preview()
        if tool != "navigate":
            for view in self.win.grid.views.values():
                view.set_tool("navigate")  # measurement tools and paint tools exclude each other

    # --- editing -----------------------------------------------------------------------
    def _watch_maps(self) -> None:
        for m in self._watched:
            m.changed.disconnect(self._changed)
        self._watched = list(self.win.session.label_maps)
        for m in self._watched:
            m.changed.connect(self._changed)
        self.stats_timer.start()

    def _changed(self, _region) -> None:
        self._dirty_since_autosave = True
        self.stats_timer.start()

    def undo(self) -> None:
        labels = self.win.session.active_labels
        if labels is not None and labels.undo() is None:
            self.win.statusBar().showMessage("Nothing to undo", 3000)

    def redo(self) -> None:
        labels = self.win.session.active_labels
        if labels is not None and labels.redo() is None:
            self.win.statusBar().showMessage("Nothing to redo", 3000)

    def run_operation(self, op: str) -> None:
        from medviewer.processing import label_cleanup, label_tools

        session = self.win.session
        labels, value = session.active_labels, session.active_value
        if op == "stats_csv":
            return self.export_statistics()
        if labels is None:
            self.win.statusBar().showMessage("No label map yet: draw something first", 5000)
            return
        if op == "interpolate":
            normal = self.win.grid.active_view().geometry_.normal_axis
            region, mask = label_tools.interpolate_between_slices(labels.data, value, normal,
                                                                  spacing=session.volume.spacing)
            if mask is not None and mask.any():
                labels.paint(region, mask, value, "fill between slices", overwrite=self.controller.overwrite)
        elif op in ("smooth", "fill_holes", "largest"):
            fn = {"smooth": lambda: label_cleanup.smooth(labels.data, value, session.volume.spacing),
                  "fill_holes": lambda: label_cleanup.fill_holes(labels.data, value),
                  "largest": lambda: label_cleanup.keep_largest_component(labels.data, value)}[op]
            result = fn()
            if result is not None:
                region, values = result
                labels.set_region(region, values, op.replace("_", " "), overwrite=self.controller.overwrite)
        elif op == "replace":
            new, ok = QtWidgets.QInputDialog.getInt(self.win, "Replace label", f"Replace label {value} with:",
                                                    0, 0, 255)
            if ok:
                labels.replace(value, new)
        elif op == "erase":
            labels.replace(value, 0)

    # --- statistics ---------------------------------------------------------------------
    def statistics(self) -> list[dict]:
        from medviewer.processing.label_stats import label_statistics

        session = self.win.session
        if session.volume is None or session.active_labels is None:
            return []
        return label_statistics(session.volume, session.active_labels)

    def refresh_statistics(self) -> None:
        if not (self.panel.isVisible() or os.environ.get("MEDVIEWER_NO_DIALOGS")):
            return
        if self._running(self._stats_task):
            self.stats_timer.start()  # after the running computation
            return
        session = self.win.session
        if session.volume is None or session.active_labels is None:
            self.panel.show_statistics([])
            return
        from medviewer.processing.label_stats import label_statistics

        self._stats_for = session.active_labels
        # a failure is not worth a message: the next edit recomputes
        self._stats_task = Task("statistics", on_done=self._show_statistics, on_error=lambda exc: None, owner=self)
        self._stats_task.start(label_statistics, session.volume, session.active_labels)

    def _show_statistics(self, rows: list[dict]) -> None:
        if getattr(self, "_stats_for", None) is self.win.session.active_labels:
            self.panel.show_statistics(rows)  # not for a label map that is no longer the active one

    def export_statistics(self, path: str | None = None) -> None:
        from medviewer.processing.label_stats import write_csv

        if path is None:
            path, _ = QtWidgets.QFileDialog.getSaveFileName(self.win, "Export statistics", "labels.csv", "CSV (*.csv)")
        if path:
            write_csv(self.statistics(), path)

    # --- saving, loading, recovery ------------------------------------------------------
    def image_key(self) -> str | None:
        source = self.win.current_source
        return self.win._image_key(source) if source is not None else None

    def save_labels(self, path: str) -> None:
        """Save the active label map; a failure says why and keeps the labels in memory."""
        session = self.win.session
        labels = session.active_labels
        if labels is None:
            raise MedViewerError("there are no labels to save")
        if path.lower().endswith(".dcm"):
            from medviewer.io.dicom_seg import blank_uid_warning, write_seg

            if getattr(self.win.current_source, "kind", "") != "dicom":
                raise MedViewerError(f"{path}: DICOM SEG needs a DICOM source series; this image is a "
                                     f"{self.win.current_source.description} file: save NIfTI or NRRD")
            write_seg(labels, session.volume, self.win.current_source, path)
            warning = blank_uid_warning(self.win.current_source)
            if warning:
                self.win.statusBar().showMessage(f"Saved; note: {warning}", 10000)
        else:
            from medviewer.io.label_io import save_labels

            save_labels(labels, session.volume, path)
        labels.modified = False
        if not any(m.modified for m in session.label_maps) and self.image_key():
            recovery.discard_recovery(self.image_key())

    def load_labels(self, path: str, resample: bool | None = None):
        """Any label file (NIfTI, NRRD, DICOM SEG, RTSTRUCT) onto the open image, through the one
        reader (io.label_io.read_any_labels); a map of another geometry is resampled if the user
        agrees (or `resample`)."""
        from medviewer.io.label_io import LabelGeometryMismatch, read_any_labels

        session, source = self.win.session, self.win.current_source
        try:
            labels = read_any_labels(path, source, session.volume, resample=bool(resample))
        except LabelGeometryMismatch as exc:
            if resample is None and not os.environ.get("MEDVIEWER_NO_DIALOGS"):
                answer = QtWidgets.QMessageBox.question(
                    self.win, "Label map does not match", f"{exc}\n\nResample it onto the image "
                    "(nearest neighbour)?", QtWidgets.QMessageBox.Yes | QtWidgets.QMessageBox.Cancel)
                resample = answer == QtWidgets.QMessageBox.Yes
            if not resample:
                raise
            labels = read_any_labels(path, source, session.volume, resample=True)
        labels.name = os.path.basename(path)
        return session.add_label_map(labels)

    def load_linked_labels(self, source) -> list[str]:
        """The SEG and RTSTRUCT files found beside the series (source.linked_labels) become label
        layers; one that cannot be read is said in the status bar, without a dialog. Returns the
        names of the layers added."""
        added, failed = [], []
        for path in getattr(source, "linked_labels", []) or []:
            try:
                added.append(self.load_labels(path, resample=False).name)
            except MedViewerError as exc:
                failed.append(str(exc))
        if failed:
            self.win.problems.extend(failed)
        if added or failed:
            text = (f"Labels found with this series: {', '.join(added)}" if added else "")
            if failed:
                text += ("; " if text else "") + f"could not read {len(failed)}: {failed[0]}"
            self.win.statusBar().showMessage(text, 15000)
        return added

    def save_labels_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self.win, "Save labels", "labels.nii.gz", LABEL_FILTER)
        if path:
            try:
                self.save_labels(path)
                self.win.statusBar().showMessage(f"Saved {path}", 5000)
            except MedViewerError as exc:
                self.win.report_problem(f"Labels not saved (they are still here): {exc}")

    def open_labels_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self.win, "Open labels", "", LABEL_FILTER + ";;RTSTRUCT (*.dcm)")
        if path:
            try:
                self.load_labels(path)
            except MedViewerError as exc:
                self.win.report_problem(str(exc))

    def autosave(self) -> None:
        session = self.win.session
        key = self.image_key()
        if not self._dirty_since_autosave or key is None or not session.label_maps:
            return
        if self.autosave_running():
            return  # the previous autosave is still being written; try again at the next tick
        # edits made from now on mark the labels dirty again, so the next tick saves them too
        self._dirty_since_autosave = False
        self._autosave_task = Task("autosave", on_error=self._autosave_failed, owner=self)
        self._autosave_task.start(recovery.write_recovery, key, recovery.recovery_snapshot(session.label_maps))

    def autosave_running(self) -> bool:
        return self._running(self._autosave_task)

    @staticmethod
    def _running(task: Task | None) -> bool:
        return task is not None and task.running

    def _autosave_failed(self, exc: BaseException) -> None:
        from medviewer.ui.errors import user_message

        self._dirty_since_autosave = True
        reason, _log = user_message(exc, "autosaving the labels")
        self.win.statusBar().showMessage(f"Autosave failed: {reason}", 5000)

    def finish_background(self) -> None:
        """Let a running autosave finish (closing the window)."""
        for task in (self._autosave_task, self._stats_task):
            if task is not None:
                task.wait(10.0)

    def recovery_available(self) -> bool:
        key = self.image_key()
        return key is not None and recovery.recovery_time(key) is not None

    def recover(self) -> int:
        """Bring back the autosaved label maps of the open image; returns how many."""
        key = self.image_key()
        maps = recovery.load_recovery(key, self.win.session.volume.shape) if key else []
        for m in maps:
            m.modified = True
            self.win.session.add_label_map(m)
        return len(maps)

    def offer_recovery(self) -> None:
        if not self.recovery_available():
            return
        if os.environ.get("MEDVIEWER_NO_DIALOGS"):
            self.win.statusBar().showMessage("Autosaved labels exist for this image: Labels > Recover", 10000)
            return
        answer = QtWidgets.QMessageBox.question(
            self.win, "Recover labels", "Labels autosaved for this image were not saved. Recover them?",
            QtWidgets.QMessageBox.Yes | QtWidgets.QMessageBox.No)
        if answer == QtWidgets.QMessageBox.Yes:
            self.recover()
        else:
            recovery.discard_recovery(self.image_key())

    def unsaved(self) -> bool:
        return any(m.modified for m in self.win.session.label_maps)

    def confirm_close(self) -> bool:
        """Ask before closing with unsaved labels; the recovery file stays until they are saved."""
        if not self.unsaved() or os.environ.get("MEDVIEWER_NO_DIALOGS"):
            self.autosave()
            return True
        answer = QtWidgets.QMessageBox.question(
            self.win, "Unsaved labels", "The labels have unsaved edits. Save them before closing?",
            QtWidgets.QMessageBox.Save | QtWidgets.QMessageBox.Discard | QtWidgets.QMessageBox.Cancel)
        if answer == QtWidgets.QMessageBox.Cancel:
            return False
        if answer == QtWidgets.QMessageBox.Save:
            self.save_labels_dialog()
            return not self.unsaved()
        if self.image_key():
            recovery.discard_recovery(self.image_key())
        return True
