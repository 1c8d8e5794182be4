"""IBSI intensity feature families (chapter 1): local intensity, intensity-based statistics,
intensity histogram and intensity-volume histogram.

features(roi) -> list[Feature] returns all four families:

- "local_intensity" (2): the mean intensity in a 1 cm^3 sphere (radius (3 / (4 pi))^(1/3) cm,
  about 6.2 mm, voxel centres within the radius in world units, the centre voxel included) around
  a voxel. The sphere draws on every image voxel, inside the ROI or not, but only on voxels of the
  image (at the image border the mean is over the voxels that exist). Local intensity peak: that
  mean around the voxel(s) of maximum intensity in the intensity mask, the highest if several;
  global intensity peak: the highest such mean over all intensity-mask voxels;
- "intensity_statistics" (18): on the intensities roi.values of the intensity mask. Variance is
  the population variance; percentiles are numpy's default (linear interpolation);
- "intensity_histogram" (23): the same statistics on the discretised grey levels roi.discretised
  (bin numbers 1..N_g, as IBSI does for both fixed bin number and fixed bin size), plus entropy,
  uniformity, mode and the histogram gradients over the full level range 1..N_g (absent levels
  count as empty bins);
- "ivh" (6 + 1): the intensity-volume histogram on the discretised levels, evaluated at every
  level 1..N_g (absent levels included) with intensity fraction (i - 1) / (N_g - 1). With a fixed
  bin size (roi.bin_width and roi.first_level set) a level stands for its bin centre
  first_level + (i - 0.5) bin_width, so I10, I90 and their difference are in intensity units;
  with a fixed bin number they are levels. V_x is the largest volume fraction at an intensity
  fraction >= x; I_x the lowest level whose volume fraction is <= x, or, when even the top level
  fills more than x of the volume, the intensity one discretisation step above the top level
  (volume fraction 0 there). Also "Area under the IVH curve" (9CMM; trapezoidal rule over the
  intensity fraction; 0 with one grey level), which has no IBSI reference value.

Undefined values: IBSI defines skewness and kurtosis as 0 when the variance is 0. Other
divisions by zero give NaN: coefficient of variation with mean 0, quartile coefficient of
dispersion with P75 + P25 = 0, the histogram gradient with a single grey level, the IVH volume
fractions when N_g = 1. An empty intensity mask raises MedViewerError.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage, signal

from medviewer.core.errors import MedViewerError
from medviewer.processing.radiomics.base import Feature, Roi

PEAK_RADIUS_MM = 10.0 * (3.0 / (4.0 * math.pi)) ** (1.0 / 3.0)  # 1 cm^3 sphere, ~6.2035 mm

LOCAL = [("Local intensity peak", "VJGA"), ("Global intensity peak", "0F91")]

# key -> (statistics name, code, histogram name, code); the histogram family has these 17 plus 6 more
STAT = [
    ("mean", "Mean intensity", "Q4LE", "Mean discretised intensity", "X6K6"),
    ("var", "Intensity variance", "ECT3", "Discretised intensity variance", "CH89"),
    ("skew", "Intensity skewness", "KE2A", "Discretised intensity skewness", "88K1"),
    ("kurt", "(Excess) intensity kurtosis", "IPH6", "(Excess) discretised intensity kurtosis", "C3I7"),
    ("median", "Median intensity", "Y12H", "Median discretised intensity", "WIFQ"),
    ("min", "Minimum intensity", "1GSF", "Minimum discretised intensity", "1PR8"),
    ("p10", "10th intensity percentile", "QG58", "10th discretised intensity percentile", "GPMT"),
    ("p90", "90th intensity percentile", "8DWT", "90th discretised intensity percentile", "OZ0C"),
    ("max", "Maximum intensity", "84IY", "Maximum discretised intensity", "3NCY"),
    ("iqr", "Intensity interquartile range", "SALO", "Discretised intensity interquartile range", "WR0O"),
    ("range", "Intensity range", "2OJQ", "Discretised intensity range", "5Z3W"),
    ("mad", "Intensity-based mean absolute deviation", "4FUA",
     "Intensity histogram mean absolute deviation", "D2ZX"),
    ("rmad", "Intensity-based robust mean absolute deviation", "1128",
     "Intensity histogram robust mean absolute deviation", "WRZB"),
    ("medad", "Intensity-based median absolute deviation", "N72L",
     "Intensity histogram median absolute deviation", "4RNL"),
    ("cov", "Intensity-based coefficient of variation", "7TET",
     "Intensity histogram coefficient of variation", "CWYJ"),
    ("qcod", "Intensity-based quartile coefficient of dispersion", "9S40",
     "Intensity histogram quartile coefficient of dispersion", "SLWD"),
    ("energy", "Intensity-based energy", "N8CA", None, None),
    ("rms", "Root mean square intensity", "5ZWQ", None, None),
]
HIST_EXTRA = [
    ("mode", "Intensity histogram mode", "AMMC"),
    ("entropy", "Discretised intensity entropy", "TLU2"),
    ("uniformity", "Discretised intensity uniformity", "BJ5W"),
    ("max_grad", "Maximum histogram gradient", "12CE"),
    ("max_grad_gl", "Maximum histogram gradient intensity", "8E6O"),
    ("min_grad", "Minimum histogram gradient", "VQB3"),
    ("min_grad_gl", "Minimum histogram gradient intensity", "RHQZ"),
]
# the reference CSV's order of the histogram family
HIST_ORDER = ["mean", "var", "skew", "kurt", "median", "min", "p10", "p90", "max", "mode", "iqr", "range",
              "mad", "rmad", "medad", "cov", "qcod", "entropy", "uniformity", "max_grad", "max_grad_gl",
              "min_grad", "min_grad_gl"]
IVH = [
    ("V10", "Volume at intensity fraction (V10)", "BC2M"),
    ("V90", "Volume at intensity fraction (V90)", "BC2M"),
    ("I10", "Intensity at volume fraction (I10)", "GBPN"),
    ("I90", "Intensity at volume fraction (I90)", "GBPN"),
    ("V10minusV90", "Volume fraction difference between intensity fractions", "DDTU"),
    ("I10minusI90", "Intensity fraction difference between volume fractions", "CNV2"),
    ("auc", "Area under the IVH curve", "9CMM"),
]


def _div(num: float, den: float) -> float:
    num, den = float(num), float(den)
    if den == 0.0 or not math.isfinite(den) or not math.isfinite(num):
        return math.nan
    return num / den


# ---------------------------------------------------------------------------------------------
# statistics shared by the statistics and histogram families

def _statistics(x: np.ndarray) -> dict[str, float]:
    x = np.asarray(x, np.float64)
    n = x.size
    mean = float(x.mean())
    d = x - mean
    d2 = d * d
    var = float(d2.mean())
    if var > 0:
        skew = float((d2 * d).mean()) / var ** 1.5
        kurt = float((d2 * d2).mean()) / var ** 2 - 3.0
    else:  # IBSI: 0 when the variance is 0
        skew = kurt = 0.0
    p10, p25, median, p75, p90 = (float(v) for v in np.percentile(x, [10, 25, 50, 75, 90]))
    lo, hi = float(x.min()), float(x.max())
    robust = x[(x >= p10) & (x <= p90)]
    rmad = float(np.abs(robust - robust.mean()).mean()) if robust.size else math.nan
    energy = float(x @ x)
    return {
        "mean": mean, "var": var, "skew": skew, "kurt": kurt, "median": median, "min": lo,
        "p10": p10, "p90": p90, "max": hi, "iqr": p75 - p25, "range": hi - lo,
        "mad": float(np.abs(d).mean()), "rmad": rmad, "medad": float(np.abs(x - median).mean()),
        "cov": _div(math.sqrt(var), mean), "qcod": _div(p75 - p25, p75 + p25),
        "energy": energy, "rms": math.sqrt(energy / n),
    }


def _histogram_extra(levels: np.ndarray, n_levels: int, mean: float) -> dict[str, float]:
    counts = np.bincount(levels, minlength=n_levels + 1)[1:n_levels + 1].astype(np.float64)
    p = counts / counts.sum()
    nz = p[p > 0]
    out = {"entropy": 0.0 - float((nz * np.log2(nz)).sum()), "uniformity": float((p * p).sum())}
    grey = np.arange(1, n_levels + 1, dtype=np.float64)
    modes = grey[counts == counts.max()]
    dist = np.abs(modes - mean)
    out["mode"] = float(modes[np.flatnonzero(dist == dist.min())[0]])  # closest to the mean, left on a tie
    if n_levels >= 2:
        grad = np.empty(n_levels)
        grad[0] = counts[1] - counts[0]
        grad[-1] = counts[-1] - counts[-2]
        grad[1:-1] = (counts[2:] - counts[:-2]) / 2.0
        out["max_grad"], out["max_grad_gl"] = float(grad.max()), float(grey[int(np.argmax(grad))])
        out["min_grad"], out["min_grad_gl"] = float(grad.min()), float(grey[int(np.argmin(grad))])
    else:
        out["max_grad"] = out["max_grad_gl"] = out["min_grad"] = out["min_grad_gl"] = math.nan
    return out


# ---------------------------------------------------------------------------------------------
# local intensity

def _sphere_runs(spacing_zyx, radius: float):
    """The sphere as x-runs: list of (dz, dy, kx) with |dx| <= kx, and the half sizes (hz, hy, hx)."""
    sz, sy, sx = spacing_zyx
    hz, hy, hx = (int(math.floor(radius / s)) for s in (sz, sy, sx))
    runs = []
    for dz in range(-hz, hz + 1):
        for dy in range(-hy, hy + 1):
            rem = radius * radius - (dz * sz) ** 2 - (dy * sy) ** 2
            if rem >= 0:
                runs.append((dz, dy, int(math.floor(math.sqrt(rem) / sx))))
    return runs, (hz, hy, hx)


def _sphere_means(image: np.ndarray, spacing_zyx) -> np.ndarray:
    """Mean of the image over the 1 cm^3 sphere around every voxel, over the voxels that exist."""
    runs, (hz, hy, hx) = _sphere_runs(spacing_zyx, PEAK_RADIUS_MM)
    kernel = np.zeros((2 * hz + 1, 2 * hy + 1, 2 * hx + 1))
    for dz, dy, k in runs:
        kernel[dz + hz, dy + hy, hx - k:hx + k + 1] = 1.0
    if image.size * len(runs) * 3 < 2_000_000:
        sums = ndimage.correlate(image, kernel, mode="constant", cval=0.0)
    else:
        sums = signal.fftconvolve(image, kernel, mode="same")  # kernel is symmetric
    # voxel counts: sum over the runs of [z + dz inside][y + dy inside] * (x-run length inside)
    nz, ny, nx = image.shape
    zr, yr, xr = np.arange(nz), np.arange(ny), np.arange(nx)
    per_k: dict[int, np.ndarray] = {}
    for dz, dy, k in runs:
        vz = ((zr + dz >= 0) & (zr + dz < nz)).astype(np.float64)
        vy = ((yr + dy >= 0) & (yr + dy < ny)).astype(np.float64)
        per_k.setdefault(k, np.zeros((nz, ny)))
        per_k[k] += np.outer(vz, vy)
    counts = np.zeros(image.shape)
    for k, a in per_k.items():
        length = (np.minimum(xr + k, nx - 1) - np.maximum(xr - k, 0) + 1).astype(np.float64)
        counts += a[:, :, None] * length[None, None, :]
    return sums / counts


def _local_intensity(roi: Roi) -> tuple[float, float]:
    image = np.asarray(roi.image, np.float64)
    mask = np.asarray(roi.mask, bool)
    sx, sy, sz = (float(s) for s in roi.spacing)
    spacing_zyx = (sz, sy, sx)
    # crop to the mask's bounding box grown by the sphere's half size (the spheres stay inside)
    half = [int(math.floor(PEAK_RADIUS_MM / s)) for s in spacing_zyx]
    idx = np.argwhere(mask)
    lo = np.maximum(idx.min(0) - half, 0)
    hi = np.minimum(idx.max(0) + 1 + np.array(half), image.shape)
    sl = tuple(slice(a, b) for a, b in zip(lo, hi))
    crop, cmask = image[sl], mask[sl]
    means = _sphere_means(crop, spacing_zyx)
    values = crop[cmask]
    roi_means = means[cmask]
    local = float(roi_means[values == values.max()].max())
    return local, float(roi_means.max())


# ---------------------------------------------------------------------------------------------
# intensity-volume histogram

def _ivh(levels: np.ndarray, n_levels: int, bin_width, first_level) -> dict[str, float]:
    if bin_width is not None and first_level is not None:
        grid = float(first_level) + (np.arange(1, n_levels + 1) - 0.5) * float(bin_width)
        step = float(bin_width)
    else:
        grid = np.arange(1, n_levels + 1, dtype=np.float64)
        step = 1.0
    counts = np.bincount(levels, minlength=n_levels + 1)[1:n_levels + 1].astype(np.float64)
    n = counts.sum()
    below = np.concatenate(([0.0], np.cumsum(counts)[:-1]))  # voxels with a level < i
    nu = 1.0 - below / n
    out: dict[str, float] = {}
    if n_levels >= 2:
        gamma = (np.arange(n_levels) / (n_levels - 1.0))
        for x, key in ((0.10, "V10"), (0.90, "V90")):
            out[key] = float(nu[gamma >= x - 1e-12].max())
        out["auc"] = float(np.trapezoid(nu, gamma)) if np.count_nonzero(counts) > 1 else 0.0
    else:
        out["V10"] = out["V90"] = math.nan
        out["auc"] = 0.0
    for x, key in ((0.10, "I10"), (0.90, "I90")):
        ok = np.flatnonzero(nu <= x + 1e-12)
        out[key] = float(grid[ok[0]]) if ok.size else float(grid[-1] + step)
    out["V10minusV90"] = out["V10"] - out["V90"]
    out["I10minusI90"] = out["I10"] - out["I90"]
    return out


# ---------------------------------------------------------------------------------------------

def features(roi: Roi) -> list[Feature]:
    mask = np.asarray(roi.mask, bool)
    if not mask.any():
        raise MedViewerError("the ROI is empty: the intensity mask has no voxel")
    out: list[Feature] = []

    local, glob = _local_intensity(roi)
    out.append(Feature("local_intensity", LOCAL[0][0], LOCAL[0][1], "", local))
    out.append(Feature("local_intensity", LOCAL[1][0], LOCAL[1][1], "", glob))

    stats = _statistics(np.asarray(roi.image, np.float64)[mask])
    for key, name, code, _hname, _hcode in STAT:
        out.append(Feature("intensity_statistics", name, code, "", stats[key]))

    levels = np.asarray(roi.levels)[mask].astype(np.int64)
    if levels.min() < 1:
        raise MedViewerError("the ROI's grey levels must be 1..n_levels inside the intensity mask")
    n_levels = max(int(roi.n_levels), int(levels.max()))
    hist = _statistics(levels)
    hist.update(_histogram_extra(levels, n_levels, hist["mean"]))
    hist_names = {key: (hname, hcode) for key, _n, _c, hname, hcode in STAT if hname}
    hist_names.update({key: (name, code) for key, name, code in HIST_EXTRA})
    for key in HIST_ORDER:
        name, code = hist_names[key]
        out.append(Feature("intensity_histogram", name, code, "", hist[key]))

    ivh = _ivh(levels, n_levels, roi.bin_width, roi.first_level)
    for key, name, code in IVH:
        out.append(Feature("ivh", name, code, "", ivh[key]))
    return out
