"""Grey level size zone matrix (GLSZM) and grey level distance zone matrix (GLDZM) features, IBSI chapter 1
sections "Grey level size zone based features" and "Grey level distance zone based features", with the
three IBSI aggregation methods "2D" (8QNN), "2.5D" (62GR) and "3D" (KOBO).

A zone is a group of connected voxels of the intensity mask sharing one grey level: 8-connected within a
slice (x-y plane) for "2D" and "2.5D", 26-connected in 3D. The GLSZM counts zones by grey level and size
(number of voxels); the GLDZM counts them by grey level and distance, the smallest distance of any of the
zone's voxels to the ROI edge. That distance map is computed on the morphological mask with the taxicab
(city block) metric, 1 for voxels on the edge; outside the image counts as outside the ROI; in-plane for
"2D"/"2.5D", in 3D for "3D". (Voxels of the intensity mask outside the morphological mask - not possible
after IBSI re-segmentation, which only removes voxels - are treated as part of it, so no distance is 0.)

Aggregation: "2D" computes the features per slice and averages them over the slices that hold ROI voxels;
"2.5D" sums the slice matrices (and the voxel counts N_v) first; "3D" uses one 3D matrix.

Zones of all grey levels are found at once rather than with one scipy.ndimage.label call per grey level:
runs of equal grey level along x are the nodes of a graph whose edges join runs holding neighbouring
voxels of equal grey level (half-neighbourhood offsets on the flattened, zero-padded level array); the 2D
zones are its connected components (scipy.sparse.csgraph) over the in-plane offsets, and the 3D zones
join the 2D zones over the 9 offsets to the next slice. Distances per zone: np.minimum.reduceat over the
runs, then np.minimum.at over the zones.

`matrix_features` (the features of a grey level x size/distance/dependence matrix, per group of slices) is
shared with the NGLDM (neighbourhood.py).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from .base import ZONE_AGGREGATIONS, Feature, Roi

# (IBSI feature name, IBSI code, generic key of matrix_features), in the order of the IBSI document
GLSZM_FEATURES: tuple[tuple[str, str, str], ...] = (
    ("Small zone emphasis", "5QRC", "se"),
    ("Large zone emphasis", "48P8", "le"),
    ("Low grey level zone emphasis", "XMSY", "lge"),
    ("High grey level zone emphasis", "5GN9", "hge"),
    ("Small zone low grey level emphasis", "5RAI", "slge"),
    ("Small zone high grey level emphasis", "HW1V", "shge"),
    ("Large zone low grey level emphasis", "YH51", "llge"),
    ("Large zone high grey level emphasis", "J17V", "lhge"),
    ("Grey level non-uniformity", "JNSA", "glnu"),
    ("Normalised grey level non-uniformity", "Y1RO", "glnu_norm"),
    ("Zone size non-uniformity", "4JP3", "jnu"),
    ("Normalised zone size non-uniformity", "VB3A", "jnu_norm"),
    ("Zone percentage", "P30P", "perc"),
    ("Grey level variance", "BYLV", "gl_var"),
    ("Zone size variance", "3NSA", "j_var"),
    ("Zone size entropy", "GU8N", "j_entr"),
)
GLDZM_FEATURES: tuple[tuple[str, str, str], ...] = (
    ("Small distance emphasis", "0GBI", "se"),
    ("Large distance emphasis", "MB4I", "le"),
    ("Low grey level zone emphasis", "S1RA", "lge"),
    ("High grey level zone emphasis", "K26C", "hge"),
    ("Small distance low grey level emphasis", "RUVG", "slge"),
    ("Small distance high grey level emphasis", "DKNJ", "shge"),
    ("Large distance low grey level emphasis", "A7WM", "llge"),
    ("Large distance high grey level emphasis", "KLTH", "lhge"),
    ("Grey level non-uniformity", "VFT7", "glnu"),
    ("Normalised grey level non-uniformity", "7HP3", "glnu_norm"),
    ("Zone distance non-uniformity", "V294", "jnu"),
    ("Normalised zone distance non-uniformity", "IATH", "jnu_norm"),
    ("Zone percentage", "VIWW", "perc"),
    ("Grey level variance", "QK93", "gl_var"),
    ("Zone distance variance", "7WT1", "j_var"),
    ("Zone distance entropy", "GBDU", "j_entr"),
)

# half neighbourhoods as (dz, dy, dx): d and -d join the same voxel pairs
OFFSETS_2D: tuple[tuple[int, int, int], ...] = ((0, 0, 1), (0, 1, -1), (0, 1, 0), (0, 1, 1))
OFFSETS_CROSS: tuple[tuple[int, int, int], ...] = tuple((1, dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))

_TAXICAB_2D = np.zeros((3, 3, 3), bool)
_TAXICAB_2D[1] = ndi.generate_binary_structure(2, 1)


# ---------------------------------------------------------------------------------------------------------
# shared helpers (also used by neighbourhood.py)

def padded_levels(roi: Roi) -> tuple[np.ndarray, tuple[slice, slice, slice]]:
    """The grey levels cropped to the intensity mask's bounding box with one voxel of 0 all around
    (int16, or int32 beyond 32767 levels; 0 = outside the intensity mask), and the crop (slices into the
    roi arrays)."""
    mask = np.asarray(roi.mask, bool)
    levels = np.asarray(roi.levels)
    crop = bounding_box(mask)
    sub = np.where(mask[crop], levels[crop], 0)
    if sub.size and (sub.min() < 0 or sub.max() > np.iinfo(np.int32).max):
        raise ValueError("grey levels must be 1..n_levels inside the mask")
    dtype = np.int16 if not sub.size or sub.max() < 2 ** 15 else np.int32
    return np.pad(sub.astype(dtype, copy=False), 1), crop


def bounding_box(mask: np.ndarray) -> tuple[slice, slice, slice]:
    if not mask.any():
        return (slice(0, 0),) * 3
    out = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        nz = np.flatnonzero(mask.any(axis=other))
        out.append(slice(int(nz[0]), int(nz[-1]) + 1))
    return tuple(out)


def flat_offset(shape: tuple[int, int, int], d: tuple[int, int, int]) -> int:
    return (d[0] * shape[1] + d[1]) * shape[2] + d[2]


def equal_pairs(flat: np.ndarray, positive: np.ndarray, o: int) -> np.ndarray:
    """Bool over flat[:-o]: voxel i and voxel i + o have the same (non-zero) grey level. With a zero
    border of one voxel, a flat offset never wraps onto another ROI voxel."""
    eq = flat[:-o] == flat[o:]
    eq &= positive[:-o]
    return eq


def _count_keys(keys: np.ndarray, weights: np.ndarray | None, keyspace: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys (ascending) and the summed weights (or counts) of each."""
    if keys.size == 0:
        return keys.astype(np.int64), np.zeros(0)
    if keyspace <= max(4 * keys.size, 1 << 20):
        sums = np.bincount(keys, weights, minlength=keyspace)
        present = np.flatnonzero(np.bincount(keys, minlength=keyspace))
        return present, sums[present].astype(np.float64)
    uniq, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse.ravel(), weights, minlength=uniq.size).astype(np.float64)
    return uniq, sums


def _group_sum_sq(g: np.ndarray, k: np.ndarray, w: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group, the sum over distinct k of (summed w)**2 (a non-uniformity numerator)."""
    kmax = int(k.max()) + 1 if k.size else 1
    keys, sums = _count_keys(g.astype(np.int64) * kmax + k, w, n_groups * kmax)
    return np.bincount(keys // kmax, sums * sums, minlength=n_groups)


def matrix_features(g: np.ndarray, i: np.ndarray, j: np.ndarray, n_groups: int, n_vox: np.ndarray,
                    counts: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Features of grey level (i) x size / distance / dependence (j) matrices, one matrix per group g.

    Entries: one per zone (counts None) or per matrix cell (with its count). n_vox: N_v per group.
    Returns generic keys (see GLSZM_FEATURES) -> (n_groups,) arrays, nan for groups without entries.
    """
    g = np.asarray(g, np.int64)
    i = np.asarray(i, np.int64)
    j = np.asarray(j, np.int64)
    if counts is None:  # aggregate zones into matrix cells
        imax, jmax = (int(i.max()) + 1, int(j.max()) + 1) if i.size else (1, 1)
        keys, counts = _count_keys((g * imax + i) * jmax + j, None, n_groups * imax * jmax)
        j = keys % jmax
        i = (keys // jmax) % imax
        g = keys // (jmax * imax)
    w = np.asarray(counts, np.float64)
    fi = i.astype(np.float64)
    fj = j.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ns = np.bincount(g, w, minlength=n_groups)

        def mean(x):
            return np.bincount(g, w * x, minlength=n_groups) / ns

        i2, j2 = fi * fi, fj * fj
        out = {
            "se": mean(1.0 / j2), "le": mean(j2), "lge": mean(1.0 / i2), "hge": mean(i2),
            "slge": mean(1.0 / (i2 * j2)), "shge": mean(i2 / j2), "llge": mean(j2 / i2), "lhge": mean(i2 * j2),
        }
        glnu = _group_sum_sq(g, i, w, n_groups)
        jnu = _group_sum_sq(g, j, w, n_groups)
        out["glnu"] = glnu / ns
        out["glnu_norm"] = glnu / (ns * ns)
        out["jnu"] = jnu / ns
        out["jnu_norm"] = jnu / (ns * ns)
        out["perc"] = ns / np.asarray(n_vox, np.float64)
        mu_i = mean(fi)
        mu_j = mean(fj)
        out["gl_var"] = mean((fi - mu_i[g]) ** 2)
        out["j_var"] = mean((fj - mu_j[g]) ** 2)
        p = w / ns[g]
        out["j_entr"] = -np.bincount(g, p * np.log2(p), minlength=n_groups)
        out["j_energy"] = np.bincount(g, p * p, minlength=n_groups)
    out = {k: np.asarray(v, np.float64) for k, v in out.items()}  # (bincount of nothing is integer)
    empty = ns == 0
    for v in out.values():
        v[empty] = np.nan
    return out


def slice_average(values: np.ndarray, valid: np.ndarray) -> float:
    """IBSI "2D": the mean over the slices that hold a matrix (nan when none does)."""
    v = values[valid]
    return float(v.mean()) if v.size else float("nan")


# ---------------------------------------------------------------------------------------------------------
# zones

def _components(n: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Connected component of each of n nodes, given undirected edges."""
    if rows.size == 0:
        return np.arange(n)
    graph = csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n))
    return connected_components(graph, directed=True, connection="weak")[1]


def _min_per_label(labels: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, np.iinfo(np.int32).max, np.int32)
    np.minimum.at(out, labels, values.astype(np.int32, copy=False))
    return out


class _Zones:
    """Zones of the padded level array: per zone its grey level, size, slice (2D) and, on request, its
    distance to the ROI edge.

    Runs (maximal groups of consecutive equal-level voxels along x) are found first; the 2D zones are the
    connected components of the graph of runs joined by the 3 other in-plane offsets, the 3D zones those
    of the 2D zones joined by the 9 offsets to the next slice. Along an offset, an edge is only added where
    the pair of runs changes, which keeps the graphs small even for large zones.
    """

    def __init__(self, roi: Roi, want_2d: bool, want_3d: bool, want_distance: bool):
        padded, crop = padded_levels(roi)
        self.shape = padded.shape
        flat = padded.ravel()
        size = flat.size
        positive = flat > 0
        vox = np.flatnonzero(positive)  # ROI voxels (flat indices into the padded array)
        self.n_slices = self.shape[0] - 2
        plane = self.shape[1] * self.shape[2]
        self.n_vox_slice = np.bincount(vox // plane - 1, minlength=self.n_slices).astype(np.float64)
        self.n_vox = float(vox.size)
        self.zones_2d = self.zones_3d = None
        if vox.size == 0:
            empty = np.zeros(0, np.int64)
            self.zones_2d = (empty, empty, empty, empty)
            self.zones_3d = (empty, empty, empty)
            return

        # runs along x
        start = positive.copy()
        start[1:] &= ~equal_pairs(flat, positive, 1)
        run_id = np.cumsum(start, dtype=np.int32 if size < 2 ** 31 else np.int64)
        run_id -= 1
        run_first = np.flatnonzero(start[vox])  # position in vox of each run's first voxel
        n_runs = run_first.size
        run_len = np.diff(np.append(run_first, vox.size))
        run_flat = vox[run_first]
        run_level = flat[run_flat].astype(np.int64)
        run_d2 = run_d3 = None
        if want_distance:
            morph = np.pad(np.asarray(roi.morph_mask, bool)[crop] | np.asarray(roi.mask, bool)[crop], 1)
            if want_2d:
                d = ndi.distance_transform_cdt(morph, metric=_TAXICAB_2D).ravel()[vox]
                run_d2 = np.minimum.reduceat(d, run_first)
            if want_3d:
                d = ndi.distance_transform_cdt(morph, metric="taxicab").ravel()[vox]
                run_d3 = np.minimum.reduceat(d, run_first)

        def run_edges(offsets, node_of_run):
            rows, cols = [], []
            for dd in offsets:
                o = flat_offset(self.shape, dd)
                eq = equal_pairs(flat, positive, o)
                keep = eq.copy()  # drop an edge when the previous voxel joined the same two runs
                keep[1:] &= ~(eq[:-1] & ~start[1:size - o] & ~start[1 + o:size])
                r = np.flatnonzero(keep)
                rows.append(node_of_run[run_id[r]])
                cols.append(node_of_run[run_id[r + o]])
            return np.concatenate(rows), np.concatenate(cols)

        comp2 = _components(n_runs, *run_edges(OFFSETS_2D[1:], np.arange(n_runs)))  # 2D zone of each run
        n2 = int(comp2.max()) + 1
        if want_2d:
            level = np.empty(n2, np.int64)
            level[comp2] = run_level
            zslice = np.empty(n2, np.int64)
            zslice[comp2] = run_flat // plane - 1
            dist = _min_per_label(comp2, run_d2, n2) if run_d2 is not None else None
            self.zones_2d = (level, np.bincount(comp2, run_len, minlength=n2).astype(np.int64), zslice, dist)
        if want_3d:
            comp3 = _components(n2, *run_edges(OFFSETS_CROSS, comp2))[comp2]  # 3D zone of each run
            n3 = int(comp3.max()) + 1
            level = np.empty(n3, np.int64)
            level[comp3] = run_level
            dist = _min_per_label(comp3, run_d3, n3) if run_d3 is not None else None
            self.zones_3d = (level, np.bincount(comp3, run_len, minlength=n3).astype(np.int64), dist)


def _family_rows(family: str, table, values_by_aggregation: dict[str, dict[str, float]]) -> list[Feature]:
    out = []
    for aggregation, values in values_by_aggregation.items():
        for name, code, key in table:
            out.append(Feature(family, name, code, aggregation, float(values[key])))
    return out


def _aggregate(zones: _Zones, aggregations, which: str) -> dict[str, dict[str, float]]:
    """Feature values per aggregation for which = "size" (GLSZM) or "distance" (GLDZM)."""
    res: dict[str, dict[str, float]] = {}
    for aggregation in aggregations:
        if aggregation == "3D":
            level, size, dist = zones.zones_3d
            j = size if which == "size" else dist
            f = matrix_features(np.zeros(level.size, np.int64), level, j, 1, np.array([zones.n_vox]))
            res[aggregation] = {k: v[0] for k, v in f.items()}
        else:
            level, size, zslice, dist = zones.zones_2d
            j = size if which == "size" else dist
            if aggregation == "2D":
                f = matrix_features(zslice, level, j, zones.n_slices, zones.n_vox_slice)
                valid = zones.n_vox_slice > 0
                res[aggregation] = {k: slice_average(v, valid) for k, v in f.items()}
            else:  # "2.5D": slice matrices merged
                f = matrix_features(np.zeros(level.size, np.int64), level, j, 1, np.array([zones.n_vox]))
                res[aggregation] = {k: v[0] for k, v in f.items()}
    return res


def features(roi: Roi, aggregations=None) -> list[Feature]:
    """GLSZM and GLDZM features (families "glszm", "gldzm") for the IBSI aggregations "2D", "2.5D", "3D"
    (default all three)."""
    aggs = tuple(ZONE_AGGREGATIONS if aggregations is None else
                 (a for a in ZONE_AGGREGATIONS if a in tuple(aggregations)))
    unknown = [a for a in (aggregations or ()) if a not in ZONE_AGGREGATIONS]
    if unknown:
        raise ValueError(f"unknown zone aggregation {unknown[0]!r}; use one of {', '.join(ZONE_AGGREGATIONS)}")
    if not aggs:
        return []
    zones = _Zones(roi, want_2d=any(a != "3D" for a in aggs), want_3d="3D" in aggs, want_distance=True)
    return (_family_rows("glszm", GLSZM_FEATURES, _aggregate(zones, aggs, "size"))
            + _family_rows("gldzm", GLDZM_FEATURES, _aggregate(zones, aggs, "distance")))
