"""How much to trust one prediction (numpy/scipy only): test-time augmentation variants of an X-ray,
the out-of-distribution distance of a network's features, the uncertainty of class probabilities.

- xray_variants(unit, n, seed): n small, deterministic perturbations of a [0, 1] grey picture
  (shift up to 4% of its side, zoom 0.95-1.05, gamma 0.85-1.2; never flipped: a chest X-ray has a
  left and a right), the kind of change a re-positioned or re-exposed image shows. The spread of
  the model's probability over them is the interval a classification reports.
- OODReference.of(spec): the manifest's ood block + ood.npz (mean (d,), precision (d, d)), and
  distance(features) = sqrt((f - mean) @ precision @ (f - mean)).
- normalised_entropy(probs): per-voxel entropy of (C, ...) class probabilities / log(C), in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medviewer.core.errors import MedViewerError

TTA_VARIANTS = 8
TTA_SEED = 0
MAX_SHIFT, ZOOM, GAMMA = 0.04, (0.95, 1.05), (0.85, 1.2)


def xray_variants(unit: np.ndarray, n: int = TTA_VARIANTS, seed: int = TTA_SEED) -> list[np.ndarray]:
    """n perturbed copies of a (H, W) [0, 1] picture (float32), the same ones for every call."""
    from scipy.ndimage import affine_transform

    rng = np.random.default_rng(seed)
    h, w = unit.shape
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    out = []
    for _ in range(n):
        shift = rng.uniform(-MAX_SHIFT, MAX_SHIFT, 2) * np.array([h, w])
        zoom = rng.uniform(*ZOOM)
        gamma = float(np.exp(rng.uniform(np.log(GAMMA[0]), np.log(GAMMA[1]))))
        # output pixel o samples the input at centre + (o - centre) / zoom - shift
        offset = centre - centre / zoom - shift
        moved = affine_transform(unit, np.eye(2) / zoom, offset=offset, order=1, mode="nearest")
        out.append(np.power(np.clip(moved, 0.0, 1.0), gamma).astype(np.float32))
    return out


def normalised_entropy(probs: np.ndarray) -> np.ndarray:
    """Entropy over axis 0 of class probabilities, divided by log(C): float32 in [0, 1]."""
    p = np.clip(np.asarray(probs, np.float32), 1e-12, 1.0)
    n = p.shape[0]
    if n < 2:
        return np.zeros(p.shape[1:], np.float32)
    h = -(p * np.log(p)).sum(0) / np.float32(np.log(n))
    return np.clip(h, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class OODReference:
    mean: np.ndarray
    precision: np.ndarray
    threshold: float

    @classmethod
    def of(cls, spec) -> "OODReference | None":
        """The model's reference (None when its manifest has no ood block); the file must lie in
        the model's folder and hold plain arrays (np.load without pickles)."""
        info = spec.manifest.get("ood")
        if not isinstance(info, dict) or not info.get("file"):
            return None
        from medviewer.ai.model_files import resolve_inside

        path = resolve_inside(spec.folder, str(info["file"]))  # UnsafeModelFile outside the folder
        if not path.is_file():
            raise MedViewerError(f"{spec.folder}: the out-of-distribution file {info['file']!r} is missing")
        key = (str(path), path.stat().st_mtime_ns)
        cached = _ood_cache.get(key)
        if cached is None:
            try:
                with np.load(path, allow_pickle=False) as z:
                    mean, precision = np.asarray(z["mean"], np.float64), np.asarray(z["precision"], np.float64)
            except (OSError, ValueError, KeyError) as exc:
                raise MedViewerError(f"{path}: not an out-of-distribution reference ({type(exc).__name__})") from None
            if mean.ndim != 1 or precision.shape != (len(mean), len(mean)):
                raise MedViewerError(f"{path}: mean {mean.shape} and precision {precision.shape} do not fit")
            cached = _ood_cache[key] = cls(mean, precision, float(info.get("threshold", np.inf)))
        return cached

    def distance(self, features: np.ndarray) -> float:
        f = np.asarray(features, np.float64).ravel()
        if f.shape != self.mean.shape:
            raise MedViewerError(f"the network gives {f.size} features; the out-of-distribution reference "
                                 f"has {self.mean.size}")
        d = f - self.mean
        return float(np.sqrt(max(d @ self.precision @ d, 0.0)))


_ood_cache: dict[tuple[str, int], OODReference] = {}
