"""Images in world space, from any reader, and the comparison of two of them.

An `Image` is what a converter produced, reduced to what a user can check: values on a voxel grid
`data[x, y, z, t]` (after the stated scaling: NIfTI scl_slope/scl_inter, DICOM rescale), the grid's
`affine` (voxel index -> RAS mm, nibabel's convention) and, for diffusion, the b-value and unit
gradient (RAS world frame) of each volume. Readers: a NIfTI file (dcm2niix's or medviewer's, with the
.bval/.bvec beside it), medviewer Volumes, SimpleITK's ImageSeriesReader, nibabel's DICOM wrappers.

`compare(mine, ref)` asks whether the two images are the same voxels in the same places, allowing the
axes to be stored in another order or direction (dcm2niix flips rows; medviewer keeps the ITK/LPS
order): inv(ref.affine) @ mine.affine must be a signed permutation with integer offsets that maps
the grid onto the reference grid, and the values must agree through that index mapping.
"""
from __future__ import annotations

import gzip
import itertools
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
GRID_TOLERANCE = 1e-3  # voxels: how far from a signed permutation / an integer offset a mapping may be
PIXEL_RTOL = 1e-3  # relative tolerance on each value ...
PIXEL_RANGE_TOL = 1e-4  # ... plus this share of the volume's largest magnitude: near zero, values
# with an intercept carry the error of the slope applied to the raw value (Philips fieldmaps: -500 +
# raw * 0.2442 written by dcm2niix as floating-point values, 1.000007 times the display values)
B_TOLERANCE = 0.5  # s/mm^2, plus PIXEL_RTOL relative: dcm2niix writes b-values rounded
GRADIENT_DEGREES = 1.0  # angle between gradient directions (either sign: +g and -g are one direction)


@dataclass
class Image:
    shape: tuple[int, int, int, int]  # (x, y, z, t)
    affine: np.ndarray  # 4x4: voxel (x, y, z) -> RAS mm
    data: np.ndarray | None = None  # (x, y, z, t) scaled values; None when the reader gave no pixels
    bvals: np.ndarray | None = None  # (t,) s/mm^2
    bvecs: np.ndarray | None = None  # (t, 3) unit gradient directions, RAS; zeros where there is none
    note: str = ""  # why `data` is None
    # Philips floating-point values (dcm2niix's default): multiply by this for the display values
    # (the DICOM rescale). FP = DV / (RescaleSlope * private ScaleSlope), as dcm2niix's JSON states.
    display_factor: float | None = None

    @classmethod
    def of(cls, data: np.ndarray, affine: np.ndarray, **extra) -> "Image":
        data = np.asarray(data)
        while data.ndim < 4:
            data = data[..., np.newaxis]
        return cls(shape=tuple(int(n) for n in data.shape), affine=np.asarray(affine, float),
                   data=data, **extra)

    def corners(self) -> np.ndarray:
        """RAS mm of the 8 corner voxel centres (fewer distinct ones for a single slice)."""
        idx = np.array(list(itertools.product(*[(0, n - 1) for n in self.shape[:3]])), float)
        return (self.affine[:3, :3] @ idx.T).T + self.affine[:3, 3]


# --- readers ---------------------------------------------------------------------------------
def read_nifti(path: str | Path) -> Image:
    """A NIfTI file with nibabel (values through scl_slope/scl_inter), and its .bval/.bvec if any."""
    import nibabel as nib

    img = nib.load(str(path))
    data = np.asarray(img.get_fdata(dtype=np.float64))
    image = Image.of(data, img.affine)
    stem = str(path)[: -len(".nii.gz")] if str(path).endswith(".nii.gz") else str(path)[: -len(".nii")]
    sidecar = Path(stem + ".json")
    meta = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    if meta.get("UsePhilipsFloatNotDisplayScaling") == 1 and "PhilipsScaleSlope" in meta:
        image.display_factor = float(meta["PhilipsRescaleSlope"]) * float(meta["PhilipsScaleSlope"])
    bval, bvec = Path(stem + ".bval"), Path(stem + ".bvec")
    if bval.is_file() and bvec.is_file():
        image.bvals = np.loadtxt(bval, ndmin=1).astype(float)
        image.bvecs = fsl_bvecs_to_world(np.loadtxt(bvec, ndmin=2), img.affine)
    return image


def fsl_bvecs_to_world(bvecs: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """FSL/dcm2niix bvecs (3 rows, one column per volume, in the image's voxel axes with x negated
    when the affine's determinant is positive) as unit RAS directions, one row per volume."""
    rot = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    flip = np.array([-1.0, 1.0, 1.0]) if np.linalg.det(rot) > 0 else np.ones(3)
    return (rot @ (flip[:, None] * np.asarray(bvecs, float).reshape(3, -1))).T


def from_volumes(volumes, diffusion=None) -> Image:
    """medviewer Volumes (one per time point, ITK/LPS geometry, data (z, y, x)) as one Image;
    `diffusion`: each volume's ImageSource.diffusion, (b, LPS unit gradient or None) or None."""
    first = volumes[0]
    for v in volumes[1:]:
        if v.shape != first.shape or not np.allclose(v.affine, first.affine, atol=1e-4):
            raise ValueError(f"the volumes of the acquisition differ in grid ({v.size} vs {first.size})")
    data = np.stack([np.asarray(v.data, np.float64).transpose(2, 1, 0) for v in volumes], axis=-1)
    image = Image.of(data, LPS_TO_RAS @ first.affine)
    if diffusion is not None and any(d is not None for d in diffusion):
        image.bvals = np.array([np.nan if d is None else float(d[0]) for d in diffusion])
        image.bvecs = np.array([[0.0, 0.0, 0.0] if d is None or d[1] is None else
                                [-d[1][0], -d[1][1], d[1][2]] for d in diffusion], float)
    return image


def read_simpleitk_series(files: list[str]) -> Image:
    """The files as SimpleITK's ImageSeriesReader (GDCM, rescale applied) reads them."""
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetImageIO("GDCMImageIO")  # named: ITK would pick its Analyze reader for *.img
    reader.SetFileNames([str(f) for f in files])
    image = reader.Execute()
    n = image.GetDimension()
    arr = sitk.GetArrayFromImage(image).astype(np.float64)
    data = arr.transpose(tuple(range(n - 1, -1, -1)))  # (t, z, y, x) -> (x, y, z, t)
    direction = np.array(image.GetDirection()).reshape(n, n)[:3, :3]
    lps = np.eye(4)
    lps[:3, :3] = direction @ np.diag(image.GetSpacing()[:3])
    lps[:3, 3] = image.GetOrigin()[:3]
    return Image.of(data, LPS_TO_RAS @ lps)


def read_nibabel_dicom(path: str | Path) -> Image:
    """One DICOM file (gzip-compressed when named .gz) through nibabel.nicom.dicomwrappers, which
    unpacks Siemens mosaics and reads the CSA diffusion fields. Pixels are None where nibabel
    cannot produce them (the reason is in `note`)."""
    import pydicom

    opener = gzip.open if str(path).endswith(".gz") else open
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the DICOM readers are highly experimental"
        from nibabel.nicom import csareader, dicomwrappers

        with opener(path, "rb") as fh:
            wrapper = dicomwrappers.wrapper_from_data(pydicom.dcmread(fh))
        shape = tuple(int(n) for n in wrapper.image_shape)
        shape = (shape + (1, 1, 1))[:3] + (1,)
        image = Image(shape=shape, affine=LPS_TO_RAS @ wrapper.affine)
        try:
            data = np.asarray(wrapper.get_data(), np.float64)
            image.data = data.reshape(shape)
        except Exception as exc:  # noqa: BLE001 - recorded: the comparison says why there are no pixels
            image.note = f"nibabel gives no pixels ({type(exc).__name__}: {exc})"
        csa = getattr(wrapper, "csa_header", None)
        b = csareader.get_b_value(csa) if csa else None
        if b is not None:  # the nominal b-value and gradient of the CSA header, as dcm2niix reads them
            vec = csareader.get_vector(csa, "DiffusionGradientDirection", 3)
            g = np.zeros(3) if vec is None or not np.any(vec) else np.asarray(vec, float) / np.linalg.norm(vec)
            image.bvals = np.array([float(b)])
            image.bvecs = np.array([[-g[0], -g[1], g[2]]])
    return image


# --- comparison ------------------------------------------------------------------------------
@dataclass
class Outcome:
    corner_mm: float  # largest distance from a corner voxel of one grid to the nearest of the other
    grid: str  # "ok" or why the grids differ
    pixels: str  # "100%", "97.2% (max |d| 12)", or why none were compared
    pixels_ok: bool  # all values agree, or the reference has none to compare (a geometry-only reference)
    agreement: float  # share of the voxels whose values agree (0 when none were compared)
    diffusion: str  # "ok", "-" (no reference values) or what differs
    passed: bool


def grid_mapping(mine: Image, ref: Image) -> tuple[list[int], list[int]] | str:
    """(perm, sign): my axis j is reference axis perm[j], in direction sign[j] (mapped through
    inv(ref.affine) @ mine.affine); or the reason there is no such exact mapping."""
    m = np.linalg.inv(ref.affine) @ mine.affine
    perm, sign = [], []
    for j in range(3):
        col = m[:3, j].copy()
        if mine.shape[j] == 1:  # a lone slice: its spacing is a convention, only its normal counts
            col /= np.linalg.norm(col) or 1.0
        i = int(np.argmax(np.abs(col)))
        rest = np.delete(col, i)
        if abs(abs(col[i]) - 1) > GRID_TOLERANCE or np.any(np.abs(rest) > GRID_TOLERANCE):
            return f"axis {'xyz'[j]} maps to reference index step {np.round(col, 4).tolist()}"
        perm.append(i)
        sign.append(int(np.sign(col[i])))
    if len(set(perm)) < 3:
        return f"two axes map onto one reference axis ({perm})"
    mapped = tuple(mine.shape[perm.index(i)] for i in range(3))
    if mapped != ref.shape[:3]:
        return f"grid {mine.shape[:3]} is {mapped} in reference order, the reference is {ref.shape[:3]}"
    idx = np.array(list(itertools.product(*[(0, n - 1) for n in mine.shape[:3]])), float)
    hit = (m[:3, :3] @ idx.T).T + m[:3, 3]
    off = np.abs(hit - np.round(hit)).max()
    if off > GRID_TOLERANCE:
        return f"voxel centres fall {off:.3g} voxels off the reference grid"
    inside = (np.round(hit) >= 0) & (np.round(hit) <= np.array(ref.shape[:3]) - 1)
    if not inside.all():
        return "the grid is shifted against the reference by whole voxels (" + ", ".join(
            f"{np.round(hit[k]).astype(int).tolist()}" for k in range(len(hit)) if not inside[k].all()) + ")"
    return perm, sign


def in_reference_order(data: np.ndarray, perm: list[int], sign: list[int]) -> np.ndarray:
    """DATA (x, y, z, t) re-indexed onto the reference grid through the mapping of grid_mapping."""
    for j in range(3):
        if sign[j] < 0:
            data = np.flip(data, axis=j)
    return np.transpose(data, [perm.index(i) for i in range(3)] + [3])


def corner_distance(mine: Image, ref: Image) -> float:
    a, b = mine.corners(), ref.corners()
    d = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)
    return float(max(d.min(axis=1).max(), d.min(axis=0).max()))


def compare(mine: Image, ref: Image, check_diffusion: bool = True, values: str = "display") -> Outcome:
    """VALUES: which Philips values MINE holds, "display" (the DICOM rescale) or "fp"; a reference
    holding floating-point values is compared through its display_factor when MINE has display values."""
    corner = corner_distance(mine, ref)
    mapping = grid_mapping(mine, ref)
    grid = "ok" if isinstance(mapping, tuple) else mapping
    pixels_ok, agreement = False, 0.0
    if mine.shape[3] != ref.shape[3]:
        pixels = f"- ({mine.shape[3]} volumes vs {ref.shape[3]})"
    elif not isinstance(mapping, tuple):
        pixels = "- (grids differ)"
    elif ref.data is None:
        pixels, pixels_ok = f"- ({ref.note or 'no reference pixels'})", True
    elif mine.data is None:
        pixels = f"- ({mine.note or 'no pixels'})"
    else:
        expected = ref.data * ref.display_factor if ref.display_factor and values == "display" else ref.data
        agreement, pixels = _pixel_agreement(in_reference_order(mine.data, *mapping), expected)
        pixels_ok = agreement == 1.0
    diffusion = _diffusion_agreement(mine, ref) if check_diffusion else "- (not written)"
    passed = (grid == "ok" and mine.shape[3] == ref.shape[3] and pixels_ok
              and diffusion in ("ok", "-", "- (not written)"))
    return Outcome(corner_mm=corner, grid=grid, pixels=pixels, pixels_ok=pixels_ok, agreement=agreement,
                   diffusion=diffusion, passed=passed)


def _pixel_agreement(mine: np.ndarray, ref: np.ndarray) -> tuple[float, str]:
    scale = np.abs(ref).reshape(-1, ref.shape[-1]).max(axis=0) if ref.size else np.zeros(ref.shape[-1])
    close = np.abs(mine - ref) <= PIXEL_RTOL * np.abs(ref) + PIXEL_RANGE_TOL * scale + 1e-6
    if close.all():
        return 1.0, "100%"
    share = float(close.mean())
    return share, f"{min(100 * share, 99.99):.2f}% (max |d| {np.abs(mine - ref).max():.4g})"


def _diffusion_agreement(mine: Image, ref: Image) -> str:
    if ref.bvals is None:
        return "-"
    if mine.bvals is None:
        return "no b-values"
    if mine.bvals.shape != ref.bvals.shape:
        return f"{mine.bvals.size} b-values vs {ref.bvals.size}"
    bad_b = np.abs(mine.bvals - ref.bvals) > B_TOLERANCE + PIXEL_RTOL * np.abs(ref.bvals)
    if np.any(bad_b | np.isnan(mine.bvals)):
        k = int(np.argmax(bad_b | np.isnan(mine.bvals)))
        return f"b-value of volume {k}: {mine.bvals[k]:.6g} vs {ref.bvals[k]:.6g}"
    for k, (g, h) in enumerate(zip(mine.bvecs, ref.bvecs)):
        if not np.any(h) and not np.any(g):
            continue
        if not np.any(h) or not np.any(g):
            return f"gradient of volume {k}: {np.round(g, 4).tolist()} vs {np.round(h, 4).tolist()}"
        cos = abs(float(np.dot(g, h))) / (np.linalg.norm(g) * np.linalg.norm(h))
        if np.degrees(np.arccos(min(cos, 1.0))) > GRADIENT_DEGREES:
            return f"gradient of volume {k}: {np.round(g, 4).tolist()} vs {np.round(h, 4).tolist()} (RAS)"
    return "ok"
