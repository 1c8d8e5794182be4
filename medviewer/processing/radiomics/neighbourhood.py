"""Neighbourhood grey tone difference matrix (NGTDM) and neighbouring grey level dependence matrix (NGLDM)
features, IBSI chapter 1 sections "Neighbourhood grey tone difference based features" and "Neighbouring
grey level dependence based features", with the IBSI aggregations "2D" (8QNN), "2.5D" (62GR), "3D" (KOBO).

Neighbourhoods: Chebyshev distance 1 (the 8 in-plane neighbours for "2D"/"2.5D", 26 in 3D); only
neighbours inside the intensity mask count.
- NGTDM: for a voxel k of grey level i with W_k > 0 neighbours in the ROI, |i - mean grey level of the
  neighbours| is added to s_i and the voxel to n_i. Voxels without a neighbour in the ROI are left out
  (N_v,c = sum n_i). Coarseness is 10^6 where sum p_i s_i = 0; contrast and busyness are 0 where only
  one grey level occurs (N_g,p = 1); strength is 0 where sum s_i = 0; busyness is nan where its
  denominator is 0 with N_g,p > 1 (IBSI gives no value); every feature is nan without any voxel with
  a neighbour.
- NGLDM, coarseness alpha = 0: the dependence of voxel k is 1 + the number of its neighbours with the
  same grey level; every voxel of the intensity mask is a neighbourhood (N_s = N_v).

Aggregation: "2D" computes the features per slice and averages them over the slices that have a matrix;
"2.5D" sums the slice matrices first (n_i and s_i, resp. s_ij); "3D" uses one 3D matrix.

Neighbour sums and counts are separable 3x3(x3) box sums on the zero-padded level array; dependence counts
come from 13 half-neighbourhood equality tests on the flattened array (the 2D counts are the 4 in-plane
ones, to which 3D adds 9).
"""
from __future__ import annotations

import numpy as np

from .base import ZONE_AGGREGATIONS, Feature, Roi
from .zones import (OFFSETS_2D, OFFSETS_CROSS, equal_pairs, flat_offset, matrix_features, padded_levels,
                    slice_average)

NGTDM_FEATURES: tuple[tuple[str, str], ...] = (
    ("Coarseness", "QCDE"),
    ("Contrast", "65HE"),
    ("Busyness", "NQ30"),
    ("Complexity", "HDEZ"),
    ("Strength", "1X9X"),
)
# (IBSI feature name, IBSI code, generic key of zones.matrix_features)
NGLDM_FEATURES: tuple[tuple[str, str, str], ...] = (
    ("Low dependence emphasis", "SODN", "se"),
    ("High dependence emphasis", "IMOQ", "le"),
    ("Low grey level count emphasis", "TL9H", "lge"),
    ("High grey level count emphasis", "OAE7", "hge"),
    ("Low dependence low grey level emphasis", "EQ3F", "slge"),
    ("Low dependence high grey level emphasis", "JA6D", "shge"),
    ("High dependence low grey level emphasis", "NBZI", "llge"),
    ("High dependence high grey level emphasis", "9QMG", "lhge"),
    ("Grey level non-uniformity", "FP8K", "glnu"),
    ("Normalised grey level non-uniformity", "5SPA", "glnu_norm"),
    ("Dependence count non-uniformity", "Z87G", "jnu"),
    ("Normalised dependence count non-uniformity", "OKJI", "jnu_norm"),
    ("Dependence count percentage", "6XV8", "perc"),
    ("Grey level variance", "1PFV", "gl_var"),
    ("Dependence count variance", "DNX2", "j_var"),
    ("Dependence count entropy", "FCBV", "j_entr"),
    ("Dependence count energy", "CAS9", "j_energy"),
)
COARSENESS_MAX = 1e6  # IBSI: coarseness where sum p_i s_i = 0


def _box3(a: np.ndarray, axis: int) -> np.ndarray:
    """Sum over 3 neighbours along axis, valid away from the array border (zero padding)."""
    out = np.zeros_like(a)
    lo = [slice(None)] * 3
    mid = [slice(None)] * 3
    hi = [slice(None)] * 3
    lo[axis], mid[axis], hi[axis] = slice(0, -2), slice(1, -1), slice(2, None)
    o = out[tuple(mid)]
    np.add(a[tuple(lo)], a[tuple(mid)], out=o)
    o += a[tuple(hi)]
    return out


def ngtdm_features(n: np.ndarray, s: np.ndarray) -> dict[str, np.ndarray]:
    """NGTDM features of matrices n_i (voxel counts), s_i (grey tone differences), shape (groups, levels),
    column = grey level (column 0 unused). Returns feature name -> (groups,) array."""
    n = np.asarray(n, np.float64)
    s = np.asarray(s, np.float64)
    groups, n_lv = n.shape
    lv = np.arange(n_lv, dtype=np.float64)
    out = {name: np.full(groups, np.nan) for name, _ in NGTDM_FEATURES}
    with np.errstate(divide="ignore", invalid="ignore"):
        nvc = n.sum(1)
        p = n / nvc[:, None]
        ps = (p * s).sum(1)
        s_sum = s.sum(1)
        present = n > 0
        ngp = present.sum(1)
        out["Coarseness"] = np.where(ps > 0, 1.0 / ps, COARSENESS_MAX)
        m1 = (p * lv).sum(1)
        m2 = (p * lv * lv).sum(1)
        pair_sq = 2.0 * (m2 - m1 * m1)  # sum_ij p_i p_j (i - j)^2, as sum_i p_i = 1
        out["Contrast"] = np.where(ngp > 1, pair_sq / (ngp * (ngp - 1.0)) * s_sum / nvc, 0.0)
        busy_den = np.zeros(groups)
        complexity = np.zeros(groups)
        strength_num = np.zeros(groups)
        diff = np.abs(lv[:, None] - lv[None, :])
        chunk = max(1, int(2e6 // (n_lv * n_lv)))
        for start in range(0, groups, chunk):
            sl = slice(start, start + chunk)
            pp = p[sl]
            both = present[sl][:, :, None] & present[sl][:, None, :]
            ip = pp * lv
            busy_den[sl] = np.where(both, np.abs(ip[:, :, None] - ip[:, None, :]), 0.0).sum((1, 2))
            psum = pp[:, :, None] + pp[:, None, :]
            pss = pp * s[sl]
            cx = diff * (pss[:, :, None] + pss[:, None, :]) / psum
            complexity[sl] = np.where(both, cx, 0.0).sum((1, 2))
            strength_num[sl] = np.where(both, psum * diff * diff, 0.0).sum((1, 2))
        out["Busyness"] = np.where(ngp > 1, ps / busy_den, 0.0)
        out["Busyness"][(ngp > 1) & (busy_den == 0)] = np.nan
        out["Complexity"] = complexity / nvc
        out["Strength"] = np.where(s_sum > 0, strength_num / s_sum, 0.0)
    empty = nvc == 0
    for v in out.values():
        v[empty] = np.nan
    return out


class _Neighbourhoods:
    def __init__(self, roi: Roi, want_2d: bool, want_3d: bool):
        padded, _ = padded_levels(roi)
        self.shape = padded.shape
        flat = padded.ravel()
        positive = flat > 0
        self.vox = vox = np.flatnonzero(positive)
        self.level = flat[vox].astype(np.int64)
        self.n_levels = max(int(roi.n_levels), int(self.level.max()) if vox.size else 0)
        self.n_slices = self.shape[0] - 2
        plane = self.shape[1] * self.shape[2]
        self.vz = vox // plane - 1
        self.n_vox_slice = np.bincount(self.vz, minlength=self.n_slices).astype(np.float64)
        self.n_vox = float(vox.size)
        # NGTDM: neighbour sums and counts (centre voxel included, removed below)
        lev = padded.astype(np.int32)
        inside = positive.reshape(self.shape).astype(np.int32)
        sum2 = _box3(_box3(lev, 2), 1)
        cnt2 = _box3(_box3(inside, 2), 1)
        self.tone_2d = self.tone_3d = None
        if want_2d:
            self.tone_2d = self._tone(sum2.ravel()[vox], cnt2.ravel()[vox])
        if want_3d:
            self.tone_3d = self._tone(_box3(sum2, 0).ravel()[vox], _box3(cnt2, 0).ravel()[vox])
        # NGLDM: dependence counts
        dep = np.ones(flat.size, np.uint8)
        for d in OFFSETS_2D:
            self._add_dependence(dep, flat, positive, flat_offset(self.shape, d))
        self.dep_2d = dep[vox].astype(np.int64) if want_2d else None
        self.dep_3d = None
        if want_3d:
            for d in OFFSETS_CROSS:
                self._add_dependence(dep, flat, positive, flat_offset(self.shape, d))
            self.dep_3d = dep[vox].astype(np.int64)

    @staticmethod
    def _add_dependence(dep, flat, positive, o):
        eq = equal_pairs(flat, positive, o).view(np.uint8)
        dep[:-o] += eq
        dep[o:] += eq

    def _tone(self, sums: np.ndarray, counts: np.ndarray):
        """For the ROI voxels with a neighbour in the ROI: their slice, grey level and
        |level - mean neighbour level|."""
        w = counts - 1
        valid = w > 0
        if valid.all():
            level, vz = self.level, self.vz
        else:
            level, vz, sums, w = self.level[valid], self.vz[valid], sums[valid], w[valid]
        diff = np.abs(level - (sums - level) / w)
        return vz, level, diff

    def ngtdm(self, per_slice: bool, tone) -> dict[str, np.ndarray]:
        vz, level, diff = tone
        width = self.n_levels + 1
        n_groups = self.n_slices if per_slice else 1
        key = vz * width + level if per_slice else level
        n = np.bincount(key, minlength=n_groups * width).reshape(n_groups, width)
        s = np.bincount(key, diff, minlength=n_groups * width).reshape(n_groups, width)
        return ngtdm_features(n, s)

    def ngldm(self, groups: np.ndarray, n_groups: int, dep: np.ndarray, n_vox) -> dict[str, np.ndarray]:
        jw = int(dep.max()) + 1 if dep.size else 1
        width = self.n_levels + 1
        key = (groups * width + self.level) * jw + dep
        counts = np.bincount(key, minlength=n_groups * width * jw)
        cells = np.flatnonzero(counts)
        return matrix_features(cells // (width * jw), (cells // jw) % width, cells % jw, n_groups, n_vox,
                               counts=counts[cells])


def features(roi: Roi, aggregations=None) -> list[Feature]:
    """NGTDM and NGLDM features (families "ngtdm", "ngldm") for the IBSI aggregations "2D", "2.5D", "3D"
    (default all three)."""
    unknown = [a for a in (aggregations or ()) if a not in ZONE_AGGREGATIONS]
    if unknown:
        raise ValueError(f"unknown aggregation {unknown[0]!r}; use one of {', '.join(ZONE_AGGREGATIONS)}")
    aggs = tuple(ZONE_AGGREGATIONS if aggregations is None else
                 (a for a in ZONE_AGGREGATIONS if a in tuple(aggregations)))
    if not aggs:
        return []
    nb = _Neighbourhoods(roi, want_2d=any(a != "3D" for a in aggs), want_3d="3D" in aggs)
    merged = np.zeros(nb.vox.size, np.int64)
    ngtdm_rows: list[Feature] = []
    ngldm_rows: list[Feature] = []
    for aggregation in aggs:
        if aggregation == "2D":
            t = nb.ngtdm(True, nb.tone_2d)
            t_valid = np.bincount(nb.tone_2d[0], minlength=nb.n_slices) > 0
            tv = {k: slice_average(v, t_valid) for k, v in t.items()}
            d = nb.ngldm(nb.vz, nb.n_slices, nb.dep_2d, nb.n_vox_slice)
            dv = {k: slice_average(v, nb.n_vox_slice > 0) for k, v in d.items()}
        else:
            tone, dep = (nb.tone_2d, nb.dep_2d) if aggregation == "2.5D" else (nb.tone_3d, nb.dep_3d)
            tv = {k: float(v[0]) for k, v in nb.ngtdm(False, tone).items()}
            dv = {k: float(v[0]) for k, v in nb.ngldm(merged, 1, dep, np.array([nb.n_vox])).items()}
        ngtdm_rows += [Feature("ngtdm", name, code, aggregation, tv[name]) for name, code in NGTDM_FEATURES]
        ngldm_rows += [Feature("ngldm", name, code, aggregation, dv[key]) for name, code, key in NGLDM_FEATURES]
    return ngtdm_rows + ngldm_rows
