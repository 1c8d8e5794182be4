"""Denoising operations: Gaussian, median, bilateral, curvature anisotropic diffusion (SimpleITK)
and non-local means (scikit-image's ``denoise_nl_means``; SimpleITK has none).

Every result is float32 on the input's grid. Non-local means runs in slabs of slices with a margin
as wide as its reach (patch distance + half a patch), so each output voxel sees exactly the
neighbourhood the whole-volume call gives it (equal to it within float rounding), progress can be
told and a cancel is noticed between slabs; slabs are thick (20 margins) so the margins cost
little time.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from medviewer.processing.operations import Operation, Param, ProcessResult, filtered, register, robust_range

GROUP = "Denoise"


def _gaussian(volume, p, steps):
    f = sitk.SmoothingRecursiveGaussianImageFilter()
    f.SetSigma(p["sigma"])
    return filtered(volume, steps, f, f"Gaussian σ {p['sigma']:g} mm")


def _median(volume, p, steps):
    f = sitk.MedianImageFilter()
    f.SetRadius(p["radius"])
    return filtered(volume, steps, f, f"median radius {p['radius']}")


def _bilateral(volume, p, steps):
    f = sitk.BilateralImageFilter()
    f.SetDomainSigma(p["domain_sigma"])
    f.SetRangeSigma(p["range_sigma"])
    return filtered(volume, steps, f, f"bilateral σ {p['domain_sigma']:g} mm, range {p['range_sigma']:g}")


def _bilateral_auto(volume):
    low, high = robust_range(volume)
    return {"range_sigma": float(f"{0.1 * (high - low):.3g}")}


def _diffusion(volume, p, steps):
    f = sitk.CurvatureAnisotropicDiffusionImageFilter()
    f.SetNumberOfIterations(p["iterations"])
    f.SetTimeStep(p["time_step"])
    f.SetConductanceParameter(p["conductance"])
    return filtered(volume, steps, f,
                    f"curvature diffusion {p['iterations']} iterations, conductance {p['conductance']:g}")


def _diffusion_auto(volume):
    # ITK's stability bound for the curvature scheme (it warns above it): 0.5 / 2^dimension
    return {"time_step": 0.5 / 2 ** (2 if volume.shape[0] == 1 else 3)}


def nl_means_reach(patch_size: int, patch_distance: int) -> int:
    return int(patch_distance) + int(patch_size) // 2


def _nlmeans(volume, p, steps):
    from skimage.restoration import denoise_nl_means

    kw = dict(patch_size=p["patch_size"], patch_distance=p["patch_distance"], h=p["h"], fast_mode=True)
    data = volume.data.astype(np.float32, copy=False)
    if volume.shape[0] == 1:
        steps.check()
        out = denoise_nl_means(data[0], **kw)[np.newaxis].astype(np.float32)
    else:
        out = np.empty(volume.shape, np.float32)
        margin = nl_means_reach(p["patch_size"], p["patch_distance"])
        thick = max(20 * margin, 8)
        nz = volume.shape[0]
        for z0 in range(0, nz, thick):
            steps.check()
            z1 = min(z0 + thick, nz)
            a, b = max(z0 - margin, 0), min(z1 + margin, nz)
            slab = denoise_nl_means(data[a:b], **kw)
            out[z0:z1] = slab[z0 - a:z0 - a + (z1 - z0)]
            steps.tell(z1 / nz, f"slices {z0 + 1}-{z1} of {nz}")
    return ProcessResult(volume.copy_geometry(out), None, f"non-local means h {p['h']:g}")


def _nlmeans_auto(volume):
    low, high = robust_range(volume)
    return {"h": float(f"{0.05 * (high - low):.3g}")}


register(Operation(
    "gaussian", "Gaussian smoothing", GROUP,
    (Param("sigma", "float", 1.0, 0.01, 50.0, unit="mm", help="standard deviation of the Gaussian"),),
    "image", "recursive Gaussian smoothing in millimetres (SimpleITK SmoothingRecursiveGaussian)",
    run=_gaussian, bytes_per_voxel=16))
register(Operation(
    "median", "Median filter", GROUP,
    (Param("radius", "int", 1, 1, 10, unit="voxels", help="half-width of the cube (square in 2D)"),),
    "image", "median of the (2r+1) neighbourhood (SimpleITK Median)", run=_median, bytes_per_voxel=12))
register(Operation(
    "bilateral", "Bilateral filter", GROUP,
    (Param("domain_sigma", "float", 1.5, 0.1, 20.0, unit="mm", help="spatial Gaussian"),
     Param("range_sigma", "float", 50.0, 1e-6, None, unit="intensity",
           help="intensity Gaussian (default: a tenth of the image's 1-99 % range)")),
    "image", "edge-preserving smoothing (SimpleITK Bilateral)", run=_bilateral, auto=_bilateral_auto,
    bytes_per_voxel=12))
register(Operation(
    "anisotropic-diffusion", "Curvature anisotropic diffusion", GROUP,
    (Param("iterations", "int", 5, 1, 200),
     Param("time_step", "float", 0.0625, 1e-4, 1.0,
           help="stable up to 0.5 / 2^dimension (0.125 in 2D, 0.0625 in 3D: the default)"),
     Param("conductance", "float", 3.0, 0.01, 100.0, help="lower keeps more edges")),
    "image", "curvature-driven anisotropic diffusion (SimpleITK CurvatureAnisotropicDiffusion)",
    run=_diffusion, auto=_diffusion_auto, bytes_per_voxel=24))
register(Operation(
    "nlmeans", "Non-local means", GROUP,
    (Param("h", "float", 10.0, 1e-6, None, unit="intensity",
           help="filtering strength, about the noise standard deviation (default: 5 % of the 1-99 % range)"),
     Param("patch_size", "int", 5, 3, 11, unit="voxels"),
     Param("patch_distance", "int", 3, 1, 20, unit="voxels",
           help="search radius (each step up costs ~(2d+1)^3 in 3D)")),
    "image", "non-local means of patches (scikit-image denoise_nl_means, fast mode)",
    run=_nlmeans, auto=_nlmeans_auto, bytes_per_voxel=24))
