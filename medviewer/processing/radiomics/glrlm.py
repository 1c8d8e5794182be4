"""Grey level run length matrix (GLRLM) features, IBSI chapter 1 section "Grey level run length based
features", with all six IBSI aggregation methods (see glcm.py for the aggregation rules, which are the
same: 4 in-plane directions for 2D/2.5D, 13 directions in 3D).

A run is a maximal sequence of consecutive voxels along a direction with the same grey level; voxels
outside the intensity mask (level 0) never belong to a run, and they stop runs. The matrix has
N_g = roi.n_levels rows; its run-length dimension is the longest possible run (the largest extent of
the ROI bounding box), which does not change any feature value.

Runs are found without Python loops over lines: for each direction the volume is gathered into an
order in which every line along the direction is contiguous (axis-aligned directions by transposition,
diagonal ones by a cyclic shear of the other axes), with a "line starts here" flag, and the runs are
then read off with a single diff over the whole volume.
"""
from __future__ import annotations

import numpy as np

from .base import Feature, Roi
from .glcm import DIRECTIONS_2D, aggregate, check_aggregations, crop_to_roi, n_grey_levels, to_features

FAMILY = "glrlm"

FEATURES: tuple[tuple[str, str], ...] = (
    ("Short runs emphasis", "22OV"),
    ("Long runs emphasis", "W4KF"),
    ("Low grey level run emphasis", "V3SW"),
    ("High grey level run emphasis", "G3QZ"),
    ("Short run low grey level emphasis", "HTZT"),
    ("Short run high grey level emphasis", "GD3A"),
    ("Long run low grey level emphasis", "IVPO"),
    ("Long run high grey level emphasis", "3KUM"),
    ("Grey level non-uniformity", "R5YN"),
    ("Normalised grey level non-uniformity", "OVBL"),
    ("Run length non-uniformity", "W92Y"),
    ("Normalised run length non-uniformity", "IC23"),
    ("Run percentage", "9ZK5"),
    ("Grey level variance", "8CE5"),
    ("Run length variance", "SXLW"),
    ("Run entropy", "HJ9O"),
)

__all__ = ["FEATURES", "features", "run_lengths", "glrlm_feature_values"]


def _lines(levels: np.ndarray, d: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, int]:
    """The voxels of `levels` ordered line by line along direction d.

    Returns (values, line_start, block): 1D arrays of the levels in line order and of flags that are
    True where a new line begins; `block` is the number of entries per index of the first output axis,
    which is z for in-plane directions (so entry // block is the slice).
    """
    shape = levels.shape
    ndim = len(shape)
    major = next(ax for ax in range(ndim) if d[ax] != 0)
    others = [ax for ax in range(ndim) if ax != major]
    n_major = shape[major]
    # output grid: (others..., major); position t along the line is the last axis
    t = np.arange(n_major).reshape((1,) * (ndim - 1) + (n_major,))
    coords: list[np.ndarray] = [None] * ndim  # type: ignore[list-item]
    coords[major] = t
    start = t == 0
    for pos, ax in enumerate(others):
        q = np.arange(shape[ax]).reshape(tuple(-1 if k == pos else 1 for k in range(ndim)))
        if d[ax] != 0:
            # cyclic shear: line (q, t) -> coordinate q + t (mod n); a wrap starts a new line
            c = (q + t) % shape[ax]
            start = start | (c == 0)
            coords[ax] = c
        else:
            coords[ax] = q
    # direction components against the major one run backwards: mirror that axis
    sign = d[major]
    for ax in range(ndim):
        if d[ax] != 0 and d[ax] != sign:
            coords[ax] = shape[ax] - 1 - coords[ax]
    strides = np.cumprod((1,) + shape[:0:-1])[::-1]
    flat = coords[0] * int(strides[0])
    for ax in range(1, ndim):
        flat = flat + coords[ax] * int(strides[ax])
    out_shape = tuple(shape[ax] for ax in others) + (n_major,)
    values = np.take(levels.ravel(), flat.ravel())
    line_start = np.broadcast_to(start, out_shape).ravel()
    block = int(np.prod(out_shape[1:]))
    return values, line_start, block


def run_lengths(levels: np.ndarray, d: tuple[int, int, int], keep_zero: bool = False,
                with_blocks: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """All runs along direction d: (grey level, run length, index of the first output-axis block,
    i.e. the slice for in-plane directions; None unless with_blocks). Runs of level 0 (outside the
    ROI) are dropped unless keep_zero."""
    values, line_start, block = _lines(levels, d)
    boundary = line_start.copy()
    boundary[1:] |= values[1:] != values[:-1]
    starts = np.flatnonzero(boundary)
    lengths = np.empty_like(starts)
    np.subtract(starts[1:], starts[:-1], out=lengths[:-1])
    lengths[-1] = values.size - starts[-1]
    run_levels = values[starts]
    blocks = starts // max(block, 1) if with_blocks else None
    if not keep_zero:
        keep = run_levels > 0
        return run_levels[keep], lengths[keep], None if blocks is None else blocks[keep]
    return run_levels, lengths, blocks


def run_length_matrices(levels: np.ndarray, n_levels: int, n_runs: int, directions,
                        per_slice: bool) -> np.ndarray:
    """Run length counts, (nz, ndir, Ng, n_runs) per slice (in-plane directions only) or (ndir, Ng, n_runs).

    n_runs must be at least the longest line through `levels` (max of its shape)."""
    g, r = n_levels + 1, n_runs + 1
    nz = levels.shape[0]
    # small integer types make the gather and the comparisons cheaper
    small = levels.astype(np.uint8 if n_levels < 256 else np.uint16 if n_levels < 65536 else np.int64)
    matrices = []
    for d in directions:
        # runs of level 0 land in row 0 and are dropped with it, which is cheaper than filtering
        lv, ln, blk = run_lengths(small, d, keep_zero=True, with_blocks=per_slice)
        idx = lv * np.int64(r)
        idx += ln
        if per_slice:
            if d[0] != 0:
                raise ValueError("per-slice matrices need in-plane directions")
            blk *= g * r
            idx += blk
            counts = np.bincount(idx, minlength=nz * g * r).reshape(nz, g, r)
        else:
            counts = np.bincount(idx, minlength=g * r).reshape(g, r)
        matrices.append(counts[..., 1:, 1:])
    return np.stack(matrices, axis=1 if per_slice else 0)


def glrlm_feature_values(counts: np.ndarray) -> np.ndarray:
    """(B, Ng, Nr) run length counts -> (B, 16) feature values in `FEATURES` order."""
    r = np.asarray(counts, dtype=np.float64)
    b, ng, nr = r.shape
    n_s = r.sum(axis=(1, 2))
    empty = n_s <= 0
    n_s = np.where(empty, 1.0, n_s)
    i = np.arange(1, ng + 1, dtype=np.float64)
    j = np.arange(1, nr + 1, dtype=np.float64)
    r_i = r.sum(axis=2)  # runs per grey level
    r_j = r.sum(axis=1)  # runs per length
    n_v = r_j @ j  # voxels in runs (= ROI voxels times the number of merged matrices)

    sre = (r_j @ j ** -2) / n_s
    lre = (r_j @ j ** 2) / n_s
    lgre = (r_i @ i ** -2) / n_s
    hgre = (r_i @ i ** 2) / n_s
    r_by_short = r @ j ** -2  # (B, Ng)
    r_by_long = r @ j ** 2
    srlge = (r_by_short @ i ** -2) / n_s
    srhge = (r_by_short @ i ** 2) / n_s
    lrlge = (r_by_long @ i ** -2) / n_s
    lrhge = (r_by_long @ i ** 2) / n_s
    glnu = (r_i ** 2).sum(axis=1) / n_s
    glnu_norm = glnu / n_s
    rlnu = (r_j ** 2).sum(axis=1) / n_s
    rlnu_norm = rlnu / n_s
    with np.errstate(divide="ignore", invalid="ignore"):
        run_perc = n_s / n_v
    p = r / n_s[:, None, None]
    p_i = p.sum(axis=2)
    p_j = p.sum(axis=1)
    mu_i = p_i @ i
    mu_j = p_j @ j
    gl_var = ((i[None, :] - mu_i[:, None]) ** 2 * p_i).sum(axis=1)
    rl_var = ((j[None, :] - mu_j[:, None]) ** 2 * p_j).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0).sum(axis=(1, 2))

    values = np.stack([sre, lre, lgre, hgre, srlge, srhge, lrlge, lrhge, glnu, glnu_norm, rlnu,
                       rlnu_norm, run_perc, gl_var, rl_var, entropy], axis=1)
    values[empty] = np.nan
    return values


def features(roi: Roi, aggregations=None) -> list[Feature]:
    """The 16 IBSI GLRLM features for each requested aggregation method (None = all six)."""
    aggregations = check_aggregations(aggregations)
    levels = crop_to_roi(np.asarray(roi.levels))
    ng = n_grey_levels(roi, levels)
    if levels is None:
        nan = np.full(len(FEATURES), np.nan)
        return to_features(FAMILY, FEATURES, {a: nan for a in aggregations}, aggregations)
    n_runs = max(levels.shape)  # the longest possible run

    def build(lv, directions, per_slice):
        return run_length_matrices(lv, ng, n_runs, directions, per_slice)

    chunk = max(1, int(8_000_000 // (len(DIRECTIONS_2D) * ng * n_runs)))
    values = aggregate(levels, build, glrlm_feature_values, aggregations, chunk)
    return to_features(FAMILY, FEATURES, values, aggregations)
