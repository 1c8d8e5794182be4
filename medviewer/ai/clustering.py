"""Unsupervised clustering of intensities into a label map: k-means and a Gaussian mixture
(scikit-learn ``KMeans`` / ``GaussianMixture``), registered as the "kmeans" and "gmm" processing
operations.

scikit-learn may only be imported inside ``medviewer.ai`` and ``ai`` sits above ``processing``, so
this module registers the two operations into ``medviewer.processing.operations`` when it is
imported, and ``all_operations()`` here is the ONE function the CLI and the GUI call to get every
operation (processing's groups and these); ``run_operation`` then runs any of them by name.
scikit-learn itself is imported inside the functions (importing this module stays cheap).

The model is fitted on the voxels' intensities (at most ``samples`` of them, drawn with a fixed
seed so a run is reproducible; all of them when there are fewer) and every voxel is then assigned
(in chunks: progress, and a cancel noticed between chunks). Classes are numbered by their mean
intensity: label 1 "class 1 (darkest)" .. label k "class k (brightest)". With ``ignore_minimum``
voxels at the image's minimum (zero padding, the outside of a skull strip) are left unlabelled
and not fitted.
"""
from __future__ import annotations

import numpy as np

from medviewer.processing.operations import Operation, Param, ProcessResult, label_map, operations, register

CHUNK = 1 << 20  # voxels assigned per step
PARAMS = (Param("classes", "int", 3, 2, 20, help="number of intensity classes"),
          Param("samples", "int", 200000, 100, 10_000_000, help="voxels the model is fitted on (a random draw)"),
          Param("ignore_minimum", "bool", True, help="leave voxels at the image's minimum unlabelled"),
          Param("seed", "int", 0, 0, 2**31 - 1, help="random seed of the draw and of the fit"))


def all_operations() -> dict:
    """Every processing operation, clustering included, by CLI name."""
    return operations()


def fit_sample(values: np.ndarray, samples: int, seed: int) -> np.ndarray:
    """At most SAMPLES of VALUES (1D), drawn without replacement with SEED; all when fewer."""
    if values.size <= samples:
        return values
    return values[np.random.default_rng(seed).choice(values.size, samples, replace=False)]


def make_model(kind: str, classes: int, seed: int):
    """The scikit-learn estimator: KMeans (3 initialisations) or a full Gaussian mixture."""
    if kind == "kmeans":
        from sklearn.cluster import KMeans

        return KMeans(n_clusters=classes, n_init=3, random_state=seed)
    from sklearn.mixture import GaussianMixture

    return GaussianMixture(n_components=classes, covariance_type="full", random_state=seed)


def class_means(model) -> np.ndarray:
    return np.ravel(model.cluster_centers_ if hasattr(model, "cluster_centers_") else model.means_)


def _runner(kind: str, title: str):
    def run(volume, p, steps):
        from medviewer.core.errors import MedViewerError

        values = volume.data.reshape(-1)
        keep = values > values.min() if p["ignore_minimum"] else np.ones(values.size, bool)
        inside = values[keep].astype(np.float64)
        sample = fit_sample(inside, p["samples"], p["seed"])
        if np.unique(sample).size < p["classes"]:
            raise MedViewerError(f"{kind}: {p['classes']} classes need at least as many distinct intensities; "
                                 f"the image has {np.unique(sample).size}"
                                 + (" above its minimum" if p["ignore_minimum"] else ""))
        steps.tell(0.02, "fitting")
        model = make_model(kind, p["classes"], p["seed"])
        model.fit(sample[:, None])
        steps.check()
        steps.tell(0.3, "assigning voxels")
        rank = np.empty(p["classes"], np.uint8)  # model's class -> label (1 darkest)
        rank[np.argsort(class_means(model))] = np.arange(1, p["classes"] + 1)
        assigned = np.empty(inside.size, np.uint8)
        for start in range(0, inside.size, CHUNK):
            steps.check()
            part = inside[start:start + CHUNK, None]
            assigned[start:start + CHUNK] = rank[model.predict(part)]
            steps.tell(0.3 + 0.7 * min(start + CHUNK, inside.size) / inside.size, "assigning voxels")
        data = np.zeros(values.size, np.uint8)
        data[keep] = assigned
        names = [f"class {k}" + (" (darkest)" if k == 1 else " (brightest)" if k == p["classes"] else "")
                 for k in range(1, p["classes"] + 1)]
        text = f"{title} {p['classes']} classes"
        return ProcessResult(None, label_map(volume, data.reshape(volume.shape), names, text), text)
    return run


register(Operation("kmeans", "k-means clustering", "Cluster", PARAMS, "labels",
                   "k-means of the intensities into a label map (scikit-learn KMeans)",
                   run=_runner("kmeans", "k-means"), bytes_per_voxel=24))
register(Operation("gmm", "Gaussian mixture clustering", "Cluster", PARAMS, "labels",
                   "Gaussian mixture of the intensities into a label map (scikit-learn GaussianMixture)",
                   run=_runner("gmm", "Gaussian mixture"), bytes_per_voxel=24))
