"""Anomaly maps: an unsupervised detector fitted on normal images marks unusual regions.

Each image is reduced to a 128x128 grey, z-scored picture (as the CNN's pre-processing) and cut into
16x16 patches every 8 pixels; a patch is described by its intensity statistics, its texture
(gradient magnitude, Laplacian energy) and its position in the picture (anatomy depends on where
one looks). A scikit-learn IsolationForest (or OneClassSVM) is fitted on the patches of normal
images only. On a new image, each patch's anomaly score is turned into its percentile among the
training patches' scores at the same position (borders and corners vary more than the lungs from
one normal image to the next), so the map reads "0.99 = more unusual than 99% of normal patches
there";
overlapping patches are averaged and the map is resized back onto the image's pixels.

    fit_anomaly_detector(images, method) -> (estimator, training_scores)
    patch_map(model, reference, picture) -> (SIZE, SIZE) percentiles; image_score(map) -> the
        image-level score (mean of the top 5% of the map). The anomaly task (ai.tasks.anomaly) runs
        them on an image.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from medviewer.core.errors import MedViewerError

SIZE, PATCH, STRIDE = 128, 16, 8
FEATURES = ("mean", "std", "p10", "p50", "p90", "gradient", "laplacian", "row", "col")


def picture_of(data: np.ndarray) -> np.ndarray:
    from medviewer.ai.preprocess import preprocess_image

    return preprocess_image(data, SIZE)[0]


def patch_features(picture: np.ndarray) -> np.ndarray:
    """(n_patches, len(FEATURES)) for a SIZE x SIZE picture; rows in raster order of the patch grid."""
    from scipy import ndimage

    gy, gx = np.gradient(picture)
    grad = np.hypot(gx, gy)
    lap = np.abs(ndimage.laplace(picture))
    win = np.lib.stride_tricks.sliding_window_view
    patches = win(picture, (PATCH, PATCH))[::STRIDE, ::STRIDE]
    n_r, n_c = patches.shape[:2]
    flat = patches.reshape(n_r, n_c, -1)
    q = np.percentile(flat, [10, 50, 90], axis=-1)
    g = win(grad, (PATCH, PATCH))[::STRIDE, ::STRIDE].reshape(n_r, n_c, -1).mean(-1)
    lp = win(lap, (PATCH, PATCH))[::STRIDE, ::STRIDE].reshape(n_r, n_c, -1).mean(-1)
    rows, cols = np.meshgrid(np.linspace(0, 1, n_r), np.linspace(0, 1, n_c), indexing="ij")
    feats = np.stack([flat.mean(-1), flat.std(-1), q[0], q[1], q[2], g, lp, rows * 2, cols * 2], -1)
    return feats.reshape(-1, len(FEATURES)).astype(np.float32)


def grid_shape() -> tuple[int, int]:
    n = (SIZE - PATCH) // STRIDE + 1
    return n, n


def fit_anomaly_detector(pictures: list[np.ndarray], method: str = "isolation_forest", seed: int = 0):
    """(fitted estimator, (n_positions, 201) quantiles of the training patches' anomaly scores at each
    patch position)."""
    from sklearn.ensemble import IsolationForest
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import OneClassSVM

    x = np.concatenate([patch_features(p) for p in pictures])
    n_pos = int(np.prod(grid_shape()))
    all_x = x
    if method == "isolation_forest":
        model = make_pipeline(StandardScaler(), IsolationForest(n_estimators=100, max_samples=512,
                                                                random_state=seed, n_jobs=1))
    elif method == "one_class_svm":
        rng = np.random.default_rng(seed)
        x = x[rng.choice(len(x), size=min(len(x), 20000), replace=False)]
        model = make_pipeline(StandardScaler(), OneClassSVM(nu=0.05, gamma="scale"))
    else:
        raise MedViewerError(f"unknown anomaly method {method!r}; use isolation_forest or one_class_svm")
    model.fit(x)
    scores = -model.score_samples(all_x).reshape(len(pictures), n_pos)
    # 201 quantiles per position turn a score into its percentile there, and keep the file small
    return model, np.quantile(scores, np.linspace(0, 1, 201), axis=0).T.astype(np.float32)


def _percentile(scores: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each patch score's percentile among the training scores at its position (reference row)."""
    if reference.ndim == 1:
        reference = np.broadcast_to(reference, (len(scores), len(reference)))
    below = (reference <= scores[:, None]).sum(1)
    return (below - 1).clip(0) / max(reference.shape[1] - 1, 1)


def patch_map(model: Any, reference: np.ndarray, picture: np.ndarray) -> np.ndarray:
    """SIZE x SIZE map of patch score percentiles (overlapping patches averaged)."""
    scores = _percentile(-model.score_samples(patch_features(picture)), reference)
    n_r, n_c = grid_shape()
    acc = np.zeros((SIZE, SIZE))
    hits = np.zeros((SIZE, SIZE))
    for (r, c), s in zip(np.ndindex(n_r, n_c), scores):
        acc[r * STRIDE:r * STRIDE + PATCH, c * STRIDE:c * STRIDE + PATCH] += s
        hits[r * STRIDE:r * STRIDE + PATCH, c * STRIDE:c * STRIDE + PATCH] += 1
    return (acc / np.maximum(hits, 1)).astype(np.float32)


def image_score(small_map: np.ndarray) -> float:
    flat = np.sort(small_map.ravel())
    return float(flat[-max(1, len(flat) // 20):].mean())
