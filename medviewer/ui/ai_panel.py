"""The AI panel: run a model on the current image in the background and see what it thinks.

Models compatible with the image are listed first; the others are greyed with the reason. Run,
Grad-CAM, Occlusion and Cancel go through the inference service (via AIBridge, so the window never
waits); results arrive on the GUI thread:
- classification: a bar per class with its (calibrated) probability, the decision threshold and
  its rule, the interval of the probability under test-time augmentation, and in words whether
  the prediction is uncertain or the image out of the training distribution; the model's card;
- segmentation: the mask as a new label layer (one undoable step, editable with every tool), the
  foreground probability and the uncertainty (entropy of the test-time-augmented probabilities)
  as heat map layers;
- explanation and anomaly maps: heat map layers with colour map, opacity, threshold and colour bar,
  exportable as PNG (image with the overlay) and NIfTI (the map itself).
Every run on an image stays in its history and can be shown again. A result that arrives for an
image no longer on screen only goes to that image's history; a cancelled or failed run changes
nothing.
"""
from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medviewer.ai.inference import check_input
from medviewer.ai.registry import discover_models
from medviewer.core.colormaps import NAMES, colour_table
from medviewer.core.heatmap import HeatMap
from medviewer.core.labels import LabelMap, LabelTable
from medviewer.ui import hand_over
from medviewer.ui.ai_bridge import AIBridge
from medviewer.ui.list_rows import list_rows
from medviewer.ui.qt import Qt, QtCore, QtGui, QtWidgets, Signal

RUN_TASK = {"classification": "classify", "segmentation": "segment", "anomaly": "anomaly"}
TASK_TITLES = {"classify": "classification", "segment": "segmentation", "gradcam": "Grad-CAM",
               "occlusion": "occlusion", "anomaly": "anomaly map"}


@dataclass
class Run:
    """One finished run on one image (what the history lists)."""
    number: int
    job: Any
    source_id: str
    summary: str
    heatmaps: list[HeatMap] = field(default_factory=list)
    labels: LabelMap | None = None


def _card(spec) -> str:
    m = spec.manifest
    rows = [f"<b>{html.escape(spec.name)}</b> v{html.escape(str(m.get('version', '')))} — "
            f"{html.escape(m.get('task', ''))}",
            html.escape(m.get("description", ""))]
    metrics = m.get("metrics", {})
    shown = []
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            shown.append(f"{html.escape(key)} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
        elif isinstance(value, dict) and value and all(isinstance(v, (int, float)) for v in value.values()):
            shown.append(f"{html.escape(key)} " + ", ".join(f"{k} {v:.3g}" for k, v in value.items()))
    if shown:
        rows.append("<i>Measured:</i> " + "; ".join(shown[:8]))
    if metrics.get("measured_on"):
        rows.append(f"<i>On:</i> {html.escape(str(metrics['measured_on']))}")
    for split in ("validation", "test"):  # v2 manifests: figures with 95% intervals, per split
        figures = _with_intervals(metrics.get(split))
        if figures:
            on = metrics[split].get("measured_on", "")
            rows.append(f"<i>{split.capitalize()}:</i> {figures}" + (f" <small>({html.escape(str(on))})</small>" if on else ""))
    decision = m.get("decision") or {}
    if "threshold" in decision:
        rows.append(f"<i>Threshold:</i> {html.escape(str(decision.get('positive_class', '')))} ≥ "
                    f"{float(decision['threshold']):.3f} — {html.escape(str(decision.get('rule', '')))}")
    if (m.get("calibration") or {}).get("temperature"):
        rows.append(f"<i>Calibration:</i> temperature {float(m['calibration']['temperature']):.3g} "
                    f"({html.escape(str(m['calibration'].get('fitted_on', '')))})")
    training = m.get("training", {})
    if isinstance(training, dict) and training.get("data"):
        rows.append(f"<i>Trained on:</i> {html.escape(str(training['data']))}")
    rows.append(f"<i>Intended use:</i> <b>{html.escape(m.get('intended_use', ''))}</b>")
    return "<br>".join(r for r in rows if r)


def trust_text(result) -> str:
    """What the panel says about one classification besides its bars: the threshold and its rule,
    the calibration, the interval under test-time augmentation and the flags, in words (HTML)."""
    rows = []
    if result.threshold is not None:
        rule = f" ({html.escape(result.rule)})" if result.rule else ""
        rows.append(f"Decision: {html.escape(result.positive_class)} when its probability ≥ "
                    f"{result.threshold:.3f}{rule}")
    else:
        rows.append("Decision: the most probable class (no threshold chosen for this model)")
    p = result.probabilities[result.positive_class or result.prediction]
    shown = html.escape(result.positive_class or result.prediction)
    if result.temperature != 1.0:
        raw = (result.uncalibrated or {}).get(result.positive_class or result.prediction)
        rows.append(f"Calibrated probability of {shown}: {p:.3f} (temperature {result.temperature:.3g}"
                    + (f"; {raw:.3f} before calibration" if raw is not None else "") + ")")
    else:
        rows.append(f"Probability of {shown}: {p:.3f} (not calibrated)")
    if result.interval is not None:
        lo, hi = result.interval
        rows.append(f"Under {result.tta_variants} small shifts, zooms and contrast changes: "
                    f"{html.escape(result.interval_class)} {lo:.3f}–{hi:.3f}")
    for flag in result.flags():
        rows.append(f"<b style='color:#a33'>{html.escape(flag[0].upper() + flag[1:])}</b>")
    if result.ood_distance is not None and not result.out_of_distribution:
        rows.append(f"Like the training images (feature distance {result.ood_distance:.1f} ≤ "
                    f"{result.ood_threshold:.1f})")
    return "<br>".join(rows)


def _with_intervals(split) -> str:
    """'accuracy 0.93 [0.91, 0.95], ...' of a split's {"name": {"value", "ci95"}} figures."""
    if not isinstance(split, dict):
        return ""
    parts = []
    for name, figure in split.items():
        if isinstance(figure, dict) and isinstance(figure.get("value"), (int, float)):
            ci = figure.get("ci95")
            interval = f" [{ci[0]:.3g}, {ci[1]:.3g}]" if isinstance(ci, (list, tuple)) and len(ci) == 2 else ""
            parts.append(f"{html.escape(name)} {figure['value']:.3g}{interval}")
        elif name in ("ece", "n") and isinstance(figure, (int, float)):
            parts.append(f"{html.escape(name)} {figure:.3g}")
    return ", ".join(parts[:8])


class ColourBar(QtWidgets.QLabel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFixedHeight(16)
        self.setMinimumWidth(60)
        self.colormap, self.threshold = "inferno", 0.2

    def set_map(self, colormap: str, threshold: float) -> None:
        self.colormap, self.threshold = colormap, threshold
        self.update()

    def paintEvent(self, ev) -> None:
        painter = QtGui.QPainter(self)
        w, h = self.width(), self.height()
        table = colour_table(self.colormap)
        row = np.ascontiguousarray(table[np.linspace(0, 255, max(w, 1)).astype(int)][None].repeat(h, 0))
        image = QtGui.QImage(row.data, w, h, 3 * w, QtGui.QImage.Format_RGB888)
        painter.drawImage(0, 0, image)
        x = int(round(self.threshold * (w - 1)))
        painter.setPen(QtGui.QPen(Qt.white, 2))
        painter.drawLine(x, 0, x, h)
        painter.end()


class AIPanel(QtWidgets.QWidget):
    result_shown = Signal(object)  # Run, once its result is on screen
    run_finished = Signal(object)  # Job, whatever its end (done, failed, cancelled)

    def __init__(self, session, bridge: AIBridge | None = None, model_dirs: list[str] | None = None,
                 parent=None):
        super().__init__(parent)
        self.session = session
        self.bridge = bridge or AIBridge(parent=self)
        self.model_dirs = model_dirs or []
        self.entries: list = []
        self.history: dict[str, list[Run]] = {}
        self.runs = 0
        self.probabilities: dict[str, float] = {}
        self._prediction_text = ""
        self._reasons: dict[str, str] = {}  # model name -> why it cannot run ('' = it can), per _fill_models
        self.class_bars: dict[str, QtWidgets.QProgressBar] = {}
        self.current_job = None
        self._build()
        self.bridge.progress.connect(self._on_progress)
        self.bridge.finished.connect(self._on_finished)
        session.volume_changed.connect(self._on_volume)
        session.heatmaps_changed.connect(self._refresh_heatmaps)
        # an ROI classifier becomes usable once an ROI is selected
        self._fill_pending = False
        session.active_label_changed.connect(self._schedule_fill)
        session.label_layers_changed.connect(self._schedule_fill)
        self.reload_models()

    # --- layout ------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.model_list = QtWidgets.QListWidget()
        self.model_list.setMaximumHeight(110)
        self.model_list.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.model_list.setWordWrap(True)
        self.model_list.currentRowChanged.connect(self._on_model_selected)
        layout.addWidget(self.model_list)
        self.reason_label = QtWidgets.QLabel("")
        self.reason_label.setWordWrap(True)
        self.reason_label.setStyleSheet("color: #a33")
        layout.addWidget(self.reason_label)
        buttons = QtWidgets.QGridLayout()
        self.run_button = QtWidgets.QPushButton("Run")
        self.gradcam_button = QtWidgets.QPushButton("Grad-CAM")
        self.occlusion_button = QtWidgets.QPushButton("Occlusion")
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.run_button.clicked.connect(lambda: self.run())
        self.gradcam_button.clicked.connect(lambda: self.run("gradcam"))
        self.occlusion_button.clicked.connect(lambda: self.run("occlusion"))
        self.cancel_button.clicked.connect(self.cancel)
        for i, b in enumerate((self.run_button, self.cancel_button, self.gradcam_button, self.occlusion_button)):
            buttons.addWidget(b, i // 2, i % 2)
        layout.addLayout(buttons)
        self.progress_bar = QtWidgets.QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setMaximumHeight(10)
        layout.addWidget(self.progress_bar)
        self.stage_label = QtWidgets.QLabel("Idle")
        self.stage_label.setWordWrap(True)
        layout.addWidget(self.stage_label)
        self.device_label = QtWidgets.QLabel("Device: chosen when a model first runs (CUDA > MPS > CPU)")
        self.device_label.setWordWrap(True)
        layout.addWidget(self.device_label)

        self.results_box = QtWidgets.QGroupBox("Result")
        self.results_layout = QtWidgets.QVBoxLayout(self.results_box)
        self.result_label = QtWidgets.QLabel("")
        self.result_label.setWordWrap(True)
        self.results_layout.addWidget(self.result_label)
        self.bars_widget = QtWidgets.QWidget()
        self.bars_layout = QtWidgets.QFormLayout(self.bars_widget)
        self.bars_layout.setContentsMargins(0, 0, 0, 0)
        self.results_layout.addWidget(self.bars_widget)
        self.trust_label = QtWidgets.QLabel("")  # threshold, calibration, interval, flags
        self.trust_label.setWordWrap(True)
        self.results_layout.addWidget(self.trust_label)
        layout.addWidget(self.results_box)

        heat_box = QtWidgets.QGroupBox("Heat map")
        form = QtWidgets.QFormLayout(heat_box)
        self.heat_combo = QtWidgets.QComboBox()
        self.heat_combo.setSizeAdjustPolicy(QtWidgets.QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.heat_combo.setMinimumContentsLength(8)
        self.heat_combo.currentIndexChanged.connect(self._on_heat_selected)
        form.addRow("Layer", self.heat_combo)
        self.colormap_combo = QtWidgets.QComboBox()
        self.colormap_combo.addItems(NAMES)
        self.colormap_combo.currentTextChanged.connect(lambda name: self._set_heat(colormap=name))
        form.addRow("Colours", self.colormap_combo)
        self.opacity_slider = QtWidgets.QSlider(Qt.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.valueChanged.connect(lambda v: self._set_heat(opacity=v / 100))
        form.addRow("Opacity", self.opacity_slider)
        self.threshold_slider = QtWidgets.QSlider(Qt.Horizontal)
        self.threshold_slider.setRange(0, 100)
        self.threshold_slider.valueChanged.connect(lambda v: self._set_heat(threshold=v / 100))
        form.addRow("Threshold", self.threshold_slider)
        bar_row = QtWidgets.QHBoxLayout()
        self.bar_low, self.bar_high = QtWidgets.QLabel("0"), QtWidgets.QLabel("1")
        self.colour_bar = ColourBar()
        bar_row.addWidget(self.bar_low)
        bar_row.addWidget(self.colour_bar, 1)
        bar_row.addWidget(self.bar_high)
        form.addRow("Scale", bar_row)
        export = QtWidgets.QHBoxLayout()
        self.visible_check = QtWidgets.QCheckBox("Show")
        self.visible_check.toggled.connect(lambda on: self._set_heat(visible=on))
        self.export_png_button = QtWidgets.QPushButton("PNG…")
        self.export_nifti_button = QtWidgets.QPushButton("NIfTI…")
        self.remove_heat_button = QtWidgets.QPushButton("Remove")
        self.export_png_button.clicked.connect(lambda: self.export_heatmap(kind="png"))
        self.export_nifti_button.clicked.connect(lambda: self.export_heatmap(kind="nifti"))
        self.remove_heat_button.clicked.connect(self._remove_heat)
        for w in (self.export_png_button, self.export_nifti_button):
            export.addWidget(w)
        shown = QtWidgets.QHBoxLayout()
        shown.addWidget(self.visible_check)
        shown.addWidget(self.remove_heat_button)
        form.addRow(shown)
        form.addRow("Export", export)
        layout.addWidget(heat_box)
        self.heat_box = heat_box

        self.card = QtWidgets.QTextBrowser()
        self.card.setMaximumHeight(130)
        layout.addWidget(QtWidgets.QLabel("Model card"))
        layout.addWidget(self.card)
        layout.addWidget(QtWidgets.QLabel("History (this image)"))
        self.history_list = QtWidgets.QListWidget()
        self.history_list.setMaximumHeight(110)
        self.history_list.itemActivated.connect(self._on_history_activated)
        self.history_list.itemDoubleClicked.connect(self._on_history_activated)
        layout.addWidget(self.history_list)
        notice = QtWidgets.QLabel("<i>AI output is for research and demonstration, not for clinical use.</i>")
        notice.setWordWrap(True)
        layout.addWidget(notice)
        layout.addStretch(1)
        self._set_running(False)
        self._refresh_heatmaps()

    # --- models --------------------------------------------------------------------------
    def reload_models(self) -> None:
        self.entries = discover_models(self.model_dirs)
        self._fill_models()

    def compatibility(self, entry) -> str:
        """'' when the model can run on the current image, else why not."""
        if not entry.available:
            return entry.reason
        volume = self.session.volume
        if volume is None:
            return "open an image first"
        reason = check_input(entry.spec, volume)
        if not reason and self._needs_roi(entry.spec) and self.roi_mask() is None:
            return "classifies an ROI: select a label with voxels in the active label map"
        return reason

    @staticmethod
    def _needs_roi(spec) -> bool:
        return spec.input.get("features", {}).get("region") == "roi"

    def roi_mask(self):
        """The ROI for ROI classifiers: the voxels of the active label in the active label map."""
        labels, value = self.session.active_labels, self.session.active_value
        if labels is None or not value:
            return None
        mask = labels.data == value
        return mask if mask.any() else None

    def _schedule_fill(self, *_args) -> None:
        """Session events ask for a refresh; it runs once, after the signal being delivered."""
        self._fill_pending = True
        hand_over.soon(self._fill_if_pending, owner=self)

    def _fill_if_pending(self) -> None:
        if self._fill_pending:
            self._fill_models()

    def _fill_models(self) -> None:
        """Rows are updated in place (items are only added or removed when the model count changes)."""
        self._fill_pending = False
        selected = self._current_entry()
        keep = selected.name if selected is not None else None
        self.model_list.blockSignals(True)
        # once per entry: for an ROI classifier the check scans the label map
        self._reasons = {e.name: self.compatibility(e) for e in self.entries}
        ranked = sorted(self.entries, key=lambda e: (bool(self._reasons[e.name]), e.name))
        self._ranked = ranked
        first_ok = None
        for row, (entry, item) in enumerate(zip(ranked, list_rows(self.model_list, len(ranked)))):
            reason = self._reasons[entry.name]
            task = entry.spec.task if entry.spec is not None else "?"
            item.setData(Qt.UserRole, entry.name)
            flags = item.flags() | Qt.ItemIsEnabled | Qt.ItemIsSelectable
            item.setFlags(flags & ~Qt.ItemIsEnabled if reason else flags)
            item.setToolTip(reason)
            item.setText(f"{entry.name}  ({task}) — {reason}" if reason else f"{entry.name}  ({task})")
            if not reason and first_ok is None:
                first_ok = row
        rows = [r for r, e in enumerate(ranked) if e.name == keep and not self._reasons[e.name]]
        target = rows[0] if rows else first_ok
        self.model_list.setCurrentRow(-1 if target is None else target)
        self.model_list.blockSignals(False)
        self._on_model_selected(self.model_list.currentRow())

    def _current_entry(self):
        row = self.model_list.currentRow()
        ranked = getattr(self, "_ranked", [])
        return ranked[row] if 0 <= row < len(ranked) else None

    def selected_entry(self):
        self._fill_if_pending()
        return self._current_entry()

    def select_model(self, name: str) -> bool:
        self._fill_if_pending()
        for row, entry in enumerate(getattr(self, "_ranked", [])):
            if entry.name == name and not self.compatibility(entry):
                self.model_list.setCurrentRow(row)
                return True
        return False

    def _on_model_selected(self, row: int) -> None:
        entry = self._current_entry()
        if entry is None:
            none_fit = bool(self.entries) and self.session.volume is not None
            self.reason_label.setText("No model fits this image (the greyed ones say why)." if none_fit else
                                      "No model found: see `medviewer models`." if not self.entries else
                                      "Open an image to run a model.")
        else:
            self.reason_label.setText(self._reasons.get(entry.name, ""))
        if entry is not None and entry.spec is not None:
            self.card.setHtml(_card(entry.spec))
        self._update_buttons()

    def _update_buttons(self) -> None:
        entry = self._current_entry()
        ok = entry is not None and not self._reasons.get(entry.name, "")
        torch_model = ok and entry.spec.manifest.get("framework", "torch") == "torch"
        self.run_button.setEnabled(ok)
        self.gradcam_button.setEnabled(bool(torch_model and entry.spec.task == "classification"))
        whole_image = ok and entry.spec.input.get("features", {}).get("region") == "whole image"
        self.occlusion_button.setEnabled(bool(torch_model or whole_image))

    # --- running ---------------------------------------------------------------------------
    def run(self, task: str | None = None):
        """Start the selected model (or its explanation) on the current image; returns the Job."""
        entry = self.selected_entry()
        volume = self.session.volume
        if entry is None or volume is None:
            return None
        reason = self.compatibility(entry)
        if reason:
            self.stage_label.setText(f"{entry.name} cannot run on this image: {reason}")
            return None
        task = task or RUN_TASK[entry.spec.task]
        options = {"mask": self.roi_mask()} if self._needs_roi(entry.spec) and task == "classify" else {}
        job = self.bridge.submit(task, entry.spec, volume, **options)
        job.source_id = self.session.source_id
        self.current_job = job
        queued = len(self.bridge.jobs) - 1
        self.stage_label.setText(f"{entry.name}: {TASK_TITLES[task]} queued"
                                 + (f" behind {queued} run(s)" if queued else ""))
        self.progress_bar.setValue(0)
        self._set_running(True)
        return job

    def cancel(self) -> None:
        self.bridge.cancel_all()
        self.stage_label.setText("Cancelling…")

    def _set_running(self, running: bool) -> None:
        self.cancel_button.setEnabled(running)

    def _on_progress(self, job) -> None:
        self.progress_bar.setValue(int(round(1000 * job.fraction)))
        self.stage_label.setText(f"{job.model}: {job.message}")
        if job.device:
            self.device_label.setText(f"Device: {job.device}")

    def _on_finished(self, job) -> None:
        self._set_running(bool(self.bridge.jobs))
        if job.device:
            self.device_label.setText(f"Device: {job.device}")
        title = TASK_TITLES.get(job.task, job.task)
        if job.state == "cancelled":
            self.stage_label.setText(f"{job.model}: {title} cancelled — nothing was changed")
            self.progress_bar.setValue(0)
        elif job.state == "failed":
            self.stage_label.setText(f"{job.model}: {title} failed — {job.error}. The image and labels are unchanged.")
            self.progress_bar.setValue(0)
        else:
            self.progress_bar.setValue(1000)
            stages = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in job.timings.items()
                               if k in ("queued", "load", "pre", "predict", "explain", "post", "total"))
            self.stage_label.setText(f"{job.model}: {title} done on {job.device} ({stages})")
            run = self._record(job)
            if run is not None and job.volume is self.session.volume:
                self.show_run(run)
        self.run_finished.emit(job)

    # --- results -----------------------------------------------------------------------------
    def _record(self, job) -> Run | None:
        result = job.result
        self.runs += 1
        if job.task == "classify":
            summary = f"{result.prediction} {100 * result.probability:.1f}%"
            if result.flags():
                summary += " (" + ", ".join(flag.split(":")[0] for flag in result.flags()) + ")"
        elif job.task == "segment":
            summary = "mask + probability and uncertainty maps"
        elif job.task == "anomaly":
            summary = f"anomaly score {result.score:.2f}"
        else:
            summary = f"{TASK_TITLES[job.task]} for {result.target}"
        run = Run(self.runs, job, getattr(job, "source_id", ""), summary)
        self.history.setdefault(run.source_id, []).append(run)
        if run.source_id == self.session.source_id:
            self._fill_history()
        return run

    def show_run(self, run: Run) -> None:
        """Put a run's result on screen (again): bars, mask layer, heat maps."""
        job, result = run.job, run.job.result
        volume = self.session.volume
        if volume is None or job.volume is not volume:
            return
        spec = job.spec
        self.card.setHtml(_card(spec))
        if job.task not in ("gradcam", "occlusion"):  # an explanation keeps the prediction's bars
            self._clear_bars()
        if job.task == "classify":
            self._show_probabilities(result.probabilities, result.prediction)
            self._prediction_text = f"<b>{html.escape(spec.name)}</b>: {html.escape(result.prediction)}"
            self.result_label.setText(self._prediction_text)
            self.trust_label.setText(trust_text(result))
        elif job.task == "segment":
            if run.labels is None or run.labels not in self.session.label_maps:
                run.labels = self._mask_layer(spec, result.labels.data, run.number)
            if not run.heatmaps:
                run.heatmaps = [HeatMap(result.probabilities.data, f"{spec.name} #{run.number} probability",
                                        colormap="viridis", threshold=0.5, opacity=0.45, kind="probability",
                                        method="probability"),
                                HeatMap(result.uncertainty.data, f"{spec.name} #{run.number} uncertainty",
                                        colormap="hot", threshold=0.2, opacity=0.5, kind="uncertainty",
                                        method="uncertainty")]
            counts = {lab.name: int(np.count_nonzero(run.labels.data == lab.value)) for lab in run.labels.table}
            self.result_label.setText(f"<b>{html.escape(spec.name)}</b>: new label layer "
                                      f"'{html.escape(run.labels.name)}' (" + ", ".join(
                                          f"{html.escape(k)} {v} voxels" for k, v in counts.items()) + ")")
            uncertain = float((result.uncertainty.data >= 0.5).mean())
            self.trust_label.setText(
                f"Uncertainty map: entropy of the class probabilities"
                + (f" averaged over {html.escape(', '.join(result.tta))}" if result.tta else "")
                + f" (0 certain, 1 undecided); {100 * uncertain:.1f}% of the voxels at 0.5 or more")
        else:
            if not run.heatmaps:
                kind = "anomaly" if job.task == "anomaly" else "explanation"
                name = f"{spec.name} #{run.number} {TASK_TITLES[job.task]}"
                run.heatmaps = [HeatMap(result.map.data, name, colormap="inferno",
                                        threshold=0.9 if kind == "anomaly" else 0.2, opacity=0.5, kind=kind,
                                        method=TASK_TITLES[job.task])]
            text = f"<b>{html.escape(spec.name)}</b>: {html.escape(run.summary)}"
            if getattr(result, "probability", None) is not None:
                text += f" (p = {result.probability:.3f})"
            if getattr(result, "note", ""):
                text += f"<br><i>{html.escape(result.note)}</i>"
            if job.task in ("gradcam", "occlusion") and self._prediction_text:
                text = self._prediction_text + "<br>" + text
            self.result_label.setText(text)
        for heatmap in run.heatmaps:
            if heatmap not in self.session.heatmaps:
                self.session.add_heatmap(heatmap)
        if run.heatmaps:
            self.select_heatmap(run.heatmaps[-1])
        self.result_shown.emit(run)

    def _mask_layer(self, spec, labels: np.ndarray, number: int) -> LabelMap:
        table = LabelTable()
        for value, info in sorted(spec.outputs.get("labels", {}).items(), key=lambda kv: int(kv[0])):
            info = info if isinstance(info, dict) else {"name": str(info)}
            table.add(name=info.get("name"), value=int(value), colour=info.get("colour"))
        layer = LabelMap(self.session.volume.shape, f"{spec.name} #{number}", table=table)
        # the whole mask is one undoable step: Ctrl+Z after accepting it takes it back
        layer.set_region((slice(None),) * 3, labels.astype(np.uint8), f"{spec.name} mask")
        self.session.add_label_map(layer)
        return layer

    def _clear_bars(self) -> None:
        while self.bars_layout.rowCount():
            self.bars_layout.removeRow(0)
        self.class_bars = {}
        self.probabilities = {}
        self._prediction_text = ""
        self.result_label.setText("")
        self.trust_label.setText("")

    def _show_probabilities(self, probabilities: dict[str, float], prediction: str) -> None:
        self.probabilities = dict(probabilities)
        for name, p in probabilities.items():
            bar = QtWidgets.QProgressBar()
            bar.setRange(0, 1000)
            bar.setValue(int(round(1000 * p)))
            bar.setFormat(f"{100 * p:.1f}%")
            bar.setTextVisible(True)
            if name == prediction:
                bar.setStyleSheet("QProgressBar::chunk { background: #d9534f; }")
            label = QtWidgets.QLabel(f"<b>{html.escape(name)}</b>" if name == prediction else html.escape(name))
            self.bars_layout.addRow(label, bar)
            self.class_bars[name] = bar

    # --- history -------------------------------------------------------------------------------
    def _fill_history(self) -> None:
        """Rows are updated in place, like the model list."""
        runs = self.history.get(self.session.source_id, [])
        for run, item in zip(runs, list_rows(self.history_list, len(runs))):
            job = run.job
            item.setText(f"#{run.number} {job.model} — {TASK_TITLES[job.task]}: {run.summary} "
                         f"({job.timings.get('total', 0):.2f} s, {job.device})")
            item.setData(Qt.UserRole, run.number)

    def _on_history_activated(self, item) -> None:
        number = item.data(Qt.UserRole)
        for run in self.history.get(self.session.source_id, []):
            if run.number == number:
                self.show_run(run)
                return

    # --- heat maps ------------------------------------------------------------------------------
    def current_heatmap(self) -> HeatMap | None:
        i = self.heat_combo.currentIndex()
        maps = self.session.heatmaps
        return maps[i] if 0 <= i < len(maps) else None

    def select_heatmap(self, heatmap: HeatMap) -> None:
        if heatmap in self.session.heatmaps:
            self.heat_combo.setCurrentIndex(self.session.heatmaps.index(heatmap))

    def _refresh_heatmaps(self) -> None:
        current = self.current_heatmap()
        self.heat_combo.blockSignals(True)
        self.heat_combo.clear()
        for h in self.session.heatmaps:
            self.heat_combo.addItem(h.name)
        if current in self.session.heatmaps:
            self.heat_combo.setCurrentIndex(self.session.heatmaps.index(current))
        elif self.session.heatmaps:
            self.heat_combo.setCurrentIndex(len(self.session.heatmaps) - 1)
        self.heat_combo.blockSignals(False)
        self._on_heat_selected()

    def _on_heat_selected(self, *_) -> None:
        h = self.current_heatmap()
        enabled = h is not None
        for w in (self.colormap_combo, self.opacity_slider, self.threshold_slider, self.visible_check,
                  self.export_png_button, self.export_nifti_button, self.remove_heat_button):
            w.setEnabled(enabled)
        if h is None:
            return
        self._syncing = True
        self.colormap_combo.setCurrentText(h.colormap)
        self.opacity_slider.setValue(int(round(100 * h.opacity)))
        self.threshold_slider.setValue(int(round(100 * h.threshold)))
        self.visible_check.setChecked(h.visible)
        self._syncing = False
        self.colour_bar.set_map(h.colormap, h.threshold)
        self.bar_low.setText(f"{h.vmin:g}")
        self.bar_high.setText(f"{h.vmax:g}")

    def _set_heat(self, **settings) -> None:
        h = self.current_heatmap()
        if h is None or getattr(self, "_syncing", False):
            return
        h.set_display(**settings)
        self.colour_bar.set_map(h.colormap, h.threshold)

    def _remove_heat(self) -> None:
        h = self.current_heatmap()
        if h is not None:
            self.session.remove_heatmap(h)

    def export_heatmap(self, path: str | None = None, kind: str = "png") -> str | None:
        """Write the selected heat map: PNG (image with the overlay) or NIfTI (the map itself)."""
        h = self.current_heatmap()
        volume = self.session.volume
        if h is None or volume is None:
            return None
        if path is None:
            filters = "PNG image (*.png)" if kind == "png" else "NIfTI (*.nii.gz *.nii)"
            default = h.name.replace(" ", "_").replace("#", "") + (".png" if kind == "png" else ".nii.gz")
            path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export heat map", default, filters)
            if not path:
                return None
        from medviewer.core.errors import MedViewerError
        from medviewer.io import write_volume
        from medviewer.io.overlay_png import write_overlay_png

        try:
            if kind == "png":
                write_overlay_png(path, volume, h.data, colormap=h.colormap, threshold=h.threshold,
                                  opacity=h.opacity, caption=h.name)
            else:
                write_volume(volume.copy_geometry(h.data), path)
        except MedViewerError as exc:
            QtWidgets.QMessageBox.warning(self, "Export heat map", str(exc))
            return None
        self.stage_label.setText(f"Wrote {os.path.basename(path)}")
        return path

    # --- image changes ----------------------------------------------------------------------------
    def _on_volume(self) -> None:
        # runs on the previous image go on in the background; their results only reach its history
        self._clear_bars()
        self._schedule_fill()
        self._fill_history()

    def shutdown(self) -> None:
        self.bridge.cancel_all()
        self.bridge.shutdown(wait=2.0)
