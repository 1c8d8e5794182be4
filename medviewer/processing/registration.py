"""Image registration with SimpleITK's ImageRegistrationMethod: rigid -> affine -> B-spline.

One entry point for the GUI and the command line::

    result = register(fixed, moving, RegistrationSettings(transform="bspline", metric="mi"),
                      landmarks=(fixed_points, moving_points),            # optional, (N, 3) LPS mm
                      progress=lambda fraction, message: ..., cancel=lambda: token.cancelled)
    result.transform   # sitk.Transform: fixed world -> moving world (LPS mm), ITK's convention
    result.resampled   # the moving image on the fixed image's grid (the fixed image is untouched)
    result.tre_mm      # mean target registration error over the landmark pairs, or None

Convention (ITK's, SimpleITK's and 3D Slicer's transform files): the transform maps a point of the
FIXED image's world to the corresponding point of the MOVING image's world; resampling the moving
image onto the fixed grid evaluates moving(T(x)) at each fixed voxel x. ``transform_files`` writes it
as an ITK transform file: ``sitk.Resample(moving, fixed, sitk.ReadTransform(path))`` gives the
registered image, and in 3D Slicer the file applied to the moving volume shows it on the fixed one.

Stages (each starts from the one before): rigid (Euler3D, centred initialisation: the images'
centres (``initialisation="geometry"``) or intensity centroids ("moments") put on top of each other,
or "none": the files' world coordinates as they are, for images in one frame of reference), then
affine, then a cubic B-spline on top of the affine (a composite transform: affine after B-spline).
Each stage runs ``len(shrink)`` resolution levels (shrink factors, Gaussian smoothing sigmas in mm).
The metric is Mattes mutual information ("mi", for images of different contrasts) or mean squares
("ms", same contrast); it samples a random fraction of the fixed voxels with a fixed seed, so a run
is repeatable. With 3 or more landmark pairs the rigid stage starts from their closed-form rigid
fit (``landmarks.register_landmarks``) instead of the centring.

``progress(fraction, message)``: fractions rise from 0 to 1 over all stages and levels (one call per
optimiser iteration). ``cancel()`` is asked at each iteration: True stops the optimiser
(``StopRegistration``) and raises ``core.errors.Cancelled``; nothing is returned. Bad input (a 2D
image, colour pixels, images that do not overlap, a metric that is not a number) raises
MedViewerError with a one-line reason; the inputs are never modified.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from medviewer.core.errors import MedViewerError
from medviewer.core.labels import Label, LabelMap, LabelTable
from medviewer.core.memory import check_fits
from medviewer.core.volume import Volume
from medviewer.processing.landmarks import register_landmarks, target_registration_error
from medviewer.processing.registration_stages import Progress, Run, initial_transform, run_stages
from medviewer.processing.sitk_volume import to_image

TRANSFORMS = ("rigid", "affine", "bspline")
METRICS = {"mi": "MI", "ms": "MS"}
INITIALISATIONS = ("geometry", "moments", "none")
MIN_OVERLAP = 0.05  # fraction of the fixed image's box that must land in the moving image's


@dataclass
class RegistrationSettings:
    transform: str = "rigid"          # "rigid" | "affine" | "bspline" (each runs the stages before it)
    metric: str = "mi"                # "mi" (Mattes mutual information) | "ms" (mean squares)
    shrink: tuple = (4, 2, 1)         # shrink factor per resolution level
    smoothing_mm: tuple = (2.0, 1.0, 0.0)  # Gaussian sigma per level, mm
    iterations: int = 200             # per level, rigid and affine stages (regular step gradient descent)
    step_mm: float = 2.0              # its first step (parameters scaled to mm of shift), halved on overshoot
    bspline_iterations: int = 50      # per level, B-spline stage (L-BFGS-B)
    bspline_mesh_mm: float = 50.0     # B-spline control point spacing, mm
    histogram_bins: int = 32          # Mattes MI
    sampling: float = 0.2             # fraction of the fixed voxels the metric samples (random) ...
    max_samples: int = 50_000         # ... but at most this many at the finest level (a big image)
    seed: int = 1                     # of the sampling: a run is repeatable
    initialisation: str = "geometry"  # "geometry" | "moments" | "none"

    def check(self) -> None:
        if self.transform not in TRANSFORMS:
            raise MedViewerError(f"unknown transform '{self.transform}'; use one of {', '.join(TRANSFORMS)}")
        if self.metric not in METRICS:
            raise MedViewerError(f"unknown metric '{self.metric}'; use one of {', '.join(METRICS)}")
        if self.initialisation not in INITIALISATIONS:
            raise MedViewerError(f"unknown initialisation '{self.initialisation}'; use one of "
                                 + ", ".join(INITIALISATIONS))
        if not self.shrink or len(self.shrink) != len(self.smoothing_mm) or min(self.shrink) < 1:
            raise MedViewerError("the resolution levels need one shrink factor (1 or more) and one smoothing "
                                 "sigma per level")
        if not 0 < self.sampling <= 1 or self.max_samples < 1:
            raise MedViewerError("the sampling fraction must be in (0, 1] and the most samples 1 or more")
        if min(self.iterations, self.bspline_iterations) < 1 or min(self.bspline_mesh_mm, self.step_mm) <= 0:
            raise MedViewerError("iterations, the step and the B-spline mesh spacing must be positive")

    @property
    def stages(self) -> tuple[str, ...]:
        return TRANSFORMS[:TRANSFORMS.index(self.transform) + 1]

    def sampling_of(self, voxels: int) -> float:
        """The fraction of VOXELS (the fixed image's) the metric samples."""
        return min(self.sampling, self.max_samples / max(voxels, 1))


@dataclass
class RegistrationResult:
    transform: sitk.Transform   # fixed world -> moving world (LPS mm)
    resampled: Volume           # the moving image on the fixed grid
    metric_value: float         # the last stage's final metric (lower is better; MI is negative)
    iterations: int             # optimiser iterations, all stages and levels together
    stop_reason: str            # the last stage's optimiser stop condition
    tre_mm: float | None        # mean target registration error over the landmarks, if any
    description: str            # "registered (rigid, MI)": for the layer's title


def check_pair(fixed: Volume, moving: Volume) -> None:
    """MedViewerError unless FIXED and MOVING can be registered: two 3D scalar images."""
    flat_fixed, flat_moving = (v.is_2d or 1 in v.shape for v in (fixed, moving))
    if flat_fixed != flat_moving:
        two, three = ("fixed", "moving") if flat_fixed else ("moving", "fixed")
        raise MedViewerError(f"the {two} image is 2D and the {three} image is 3D; register two 3D images")
    if flat_fixed:
        raise MedViewerError("registration needs two 3D images; these are 2D")
    for name, volume in (("fixed", fixed), ("moving", moving)):
        if volume.is_rgb:
            raise MedViewerError(f"the {name} image has colour (RGB) pixels; registration needs one value per voxel")
        if volume.data.size and np.min(volume.data) == np.max(volume.data):
            raise MedViewerError(f"the {name} image holds one value everywhere; there is nothing to register")
        if min(volume.shape) < 4:
            raise MedViewerError(f"the {name} image has only {min(volume.shape)} voxels along one axis; "
                                 "registration needs at least 4")


def image_of(volume: Volume, what: str, dtype=np.float32) -> sitk.Image:
    """A SimpleITK copy of VOLUME's voxels as DTYPE, with its geometry (after a memory check)."""
    check_fits(volume.data.size * np.dtype(dtype).itemsize, f"a {np.dtype(dtype).name} copy of the {what} image")
    return to_image(volume, dtype)


def overlap_fraction(fixed: Volume, moving: Volume, transform: sitk.Transform, n: int = 9) -> float:
    """The fraction of an n^3 lattice over FIXED's box that TRANSFORM puts inside MOVING's box."""
    axes = [np.linspace(0, s - 1, n) for s in fixed.size]
    ijk = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    world = fixed.index_to_world(ijk)
    mapped = np.array([transform.TransformPoint(tuple(p)) for p in world])
    index = moving.world_to_index(mapped)
    inside = np.all((index >= -0.5) & (index <= np.asarray(moving.size) - 0.5), axis=1)
    return float(inside.mean())


def register(fixed: Volume, moving: Volume, settings: RegistrationSettings | None = None, landmarks=None,
             progress: Progress | None = None, cancel: Callable[[], bool] | None = None) -> RegistrationResult:
    """Register MOVING onto FIXED (see the module docstring). LANDMARKS: (fixed_points, moving_points),
    matching (N, 3) LPS mm arrays, or None."""
    settings = settings or RegistrationSettings()
    settings.check()
    check_pair(fixed, moving)
    if landmarks is not None:
        landmarks = (np.asarray(landmarks[0], float).reshape(-1, 3), np.asarray(landmarks[1], float).reshape(-1, 3))
    run = Run(progress, cancel, len(settings.stages), len(settings.shrink))
    run.check()
    fixed_image, moving_image = image_of(fixed, "fixed"), image_of(moving, "moving")
    transform = initial_transform(fixed_image, moving_image, settings.initialisation, landmarks)
    share = overlap_fraction(fixed, moving, transform)
    if share < MIN_OVERLAP:
        raise MedViewerError(f"the images do not overlap ({100 * share:.0f}% of the fixed image falls in the "
                             f"moving image after the '{settings.initialisation}' initialisation); use "
                             "'geometry' centring or landmarks")
    transform, value, stop = run_stages(fixed_image, moving_image, transform, settings, run)
    run.check()
    resampled = resample(moving, fixed, transform)
    tre = None
    if landmarks is not None and len(landmarks[0]):
        tre = target_registration_error(transform, landmarks[0], landmarks[1])[0]
    run.tell(1.0, "registration: done")
    return RegistrationResult(transform=transform, resampled=resampled, metric_value=value,
                              iterations=run.iterations, stop_reason=stop, tre_mm=tre,
                              description=f"registered ({settings.transform}, {METRICS[settings.metric]})")


def register_from_landmarks(fixed: Volume, moving: Volume, fixed_points, moving_points,
                            kind: str = "rigid") -> RegistrationResult:
    """The closed-form landmark registration as a RegistrationResult (the moving image resampled,
    TRE over the same landmarks: the fit's residual)."""
    check_pair(fixed, moving)
    transform = register_landmarks(fixed_points, moving_points, kind)
    tre = target_registration_error(transform, fixed_points, moving_points)[0]
    return RegistrationResult(transform=transform, resampled=resample(moving, fixed, transform),
                              metric_value=float("nan"), iterations=0, stop_reason="closed form", tre_mm=tre,
                              description=f"registered ({kind}, landmarks)")


def resample(moving: Volume, fixed: Volume, transform: sitk.Transform, labels: bool = False) -> Volume:
    """MOVING on FIXED's grid through TRANSFORM (fixed world -> moving world): trilinear, float32,
    outside the moving image its minimum; ``labels``: nearest neighbour, uint8, outside 0. The volume
    has the fixed geometry and frame of reference, the moving image's modality and other metadata."""
    if labels:
        image = image_of(moving, "label", np.uint8)
        interpolator, default, pixel = sitk.sitkNearestNeighbor, 0.0, sitk.sitkUInt8
    else:
        if moving.is_rgb:
            raise MedViewerError("the moving image has colour (RGB) pixels; registration needs one value per voxel")
        image = image_of(moving, "moving")
        interpolator, default, pixel = sitk.sitkLinear, float(np.min(moving.data)), sitk.sitkFloat32
    check_fits(int(np.prod(fixed.size)) * (1 if labels else 4), "the resampled image")
    out = sitk.Resample(image, [int(v) for v in fixed.size], transform, interpolator, fixed.origin, fixed.spacing,
                        tuple(float(v) for v in fixed.direction.ravel()), default, pixel)
    metadata = dict(moving.metadata)
    for key in ("path", "source", "format"):
        metadata.pop(key, None)
    frame = fixed.metadata.get("FrameOfReferenceUID")
    if frame:
        metadata["FrameOfReferenceUID"] = frame
    else:
        metadata.pop("FrameOfReferenceUID", None)
    return fixed.copy_geometry(sitk.GetArrayFromImage(out), modality=moving.modality, metadata=metadata)


def carry_labels(labels: LabelMap, moving: Volume, fixed: Volume, transform: sitk.Transform) -> LabelMap:
    """The moving image's LABELS on the fixed grid through TRANSFORM (nearest neighbour), with a copy
    of their table (names, colours)."""
    if tuple(labels.data.shape) != tuple(moving.shape):
        raise MedViewerError(f"the labels ({'x'.join(map(str, labels.data.shape[::-1]))}) are not on the moving "
                             f"image's grid ({'x'.join(map(str, moving.size))})")
    grid = moving.copy_geometry(labels.data)
    data = resample(grid, fixed, transform, labels=True).data
    table = LabelTable({v: Label(**vars(lab)) for v, lab in labels.table.labels.items()})
    return LabelMap(fixed.shape, name=f"{labels.name} (registered)", table=table, data=data)
