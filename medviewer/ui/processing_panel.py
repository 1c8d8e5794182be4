"""The "Process" dock: run an image-processing operation on an open image, in the background.

The operations are processing.operations' (clustering included, see `_operations`), listed by group
(Denoise, Enhance, Bias field, Edges, Morphology, Threshold, Cluster, Geometry); the form below the
list is built from the chosen operation's parameters. The input is a workspace entry (default: the
image of the compare pane clicked last, else the primary). Run / Cancel / progress go through
ui.run_controls (one hand_over.Task; the GUI thread never filters). What a finished run gives:

- an image (output "image") -> a new workspace entry derived from the input, shown beside it;
- an edge map (output "overlay") -> a new entry fused over the input as a colour overlay;
- a label map (output "labels": thresholds, clusters) -> a label layer of the input's session.

A cancelled or failed run changes nothing and says why in one line; a result whose input was
closed or replaced while it ran is dropped with a message.
"""
from __future__ import annotations

import numpy as np

from medviewer.core.display import Window
from medviewer.core.errors import MedViewerError
from medviewer.ui import hand_over
from medviewer.ui.param_form import ParamForm
from medviewer.ui.qt import QtWidgets, Signal
from medviewer.ui.run_controls import RunControls
from medviewer.ui.workspace_view import fuse, show_beside


def _operations() -> dict:
    """Every operation, clustering included (its scikit-learn code lives in medviewer.ai)."""
    from medviewer.ai.clustering import all_operations

    return all_operations()


def _run(name: str, volume, params: dict, progress=None, cancel=None):
    """Worker side: the operation, and how an edge map is best shown over its source."""
    from medviewer.processing.operations import run_operation

    result = run_operation(name, volume, params, progress=progress, cancel=cancel)
    return result, overlay_display(result.volume)


def overlay_display(volume) -> dict:
    """Fusion settings for an edge map: a binary one (Canny) opaque yellow where the edges are,
    clear elsewhere; a graded one (gradient magnitude) in its colour map with its weaker half
    (below the median edge strength) clear."""
    if volume is None:
        return {}
    data = np.asarray(volume.data, dtype=np.float32)
    edges = data[data > 0]
    if edges.size == 0:
        return {}
    low, high = float(edges.min()), float(edges.max())
    if low == high:  # one value on the edges: it shows at 3/4 of the hot colour map (yellow)
        return {"threshold": low / 2, "window": Window(2.0 * high, 0.5 * high), "opacity": 0.9}
    return {"threshold": float(np.median(edges))}


class ProcessingPanel(QtWidgets.QWidget):
    result_added = Signal(object)  # the new ImageEntry, or the LabelMap added to the input's session

    def __init__(self, window, parent=None):
        super().__init__(parent)
        self.win = window
        self.workspace = window.workspace
        self.operations = _operations()
        self._job = None  # (input entry, its volume, operation) of the run in flight
        self._form_key = None  # (operation, entry, volume) the form was filled for
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        form = QtWidgets.QFormLayout()
        form.setRowWrapPolicy(QtWidgets.QFormLayout.WrapLongRows)  # a narrow dock keeps its labels whole
        self.input_combo = QtWidgets.QComboBox()
        form.addRow("Image", self.input_combo)
        self.op_combo = QtWidgets.QComboBox()
        form.addRow("Operation", self.op_combo)
        layout.addLayout(form)
        self.help = QtWidgets.QLabel("")
        self.help.setWordWrap(True)
        self.help.setStyleSheet("color: #888")
        layout.addWidget(self.help)
        self.form = ParamForm()
        layout.addWidget(self.form)
        self.controls = RunControls("Run")
        layout.addWidget(self.controls)
        layout.addStretch(1)
        self._fill_operations()
        self.op_combo.currentIndexChanged.connect(self._operation_chosen)
        self.input_combo.currentIndexChanged.connect(self._operation_chosen)  # defaults fit the image
        self.controls.run_clicked.connect(self.run)
        self.workspace.changed.connect(self._schedule_inputs)
        self._clicked_entry = None
        window.grid.pane_clicked.connect(self._pane_clicked)
        self._fill_inputs()

    # --- the lists ---------------------------------------------------------------------
    def _fill_operations(self) -> None:
        groups: dict[str, list] = {}
        for op in self.operations.values():
            groups.setdefault(op.group, []).append(op)
        model = self.op_combo.model()
        for group, ops in groups.items():
            self.op_combo.addItem(f"— {group} —", None)
            model.item(self.op_combo.count() - 1).setEnabled(False)  # a heading, not a choice
            for op in ops:
                self.op_combo.addItem(f"    {op.title}", op.name)
        self.op_combo.setCurrentIndex(1 if self.op_combo.count() > 1 else 0)

    def _schedule_inputs(self) -> None:
        hand_over.soon(self._fill_inputs, owner=self)

    def _fill_inputs(self) -> None:
        chosen = self.input_combo.currentData()
        self.input_combo.blockSignals(True)
        self.input_combo.clear()
        for entry in self.workspace.entries:
            self.input_combo.addItem(entry.title or entry.id, entry.id)
        index = self.input_combo.findData(chosen if chosen is not None else self._default_input().id)
        self.input_combo.setCurrentIndex(max(0, index))
        self.input_combo.blockSignals(False)
        self._operation_chosen()

    def _default_input(self):
        """The image of the compare pane clicked last, else the primary."""
        entry = self._clicked_entry
        return entry if entry in self.workspace.entries else self.workspace.primary

    def _pane_clicked(self, entry, _world) -> None:
        """A click in a compare pane makes its image the input (the pane worked in)."""
        self._clicked_entry = entry
        if entry in self.workspace.entries:
            self.set_input(entry)

    def _operation_chosen(self, *_args) -> None:
        """The form for the chosen operation, its values the defaults for the chosen image (kept
        while neither changes: a refreshed image list does not undo what the user typed)."""
        op, entry = self.operation(), self.input_entry()
        volume = entry.volume if entry is not None else None
        key = (op.name if op else None, entry.id if entry else None, id(volume))
        if op is None or key == self._form_key:
            return
        self._form_key = key
        self.form.set_params(op.params, op.defaults(volume) if volume is not None else None)
        self.help.setText(op.help)

    # --- choosing ------------------------------------------------------------------------
    def operation(self):
        name = self.op_combo.currentData()
        return self.operations.get(name) if name else None

    def choose(self, name: str, **params) -> None:
        """Select operation `name` and set some of its parameters (tests, scripts)."""
        index = self.op_combo.findData(name)
        if index < 0:
            raise KeyError(f"no operation {name!r}")
        self.op_combo.setCurrentIndex(index)
        for key, value in params.items():
            self.form.set_value(key, value)

    def set_input(self, entry) -> None:
        self._fill_inputs()
        self.input_combo.setCurrentIndex(self.input_combo.findData(entry.id))

    def input_entry(self):
        try:
            return self.workspace.get(self.input_combo.currentData())
        except KeyError:
            return None

    # --- running -----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.controls.running

    def run(self) -> bool:
        """Start the chosen operation on the chosen image; False (with a message) if it cannot start."""
        entry, op = self.input_entry(), self.operation()
        if entry is None or entry.volume is None:
            self.controls.say("Open an image first.")
            return False
        if op is None:
            self.controls.say("Choose an operation.")
            return False
        if self.running:
            return False
        self._job = (entry, entry.volume, op)
        # the form is read here, on the GUI thread; the worker only gets plain values
        return self.controls.start(op.title, _run, op.name, entry.volume, self.form.values(),
                                   on_done=self._show) is not None

    def cancel(self) -> None:
        self.controls.cancel()

    def _show(self, outcome) -> None:
        result, display = outcome
        entry, volume, op = self._job
        if entry not in self.workspace.entries or entry.volume is not volume:
            raise MedViewerError(f"{entry.title} was closed or replaced while {op.title} ran; nothing was added.")
        if result.labels is not None:
            result.labels.set_display(opacity=0.5)  # classes over the anatomy, both visible
            entry.session.add_label_map(result.labels)
            self.controls.say(f"{result.description}: label map “{result.labels.name}” added to {entry.title}.")
            self.result_added.emit(result.labels)
            return
        title = f"{result.description} of {entry.title}"
        if op.output == "overlay":
            new = self.workspace.add(result.volume, title, derived_from=entry.id, operation=result.description)
            try:
                fuse(entry, new, "overlay", colormap="hot", **display)
            except MedViewerError:
                self.workspace.remove(new)
                raise
            if entry is not self.workspace.primary:
                show_beside(self.win, self.workspace.primary, entry)
            self.controls.say(f"{title}: shown over {entry.title} (Fusion dock: opacity, colour map).")
        else:
            new = self.workspace.add(result.volume, title, derived_from=entry.id, operation=result.description)
            show_beside(self.win, entry, new)
            self.controls.say(f"{title}: added beside {entry.title}.")
        self.result_added.emit(new)

    def shutdown(self) -> None:
        """Closing: the running job is asked to stop; its result is dropped."""
        if self.controls.task is not None:
            self.controls.task.discard()
