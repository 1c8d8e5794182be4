"""Grey level co-occurrence matrix (GLCM) features, IBSI chapter 1 section "Grey level co-occurrence based
features", with all six IBSI aggregation methods.

Matrices are symmetric, Chebyshev distance 1: 4 in-plane directions for 2D/2.5D, 13 directions in 3D.
A pair counts only when both voxels have a grey level (level 0 = outside the intensity mask).
Matrices are N_g x N_g with N_g = roi.n_levels, whether or not every level occurs.

Aggregation (IBSI "Aggregating features"):
- "2D, averaged": one matrix per slice and direction, features averaged over all of them;
- "2D, slice-merged": per slice the direction matrices are summed, features averaged over slices;
- "2.5D, direction-merged": per direction the slice matrices are summed, features averaged over
  directions;
- "2.5D, merged": one matrix, summed over slices and directions;
- "3D, averaged": one matrix per 3D direction, features averaged over the 13 directions;
- "3D, merged": one matrix summed over the 13 directions.
Empty matrices (e.g. a slice without ROI voxels, or a direction without any pair) are left out of the
averages; where a feature is undefined for a matrix (e.g. correlation without grey level variance) it is
left out of the average too, and the value is nan when it is undefined everywhere.

The helpers `DIRECTIONS_2D`, `DIRECTIONS_3D`, `crop_to_roi` and `aggregate` are shared with the GLRLM
module (glrlm.py).
"""
from __future__ import annotations

import warnings
from typing import Callable, Iterable

import numpy as np

from .base import GLCM_GLRLM_AGGREGATIONS, Feature, Roi

FAMILY = "glcm"

# directions as (dz, dy, dx) offsets; d and -d give the same (symmetric) matrix / the same runs
DIRECTIONS_2D: tuple[tuple[int, int, int], ...] = ((0, 0, 1), (0, 1, 0), (0, 1, 1), (0, 1, -1))
DIRECTIONS_3D: tuple[tuple[int, int, int], ...] = DIRECTIONS_2D + (
    (1, 0, 0), (1, 1, 0), (1, -1, 0), (1, 0, 1), (1, 0, -1),
    (1, 1, 1), (1, 1, -1), (1, -1, 1), (1, -1, -1))

# (IBSI feature name, IBSI code), in the order of the IBSI document
FEATURES: tuple[tuple[str, str], ...] = (
    ("Joint maximum", "GYBY"),
    ("Joint average", "60VM"),
    ("Joint variance", "UR99"),
    ("Joint entropy", "TU9B"),
    ("Difference average", "TF7R"),
    ("Difference variance", "D3YU"),
    ("Difference entropy", "NTRS"),
    ("Sum average", "ZGXS"),
    ("Sum variance", "OEEB"),
    ("Sum entropy", "P6QZ"),
    ("Angular second moment", "8ZQL"),
    ("Contrast", "ACUI"),
    ("Dissimilarity", "8S9J"),
    ("Inverse difference", "IB1Z"),
    ("Normalised inverse difference", "NDRX"),
    ("Inverse difference moment", "WF0Z"),
    ("Normalised inverse difference moment", "1QCO"),
    ("Inverse variance", "E8JP"),
    ("Correlation", "NI2N"),
    ("Autocorrelation", "QWB0"),
    ("Cluster tendency", "DG8W"),
    ("Cluster shade", "7NFM"),
    ("Cluster prominence", "AE86"),
    ("Information correlation 1", "R8DG"),
    ("Information correlation 2", "JN9H"),
)

_AGG_2D = ("2D, averaged", "2D, slice-merged", "2.5D, direction-merged", "2.5D, merged")
_AGG_3D = ("3D, averaged", "3D, merged")

# Builder: (levels (z,y,x), directions, per_slice) -> counts, (nz, ndir, *m) when per_slice else (ndir, *m)
Builder = Callable[[np.ndarray, Iterable[tuple[int, int, int]], bool], np.ndarray]


# ----------------------------------------------------------------------------------------------------
# shared helpers (also used by glrlm.py)

def check_aggregations(aggregations) -> tuple[str, ...]:
    if aggregations is None:
        return GLCM_GLRLM_AGGREGATIONS
    if isinstance(aggregations, str):
        aggregations = (aggregations,)
    aggregations = tuple(aggregations)
    unknown = [a for a in aggregations if a not in GLCM_GLRLM_AGGREGATIONS]
    if unknown:
        raise ValueError(f"unknown aggregation(s) {unknown}; expected some of {GLCM_GLRLM_AGGREGATIONS}")
    return aggregations


def crop_to_roi(levels: np.ndarray) -> np.ndarray | None:
    """The bounding box of the voxels with a grey level (> 0), as a contiguous int32 array; None if empty."""
    inside = levels > 0
    box = []
    for axis in range(levels.ndim):
        others = tuple(a for a in range(levels.ndim) if a != axis)
        idx = np.flatnonzero(inside.any(axis=others))
        if idx.size == 0:
            return None
        box.append(slice(int(idx[0]), int(idx[-1]) + 1))
    return np.ascontiguousarray(levels[tuple(box)], dtype=np.int32)


def _nanmean(values: np.ndarray) -> np.ndarray:
    """Mean over axis 0 ignoring nan (nan where a column is all nan or there are no rows)."""
    if values.shape[0] == 0:
        return np.full(values.shape[1:], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=0)


def aggregate(levels: np.ndarray, build: Builder, feature_fn: Callable[[np.ndarray], np.ndarray],
              aggregations: tuple[str, ...], slice_chunk: int) -> dict[str, np.ndarray]:
    """Feature values per aggregation method.

    levels: cropped (z, y, x) grey levels, 0 outside the ROI;
    build: see `Builder`;
    feature_fn: (B, *m) counts -> (B, n_features) values, nan rows for empty matrices;
    slice_chunk: how many slices the per-slice matrices are built for at once (bounds memory).
    """
    want = set(aggregations)
    out: dict[str, np.ndarray] = {}
    per_direction = None  # in-plane matrices summed over slices, (4, *m)
    nz = levels.shape[0]
    if want & set(_AGG_2D):
        averaged, slice_merged = [], []
        for z0 in range(0, nz, slice_chunk):
            counts = build(levels[z0:z0 + slice_chunk], DIRECTIONS_2D, True)  # (nzc, 4, *m)
            if "2D, averaged" in want:
                averaged.append(feature_fn(counts.reshape((-1,) + counts.shape[2:])))
            if "2D, slice-merged" in want:
                slice_merged.append(feature_fn(counts.sum(axis=1)))
            summed = counts.sum(axis=0)
            per_direction = summed if per_direction is None else per_direction + summed
        if "2D, averaged" in want:
            out["2D, averaged"] = _nanmean(np.concatenate(averaged))
        if "2D, slice-merged" in want:
            out["2D, slice-merged"] = _nanmean(np.concatenate(slice_merged))
        if "2.5D, direction-merged" in want:
            out["2.5D, direction-merged"] = _nanmean(feature_fn(per_direction))
        if "2.5D, merged" in want:
            out["2.5D, merged"] = feature_fn(per_direction.sum(axis=0)[None])[0]
    if want & set(_AGG_3D):
        in_plane = per_direction if per_direction is not None else build(levels, DIRECTIONS_2D, False)
        out_of_plane = build(levels, DIRECTIONS_3D[len(DIRECTIONS_2D):], False)
        matrices = np.concatenate([in_plane, out_of_plane])
        if "3D, averaged" in want:
            out["3D, averaged"] = _nanmean(feature_fn(matrices))
        if "3D, merged" in want:
            out["3D, merged"] = feature_fn(matrices.sum(axis=0)[None])[0]
    return {agg: out[agg] for agg in aggregations}


def to_features(family: str, names: tuple[tuple[str, str], ...], values: dict[str, np.ndarray],
                aggregations: tuple[str, ...]) -> list[Feature]:
    return [Feature(family, name, code, agg, float(values[agg][k]))
            for agg in aggregations for k, (name, code) in enumerate(names)]


def n_grey_levels(roi: Roi, levels: np.ndarray | None) -> int:
    top = int(levels.max()) if levels is not None and levels.size else 0
    return max(int(roi.n_levels), top, 1)


# ----------------------------------------------------------------------------------------------------
# GLCM

def _pair_slices(shape, d):
    """Slices a, b such that arr[b] is arr[a] shifted by the offset d."""
    sa, sb = [], []
    for n, step in zip(shape, d):
        if step > 0:
            sa.append(slice(0, n - step))
            sb.append(slice(step, n))
        elif step < 0:
            sa.append(slice(-step, n))
            sb.append(slice(0, n + step))
        else:
            sa.append(slice(None))
            sb.append(slice(None))
    return tuple(sa), tuple(sb)


def cooccurrence(levels: np.ndarray, n_levels: int, directions, per_slice: bool) -> np.ndarray:
    """Symmetric co-occurrence counts, (nz, ndir, Ng, Ng) per slice (in-plane directions only) or
    (ndir, Ng, Ng)."""
    g = n_levels + 1  # level 0 is counted too and dropped afterwards: no masking needed
    lv = levels.astype(np.int64)
    lv_g = lv * g
    nz = lv.shape[0]
    matrices = []
    for d in directions:
        sa, sb = _pair_slices(lv.shape, d)
        idx = lv_g[sa] + lv[sb]
        if per_slice:
            if d[0] != 0:
                raise ValueError("per-slice matrices need in-plane directions")
            idx += (np.arange(nz, dtype=np.int64) * (g * g))[:, None, None]
            counts = np.bincount(idx.ravel(), minlength=nz * g * g).reshape(nz, g, g)
        else:
            counts = np.bincount(idx.ravel(), minlength=g * g).reshape(g, g)
        matrices.append(counts[..., 1:, 1:])
    m = np.stack(matrices, axis=1 if per_slice else 0)
    return m + np.swapaxes(m, -1, -2)


def _entropy(p: np.ndarray, axes) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return -terms.sum(axis=axes)


def _weights(ng: int) -> np.ndarray:
    """(Ng*Ng, Ng + 2Ng-1 + 1) matrix: flat p -> [p_{i-j}(0..Ng-1), p_{i+j}(2..2Ng), sum i*j*p_ij]."""
    lv = np.arange(1, ng + 1)
    ii, jj = lv[:, None], lv[None, :]
    w = np.zeros((ng * ng, 3 * ng), dtype=np.float64)
    rows = np.arange(ng * ng)
    w[rows, np.abs(ii - jj).ravel()] = 1.0
    w[rows, ng + (ii + jj).ravel() - 2] = 1.0
    w[:, 3 * ng - 1] = (ii * jj).ravel()
    return w


def glcm_feature_values(counts: np.ndarray) -> np.ndarray:
    """(B, Ng, Ng) co-occurrence counts -> (B, 25) feature values in `FEATURES` order.

    Everything but the joint maximum, angular second moment and joint entropy is computed from the
    marginal, diagonal (p_{i-j}) and cross-diagonal (p_{i+j}) probabilities, which is exact:
    e.g. sum_ij (i + j - mu_i - mu_j)^n p_ij = sum_k (k - mu_i - mu_j)^n p_{i+j,k}, and
    HXY1 = -sum_ij p_ij log2(p_i p_j) = HX + HY = HXY2 = -sum_ij p_i p_j log2(p_i p_j).
    """
    counts = np.asarray(counts, dtype=np.float64)
    b, ng, _ = counts.shape
    total = counts.sum(axis=(1, 2))
    empty = total <= 0
    flat = counts.reshape(b, ng * ng) / np.where(empty, 1.0, total)[:, None]
    lv = np.arange(1, ng + 1, dtype=np.float64)

    p_i = flat.reshape(b, ng, ng).sum(axis=2)
    p_j = flat.reshape(b, ng, ng).sum(axis=1)
    mu_i = p_i @ lv
    mu_j = p_j @ lv
    var_i = ((lv[None, :] - mu_i[:, None]) ** 2 * p_i).sum(axis=1)
    var_j = ((lv[None, :] - mu_j[:, None]) ** 2 * p_j).sum(axis=1)

    projected = flat @ _weights(ng)
    p_diff = projected[:, :ng]  # k = |i - j| = 0..Ng-1
    p_sum = projected[:, ng:3 * ng - 1]  # k = i + j = 2..2Ng
    autocorr = projected[:, 3 * ng - 1]
    k_diff = np.arange(ng, dtype=np.float64)
    k_sum = np.arange(2, 2 * ng + 1, dtype=np.float64)

    joint_max = flat.max(axis=1)
    joint_avg = mu_i
    joint_var = var_i
    joint_entr = _entropy(flat, 1)
    diff_avg = p_diff @ k_diff
    diff_var = ((k_diff[None, :] - diff_avg[:, None]) ** 2 * p_diff).sum(axis=1)
    diff_entr = _entropy(p_diff, 1)
    sum_avg = p_sum @ k_sum
    sum_var = ((k_sum[None, :] - sum_avg[:, None]) ** 2 * p_sum).sum(axis=1)
    sum_entr = _entropy(p_sum, 1)
    asm = np.einsum("bk,bk->b", flat, flat)
    contrast = p_diff @ k_diff ** 2
    dissimilarity = diff_avg
    inv_diff = p_diff @ (1.0 / (1.0 + k_diff))
    inv_diff_norm = p_diff @ (1.0 / (1.0 + k_diff / ng))
    inv_diff_mom = p_diff @ (1.0 / (1.0 + k_diff ** 2))
    inv_diff_mom_norm = p_diff @ (1.0 / (1.0 + (k_diff / ng) ** 2))
    inv_var = p_diff[:, 1:] @ (1.0 / k_diff[1:] ** 2) if ng > 1 else np.zeros(b)
    sigma = np.sqrt(var_i * var_j)
    with np.errstate(divide="ignore", invalid="ignore"):
        correlation = np.where(sigma > 0, (autocorr - mu_i * mu_j) / np.where(sigma > 0, sigma, 1.0), np.nan)
    cluster = k_sum[None, :] - (mu_i + mu_j)[:, None]
    clust_tend = (cluster ** 2 * p_sum).sum(axis=1)
    clust_shade = (cluster ** 3 * p_sum).sum(axis=1)
    clust_prom = (cluster ** 4 * p_sum).sum(axis=1)

    hx = _entropy(p_i, 1)
    hy = _entropy(p_j, 1)
    hxy1 = hxy2 = hx + hy
    with np.errstate(divide="ignore", invalid="ignore"):
        info_corr_1 = np.where(hx > 0, (joint_entr - hxy1) / np.where(hx > 0, hx, 1.0), np.nan)
        info_corr_2 = np.sqrt(np.clip(1.0 - np.exp(-2.0 * (hxy2 - joint_entr)), 0.0, None))

    values = np.stack([
        joint_max, joint_avg, joint_var, joint_entr, diff_avg, diff_var, diff_entr, sum_avg, sum_var,
        sum_entr, asm, contrast, dissimilarity, inv_diff, inv_diff_norm, inv_diff_mom, inv_diff_mom_norm,
        inv_var, correlation, autocorr, clust_tend, clust_shade, clust_prom, info_corr_1, info_corr_2,
    ], axis=1)
    values[empty] = np.nan
    return values


def features(roi: Roi, aggregations=None) -> list[Feature]:
    """The 25 IBSI GLCM features for each requested aggregation method (None = all six)."""
    aggregations = check_aggregations(aggregations)
    levels = crop_to_roi(np.asarray(roi.levels))
    ng = n_grey_levels(roi, levels)
    if levels is None:
        nan = np.full(len(FEATURES), np.nan)
        return to_features(FAMILY, FEATURES, {a: nan for a in aggregations}, aggregations)

    def build(lv, directions, per_slice):
        return cooccurrence(lv, ng, directions, per_slice)

    # keep the per-slice matrices (chunk x 4 x Ng x Ng) to a few million entries
    chunk = max(1, int(4_000_000 // (4 * ng * ng)))
    values = aggregate(levels, build, glcm_feature_values, aggregations, chunk)
    return to_features(FAMILY, FEATURES, values, aggregations)
