"""The SimpleITK side of medviewer.processing.registration: the start transform, one
ImageRegistrationMethod per stage (metric, sampling, levels, optimiser), progress and cancel through
its iteration events, and ITK's failures as one-line MedViewerErrors. See registration's docstring.

Optimisers: regular step gradient descent for rigid and affine (parameters scaled to mm of shift;
it honours StopRegistration at once), L-BFGS-B for the B-spline (the usual SimpleITK choice; it
never checks StopRegistration, so a cancel then ends it with an exception out of the iteration
callback, kept off the terminal: processing.operations' quiet stop).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import SimpleITK as sitk

from medviewer.core.errors import Cancelled, MedViewerError
from medviewer.processing.landmarks import register_landmarks
from medviewer.processing.sitk_errors import SitkStop, itk_reason, quiet_stops

Progress = Callable[[float, str], None]


class Run:
    """Progress over all stages and levels, and cancel, for one registration."""

    def __init__(self, progress: Progress | None, cancel: Callable[[], bool] | None, stages: int, levels: int):
        self.progress, self.cancel = progress, cancel
        self.stages, self.levels = stages, levels
        self.stage, self.last, self.iterations, self.cancelled = 0, 0.0, 0, False

    def check(self) -> None:
        if self.cancelled or (self.cancel is not None and self.cancel()):
            self.cancelled = True
            raise Cancelled("registration cancelled")

    def watch(self, method: sitk.ImageRegistrationMethod, name: str, max_iterations: int) -> None:
        def on_iteration() -> None:
            self.iterations += 1
            if self.cancelled or (self.cancel is not None and self.cancel()):
                if self.cancelled:  # L-BFGS-B goes on after StopRegistration (it never asks)
                    raise SitkStop()
                self.cancelled = True
                method.StopRegistration()  # the gradient descents stop at once, at each level
                return
            level = method.GetCurrentLevel()
            inside = min(method.GetOptimizerIteration() / max_iterations, 1.0)
            self.tell((self.stage + (level + inside) / self.levels) / self.stages,
                      f"registration: {name}, level {level + 1} of {self.levels}")

        method.AddCommand(sitk.sitkIterationEvent, on_iteration)

    def tell(self, fraction: float, message: str) -> None:
        self.last = min(max(fraction, self.last), 1.0)
        if self.progress is not None:
            self.progress(self.last, message)


def initial_transform(fixed_image, moving_image, initialisation: str, landmarks) -> sitk.Transform:
    """The rigid start: the landmarks' rigid fit (3 pairs or more), else the centring (see registration)."""
    if landmarks is not None and len(landmarks[0]) >= 3:
        return register_landmarks(landmarks[0], landmarks[1], "rigid")
    if initialisation == "none":
        centre = fixed_image.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in fixed_image.GetSize()])
        return sitk.Euler3DTransform(centre)
    mode = (sitk.CenteredTransformInitializerFilter.GEOMETRY if initialisation == "geometry"
            else sitk.CenteredTransformInitializerFilter.MOMENTS)
    return sitk.CenteredTransformInitializer(fixed_image, moving_image, sitk.Euler3DTransform(), mode)


def _method(settings, voxels: int) -> sitk.ImageRegistrationMethod:
    method = sitk.ImageRegistrationMethod()
    if settings.metric == "mi":
        method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=settings.histogram_bins)
    else:
        method.SetMetricAsMeanSquares()
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(settings.sampling_of(voxels), settings.seed)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetShrinkFactorsPerLevel([int(s) for s in settings.shrink])
    method.SetSmoothingSigmasPerLevel([float(s) for s in settings.smoothing_mm])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    return method


def _affine_from(rigid: sitk.Transform) -> sitk.AffineTransform:
    affine = sitk.AffineTransform(3)
    affine.SetCenter(rigid.GetCenter())
    affine.SetMatrix(rigid.GetMatrix())
    affine.SetTranslation(rigid.GetTranslation())
    return affine


def _bspline_start(fixed_image: sitk.Image, settings) -> sitk.BSplineTransform:
    """A zero cubic B-spline over the fixed image, control points about ``bspline_mesh_mm`` apart."""
    extent = np.asarray(fixed_image.GetSize()) * np.asarray(fixed_image.GetSpacing())
    mesh = np.maximum(1, np.round(extent / settings.bspline_mesh_mm)).astype(int)
    return sitk.BSplineTransformInitializer(fixed_image, [int(v) for v in mesh], order=3)


def _execute(method, fixed_image, moving_image, run: Run, what: str):
    try:
        with quiet_stops():
            out = method.Execute(fixed_image, moving_image)
    except RuntimeError as exc:
        if run.cancelled:
            raise Cancelled("registration cancelled") from None
        text = str(exc)
        if "outside" in text and "buffer" in text:
            raise MedViewerError(f"registration failed ({what}): the images stopped overlapping (too few "
                                 "samples of the fixed image fall in the moving image); try another "
                                 "initialisation or landmarks") from None
        raise MedViewerError(f"registration failed ({what}): {itk_reason(exc)}") from None
    if run.cancelled:
        raise Cancelled("registration cancelled")
    value = method.GetMetricValue()
    if not np.isfinite(value) or not np.all(np.isfinite(out.GetParameters())):
        raise MedViewerError(f"registration did not converge ({what}): the metric or the transform is not a "
                             "number; check that the images overlap and show the same anatomy")
    return out, float(value), method.GetOptimizerStopConditionDescription()


def run_stages(fixed_image: sitk.Image, moving_image: sitk.Image, transform: sitk.Transform, settings,
               run: Run) -> tuple[sitk.Transform, float, str]:
    """Run SETTINGS' stages from TRANSFORM; (the final transform, the last metric value, its stop reason)."""
    value, stop = float("nan"), ""
    for run.stage, stage in enumerate(settings.stages):
        run.check()
        method = _method(settings, fixed_image.GetNumberOfPixels())
        if stage == "bspline":
            bspline = _bspline_start(fixed_image, settings)
            method.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5,
                                        numberOfIterations=settings.bspline_iterations, maximumNumberOfCorrections=5,
                                        maximumNumberOfFunctionEvaluations=1000, costFunctionConvergenceFactor=1e7)
            method.SetMovingInitialTransform(transform)
            method.SetInitialTransform(bspline, inPlace=True)
            run.watch(method, "B-spline", settings.bspline_iterations)
            _, value, stop = _execute(method, fixed_image, moving_image, run, "B-spline")
            transform = sitk.CompositeTransform([transform, bspline])  # affine(bspline(x))
        else:
            start = transform if stage == "rigid" else _affine_from(transform)
            method.SetOptimizerAsRegularStepGradientDescent(learningRate=settings.step_mm, minStep=1e-4,
                                                            numberOfIterations=settings.iterations,
                                                            relaxationFactor=0.5)
            method.SetOptimizerScalesFromPhysicalShift()
            method.SetInitialTransform(start, inPlace=True)
            run.watch(method, stage, settings.iterations)
            _, value, stop = _execute(method, fixed_image, moving_image, run, stage)
            transform = start
    return transform, value, stop
