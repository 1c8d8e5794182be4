"""Classical models on radiomics features: scikit-learn pipelines chosen by cross-validated grid
search, compared, saved as registry models (manifest + skops), and applied to new images or ROIs.

    fit_models(x, y, classes, model_types=MODEL_TYPES, folds=5, seed=0, progress, cancel)
        -> {type: {"estimator", "best_params", "cv_auc", "roc": {fpr, tpr}, "confusion", "report", ...}}
    save_model(result, out_dir, name, classes, feature_names, extraction, ...) -> manifest
    feature_row(spec, data, spacing, mask=None) -> the model's features of an image (or ROI)
    proba_of(spec, data, spacing, mask=None) -> {class: p}   (the classification task:
        ai.tasks.classical)

Every model is a Pipeline(StandardScaler, estimator) with class weights for imbalance where the
estimator has them (naive Bayes and KNN have none; AdaBoost and MLP are fitted on balanced sample
weights through the grid search's scoring only). Hyper-parameters come from GridSearchCV over
StratifiedKFold, scored by ROC AUC; the reported AUC and ROC curve come from out-of-fold
probabilities of the chosen configuration (cross_val_predict), not from the training fit.
scikit-learn is imported inside the functions (the viewer never loads it unless a model runs).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from medviewer.core.errors import Cancelled, MedViewerError

MODEL_TYPES = ("svm", "random_forest", "logistic_regression", "naive_bayes", "knn", "decision_tree",
               "adaboost", "mlp")
TITLES = {"svm": "SVM", "random_forest": "Random forest", "logistic_regression": "Logistic regression",
          "naive_bayes": "Gaussian naive Bayes", "knn": "k nearest neighbours", "decision_tree": "Decision tree",
          "adaboost": "AdaBoost", "mlp": "MLP"}


def _search_space(kind: str, seed: int, n_samples: int):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import AdaBoostClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    k_max = max(1, min(15, n_samples // 4))
    spaces = {
        # probabilities by sigmoid calibration on cross-validated decision values around one SVC
        # (libsvm's internal Platt scaling can invert them on small training sets; it is deprecated)
        "svm": (CalibratedClassifierCV(SVC(class_weight="balanced", random_state=seed), method="sigmoid",
                                       ensemble=False, cv=3),
                [{"estimator__kernel": ["rbf"], "estimator__C": [0.3, 1, 3, 10],
                  "estimator__gamma": ["scale", 0.01, 0.1]},
                 {"estimator__kernel": ["linear"], "estimator__C": [0.01, 0.1, 1]}]),
        "random_forest": (RandomForestClassifier(class_weight="balanced", random_state=seed, n_jobs=1),
                          {"n_estimators": [200], "max_depth": [None, 8], "min_samples_leaf": [1, 3]}),
        "logistic_regression": (LogisticRegression(class_weight="balanced", max_iter=2000),
                                {"C": [0.01, 0.1, 1, 10]}),
        "naive_bayes": (GaussianNB(), {"var_smoothing": [1e-9, 1e-6, 1e-3]}),
        "knn": (KNeighborsClassifier(), {"n_neighbors": sorted({min(k, k_max) for k in (3, 7, 15)}),
                                         "weights": ["uniform", "distance"]}),
        "decision_tree": (DecisionTreeClassifier(class_weight="balanced", random_state=seed),
                          {"max_depth": [3, 5, 8], "min_samples_leaf": [1, 5]}),
        "adaboost": (AdaBoostClassifier(random_state=seed), {"n_estimators": [100, 200], "learning_rate": [0.1, 0.5]}),
        "mlp": (MLPClassifier(max_iter=800, early_stopping=n_samples >= 50, random_state=seed),
                {"hidden_layer_sizes": [(32,), (64, 32)], "alpha": [1e-3, 1e-2]}),
    }
    if kind not in spaces:
        raise MedViewerError(f"unknown model type {kind!r}; use {', '.join(MODEL_TYPES)}")
    return spaces[kind]


def fit_models(x: np.ndarray, y: np.ndarray, classes: list[str], model_types=MODEL_TYPES, folds: int = 5,
               seed: int = 0, progress: Callable[[float, str], None] | None = None,
               cancel: Callable[[], bool] | None = None) -> dict[str, dict[str, Any]]:
    """Grid search + out-of-fold evaluation of each model type; y holds class indices."""
    from sklearn.metrics import classification_report, confusion_matrix, roc_auc_score, roc_curve
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(x, np.float64)
    y = np.asarray(y, int)
    if len(x) != len(y):
        raise MedViewerError(f"{len(x)} feature rows for {len(y)} labels")
    if not np.isfinite(x).all():
        raise MedViewerError("the features hold NaN or infinite values: drop those features first")
    counts = np.bincount(y, minlength=len(classes))
    if (counts > 0).sum() < 2:
        raise MedViewerError("training needs examples of at least two classes")
    folds = int(min(folds, counts[counts > 0].min()))
    if folds < 2:
        raise MedViewerError(f"each class needs at least 2 examples for cross-validation (counts: "
                             + ", ".join(f"{c} {n}" for c, n in zip(classes, counts)) + ")")
    say = progress or (lambda f, m: None)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    binary = len(classes) == 2
    results: dict[str, dict[str, Any]] = {}
    for i, kind in enumerate(model_types):
        if cancel is not None and cancel():
            raise Cancelled("training cancelled")
        say(i / len(model_types), f"{TITLES.get(kind, kind)}: grid search, {folds}-fold cross-validation")
        t = time.perf_counter()
        estimator, grid = _search_space(kind, seed, len(y))
        pipe = Pipeline([("scale", StandardScaler()), ("model", estimator)])
        grids = grid if isinstance(grid, list) else [grid]
        search = GridSearchCV(pipe, [{f"model__{k}": v for k, v in g.items()} for g in grids], cv=cv,
                              scoring="roc_auc" if binary else "roc_auc_ovr", n_jobs=1, refit=True)
        search.fit(x, y)
        oof = cross_val_predict(search.best_estimator_, x, y, cv=cv, method="predict_proba")
        pred = oof.argmax(1)
        if binary:
            auc = float(roc_auc_score(y, oof[:, 1]))
            fpr, tpr, _ = roc_curve(y, oof[:, 1])
        else:
            auc = float(roc_auc_score(y, oof, multi_class="ovr"))
            fpr, tpr = np.array([0.0, 1.0]), np.array([0.0, 1.0])
        results[kind] = {
            "estimator": search.best_estimator_, "title": TITLES.get(kind, kind),
            "best_params": {k.replace("model__", "").replace("estimator__", ""): v
                            for k, v in search.best_params_.items()},
            "cv_auc": round(auc, 4), "cv_accuracy": round(float((pred == y).mean()), 4),
            "roc": {"fpr": [float(v) for v in fpr], "tpr": [float(v) for v in tpr]},
            "confusion": confusion_matrix(y, pred, labels=list(range(len(classes)))).tolist(),
            "report": classification_report(y, pred, labels=list(range(len(classes))), target_names=classes,
                                            zero_division=0, output_dict=True),
            "seconds": round(time.perf_counter() - t, 2), "folds": folds,
        }
    say(1.0, "done")
    return results


def comparison_table(results: dict[str, dict[str, Any]]) -> str:
    rows = [f"{'model':24} {'CV ROC AUC':>10} {'CV accuracy':>11} {'seconds':>8}  best parameters"]
    for kind, r in sorted(results.items(), key=lambda kv: -kv[1]["cv_auc"]):
        params = ", ".join(f"{k}={v}" for k, v in r["best_params"].items())
        rows.append(f"{r['title']:24} {r['cv_auc']:10.4f} {r['cv_accuracy']:11.4f} {r['seconds']:8.1f}  {params}")
    return "\n".join(rows)


def save_model(result: dict[str, Any], out_dir: str | Path, *, name: str, kind: str, classes: list[str],
               feature_names: list[str], extraction: dict[str, Any], modality: str, dims: int,
               training: dict[str, Any], description: str, n_examples: int, version: str = "1.0") -> dict:
    from medviewer.ai.backends.sklearn_io import save
    from medviewer.ai.registry import sha256_of

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / "model.skops"
    save(result["estimator"], weights)
    metrics = {"cv_roc_auc": result["cv_auc"], "cv_accuracy": result["cv_accuracy"],
               "confusion_matrix": result["confusion"], "folds": result["folds"], "n_examples": n_examples,
               "best_params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in result["best_params"].items()},
               "measured_on": f"out-of-fold predictions, {result['folds']}-fold stratified cross-validation"}
    manifest = {
        "name": name, "version": version, "task": "classification", "framework": "scikit-learn",
        "estimator": kind, "description": description,
        "input": {"modality": modality, "dims": dims, "channels": 1, "features": extraction,
                  "feature_names": feature_names},
        "outputs": {"classes": list(classes)},
        "weights": weights.name, "sha256": sha256_of(weights), "metrics": metrics, "training": training,
        "licence": "model: CC BY 4.0", "intended_use": "research and demonstration, not for clinical use",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    return manifest


# --- features of an image for a saved model -------------------------------------------------------
def extract(volume_data: np.ndarray, spacing, extraction: dict[str, Any], mask: np.ndarray | None = None):
    """(names, values) of the features a model was trained on, computed the same way."""
    from medviewer.processing.radiomics import compute_features

    data = np.asarray(volume_data)
    if data.ndim == 4:  # RGB: grey (ITU-R 601 luma)
        data = data[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    spacing = tuple(float(s) for s in spacing)
    if extraction.get("region") == "whole image":
        data, spacing = whole_image_picture(data, extraction, spacing)
        mask = np.ones(data.shape, bool)
    elif mask is None:
        raise MedViewerError("this model classifies an ROI: draw or select one first")
    feats = compute_features(data, mask, spacing, families=extraction.get("families"),
                             aggregations=extraction.get("aggregations"),
                             bin_number=extraction.get("bin_number", 32), bin_size=extraction.get("bin_size"))
    names = [feature_key(f) for f in feats]
    return names, np.array([f.value for f in feats], np.float64)


def whole_image_picture(data: np.ndarray, extraction: dict[str, Any], spacing=(1.0, 1.0, 1.0)):
    """The grey picture a whole-image model computes its features on, and its spacing."""
    size = extraction.get("image_size")
    if not size:
        return data, spacing
    from medviewer.ai.preprocess import to_unit_grey

    return to_unit_grey(data, int(size))[np.newaxis] * 255.0, (1.0, 1.0, 1.0)


def feature_key(f) -> str:
    return f"{f.family}|{f.feature}|{f.aggregation}"


def feature_row(spec, data: np.ndarray, spacing, mask: np.ndarray | None = None) -> np.ndarray:
    """The features a registered classical model was trained on, for an image array (or an ROI of
    it), in the model's order; a clear error when one is missing or undefined."""
    extraction = spec.input.get("features", {})
    names, values = extract(data, spacing, extraction, mask)
    wanted = spec.input.get("feature_names", names)
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in wanted if n not in index]
    if missing:
        raise MedViewerError(f"{spec.name}: features {missing[:3]} are not computed by this version")
    row = values[[index[n] for n in wanted]]
    if not np.isfinite(row).all():
        bad = [n for n, v in zip(wanted, row) if not np.isfinite(v)][:3]
        raise MedViewerError(f"{spec.name}: undefined features for this image/ROI ({', '.join(bad)}); "
                             "the ROI is probably too small or constant")
    return row


def proba_of(spec, data: np.ndarray, spacing, mask: np.ndarray | None = None) -> dict[str, float]:
    """Class probabilities of a registered classical model for an image array (or an ROI of it)."""
    from medviewer.ai.backends.sklearn_io import load

    probs = load(spec).predict_proba(feature_row(spec, data, spacing, mask)[np.newaxis])[0]
    classes = spec.class_names
    if len(classes) != len(probs):
        raise MedViewerError(f"{spec.name}: the model gives {len(probs)} outputs for {len(classes)} classes")
    return {c: float(p) for c, p in zip(classes, probs)}
