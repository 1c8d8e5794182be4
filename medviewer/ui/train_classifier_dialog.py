"""The "Train classifier" dialog: classical models from the ROIs annotators labelled.

Every connected region of a label in a label map is one ROI; its class is the label's name (name
your labels "benign", "malignant", ...). The dialog takes the open image with its active label map
and any number of saved image + label map pairs, extracts IBSI radiomics features, runs the
cross-validated grid search of each chosen model type in the background (progress bar, Cancel),
then shows the comparison table and the out-of-fold ROC curves (pyqtgraph) and registers the
chosen model in the user's model folder, where the AI panel and `medviewer infer` find it.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile

from medviewer.ai.classical import MODEL_TYPES, TITLES
from medviewer.core.errors import Cancelled
from medviewer.core.paths import data_dir
from medviewer.ui.hand_over import Task
from medviewer.ui.qt import Qt, QtWidgets, Signal, pg

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (23, 190, 207)]


class TrainClassifierDialog(QtWidgets.QDialog):
    finished_training = Signal(object)  # the result dict, or None when cancelled/failed
    registered = Signal(str)  # model folder

    def __init__(self, window, parent=None):
        super().__init__(parent or window)
        self.win = window
        self.setWindowTitle("Train classifier from ROIs — research use only")
        self.resize(900, 640)
        self.pairs: list[tuple[str, str]] = []
        self.result = None
        self._tmp = tempfile.mkdtemp(prefix="medviewer-roi-")
        self._build()
        self._trainer: Task | None = None

    # --- layout ------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QtWidgets.QHBoxLayout(self)
        left = QtWidgets.QVBoxLayout()
        layout.addLayout(left, 1)
        left.addWidget(QtWidgets.QLabel("<b>Training ROIs</b> (class = label name)"))
        self.pair_list = QtWidgets.QListWidget()
        left.addWidget(self.pair_list)
        row = QtWidgets.QHBoxLayout()
        self.add_current_button = QtWidgets.QPushButton("Add open image + labels")
        self.add_files_button = QtWidgets.QPushButton("Add files…")
        self.add_current_button.clicked.connect(self.add_current)
        self.add_files_button.clicked.connect(self._add_files_dialog)
        row.addWidget(self.add_current_button)
        row.addWidget(self.add_files_button)
        left.addLayout(row)
        left.addWidget(QtWidgets.QLabel("<b>Model types</b>"))
        self.type_checks: dict[str, QtWidgets.QCheckBox] = {}
        grid = QtWidgets.QGridLayout()
        for i, kind in enumerate(MODEL_TYPES):
            box = QtWidgets.QCheckBox(TITLES[kind])
            box.setChecked(kind in ("svm", "random_forest", "logistic_regression"))
            self.type_checks[kind] = box
            grid.addWidget(box, i // 2, i % 2)
        left.addLayout(grid)
        form = QtWidgets.QFormLayout()
        self.folds_spin = QtWidgets.QSpinBox()
        self.folds_spin.setRange(2, 10)
        self.folds_spin.setValue(5)
        form.addRow("Cross-validation folds", self.folds_spin)
        self.name_edit = QtWidgets.QLineEdit("roi-classifier")
        form.addRow("Model name", self.name_edit)
        left.addLayout(form)
        buttons = QtWidgets.QHBoxLayout()
        self.train_button = QtWidgets.QPushButton("Train")
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.train_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.cancel_button)
        left.addLayout(buttons)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1000)
        left.addWidget(self.progress)
        self.status = QtWidgets.QLabel("Label ROIs of two or more classes, then Train.")
        self.status.setWordWrap(True)
        left.addWidget(self.status)

        right = QtWidgets.QVBoxLayout()
        layout.addLayout(right, 2)
        self.plot = pg.PlotWidget()
        self.plot.setBackground("w")
        for side in ("bottom", "left"):  # dark axes and text on the white plot
            axis = self.plot.getAxis(side)
            axis.setPen(pg.mkPen("k"))
            axis.setTextPen(pg.mkPen("k"))
        self.plot.setLabel("bottom", "False positive rate (1 - specificity)", color="k")
        self.plot.setLabel("left", "True positive rate (sensitivity)", color="k")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setXRange(0, 1, padding=0.02)
        self.plot.setYRange(0, 1, padding=0.02)
        self.plot.setMouseEnabled(False, False)
        self.plot.addLegend(offset=(-10, -10), labelTextColor="k", brush=pg.mkBrush(255, 255, 255, 220),
                            pen=pg.mkPen((170, 170, 170)))
        self.plot.setTitle("ROC curves (out-of-fold cross-validation)", color="k")
        right.addWidget(self.plot, 3)
        self.table = QtWidgets.QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Model", "CV ROC AUC", "CV accuracy", "Best parameters"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        right.addWidget(self.table, 2)
        self.register_button = QtWidgets.QPushButton("Register the selected model")
        self.register_button.setEnabled(False)
        self.register_button.clicked.connect(lambda: self.register())
        right.addWidget(self.register_button)
        right.addWidget(QtWidgets.QLabel("<i>Not for clinical use.</i>"))

    # --- training data -------------------------------------------------------------------
    def add_pair(self, image: str, labels: str) -> None:
        self.pairs.append((image, labels))
        self.pair_list.addItem(f"{os.path.basename(image)} + {os.path.basename(labels)}")

    def add_current(self) -> str | None:
        """The open image and its active label map (saved to a temporary file, label names kept)."""
        session = self.win.session
        source = self.win.current_source
        if session.volume is None or session.active_labels is None or not session.active_labels.data.any():
            self.status.setText("Open an image and label some ROIs first.")
            return None
        from medviewer.io import write_volume
        from medviewer.io.label_io import save_labels

        n = len(self.pairs) + 1
        image_path = source.files[0] if source is not None and len(source.files) == 1 else None
        if image_path is None or not os.path.splitext(image_path)[1]:
            image_path = os.path.join(self._tmp, f"image_{n}.nii.gz")
            write_volume(session.volume, image_path)
        labels_path = os.path.join(self._tmp, f"labels_{n}.nii.gz")
        save_labels(session.active_labels, session.volume, labels_path)
        self.add_pair(image_path, labels_path)
        return labels_path

    def _add_files_dialog(self) -> None:
        image, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Image", "", "Images (*.nii *.nii.gz *.nrrd *.mha *.dcm *.png *.jpg)")
        if not image:
            return
        labels, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Label map of that image", os.path.dirname(image),
                                                          "Label maps (*.nii *.nii.gz *.nrrd *.mha)")
        if labels:
            self.add_pair(image, labels)

    # --- training in the background -------------------------------------------------------------
    def chosen_types(self) -> list[str]:
        return [k for k, box in self.type_checks.items() if box.isChecked()]

    @property
    def training(self) -> bool:
        return self._trainer is not None and self._trainer.running

    def start(self) -> bool:
        if self.training:
            return False
        if not self.pairs:
            self.add_current()
        if not self.pairs or not self.chosen_types():
            self.status.setText("Add at least one image with labelled ROIs and choose a model type.")
            return False
        from medviewer.ai.training.radiomics_models import train_roi_classifier

        out = os.path.join(self._tmp, "trained")
        shutil.rmtree(out, ignore_errors=True)
        # the widgets are read here, on the GUI thread, never from the worker
        pairs, types, folds = list(self.pairs), self.chosen_types(), self.folds_spin.value()
        task = self._trainer = Task("train-roi", on_done=self._trained, on_error=self._failed,
                                    on_progress=self._progress, owner=self)
        task.start(train_roi_classifier, pairs, out, model_types=types, folds=folds, name="roi-classifier",
                   progress=task.report, cancel=task.is_cancelled)
        self.train_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText("Extracting features…")
        return True

    def cancel(self) -> None:
        if self.training:
            self._trainer.cancel()
            self.status.setText("Cancelling…")

    def _progress(self, payload) -> None:
        fraction, message = payload
        self.progress.setValue(int(1000 * fraction))
        self.status.setText(message)

    def _ended(self) -> None:
        self.train_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _trained(self, result: dict) -> None:
        self._ended()
        self.result = result
        self._show(result)
        self.finished_training.emit(result)

    def _failed(self, exc: BaseException) -> None:
        self._ended()
        if isinstance(exc, Cancelled):
            self.status.setText("Training cancelled.")
        else:
            from medviewer.ui.errors import user_message

            reason, log = user_message(exc, "training a classifier")
            self.status.setText(f"Training failed: {reason}" + (f" (details: {log})" if log else ""))
        self.progress.setValue(0)
        self.finished_training.emit(None)

    def _show(self, result: dict) -> None:
        results = result["results"]
        self.plot.clear()
        self.plot.plot([0, 1], [0, 1], pen=pg.mkPen((150, 150, 150), style=Qt.DashLine))
        ranked = sorted(results.items(), key=lambda kv: -kv[1]["cv_auc"])
        self.table.setRowCount(len(ranked))
        for row, (kind, r) in enumerate(ranked):
            colour = COLOURS[MODEL_TYPES.index(kind) % len(COLOURS)]
            self.plot.plot(r["roc"]["fpr"], r["roc"]["tpr"], pen=pg.mkPen(colour, width=2),
                           name=f"{r['title']} (AUC {r['cv_auc']:.3f})")
            cells = [r["title"], f"{r['cv_auc']:.3f}", f"{r['cv_accuracy']:.3f}",
                     ", ".join(f"{k}={v}" for k, v in r["best_params"].items())]
            for col, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                item.setData(Qt.UserRole, kind)
                self.table.setItem(row, col, item)
        self.table.selectRow(0)
        self.register_button.setEnabled(True)
        self.status.setText(f"{result['n']} ROIs, classes {', '.join(result['classes'])}. "
                            f"Best: {results[result['chosen']]['title']}. Select a row and register it.")
        self.progress.setValue(1000)

    # --- registering ------------------------------------------------------------------------
    def selected_type(self) -> str | None:
        items = self.table.selectedItems()
        return items[0].data(Qt.UserRole) if items else (self.result["chosen"] if self.result else None)

    def register(self, kind: str | None = None, name: str | None = None) -> str | None:
        """Save the chosen model type into the user's model folder; the AI panel lists it at once."""
        if self.result is None:
            return None
        from medviewer.ai.classical import save_model

        kind = kind or self.selected_type()
        base = re.sub(r"[^A-Za-z0-9_.-]+", "-", name or self.name_edit.text().strip() or "roi-classifier")
        name = f"{base}-{kind.replace('_', '-')}"
        folder = os.path.join(data_dir(), "models", name)
        trained = self.result["manifest"]
        save_model(self.result["results"][kind], folder, name=name, kind=kind, classes=self.result["classes"],
                   feature_names=trained["input"]["feature_names"], extraction=trained["input"]["features"],
                   modality=trained["input"]["modality"], dims=trained["input"]["dims"],
                   training=trained["training"], n_examples=self.result["n"],
                   description=f"{TITLES[kind]} on IBSI radiomics features of annotated ROIs "
                               f"({' / '.join(self.result['classes'])})")
        self.status.setText(f"Registered {name}: select it in the AI panel and Run on a new ROI.")
        panel = getattr(self.win, "ai_panel", None)
        if panel is not None:
            panel.reload_models()
        self.registered.emit(folder)
        return folder

    def done(self, code: int) -> None:  # closing the dialog cancels a running training
        self.cancel()
        super().done(code)
