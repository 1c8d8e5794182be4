"""GLSZM, GLDZM (zones.py), NGTDM and NGLDM (neighbourhood.py): IBSI digital phantom reference values,
an independent brute-force implementation on small random ROIs, degenerate ROIs and rotation invariance."""
from __future__ import annotations

import csv
import math
from decimal import Decimal

import numpy as np
import pytest
from scipy import ndimage as ndi

from medviewer.processing.radiomics import neighbourhood, zones
from medviewer.processing.radiomics.base import ZONE_AGGREGATIONS, Roi
from tests.conftest import shared

FAMILIES = ("glszm", "gldzm", "ngtdm", "ngldm")


def compute(roi: Roi, aggregations=None) -> dict[tuple[str, str, str], float]:
    out = {}
    for f in zones.features(roi, aggregations) + neighbourhood.features(roi, aggregations):
        key = (f.family, f.feature, f.aggregation)
        assert key not in out, f"duplicate row {key}"
        out[key] = f.value
    return out


def make_roi(levels: np.ndarray, mask: np.ndarray, n_levels: int, morph: np.ndarray | None = None) -> Roi:
    mask = np.asarray(mask, bool)
    levels = np.where(mask, levels, 0).astype(np.int32)
    return Roi(image=levels.astype(np.float64), morph_mask=mask.copy() if morph is None else morph, mask=mask,
               spacing=(1.0, 1.0, 1.0), levels=levels, n_levels=n_levels)


def half_unit(text: str) -> float:
    """Half a unit of the last printed digit of a reference value ("0.0676" -> 5e-5, "1.49e3" -> 5)."""
    exponent = Decimal(text.strip()).as_tuple().exponent
    return 0.5 * 10.0 ** exponent


# ---------------------------------------------------------------------------------------------------------
# IBSI digital phantom

def test_ibsi_digital_phantom_reference_values():
    sitk = pytest.importorskip("SimpleITK")
    folder = shared("ibsi", "digital_phantom")
    image = sitk.ReadImage(str(folder / "phantom.nii.gz"))
    mask_image = sitk.ReadImage(str(folder / "mask.nii.gz"))
    data = sitk.GetArrayFromImage(image).astype(np.float64)
    mask = sitk.GetArrayFromImage(mask_image).astype(bool)
    roi = Roi(image=data, morph_mask=mask, mask=mask, spacing=tuple(image.GetSpacing()),
              levels=np.where(mask, data, 0).astype(np.int32), n_levels=6)
    rows = list(csv.DictReader(open(folder / "reference_values.csv", encoding="utf-8")))
    rows = [r for r in rows if r["family"] in FAMILIES]
    assert len(rows) == 162
    got = {}
    for f in zones.features(roi) + neighbourhood.features(roi):
        got[(f.family, f.feature, f.ibsi_code, f.aggregation)] = f.value
    assert len(got) == 162  # exactly the reference rows, nothing more
    failures = []
    for r in rows:
        key = (r["family"], r["feature_name"], r["ibsi_code"], r["aggregation"])
        ref = float(r["value"])
        value = got.get(key)
        if value is None or not abs(value - ref) <= half_unit(r["value"]) * (1 + 1e-9):
            failures.append(f"{key}: reference {r['value']}, got {value}")
    print(f"IBSI digital phantom, GLSZM/GLDZM/NGTDM/NGLDM: {len(rows) - len(failures)}/{len(rows)} rows match")
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------------------------------------------
# independent brute-force implementation (per-level ndimage.label, voxel loops, dense matrices)

def ref_matrix_features(m: np.ndarray, n_vox: float) -> dict[str, float]:
    """Features of a dense matrix m[i, j] (row i = grey level i, column j = size/distance/dependence j)."""
    ns = m.sum()
    i = np.arange(m.shape[0], dtype=float)[:, None]
    j = np.arange(m.shape[1], dtype=float)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        ii = np.where(m > 0, i, 1.0)
        jj = np.where(m > 0, j, 1.0)
        p = m / ns
        mu_i = (i * p).sum()
        mu_j = (j * p).sum()
        pl = p[p > 0]
        return {
            "se": (m / jj ** 2).sum() / ns, "le": (m * j ** 2).sum() / ns,
            "lge": (m / ii ** 2).sum() / ns, "hge": (m * i ** 2).sum() / ns,
            "slge": (m / (ii ** 2 * jj ** 2)).sum() / ns, "shge": (m * i ** 2 / jj ** 2).sum() / ns,
            "llge": (m * j ** 2 / ii ** 2).sum() / ns, "lhge": (m * i ** 2 * j ** 2).sum() / ns,
            "glnu": (m.sum(1) ** 2).sum() / ns, "glnu_norm": (m.sum(1) ** 2).sum() / ns ** 2,
            "jnu": (m.sum(0) ** 2).sum() / ns, "jnu_norm": (m.sum(0) ** 2).sum() / ns ** 2,
            "perc": ns / n_vox, "gl_var": ((i - mu_i) ** 2 * p).sum(), "j_var": ((j - mu_j) ** 2 * p).sum(),
            "j_entr": -(pl * np.log2(pl)).sum(), "j_energy": (pl ** 2).sum(),
        }


def ref_ngtdm_features(n: np.ndarray, s: np.ndarray) -> dict[str, float]:
    nvc = n.sum()
    if nvc == 0:
        return {k: math.nan for k in ("Coarseness", "Contrast", "Busyness", "Complexity", "Strength")}
    p = n / nvc
    levels = [i for i in range(len(n)) if p[i] > 0]
    ngp = len(levels)
    ps = float((p * s).sum())
    out = {"Coarseness": 1.0 / ps if ps > 0 else 1e6}
    if ngp > 1:
        dyn = sum(p[a] * p[b] * (a - b) ** 2 for a in levels for b in levels) / (ngp * (ngp - 1))
        out["Contrast"] = dyn * s.sum() / nvc
        den = sum(abs(a * p[a] - b * p[b]) for a in levels for b in levels)
        out["Busyness"] = ps / den if den > 0 else math.nan
    else:
        out["Contrast"] = out["Busyness"] = 0.0
    out["Complexity"] = sum(abs(a - b) * (p[a] * s[a] + p[b] * s[b]) / (p[a] + p[b])
                            for a in levels for b in levels) / nvc
    num = sum((p[a] + p[b]) * (a - b) ** 2 for a in levels for b in levels)
    out["Strength"] = num / s.sum() if s.sum() > 0 else 0.0
    return out


def ref_zone_matrices(roi: Roi, mode: str, which: str) -> list[tuple[np.ndarray, int]]:
    """(matrix, N_v) per slice (mode "2d") or for the volume ("3d")."""
    lv, mask = roi.levels, roi.mask
    morph = roi.morph_mask | mask
    ng = roi.n_levels
    if mode == "3d":
        parts = [(lv, mask, morph, np.ones((3, 3, 3)))]
    else:
        parts = [(lv[z], mask[z], morph[z], np.ones((3, 3))) for z in range(lv.shape[0]) if mask[z].any()]
    out = []
    for lev, msk, mor, structure in parts:
        dist = ndi.distance_transform_cdt(np.pad(mor, 1), metric="taxicab")[(slice(1, -1),) * lev.ndim]
        entries = []
        for k in range(1, ng + 1):
            lab, n = ndi.label((lev == k) & msk, structure)
            for zone in range(1, n + 1):
                voxels = lab == zone
                entries.append((k, int(voxels.sum()) if which == "size" else int(dist[voxels].min())))
        width = max(j for _, j in entries) + 1
        m = np.zeros((ng + 1, width))
        for k, j in entries:
            m[k, j] += 1
        out.append((m, int(msk.sum())))
    return out


def neighbours(shape, idx, in_plane):
    z, y, x = idx
    for dz in (0,) if in_plane else (-1, 0, 1):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if (dz, dy, dx) == (0, 0, 0):
                    continue
                q = (z + dz, y + dy, x + dx)
                if all(0 <= c < s for c, s in zip(q, shape)):
                    yield q


def ref_neighbourhood(roi: Roi, in_plane: bool):
    """Per slice (in_plane) or for the volume: NGTDM (n, s) and NGLDM matrix with N_v."""
    lv, mask, ng = roi.levels, roi.mask, roi.n_levels
    groups = {}
    for idx in zip(*np.nonzero(mask)):
        g = groups.setdefault(idx[0] if in_plane else 0,
                              {"n": np.zeros(ng + 1), "s": np.zeros(ng + 1), "dep": [], "nv": 0})
        level = lv[idx]
        nb = [lv[q] for q in neighbours(lv.shape, idx, in_plane) if mask[q]]
        g["nv"] += 1
        if nb:
            g["n"][level] += 1
            g["s"][level] += abs(level - sum(nb) / len(nb))
        g["dep"].append((level, 1 + sum(v == level for v in nb)))
    out = []
    for g in groups.values():
        m = np.zeros((ng + 1, max(j for _, j in g["dep"]) + 1))
        for level, j in g["dep"]:
            m[level, j] += 1
        out.append((g["n"], g["s"], m, g["nv"]))
    return out


def reference(roi: Roi) -> dict[tuple[str, str, str], float]:
    out = {}
    for family, table, which in (("glszm", zones.GLSZM_FEATURES, "size"), ("gldzm", zones.GLDZM_FEATURES, "distance")):
        per_slice = ref_zone_matrices(roi, "2d", which)
        slice_values = [ref_matrix_features(m, nv) for m, nv in per_slice]
        width = max(m.shape[1] for m, _ in per_slice)
        merged = sum(np.pad(m, ((0, 0), (0, width - m.shape[1]))) for m, _ in per_slice)
        values = {"2D": {k: np.mean([v[k] for v in slice_values]) for k in slice_values[0]},
                  "2.5D": ref_matrix_features(merged, sum(nv for _, nv in per_slice)),
                  "3D": ref_matrix_features(*ref_zone_matrices(roi, "3d", which)[0])}
        for aggregation, vals in values.items():
            for name, _, key in table:
                out[(family, name, aggregation)] = vals[key]
    per_slice = ref_neighbourhood(roi, True)
    volume = ref_neighbourhood(roi, False)[0]
    width = max(m.shape[1] for _, _, m, _ in per_slice)
    merged_dep = sum(np.pad(m, ((0, 0), (0, width - m.shape[1]))) for _, _, m, _ in per_slice)
    valid_tone = [(n, s) for n, s, _, _ in per_slice if n.sum() > 0]
    tone_slices = [ref_ngtdm_features(n, s) for n, s in valid_tone]
    dep_slices = [ref_matrix_features(m, nv) for _, _, m, nv in per_slice]
    tone = {"2D": {k: (np.mean([v[k] for v in tone_slices]) if tone_slices else math.nan)
                   for k in ("Coarseness", "Contrast", "Busyness", "Complexity", "Strength")},
            "2.5D": ref_ngtdm_features(sum(n for n, _, _, _ in per_slice), sum(s for _, s, _, _ in per_slice)),
            "3D": ref_ngtdm_features(volume[0], volume[1])}
    dep = {"2D": {k: np.mean([v[k] for v in dep_slices]) for k in dep_slices[0]},
           "2.5D": ref_matrix_features(merged_dep, sum(nv for _, _, _, nv in per_slice)),
           "3D": ref_matrix_features(volume[2], volume[3])}
    for aggregation in ZONE_AGGREGATIONS:
        for name, _ in neighbourhood.NGTDM_FEATURES:
            out[("ngtdm", name, aggregation)] = tone[aggregation][name]
        for name, _, key in neighbourhood.NGLDM_FEATURES:
            out[("ngldm", name, aggregation)] = dep[aggregation][key]
    return out


def random_roi(seed: int, shape=(5, 7, 8), n_levels=4, smooth=0.8, morph_margin=False) -> Roi:
    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.standard_normal(shape), smooth)
    edges = np.quantile(field, np.linspace(0, 1, n_levels + 1)[1:-1])
    levels = np.digitize(field, edges) + 1
    mask = ndi.gaussian_filter(rng.standard_normal(shape), 1.0) > -0.3
    if seed % 2:  # an absent grey level and a hole in the intensity mask only
        levels[levels == 2] = 3
    morph = mask.copy()
    if morph_margin:
        mask = mask & (rng.random(shape) > 0.15)
    return make_roi(levels, mask, n_levels, morph)


def assert_same(got: dict, want: dict, rtol=1e-9, atol=1e-12):
    assert set(got) == set(want)
    bad = [f"{k}: got {got[k]!r}, want {want[k]!r}" for k in want
           if not (math.isnan(want[k]) and math.isnan(got[k]))
           and not math.isclose(got[k], want[k], rel_tol=rtol, abs_tol=atol)]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("seed", range(6))
def test_matches_brute_force_reference(seed):
    roi = random_roi(seed, morph_margin=seed >= 4)
    assert_same(compute(roi), reference(roi))


def test_matches_brute_force_reference_large_zones():
    roi = random_roi(11, shape=(4, 9, 10), n_levels=3, smooth=2.0)
    assert_same(compute(roi), reference(roi))


# ---------------------------------------------------------------------------------------------------------
# degenerate ROIs, aggregation subsets, rotation

def test_constant_roi():
    mask = np.ones((4, 5, 6), bool)
    values = compute(make_roi(np.full(mask.shape, 3), mask, 8))
    assert len(values) == 162 // 3 * 3
    for aggregation in ZONE_AGGREGATIONS:
        assert values[("ngtdm", "Coarseness", aggregation)] == 1e6
        for name in ("Contrast", "Busyness", "Complexity", "Strength"):
            assert values[("ngtdm", name, aggregation)] == 0.0
        for family in ("glszm", "gldzm"):
            assert values[(family, "Grey level variance", aggregation)] == 0.0
        assert values[("glszm", "Zone size entropy", aggregation)] == 0.0
        assert values[("ngldm", "Dependence count percentage", aggregation)] == 1.0
    assert values[("glszm", "Zone percentage", "3D")] == pytest.approx(1 / mask.sum())
    assert values[("glszm", "Large zone emphasis", "3D")] == pytest.approx(mask.sum() ** 2)
    assert values[("gldzm", "Large distance emphasis", "3D")] == 1.0  # the one zone touches the edge
    assert values[("ngldm", "High dependence emphasis", "3D")] == pytest.approx(
        np.mean(ndi.correlate(np.pad(mask, 1).astype(int), np.ones((3, 3, 3)), mode="constant")[1:-1, 1:-1, 1:-1]
                ** 2))
    assert not any(math.isnan(v) for v in values.values())


def test_one_voxel_roi():
    mask = np.zeros((3, 3, 3), bool)
    mask[1, 1, 1] = True
    values = compute(make_roi(np.full(mask.shape, 2), mask, 4))
    for aggregation in ZONE_AGGREGATIONS:
        for name, _ in neighbourhood.NGTDM_FEATURES:  # no voxel has a neighbour: N_v,c = 0
            assert math.isnan(values[("ngtdm", name, aggregation)])
        for family, table in (("glszm", zones.GLSZM_FEATURES), ("gldzm", zones.GLDZM_FEATURES),
                              ("ngldm", neighbourhood.NGLDM_FEATURES)):
            for name, _, _ in table:
                assert not math.isnan(values[(family, name, aggregation)]), (family, name, aggregation)
        assert values[("glszm", "Small zone emphasis", aggregation)] == 1.0
        assert values[("gldzm", "Small distance emphasis", aggregation)] == 1.0
        assert values[("glszm", "High grey level zone emphasis", aggregation)] == 4.0
        assert values[("ngldm", "Low dependence emphasis", aggregation)] == 1.0
        assert values[("ngldm", "Dependence count entropy", aggregation)] == 0.0


def test_empty_roi_gives_nan():
    mask = np.zeros((2, 3, 3), bool)
    values = compute(make_roi(np.zeros(mask.shape), mask, 4))
    assert len(values) == 162 and all(math.isnan(v) for v in values.values())


def test_aggregation_subset_and_names():
    roi = random_roi(3)
    full = compute(roi)
    only = compute(roi, ("2.5D",))
    assert set(k[2] for k in only) == {"2.5D"}
    assert all(only[k] == full[k] for k in only)
    assert compute(roi, ()) == {}
    families = {f.family for f in zones.features(roi)} | {f.family for f in neighbourhood.features(roi)}
    assert families == set(FAMILIES)
    with pytest.raises(ValueError):
        zones.features(roi, ("2D, averaged",))


def test_rotation_invariance():
    rng = np.random.default_rng(7)
    shape = (6, 13, 17)
    levels = rng.integers(1, 7, shape)
    levels[:, 3:9, 4:12] = ndi.gaussian_filter(rng.standard_normal((6, 6, 8)), 1.0).argsort(None).reshape(
        (6, 6, 8)) % 3 + 1  # some larger zones
    mask = ndi.binary_opening(rng.random(shape) > 0.2)
    roi = make_roi(levels, mask, 8)
    base = compute(roi)
    for k in (1, 2, 3):
        rotated = make_roi(np.rot90(levels, k, axes=(1, 2)), np.rot90(mask, k, axes=(1, 2)), 8)
        assert_same(compute(rotated), base, rtol=1e-9, atol=1e-9)
