"""The "Register" dock: register a moving image onto a fixed one, in the background.

Fixed and moving are workspace entries; the transform (rigid, affine, B-spline: each starts from
the one before) and the metric (Mattes mutual information for different modalities, mean squares
for the same) are processing.registration's. Run / Cancel / progress go through ui.run_controls
(one hand_over.Task): the GUI thread never registers or resamples.

Landmarks: with "Place landmarks" on, the fixed and the moving image are shown side by side; a
click on the fixed image's pane sets the fixed point of the first pair that lacks one, a click on
the moving image's pane its moving point (ViewerGrid.pane_clicked, world LPS mm). The table lists
the pairs; "Delete pair" removes the selected one. Complete pairs make "Register from landmarks"
possible (closed form, rigid or affine) and give the target registration error (TRE) of any
registration.

A finished registration adds the moving image resampled on the fixed grid as a new entry ("T2
registered (rigid, MI)"), relates the moving entry to the fixed one through the transform
(Workspace.set_transform: linked cursors follow it), turns on the checkerboard of the result over
the fixed image, and enables "Save transform…" (an ITK transform file Slicer and SimpleITK read)
and "Carry labels to fixed" (the moving image's active label map, nearest neighbour, as a new
label map of the fixed image). Bad input (2D with 3D, no overlap, no convergence) or Cancel: one
line in the panel, nothing changed, the fixed image untouched.
"""
from __future__ import annotations

import numpy as np

from medviewer.core.errors import Cancelled, MedViewerError
from medviewer.ui import hand_over
from medviewer.ui.file_dialogs import save_path
from medviewer.ui.landmark_marks import LandmarkMarks
from medviewer.ui.qt import Qt, QtWidgets, Signal
from medviewer.ui.run_controls import RunControls, one_line
from medviewer.ui.workspace_view import fuse, show_beside

TRANSFORMS = (("rigid", "Rigid"), ("affine", "Affine"), ("bspline", "B-spline (deformable)"))
METRICS = (("mi", "Mutual information (any modalities)"), ("ms", "Mean squares (same modality)"))
STARTS = (("geometry", "Centre the images on each other"), ("moments", "Centre their intensity masses"),
          ("none", "As they are (one scanner frame)"))


# --- worker side -----------------------------------------------------------------------------
def _register(fixed, moving, transform: str, metric: str, start: str, landmarks, progress=None, cancel=None):
    from medviewer.processing.registration import RegistrationSettings, register

    settings = RegistrationSettings(transform=transform, metric=metric, initialisation=start)
    return register(fixed, moving, settings, landmarks=landmarks, progress=progress, cancel=cancel)


def _register_from_landmarks(fixed, moving, kind: str, landmarks, progress=None, cancel=None):
    from medviewer.processing.registration import register_from_landmarks

    result = register_from_landmarks(fixed, moving, landmarks[0], landmarks[1], kind=kind)
    _stop_if(cancel, "landmark registration")
    return result


def _carry(labels, moving, fixed, transform, progress=None, cancel=None):
    from medviewer.processing.registration import carry_labels

    carried = carry_labels(labels, moving, fixed, transform)
    _stop_if(cancel, "carrying labels")
    return carried


def _stop_if(cancel, what: str) -> None:
    """A closed-form step cannot be interrupted; Cancel pressed meanwhile still discards its result."""
    if cancel is not None and cancel():
        raise Cancelled(f"{what} cancelled")


def _buttons(layout, *texts: str) -> list:
    """Full-width buttons, one a row (a narrow dock does not clip their text)."""
    buttons = [QtWidgets.QPushButton(text) for text in texts]
    for button in buttons:
        layout.addWidget(button)
    return buttons


def _stop_text(reason: str) -> str:
    """ITK's stop condition without the optimiser's class name and the numbers after the first sentence."""
    reason = reason.split(": ", 1)[-1] if "Optimizer" in reason.split(": ", 1)[0] else reason
    return reason.split(". ", 1)[0].rstrip(".")


def _xyz(point) -> str:
    return "" if point is None else "({:.1f}, {:.1f}, {:.1f})".format(*point)


class RegistrationPanel(QtWidgets.QWidget):
    registered = Signal(object)  # the new ImageEntry (the moving image on the fixed grid)
    labels_carried = Signal(object)  # the LabelMap added to the fixed image

    def __init__(self, window, parent=None):
        super().__init__(parent)
        self.win = window
        self.workspace = window.workspace
        self.pairs: list[list] = []  # [fixed world point | None, moving world point | None]
        self.marks = LandmarkMarks(window.grid)  # the pairs drawn in the panes
        self._paired = (None, None)  # the (fixed, moving) entries the pairs belong to
        self._paired_volumes = (None, None)  # and the images they showed
        self.result = None  # the last RegistrationResult
        self.result_entries = None  # (fixed, moving, registered) entries of the last result
        self._result_volumes = ()  # the images they showed then
        self._job = None
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        form = QtWidgets.QFormLayout()
        form.setRowWrapPolicy(QtWidgets.QFormLayout.WrapLongRows)  # a narrow dock keeps its labels whole
        self.fixed_combo, self.moving_combo = QtWidgets.QComboBox(), QtWidgets.QComboBox()
        form.addRow("Fixed", self.fixed_combo)
        form.addRow("Moving", self.moving_combo)
        self.transform_combo, self.metric_combo = QtWidgets.QComboBox(), QtWidgets.QComboBox()
        self.start_combo = QtWidgets.QComboBox()
        for combo, items in ((self.transform_combo, TRANSFORMS), (self.metric_combo, METRICS),
                             (self.start_combo, STARTS)):
            for key, text in items:
                combo.addItem(text, key)
        self.start_combo.setToolTip("Where the rigid stage starts (three or more landmark pairs: from their fit)")
        form.addRow("Transform", self.transform_combo)
        form.addRow("Metric", self.metric_combo)
        form.addRow("Start", self.start_combo)
        layout.addLayout(form)
        self.controls = RunControls("Register")
        layout.addWidget(self.controls)

        box = QtWidgets.QGroupBox("Landmarks")
        lm = QtWidgets.QVBoxLayout(box)
        self.place_button = QtWidgets.QPushButton("Place landmarks")
        self.place_button.setCheckable(True)
        self.place_button.setToolTip("Click a point in the fixed image's pane, then the same point in the moving one's")
        lm.addWidget(self.place_button)
        self.table = QtWidgets.QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Fixed (mm)", "Moving (mm)"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.setMinimumHeight(90)
        lm.addWidget(self.table)
        self.delete_button, self.landmark_button = _buttons(lm, "Delete pair", "Register from landmarks")
        layout.addWidget(box)
        self.tre_label = QtWidgets.QLabel("")
        self.tre_label.setWordWrap(True)
        layout.addWidget(self.tre_label)
        self.save_button, self.carry_button = _buttons(layout, "Save transform…", "Carry labels to fixed")
        layout.addStretch(1)

        self.controls.run_clicked.connect(self.run)
        self.place_button.toggled.connect(self._placing_toggled)
        self.delete_button.clicked.connect(self.delete_selected)
        self.landmark_button.clicked.connect(self.run_landmarks)
        self.save_button.clicked.connect(lambda: self.save_transform())
        self.carry_button.clicked.connect(self.carry_labels)
        self.controls.finished.connect(lambda _ok: self._sync_buttons())
        self.workspace.changed.connect(self._schedule_entries)
        self.fixed_combo.currentIndexChanged.connect(self._images_chosen)
        self.moving_combo.currentIndexChanged.connect(self._images_chosen)
        window.grid.pane_clicked.connect(self._pane_clicked)
        self._fill_entries()
        self._sync_buttons()

    # --- entries ------------------------------------------------------------------------------
    def _schedule_entries(self) -> None:
        hand_over.soon(self._fill_entries, owner=self)

    def _fill_entries(self) -> None:
        entries = self.workspace.entries
        for combo, fallback in ((self.fixed_combo, 0), (self.moving_combo, 1)):
            chosen = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            for entry in entries:
                combo.addItem(entry.title or entry.id, entry.id)
            index = combo.findData(chosen)
            combo.setCurrentIndex(index if index >= 0 else min(fallback, combo.count() - 1))
            combo.blockSignals(False)
        self._images_chosen()
        self._draw_marks()  # the panes may show other images now
        if self.result_entries is not None and not all(
                e in entries and e.volume is v for e, v in zip(self.result_entries, self._result_volumes)):
            self.result, self.result_entries = None, None  # what it related was closed or replaced
        self._sync_buttons()

    def _images_chosen(self, *_args) -> None:
        """Other images chosen: the landmark pairs of the previous ones no longer apply."""
        chosen = (self.fixed(), self.moving())
        volumes = tuple(e.volume if e is not None else None for e in chosen)
        if chosen != self._paired or any(a is not b for a, b in zip(volumes, self._paired_volumes)):
            self._paired, self._paired_volumes = chosen, volumes
            if self.pairs:
                self.pairs = []
                self.controls.say("Other images chosen: the landmark pairs were cleared.")
            self._refresh_table()

    def _entry(self, combo):
        try:
            return self.workspace.get(combo.currentData())
        except KeyError:
            return None

    def fixed(self):
        return self._entry(self.fixed_combo)

    def moving(self):
        return self._entry(self.moving_combo)

    def set_images(self, fixed, moving) -> None:
        """Choose the fixed and the moving image (tests, scripts)."""
        self._fill_entries()
        self.fixed_combo.setCurrentIndex(self.fixed_combo.findData(fixed.id))
        self.moving_combo.setCurrentIndex(self.moving_combo.findData(moving.id))

    def set_method(self, transform: str = "rigid", metric: str = "mi", start: str = "geometry") -> None:
        for combo, key in ((self.transform_combo, transform), (self.metric_combo, metric), (self.start_combo, start)):
            combo.setCurrentIndex(combo.findData(key))

    def _sync_buttons(self) -> None:
        idle = not self.controls.running
        self.landmark_button.setEnabled(idle and bool(self.complete_pairs()[0]))
        self.delete_button.setEnabled(bool(self.pairs))
        self.save_button.setEnabled(idle and self.result is not None)
        self.carry_button.setEnabled(idle and self.result is not None)

    # --- landmarks -----------------------------------------------------------------------------
    def _placing_toggled(self, on: bool) -> None:
        fixed, moving = self.fixed(), self.moving()
        if on and fixed is not None and moving is not None and fixed is not moving:
            show_beside(self.win, fixed, moving)
            self.controls.say("Click a point in the fixed image, then the same point in the moving image.")
            self._draw_marks()

    def _pane_clicked(self, entry, world) -> None:
        if not self.place_button.isChecked():
            return
        fixed, moving = self.fixed(), self.moving()
        if entry is fixed and entry is not moving:
            side = 0
        elif entry is moving and entry is not fixed:
            side = 1
        else:
            self.controls.say("Landmarks go on the fixed and the moving image: click in one of their panes.")
            return
        self.add_point(side, world)

    def add_point(self, side: int, world) -> None:
        """Side 0: a fixed point, 1: a moving point, into the first pair that lacks one."""
        point = tuple(float(v) for v in np.asarray(world, float)[:3])
        pair = next((p for p in self.pairs if p[side] is None), None)
        if pair is None:
            pair = [None, None]
            self.pairs.append(pair)
        pair[side] = point
        self._refresh_table()

    def delete_selected(self) -> None:
        rows = sorted({index.row() for index in self.table.selectedIndexes()}, reverse=True)
        for row in rows or ([len(self.pairs) - 1] if self.pairs else []):
            del self.pairs[row]
        self._refresh_table()

    def clear_landmarks(self) -> None:
        self.pairs = []
        self._refresh_table()

    def complete_pairs(self) -> tuple[list, list]:
        """(fixed points, moving points) of the pairs that have both."""
        done = [p for p in self.pairs if p[0] is not None and p[1] is not None]
        return [p[0] for p in done], [p[1] for p in done]

    def _refresh_table(self) -> None:
        self.table.setRowCount(len(self.pairs))
        for row, pair in enumerate(self.pairs):
            for col, point in enumerate(pair):
                item = self.table.item(row, col)
                if item is None:
                    item = QtWidgets.QTableWidgetItem()
                    self.table.setItem(row, col, item)
                item.setText(_xyz(point) or "click the image…")
                item.setForeground(Qt.gray if point is None else self.palette().text().color())
        self._sync_buttons()
        self._draw_marks()

    def _draw_marks(self) -> None:
        fixed, moving = self._paired
        numbered = list(enumerate(self.pairs, start=1))
        points = {}
        for entry, side in ((fixed, 0), (moving, 1)):
            if entry is not None:
                points[entry] = [(n, pair[side]) for n, pair in numbered if pair[side] is not None]
        self.marks.set_points(points)

    def _landmarks(self):
        fixed_points, moving_points = self.complete_pairs()
        return (fixed_points, moving_points) if fixed_points else None

    # --- running ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.controls.running

    def _chosen(self):
        fixed, moving = self.fixed(), self.moving()
        if fixed is None or moving is None or fixed.volume is None or moving.volume is None:
            self.controls.say("Open two images: a fixed and a moving one.")
            return None
        if fixed is moving:
            self.controls.say("Choose two different images: the moving one is registered onto the fixed one.")
            return None
        return fixed, moving

    def run(self) -> bool:
        """Intensity-based registration of the chosen images (landmarks, when placed, give the TRE)."""
        chosen = self._chosen()
        if chosen is None or self.running:
            return False
        fixed, moving = chosen
        transform, metric = self.transform_combo.currentData(), self.metric_combo.currentData()
        self._job = (fixed, fixed.volume, moving, moving.volume)
        started = self.controls.start(f"{transform} registration", _register, fixed.volume, moving.volume,
                                      transform, metric, self.start_combo.currentData(), self._landmarks(),
                                      on_done=self._show)
        self._sync_buttons()
        return started is not None

    def run_landmarks(self) -> bool:
        """Registration from the placed point pairs alone (closed form; B-spline asks for affine)."""
        chosen = self._chosen()
        if chosen is None or self.running:
            return False
        landmarks = self._landmarks()
        kind = "affine" if self.transform_combo.currentData() != "rigid" else "rigid"
        if landmarks is None or len(landmarks[0]) < (3 if kind == "rigid" else 4):
            need = 3 if kind == "rigid" else 4
            self.controls.say(f"A {kind} landmark registration needs at least {need} complete pairs of points.")
            return False
        fixed, moving = chosen
        self._job = (fixed, fixed.volume, moving, moving.volume)
        started = self.controls.start(f"{kind} landmark registration", _register_from_landmarks,
                                      fixed.volume, moving.volume, kind, landmarks, on_done=self._show)
        self._sync_buttons()
        return started is not None

    def cancel(self) -> None:
        self.controls.cancel()

    def _current(self, fixed, fixed_volume, moving, moving_volume) -> None:
        for entry, volume in ((fixed, fixed_volume), (moving, moving_volume)):
            if entry not in self.workspace.entries or entry.volume is not volume:
                raise MedViewerError(f"{entry.title} was closed or replaced while the registration ran; "
                                     "nothing was added.")

    def _show(self, result) -> None:
        fixed, fixed_volume, moving, moving_volume = self._job
        self._current(fixed, fixed_volume, moving, moving_volume)
        resampled = result.resampled
        fixed.session.fusion.check(resampled)  # before anything changes
        title = f"{moving.title} {result.description}"  # "T2 (series 4) registered (rigid, MI)"
        entry = self.workspace.add(resampled, title, derived_from=moving.id, operation=result.description)
        self.workspace.set_transform(moving, result.transform, fixed)
        fuse(fixed, entry, "checkerboard")
        show_beside(self.win, fixed, entry)
        self.result, self.result_entries = result, (fixed, moving, entry)
        self._result_volumes = (fixed.volume, moving.volume, entry.volume)
        tre = getattr(result, "tre_mm", None)
        n = len(self.complete_pairs()[0])
        self.tre_label.setText(f"Target registration error: <b>{tre:.2f} mm</b> (mean over {n} landmark pairs)"
                               if tre is not None else "")
        how = f"{result.iterations} iterations ({_stop_text(result.stop_reason)})" if result.iterations else \
            _stop_text(result.stop_reason)
        self.controls.say(f"{title}: checkerboard over {fixed.title}; {how}.")
        self._sync_buttons()
        self.registered.emit(entry)

    # --- the result ---------------------------------------------------------------------------------
    def save_transform(self, path: str | None = None) -> str | None:
        """The last transform as an ITK transform file (.tfm, .h5, .txt): fixed world -> moving world."""
        if self.result is None:
            return None
        if path is None:
            path = save_path(self, "Save transform", "transform.tfm", "ITK transform (*.tfm *.h5 *.txt)")
            if path is None:
                return None
        from medviewer.processing.transform_files import save_transform

        try:
            save_transform(self.result.transform, path)
        except (MedViewerError, OSError) as exc:
            self.controls.say(f"Could not save the transform: {one_line(exc, 'saving a transform')}")
            return None
        self.controls.say(f"Transform saved: {path} (maps fixed to moving world, as ITK and Slicer read it).")
        return path

    def carry_labels(self) -> bool:
        """The moving image's active label map, through the transform, onto the fixed image."""
        if self.result is None or self.running:
            return False
        fixed, moving, _entry = self.result_entries
        labels = moving.session.active_labels
        if labels is None:
            self.controls.say(f"{moving.title} has no label map to carry: load or draw one first.")
            return False
        self._carry_job = (fixed, fixed.volume)
        started = self.controls.start("carrying labels", _carry, labels, moving.volume, fixed.volume,
                                      self.result.transform, on_done=self._carried)
        self._sync_buttons()
        return started is not None

    def _carried(self, labels) -> None:
        fixed, volume = self._carry_job
        if fixed not in self.workspace.entries or fixed.volume is not volume:
            raise MedViewerError(f"{fixed.title} was closed or replaced; the labels were not added.")
        fixed.session.add_label_map(labels)
        self.controls.say(f"Label map “{labels.name}” carried to {fixed.title} (nearest neighbour).")
        self.labels_carried.emit(labels)

    def shutdown(self) -> None:
        if self.controls.task is not None:
            self.controls.task.discard()
