"""IBSI morphological features (chapter 1, section "Morphological features", family "morphology").

features(roi) -> list[Feature], 25 features, the ones of the IBSI digital phantom table:

- the mesh: marching cubes (skimage.measure.marching_cubes, Lewiner) at level 0.5 on the
  morphological mask cropped to its bounding box and zero-padded by one voxel, with the voxel
  spacing, so vertices are in mm. Volume (mesh) is |sum of the signed tetrahedron volumes
  a.(b x c)/6| over the faces, surface area the sum of the triangle areas. Every mesh-based feature
  (compactness, sphericity, densities, integrated intensity ...) uses this volume V and area A;
- volume (voxel counting): the number of morphological-mask voxels times the voxel volume;
- maximum 3D diameter: the largest distance between two vertices of the mesh's convex hull
  (scipy.spatial.ConvexHull), which holds the two most distant mesh vertices;
- PCA (major/minor/least axis, elongation, flatness, approximate enclosing ellipsoid): eigenvalues
  of the SAMPLE covariance (n - 1) of the morphological voxel centres in mm; the population
  covariance misses the phantom's reference values (see the phantom's NOTES.md). Semi-axes are
  a, b, c = 2 sqrt(lambda); the ellipsoid area is IBSI's Legendre series stopped after nu = 20;
- axis-aligned bounding box and convex hull of the mesh vertices;
- centre of mass shift: geometric centre of the morphological voxel centres against the
  intensity-weighted centre of the intensity-mask voxel centres;
- Moran's I and Geary's C: inverse Euclidean distance (mm) weights between intensity-mask voxels.
  They are exact (all N (N - 1) pairs) for ROIs of at most MORAN_EXACT_MAX = 4000 voxels. Above
  that they are ESTIMATES from a random subsample of MORAN_SAMPLE = 4000 intensity-mask voxels
  drawn with a fixed seed (numpy default_rng(MORAN_SEED)), the same formula applied to the
  subsample. Uniform subsampling keeps each pair with the same probability, so the ratios in both
  formulas are consistent estimators; the result is reproducible for a given ROI, but it changes
  when the ROI's voxels are enumerated in another order (e.g. a rotated copy of the ROI).

Not computed: the oriented minimum bounding box (ZH1A, IQYR) and minimum volume enclosing
ellipsoid (SWZ1, BRI8) densities; IBSI gives them no reference value and says they should not be
used.

Undefined values are NaN: a division by zero (e.g. PCA of one voxel, Moran's I of a constant ROI,
a zero total intensity for the centre of mass). An empty mask raises MedViewerError.
"""
from __future__ import annotations

import math

import numpy as np
from numpy.polynomial import legendre
from scipy.spatial import ConvexHull
from scipy.spatial.distance import cdist
from skimage.measure import marching_cubes

from medviewer.core.errors import MedViewerError
from medviewer.processing.radiomics.base import Feature, Roi

FAMILY = "morphology"
MORAN_EXACT_MAX = 4000
MORAN_SAMPLE = 4000
MORAN_SEED = 20180807
AEE_SERIES_TERMS = 20  # IBSI: stop the ellipsoid-area Legendre series after nu = 20

# (feature name as in the IBSI reference CSV, IBSI code), in the CSV's order
NAMES = {
    "vol": ("Volume (mesh)", "RNU0"),
    "approx_vol": ("Volume (voxel counting)", "YEKZ"),
    "area": ("Surface area (mesh)", "C0JK"),
    "av": ("Surface to volume ratio", "2PR5"),
    "comp1": ("Compactness 1", "SKGS"),
    "comp2": ("Compactness 2", "BQWJ"),
    "sph_dispr": ("Spherical disproportion", "KRCK"),
    "sphericity": ("Sphericity", "QCFX"),
    "asphericity": ("Asphericity", "25C7"),
    "com": ("Centre of mass shift", "KLMA"),
    "diam": ("Maximum 3D diameter", "L0JK"),
    "major": ("Major axis length", "TDIC"),
    "minor": ("Minor axis length", "P9VJ"),
    "least": ("Least axis length", "7J51"),
    "elongation": ("Elongation", "Q3CK"),
    "flatness": ("Flatness", "N17B"),
    "v_aabb": ("Volume density (axis-aligned bounding box)", "PBX1"),
    "a_aabb": ("Area density (axis-aligned bounding box)", "R59B"),
    "v_aee": ("Volume density (approximate enclosing ellipsoid)", "6BDE"),
    "a_aee": ("Area density (approximate enclosing ellipsoid)", "RDD2"),
    "v_hull": ("Volume density (convex hull)", "R3ER"),
    "a_hull": ("Area density (convex hull)", "7T7F"),
    "integ": ("Integrated intensity", "99N0"),
    "moran": ("Moran\u2019s I index", "N365"),
    "geary": ("Geary\u2019s C measure", "NPT7"),
}


def _div(num: float, den: float) -> float:
    """num / den, NaN where the denominator is zero or either is not finite."""
    num, den = float(num), float(den)
    if den == 0.0 or not math.isfinite(den) or not math.isfinite(num):
        return math.nan
    return num / den


def _zyx_spacing(roi: Roi) -> np.ndarray:
    sx, sy, sz = (float(s) for s in roi.spacing)
    return np.array([sz, sy, sx], np.float64)


def _mesh(mask: np.ndarray, spacing_zyx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes mesh (vertices in mm, faces) of a bool mask, cropped and padded by one voxel."""
    idx = np.argwhere(mask)
    lo, hi = idx.min(0), idx.max(0) + 1
    crop = mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    padded = np.pad(crop, 1).astype(np.float32)
    verts, faces, _normals, _values = marching_cubes(padded, level=0.5, spacing=tuple(spacing_zyx))
    # back to the coordinates of voxel centres in the full grid (translation only)
    verts = verts.astype(np.float64) + (lo - 1) * spacing_zyx
    return verts, faces


def _mesh_volume_area(verts: np.ndarray, faces: np.ndarray) -> tuple[float, float]:
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    volume = abs(float(np.einsum("ij,ij->", a, np.cross(b, c)))) / 6.0
    area = float(np.linalg.norm(np.cross(b - a, c - a), axis=1).sum()) / 2.0
    return volume, area


def _max_diameter(points: np.ndarray, block: int = 256) -> float:
    """Largest pairwise distance between points (exact; blocks of rows, upper triangle)."""
    n = len(points)
    if n < 2:
        return 0.0
    best = 0.0
    for i in range(0, n, block):
        d = cdist(points[i:i + block], points[i:])
        best = max(best, float(d.max()))
    return best


def _pca_eigenvalues(points: np.ndarray) -> np.ndarray:
    """Eigenvalues (major, minor, least) of the sample covariance; NaN for fewer than 2 points."""
    if len(points) < 2:
        return np.full(3, np.nan)
    cov = np.cov(points, rowvar=False, ddof=1)
    ev = np.linalg.eigvalsh(cov)[::-1]
    return np.clip(ev, 0.0, None)


def _ellipsoid_area(a: float, b: float, c: float, terms: int = AEE_SERIES_TERMS) -> float:
    """IBSI's approximate ellipsoid surface area, a >= b >= c the semi-axes.

    A = 4 pi a b sum_nu (alpha beta)^nu / (1 - 4 nu^2) P_nu((alpha^2 + beta^2) / (2 alpha beta)),
    alpha = sqrt(1 - b^2/a^2), beta = sqrt(1 - c^2/a^2). (alpha beta)^nu P_nu(x) is evaluated as a
    homogeneous polynomial in alpha beta and (alpha^2 + beta^2)/2, so alpha beta = 0 (a spheroid) is
    fine.
    """
    if not (a > 0):
        return math.nan
    alpha = math.sqrt(max(0.0, 1.0 - (b / a) ** 2))
    beta = math.sqrt(max(0.0, 1.0 - (c / a) ** 2))
    ab = alpha * beta
    s = (alpha ** 2 + beta ** 2) / 2.0
    total = 0.0
    for nu in range(terms + 1):
        coeffs = legendre.leg2poly([0] * nu + [1])  # power-series coefficients of P_nu
        term = 0.0
        for k, ck in enumerate(coeffs):
            if ck != 0.0:
                term += ck * ab ** (nu - k) * s ** k
        total += term / (1.0 - 4.0 * nu * nu)
    return 4.0 * math.pi * a * b * total


def _moran_geary(points: np.ndarray, values: np.ndarray, block: int = 64) -> tuple[float, float]:
    """Moran's I and Geary's C with inverse-distance weights over all pairs of the given voxels."""
    n = len(values)
    if n < 2:
        return math.nan, math.nan
    z = values - values.mean()
    ss = float(z @ z)
    w_sum = moran_num = geary_num = 0.0  # sums over pairs i < j
    for i in range(0, n, block):
        a = points[i:i + block]
        m = len(a)
        with np.errstate(divide="ignore"):
            w = 1.0 / cdist(a, points[i:])  # columns j >= i
        w[:, :m] = np.triu(w[:, :m], k=1)  # keep j > i in the diagonal block (also drops 1/0)
        zi, zj = z[i:i + m], z[i:]
        rows, cols = w.sum(1), w.sum(0)
        wz = w @ zj
        w_sum += float(rows.sum())
        moran_num += float(zi @ wz)
        geary_num += float(zi * zi @ rows - 2.0 * zi @ wz + cols @ (zj * zj))
    w_all = 2.0 * w_sum  # sums over i != j
    moran = _div(n * 2.0 * moran_num, w_all * ss) if ss > 0 else math.nan
    geary = _div((n - 1) * 2.0 * geary_num, 2.0 * w_all * ss) if ss > 0 else math.nan
    return moran, geary


def features(roi: Roi) -> list[Feature]:
    morph = np.asarray(roi.morph_mask, bool)
    mask = np.asarray(roi.mask, bool)
    if not morph.any():
        raise MedViewerError("the ROI is empty: the morphological mask has no voxel")
    if not mask.any():
        raise MedViewerError("the ROI is empty: the intensity mask has no voxel")
    image = np.asarray(roi.image, np.float64)
    sp = _zyx_spacing(roi)
    v: dict[str, float] = {}

    verts, faces = _mesh(morph, sp)
    vol, area = _mesh_volume_area(verts, faces)
    v["vol"], v["area"] = vol, area
    v["approx_vol"] = float(morph.sum()) * roi.voxel_volume
    v["av"] = _div(area, vol)
    v["comp1"] = _div(vol, math.sqrt(math.pi) * area ** 1.5)
    v["comp2"] = _div(36.0 * math.pi * vol ** 2, area ** 3)
    sphere_area = (36.0 * math.pi * vol ** 2) ** (1.0 / 3.0)
    v["sph_dispr"] = _div(area, sphere_area)
    v["sphericity"] = _div(sphere_area, area)
    v["asphericity"] = v["sph_dispr"] - 1.0

    # centre of mass shift
    morph_pts = np.argwhere(morph) * sp
    int_idx = np.argwhere(mask)
    int_pts = int_idx * sp
    values = image[mask]  # same (C) order as argwhere
    com_geom = morph_pts.mean(0)
    total = float(values.sum())
    if total != 0.0 and math.isfinite(total):
        com_gl = (values[:, None] * int_pts).sum(0) / total
        v["com"] = float(np.linalg.norm(com_geom - com_gl))
    else:
        v["com"] = math.nan

    # convex hull of the mesh vertices
    try:
        hull = ConvexHull(verts)
        hull_pts = verts[hull.vertices]
        hull_vol, hull_area = float(hull.volume), float(hull.area)
    except Exception:  # degenerate vertex set (cannot happen for a padded mask, but never crash)
        hull_pts, hull_vol, hull_area = verts, math.nan, math.nan
    v["diam"] = _max_diameter(hull_pts)

    # PCA of the morphological voxel centres
    lam_major, lam_minor, lam_least = _pca_eigenvalues(morph_pts)
    v["major"] = 4.0 * math.sqrt(lam_major)
    v["minor"] = 4.0 * math.sqrt(lam_minor)
    v["least"] = 4.0 * math.sqrt(lam_least)
    v["elongation"] = math.sqrt(_div(lam_minor, lam_major)) if _div(lam_minor, lam_major) >= 0 else math.nan
    v["flatness"] = math.sqrt(_div(lam_least, lam_major)) if _div(lam_least, lam_major) >= 0 else math.nan

    # axis-aligned bounding box of the mesh vertices
    ext = verts.max(0) - verts.min(0)
    v["v_aabb"] = _div(vol, float(np.prod(ext)))
    v["a_aabb"] = _div(area, 2.0 * float(ext[0] * ext[1] + ext[1] * ext[2] + ext[0] * ext[2]))

    # approximate enclosing ellipsoid
    a, b, c = 2.0 * math.sqrt(lam_major), 2.0 * math.sqrt(lam_minor), 2.0 * math.sqrt(lam_least)
    v["v_aee"] = _div(3.0 * vol, 4.0 * math.pi * a * b * c)
    v["a_aee"] = _div(area, _ellipsoid_area(a, b, c))

    v["v_hull"] = _div(vol, hull_vol)
    v["a_hull"] = _div(area, hull_area)

    v["integ"] = vol * float(values.mean())

    if len(values) > MORAN_EXACT_MAX:
        rng = np.random.default_rng(MORAN_SEED)
        pick = np.sort(rng.choice(len(values), MORAN_SAMPLE, replace=False))
        v["moran"], v["geary"] = _moran_geary(int_pts[pick], values[pick])
    else:
        v["moran"], v["geary"] = _moran_geary(int_pts, values)

    return [Feature(FAMILY, name, code, "", float(v[key])) for key, (name, code) in NAMES.items()]
