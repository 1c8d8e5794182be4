"""Evaluation metrics (numpy/scipy only): ROC, binary metrics at a threshold, Dice, HD95,
bootstrap confidence intervals, threshold rules, calibration and detection scores."""
from __future__ import annotations

import numpy as np


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); nan with one class only."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(scores)  # average ranks over ties
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rates, true positive rates) over all thresholds."""
    labels = np.asarray(labels).astype(bool)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    tp = np.concatenate([[0], np.cumsum(labels[order])])
    fp = np.concatenate([[0], np.cumsum(~labels[order])])
    return fp / max(fp[-1], 1), tp / max(tp[-1], 1)


def binary_metrics(labels: np.ndarray, prob_positive: np.ndarray, threshold: float = 0.5) -> dict:
    labels = np.asarray(labels).astype(bool)
    pred = np.asarray(prob_positive) >= threshold
    tp, tn = int((pred & labels).sum()), int((~pred & ~labels).sum())
    fp, fn = int((pred & ~labels).sum()), int((~pred & labels).sum())
    n = len(labels)
    return {"accuracy": round((tp + tn) / n, 4) if n else float("nan"),
            "sensitivity": round(tp / (tp + fn), 4) if tp + fn else float("nan"),
            "specificity": round(tn / (tn + fp), 4) if tn + fp else float("nan"),
            "roc_auc": round(roc_auc(labels, prob_positive), 4),
            "threshold": threshold, "tp": tp, "tn": tn, "fp": fp, "fn": fn}


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two boolean masks; 1.0 when both are empty."""
    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    denom = int(p.sum()) + int(t.sum())
    return 1.0 if denom == 0 else 2.0 * int((p & t).sum()) / denom


def _surface(mask: np.ndarray) -> np.ndarray:
    from scipy.ndimage import binary_erosion

    return mask & ~binary_erosion(mask, structure=np.ones((3,) * mask.ndim, bool), border_value=0)


def hausdorff95(pred: np.ndarray, truth: np.ndarray, spacing_zyx=(1.0, 1.0, 1.0)) -> float:
    """Symmetric 95th-percentile Hausdorff distance (mm) between the surfaces of two masks:
    max of the two directed 95th percentiles of surface-voxel to surface distances (as MONAI's
    compute_hausdorff_distance, percentile=95). 0.0 when both are empty, nan when one is."""
    from scipy.ndimage import distance_transform_edt

    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    if not p.any() and not t.any():
        return 0.0
    if not p.any() or not t.any():
        return float("nan")
    sp, st = _surface(p), _surface(t)
    sampling = [float(s) for s in spacing_zyx][: p.ndim]
    to_t = distance_transform_edt(~st, sampling=sampling)
    to_p = distance_transform_edt(~sp, sampling=sampling)
    return float(max(np.percentile(to_t[sp], 95), np.percentile(to_p[st], 95)))


def label_metrics(preds: list[np.ndarray], truths: list[np.ndarray], labels: list[int],
                  spacings_zyx: list | None = None) -> dict:
    """Mean over cases of Dice and HD95 per label, plus the mean over labels."""
    spacings_zyx = spacings_zyx or [(1.0, 1.0, 1.0)] * len(preds)
    out: dict = {"dice": {}, "hd95_mm": {}}
    for lab in labels:
        d = [dice(p == lab, t == lab) for p, t in zip(preds, truths)]
        h = [hausdorff95(p == lab, t == lab, s) for p, t, s in zip(preds, truths, spacings_zyx)]
        h = [v for v in h if np.isfinite(v)]
        out["dice"][str(lab)] = round(float(np.mean(d)), 4) if d else float("nan")
        out["hd95_mm"][str(lab)] = round(float(np.mean(h)), 3) if h else float("nan")
    out["dice"]["mean"] = round(float(np.mean([out["dice"][str(lab)] for lab in labels])), 4)
    out["hd95_mm"]["mean"] = round(float(np.mean([out["hd95_mm"][str(lab)] for lab in labels])), 3)
    return out


# --- confidence intervals -------------------------------------------------------------------
def bootstrap_ci(statistic, *arrays, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0,
                 stratify: np.ndarray | None = None) -> tuple[float, float]:
    """Percentile bootstrap (1 - alpha) interval of statistic(*arrays) over cases resampled with
    replacement (the same indices in every array; within each class of `stratify` when given, so
    each resample keeps the class counts). Resamples where the statistic is not finite are dropped."""
    arrays = [np.asarray(a) for a in arrays]
    n = len(arrays[0])
    if n == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if stratify is None else [np.flatnonzero(np.asarray(stratify) == v)
                                                      for v in np.unique(stratify)]
    values = []
    for _ in range(n_boot):
        idx = np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups])
        v = float(statistic(*(a[idx] for a in arrays)))
        if np.isfinite(v):
            values.append(v)
    if not values:
        return float("nan"), float("nan")
    lo, hi = np.percentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


def with_ci(value: float, ci: tuple[float, float], digits: int = 4) -> dict:
    return {"value": round(float(value), digits), "ci95": [round(float(ci[0]), digits), round(float(ci[1]), digits)]}


def binary_metrics_ci(labels: np.ndarray, prob_positive: np.ndarray, threshold: float, n_boot: int = 2000,
                      seed: int = 0) -> dict:
    """binary_metrics at `threshold` with a stratified bootstrap 95% interval on accuracy,
    sensitivity, specificity, ROC AUC and balanced accuracy."""
    labels = np.asarray(labels).astype(bool)
    prob = np.asarray(prob_positive, np.float64)
    base = binary_metrics(labels, prob, threshold)

    def at(name):
        def f(y, p):
            m = binary_metrics(y, p, threshold) if name != "roc_auc" else None
            return roc_auc(y, p) if name == "roc_auc" else m[name]
        return f

    def balanced(y, p):
        m = binary_metrics(y, p, threshold)
        return (m["sensitivity"] + m["specificity"]) / 2

    out = {"threshold": round(float(threshold), 4), "n": int(len(labels)), "n_positive": int(labels.sum()),
           "tp": base["tp"], "tn": base["tn"], "fp": base["fp"], "fn": base["fn"]}
    for name in ("accuracy", "sensitivity", "specificity", "roc_auc"):
        out[name] = with_ci(base[name], bootstrap_ci(at(name), labels, prob, n_boot=n_boot, seed=seed,
                                                     stratify=labels))
    b = (base["sensitivity"] + base["specificity"]) / 2
    out["balanced_accuracy"] = with_ci(b, bootstrap_ci(balanced, labels, prob, n_boot=n_boot, seed=seed,
                                                       stratify=labels))
    return out


# --- operating point ------------------------------------------------------------------------
def youden_threshold(labels: np.ndarray, prob_positive: np.ndarray) -> float:
    """The threshold maximising Youden's J = sensitivity + specificity - 1 (predict positive when
    p >= threshold); ties go to the threshold nearest 0.5. Thresholds are midpoints between
    consecutive distinct scores, so the rule does not sit on a case."""
    labels = np.asarray(labels).astype(bool)
    p = np.asarray(prob_positive, np.float64)
    values = np.unique(p)
    cuts = np.concatenate([[values[0] - 1e-9], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-9]])
    best, best_t = -np.inf, 0.5
    n_pos, n_neg = max(int(labels.sum()), 1), max(int((~labels).sum()), 1)
    for t in cuts:
        pred = p >= t
        j = (pred & labels).sum() / n_pos + (~pred & ~labels).sum() / n_neg - 1
        if j > best + 1e-12 or (abs(j - best) <= 1e-12 and abs(t - 0.5) < abs(best_t - 0.5)):
            best, best_t = j, float(t)
    return float(min(max(best_t, 0.0), 1.0))


def sensitivity_threshold(labels: np.ndarray, prob_positive: np.ndarray, target: float) -> float:
    """The highest threshold whose sensitivity is at least `target`."""
    labels = np.asarray(labels).astype(bool)
    pos = np.sort(np.asarray(prob_positive, np.float64)[labels])[::-1]
    if len(pos) == 0:
        return 0.5
    k = int(np.ceil(target * len(pos))) - 1  # the k-th highest positive score must be caught
    return float(pos[min(max(k, 0), len(pos) - 1)])


# --- calibration ----------------------------------------------------------------------------
def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature scaling (Guo et al. 2017): the T > 0 minimising the negative log-likelihood of
    softmax(logits / T) on held-out cases (golden-section search on log T in [-3, 3])."""
    logits, labels = np.asarray(logits, np.float64), np.asarray(labels, np.int64)

    def nll(log_t):
        p = softmax(logits, float(np.exp(log_t)))
        return -float(np.mean(np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, None))))

    a, b = -3.0, 3.0
    g = (np.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    for _ in range(80):
        if nll(c) < nll(d):
            b = d
        else:
            a = c
        c, d = b - g * (b - a), a + g * (b - a)
    return float(np.exp((a + b) / 2))


def reliability(labels: np.ndarray, prob_positive: np.ndarray, n_bins: int = 10) -> dict:
    """Reliability diagram data and expected calibration error of the positive-class probability:
    equal-width bins over [0, 1]; ECE = sum over bins of (n_bin / n) |mean predicted - observed rate|."""
    labels = np.asarray(labels).astype(np.float64)
    p = np.asarray(prob_positive, np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        sel = which == b
        n = int(sel.sum())
        if n:
            conf, rate = float(p[sel].mean()), float(labels[sel].mean())
            ece += n / len(p) * abs(conf - rate)
            bins.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "n": n,
                         "mean_predicted": round(conf, 4), "observed": round(rate, 4)})
    return {"ece": round(ece, 4), "n_bins": n_bins, "bins": bins}


def expected_calibration_error(labels: np.ndarray, prob_positive: np.ndarray, n_bins: int = 10) -> float:
    return reliability(labels, prob_positive, n_bins)["ece"]


# --- detection (precision / recall / F1) ----------------------------------------------------
def _prf(tp: int, fp: int, fn: int) -> dict:
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else float("nan")
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def voxel_prf(pred: np.ndarray, truth: np.ndarray) -> dict:
    """Voxel-wise precision, recall and F1 (= Dice) of two boolean masks."""
    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    return _prf(int((p & t).sum()), int((p & ~t).sum()), int((~p & t).sum()))


def component_prf(pred: np.ndarray, truth: np.ndarray, min_overlap: float = 0.1) -> dict:
    """Per connected component (lesion-wise): a true component is found when predicted voxels
    cover at least `min_overlap` of it; a predicted component is a false positive when it covers
    less than `min_overlap` of itself with truth. Full (26/8-) connectivity."""
    from scipy.ndimage import label as cc_label

    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    structure = np.ones((3,) * p.ndim, bool)
    lt, nt = cc_label(t, structure=structure)
    lp, n_p = cc_label(p, structure=structure)
    found = sum(1 for k in range(1, nt + 1) if p[lt == k].mean() >= min_overlap)
    true_pred = sum(1 for k in range(1, n_p + 1) if t[lp == k].mean() >= min_overlap)
    out = _prf(true_pred, n_p - true_pred, nt - found)
    out["recall"] = found / nt if nt else float("nan")
    out["n_true"], out["n_pred"] = int(nt), int(n_p)
    return out
