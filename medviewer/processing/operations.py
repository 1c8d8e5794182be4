"""The image processing operations: one registry, one way to run them (GUI, CLI, tests).

    from medviewer.ai.clustering import all_operations     # every operation, clustering included
    ops = all_operations()                                  # {name: Operation}
    result = run_operation("gaussian", volume, {"sigma": 1.5},
                           progress=lambda fraction, message: ..., cancel=lambda: token.cancelled)
    result.volume / result.labels / result.description       # "Gaussian σ 1.5 mm"

Each ``Operation`` declares its parameters (``Param``: kind, default, range, unit) and its output:
"image" (a derived image on the input's grid), "labels" (a ``core.labels.LabelMap`` with named
labels) or "overlay" (an image meant to be shown over its source: edges). ``op.defaults(volume)``
gives the parameter values to start from for one image (the static ``Param.default`` overridden
by values that depend on the image, e.g. a threshold between its intensities, the crop box of its
whole extent); ``run_operation`` fills the parameters it is not given from it. Parameters are
validated first: an unknown name, a value of the wrong kind or out of range is a MedViewerError
naming the parameter and its range, and so are an RGB image and an image too big for memory
(``core.memory.check_fits``).

Progress and cancel are plain callables, as in ``processing.region_growing``: ``progress(fraction,
message)`` with fractions rising to 1, ``cancel() -> bool``; a SimpleITK filter reports through its
progress event and is aborted (``ProcessObject.Abort``) when ``cancel()`` turns True, and the
run then raises ``core.errors.Cancelled`` with nothing returned. Filters from other libraries
(scikit-image, scikit-learn) are asked between the pieces they are run in.

Outputs keep the input's geometry and metadata, except "resample" and "crop", which make a new grid.
Every filter is a library call (SimpleITK; scikit-image where SimpleITK has none; scikit-learn
for clustering); the groups live in their own modules (``denoise``, ``enhance``, ``edges``,
``morphology``, ``thresholds``, ``geometry_ops``), each ``register``-ing its operations here.

Clustering (k-means, Gaussian mixture) needs scikit-learn, which only ``medviewer.ai`` may import,
and ``ai`` sits above ``processing``: ``medviewer.ai.clustering`` registers those two operations
here when it is imported, and ``medviewer.ai.clustering.all_operations()`` is THE function
consumers (CLI, GUI) call to get every operation. ``operations()`` here returns what has been
registered so far (the processing groups always; clustering once ai.clustering is imported).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from medviewer.core.errors import Cancelled, MedViewerError
from medviewer.core.labels import LabelMap
from medviewer.core.memory import check_fits
from medviewer.core.volume import Volume
from medviewer.processing.sitk_errors import SitkStop, itk_reason, quiet_stops
from medviewer.processing.sitk_volume import like, to_image

KINDS = ("float", "int", "choice", "bool")
GROUPS = ("Denoise", "Enhance", "Bias field", "Edges", "Morphology", "Threshold", "Cluster", "Geometry")
OUTPUTS = ("image", "labels", "overlay")


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "float" | "int" | "choice" | "bool"
    default: object
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple = ()
    unit: str = ""
    help: str = ""

    def range_text(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(map(str, self.choices))
        if self.kind == "bool":
            return "true or false"
        low = "-inf" if self.minimum is None else f"{self.minimum:g}"
        high = "inf" if self.maximum is None else f"{self.maximum:g}"
        what = "an integer" if self.kind == "int" else "a number"
        return f"{what} from {low} to {high}" + (f" {self.unit}" if self.unit else "")

    def check(self, value, op: str):
        """VALUE (a Python value or the text given on the command line) as this parameter's type;
        MedViewerError naming the operation, the parameter and its range when it is not one."""
        bad = MedViewerError(f"{op}: parameter {self.name} = {value!r}: must be {self.range_text()}")
        if self.kind == "choice":
            text = str(value).strip()
            if text not in map(str, self.choices):
                raise bad
            return next(c for c in self.choices if str(c) == text)
        if self.kind == "bool":
            if isinstance(value, (bool, np.bool_)):
                return bool(value)
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise bad
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise bad from None
        if isinstance(value, bool) or not math.isfinite(number):
            raise bad
        if self.kind == "int":
            if number != int(number):
                raise bad
            number = int(number)
        if (self.minimum is not None and number < self.minimum) or (
                self.maximum is not None and number > self.maximum):
            raise bad
        return number


@dataclass
class ProcessResult:
    volume: Volume | None
    labels: LabelMap | None
    description: str  # "Gaussian σ 1.0 mm"


class Steps:
    """Progress (monotone, clamped) and cancel for one run; ``part(start, end)`` maps a filter's
    own 0..1 onto a sub-range of the run."""

    def __init__(self, title: str, progress=None, cancel=None):
        self.title, self.progress, self.cancel = title, progress, cancel
        self.last = 0.0

    def cancelled(self) -> bool:
        return self.cancel is not None and bool(self.cancel())

    def check(self) -> None:
        if self.cancelled():
            raise Cancelled(f"{self.title} cancelled")

    def tell(self, fraction: float, message: str = "") -> None:
        self.last = min(max(float(fraction), self.last), 1.0)
        if self.progress is not None:
            self.progress(self.last, f"{self.title}: {message}" if message else self.title)


@dataclass(frozen=True)
class Operation:
    name: str
    title: str
    group: str
    params: tuple[Param, ...]
    output: str  # "image" | "labels" | "overlay"
    help: str
    # run(volume, {param: value}, steps) -> ProcessResult; auto(volume) -> image-dependent defaults
    run: Callable = field(default=None, repr=False, compare=False)
    auto: Callable | None = field(default=None, repr=False, compare=False)
    # bytes per voxel the run holds at once (input copies, float work images, output)
    bytes_per_voxel: int = 16

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise MedViewerError(f"{self.name}: no parameter {name!r}; it has "
                             + (", ".join(p.name for p in self.params) or "none"))

    def defaults(self, volume: Volume | None = None) -> dict:
        """The values to start from: Param.default, overridden by those that depend on VOLUME."""
        values = {p.name: p.default for p in self.params}
        if volume is not None and self.auto is not None and not volume.is_rgb:
            values.update(self.auto(volume))
        return values

    def usage(self) -> str:
        """One line per parameter, for `medviewer process --list` and tooltips."""
        lines = [f"{self.name} ({self.group}, {self.output}): {self.help}"]
        for p in self.params:
            lines.append(f"    {p.name}={p.default}  {p.range_text()}" + (f"; {p.help}" if p.help else ""))
        return "\n".join(lines)


_REGISTRY: dict[str, Operation] = {}


def register(op: Operation) -> Operation:
    if op.group not in GROUPS or op.output not in OUTPUTS or any(p.kind not in KINDS for p in op.params):
        raise ValueError(f"operation {op.name}: bad group, output or parameter kind")
    _REGISTRY[op.name] = op
    return op


def _load_groups() -> None:
    from medviewer.processing import (bias_field, denoise, edges, enhance, geometry_ops,  # noqa: F401
                                      morphology, thresholds)


def operations() -> dict[str, Operation]:
    """Every operation registered so far, by CLI name (consumers call
    ``medviewer.ai.clustering.all_operations()``, which adds clustering)."""
    _load_groups()
    order = sorted(_REGISTRY.values(), key=lambda op: GROUPS.index(op.group))  # stable: registration order
    return {op.name: op for op in order}


def get(name: str) -> Operation:
    ops = operations()
    if name not in ops:
        raise MedViewerError(f"unknown operation {name!r}; known: {', '.join(sorted(ops))}")
    return ops[name]


def checked_params(op: Operation, volume: Volume, params: dict | None) -> dict:
    given = dict(params or {})
    for name in given:
        op.param(name)  # unknown names first
    values = op.defaults(volume)
    values.update(given)
    return {p.name: p.check(values[p.name], op.name) for p in op.params}


def check_input(op: Operation, volume: Volume) -> None:
    if volume.is_rgb:
        raise MedViewerError(f"{op.name}: needs a greyscale image; this one is RGB (convert it first)")
    if volume.data.size == 0:
        raise MedViewerError(f"{op.name}: the image is empty")
    if not np.issubdtype(volume.data.dtype, np.number) and volume.data.dtype != bool:
        raise MedViewerError(f"{op.name}: cannot process {volume.data.dtype} voxels")
    if np.issubdtype(volume.data.dtype, np.inexact):
        bad = volume.data.size - int(np.count_nonzero(np.isfinite(volume.data)))
        if bad:
            raise MedViewerError(f"{op.name}: the image has {bad} NaN or infinite voxels; the filters need "
                                 "finite values")
    z, y, x = volume.shape
    check_fits(volume.data.size * op.bytes_per_voxel, f"{op.title} of the {x}x{y}x{z} image")


def run_operation(name: str, volume: Volume, params: dict | None = None, progress=None,
                  cancel=None) -> ProcessResult:
    """Run operation NAME on VOLUME (see the module docstring). Raises MedViewerError for bad
    input or parameters, Cancelled when cancel() turned True (nothing returned)."""
    op = get(name)
    check_input(op, volume)
    values = checked_params(op, volume, params)
    steps = Steps(op.title, progress, cancel)
    steps.check()
    steps.tell(0.0, "start")
    try:
        result = op.run(volume, values, steps)
    except MedViewerError:
        raise
    except MemoryError:
        z, y, x = volume.shape
        raise MedViewerError(f"{op.title}: not enough memory for the {x}x{y}x{z} image") from None
    except (ValueError, RuntimeError, ArithmeticError) as exc:  # a library's refusal (NaN voxels ...)
        raise MedViewerError(f"{op.title} failed: {itk_reason(exc)}") from exc
    steps.check()
    steps.tell(1.0, "done")
    return result


# --- helpers for the group modules -----------------------------------------------------------
def execute(steps: Steps, filt, *images, start: float = 0.0, end: float = 1.0, iterations: int = 0):
    """Run a SimpleITK filter object on IMAGES with progress mapped onto [start, end] of the run
    (from its progress event, or from its iteration event counted against ITERATIONS when given:
    N4 reports progress only at its end) and stopped when cancel() turns True: Abort() first, and
    if the filter still calls back, an exception out of the callback. Cancelled is then raised
    (nothing returned); a filter failure is a MedViewerError."""
    import SimpleITK as sitk

    aborted, done = [False], [0]

    def stop_if_cancelled() -> bool:
        if not steps.cancelled():
            return False
        if aborted[0]:
            raise SitkStop()
        filt.Abort()
        aborted[0] = True
        return True

    def on_progress():
        if not stop_if_cancelled() and not iterations:
            steps.tell(start + (end - start) * filt.GetProgress())

    def on_iteration():
        done[0] += 1
        if not stop_if_cancelled() and iterations:
            steps.tell(start + (end - start) * min(done[0] / iterations, 1.0))

    steps.check()
    filt.AddCommand(sitk.sitkProgressEvent, on_progress)
    filt.AddCommand(sitk.sitkIterationEvent, on_iteration)
    try:
        with quiet_stops():
            out = filt.Execute(*images)
    except RuntimeError as exc:
        if steps.cancelled():
            raise Cancelled(f"{steps.title} cancelled") from None
        raise MedViewerError(f"{steps.title} failed: {itk_reason(exc)}") from None
    finally:
        filt.RemoveAllCommands()
    steps.check()  # a filter that noticed no abort (no events: Sobel, Laplacian) still gives nothing
    steps.tell(end)
    return out


def filtered(volume: Volume, steps: Steps, filt, description: str, dtype=np.float32) -> ProcessResult:
    """The image result of one SimpleITK filter object run on VOLUME (as DTYPE; None: its own
    type), on the input's grid."""
    return ProcessResult(like(volume, execute(steps, filt, to_image(volume, dtype))), None, description)


def robust_range(volume: Volume) -> tuple[float, float]:
    """The 1st and 99th percentiles of the intensities (a sample of at most ~1M voxels)."""
    data = volume.data.reshape(-1)
    step = max(1, data.size // 1_000_000)
    low, high = np.percentile(data[::step].astype(np.float64), [1.0, 99.0])
    if not high > low:
        low, high = float(data.min()), float(data.max())
    if not high > low:  # a constant image: a unit range keeps the strengths derived from it positive
        high = low + 1.0
    return float(low), float(high)


def rescaled_to_input(volume: Volume, unit: np.ndarray) -> np.ndarray:
    """A [0, 1] result (scikit-image's equalisations) mapped onto the input's intensity range,
    float32, so that the input's window still fits the result."""
    low, high = float(volume.data.min()), float(volume.data.max())
    return (unit * (high - low) + low).astype(np.float32)


def label_map(volume: Volume, data: np.ndarray, names: list[str], title: str) -> LabelMap:
    """A LabelMap on VOLUME's grid whose values 1..len(names) are named NAMES."""
    labels = LabelMap(volume.shape, name=title, data=np.zeros(volume.shape, np.uint8))
    for value, name in enumerate(names, start=1):
        labels.table.add(name=name, value=value)
    labels.data[...] = data
    return labels
