"""Each processing operation as the bare library call (SimpleITK, scikit-image, scikit-learn) on a
(z, y, x) array with its spacing, written independently of medviewer.processing: the unit tests
compare run_operation with these, the denoise bench times them as the baseline.

``reference(name, data, spacing, params, origin, direction)`` returns the expected voxels (z, y, x) (labels for the
label operations), or for "resample"/"crop" (array, spacing, origin offset in index units).
A one-slice array is handed to the libraries as 2D, as the viewer's processing does.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def image_of(data: np.ndarray, spacing, dtype=np.float32, origin=(0.0, 0.0, 0.0), direction=np.eye(3)) -> sitk.Image:
    arr = data if dtype is None else data.astype(dtype)
    flat = arr.shape[0] == 1
    image = sitk.GetImageFromArray(arr[0] if flat else arr)
    image.SetSpacing(tuple(spacing)[:image.GetDimension()])
    if not flat:  # 2D: in-plane spacing only (a slice's 3x3 direction has no 2D corner in general)
        image.SetOrigin(tuple(origin))
        image.SetDirection(tuple(np.asarray(direction, float).ravel()))
    return image


def array(image: sitk.Image) -> np.ndarray:
    out = sitk.GetArrayFromImage(image)
    return out[np.newaxis] if image.GetDimension() == 2 else out


def plane(data: np.ndarray) -> np.ndarray:
    return data[0] if data.shape[0] == 1 else data


def _unit_back(data, unit):
    low, high = float(data.min()), float(data.max())
    return (unit.reshape(data.shape) * (high - low) + low).astype(np.float32)


def _n4(data, spacing, p, geo):
    image = image_of(data, spacing, **geo)
    mask = sitk.OtsuThreshold(image, 0, 1, 200)
    shrink = [max(1, min(p["shrink"], n // 4)) for n in image.GetSize()]
    f = sitk.N4BiasFieldCorrectionImageFilter()
    f.SetMaximumNumberOfIterations([p["iterations"]] * p["levels"])
    f.Execute(sitk.Shrink(image, shrink), sitk.Shrink(mask, shrink))
    return array(sitk.Cast(image / sitk.Exp(f.GetLogBiasFieldAsImage(image)), sitk.sitkFloat32))


def _morph(cls, data, spacing, p, geo):
    f = cls()
    f.SetKernelRadius(p["radius"])
    f.SetKernelType({"ball": sitk.sitkBall, "box": sitk.sitkBox, "cross": sitk.sitkCross}[p["kernel"]])
    return array(f.Execute(image_of(data, spacing, None, **geo)))


def _cluster(kind, data, p):
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    values = data.reshape(-1).astype(np.float64)
    keep = values > values.min() if p["ignore_minimum"] else np.ones(values.size, bool)
    x = values[keep][:, None]  # tests use samples >= voxels: the fit sees every voxel
    model = (KMeans(n_clusters=p["classes"], n_init=3, random_state=p["seed"]) if kind == "kmeans"
             else GaussianMixture(n_components=p["classes"], covariance_type="full", random_state=p["seed"]))
    model.fit(x)
    centres = np.ravel(model.cluster_centers_ if kind == "kmeans" else model.means_)
    rank = np.empty(p["classes"], np.uint8)
    rank[np.argsort(centres)] = np.arange(1, p["classes"] + 1)
    out = np.zeros(values.size, np.uint8)
    out[keep] = rank[model.predict(x)]
    return out.reshape(data.shape)


def reference(name: str, data: np.ndarray, spacing, p: dict, origin=(0.0, 0.0, 0.0), direction=np.eye(3)):
    from skimage import exposure, filters, restoration

    geo = dict(origin=origin, direction=direction)
    dim = 2 if data.shape[0] == 1 else 3
    img = image_of(data, spacing, **geo)
    if name == "gaussian":
        return array(sitk.SmoothingRecursiveGaussian(img, p["sigma"]))
    if name == "median":
        return array(sitk.Median(img, [p["radius"]] * dim))
    if name == "bilateral":
        return array(sitk.Bilateral(img, p["domain_sigma"], p["range_sigma"]))
    if name == "anisotropic-diffusion":
        return array(sitk.CurvatureAnisotropicDiffusion(img, p["time_step"], p["conductance"], 1,
                                                        p["iterations"]))
    if name == "nlmeans":
        return restoration.denoise_nl_means(plane(data).astype(np.float32), patch_size=p["patch_size"],
                                            patch_distance=p["patch_distance"], h=p["h"],
                                            fast_mode=True).reshape(data.shape)
    if name == "histogram-equalisation":
        return _unit_back(data, exposure.equalize_hist(plane(data).astype(np.float64), nbins=p["bins"]))
    if name == "clahe":
        unit = exposure.rescale_intensity(plane(data).astype(np.float64), out_range=(0.0, 1.0))
        kernel = min(p["kernel_size"], min(unit.shape))
        return _unit_back(data, exposure.equalize_adapthist(unit, kernel_size=kernel, clip_limit=p["clip_limit"],
                                                            nbins=p["bins"]))
    if name == "unsharp-mask":
        return array(sitk.UnsharpMask(img, [p["sigma"]] * dim, p["amount"], p["threshold"]))
    if name == "laplacian-sharpen":
        return array(sitk.LaplacianSharpening(img, p["use_spacing"]))
    if name == "n4":
        return _n4(data, spacing, p, geo)
    if name == "canny":
        return array(sitk.CannyEdgeDetection(img, p["lower"], max(p["upper"], p["lower"]), [p["sigma"] ** 2] * dim))
    if name == "gradient-magnitude":
        return array(sitk.SobelEdgeDetection(img))
    if name in ("erode", "dilate", "open", "close"):
        cls = {"erode": sitk.GrayscaleErodeImageFilter, "dilate": sitk.GrayscaleDilateImageFilter,
               "open": sitk.GrayscaleMorphologicalOpeningImageFilter,
               "close": sitk.GrayscaleMorphologicalClosingImageFilter}[name]
        return _morph(cls, data, spacing, p, geo)
    if name == "threshold":
        return array(sitk.BinaryThreshold(image_of(data, spacing, np.float64, **geo), p["low"], p["high"], 1, 0))
    if name == "otsu":
        return array(sitk.OtsuMultipleThresholds(img, p["classes"] - 1, 0, p["bins"]))
    if name == "adaptive-threshold":
        values = plane(data).astype(np.float64)
        local = filters.threshold_local(values, block_size=p["block_size"], method="gaussian", offset=p["offset"])
        return (values > local).astype(np.uint8).reshape(data.shape)
    if name in ("kmeans", "gmm"):
        return _cluster(name, data, p)
    if name == "resample":
        new = [p[f"spacing_{a}"] for a in "xyz"[:dim]]
        src = image_of(data, spacing, None if p["interpolator"] == "nearest" else np.float32, **geo)
        size = [max(1, int(round(src.GetSize()[k] * spacing[k] / new[k]))) for k in range(dim)]
        interp = {"linear": sitk.sitkLinear, "nearest": sitk.sitkNearestNeighbor, "bspline": sitk.sitkBSpline}
        out = sitk.Resample(src, size, sitk.Transform(), interp[p["interpolator"]], src.GetOrigin(), new,
                            src.GetDirection(), 0.0)
        return array(out), tuple(new), (0.0, 0.0, 0.0)
    if name == "crop":
        low = [p[f"{a}0"] for a in "xyz"[:dim]]
        size = [p[f"{a}1"] - p[f"{a}0"] + 1 for a in "xyz"[:dim]]
        out = sitk.RegionOfInterest(image_of(data, spacing, None, **geo), size, low)
        return array(out), tuple(spacing)[:dim], tuple(float(v) for v in (low + [0] * (3 - dim)))
    raise KeyError(name)
