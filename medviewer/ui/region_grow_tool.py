"""Region growing from a click, as a preview first (Slicer's "grow from seeds", ITK-SNAP's bubbles):

click a seed -> the region grows on a worker thread (progress, Cancel) -> it is shown as a yellow
preview (Session.preview) with its size -> changing a parameter regrows it from the same seed ->
Accept (Enter) paints it into the active label as one undo step, Discard (Esc) drops it.

Parameters (processing.region_growing.GrowParams): confidence (multiplier, iterations) or
threshold (the panel's low..high range), 2D in the clicked slice (the default: a click means the
structure under it) or 3D, and a maximum volume: a region that reaches it is flagged as leaking
and shown only near the seed. Accepting never paints over other labels unless the annotation
controller's `overwrite` is on ("Paint over other labels"); locked labels are always kept.
"""
from __future__ import annotations

import numpy as np

from medviewer.core.errors import Cancelled
from medviewer.processing import region_growing
from medviewer.ui.hand_over import Task
from medviewer.ui.qt import QtCore, Signal


class RegionGrowTool(QtCore.QObject):
    status = Signal(str)  # what the panel shows under the parameters
    progress = Signal(float)  # 0..1 while growing
    state_changed = Signal()  # growing / preview pending changed (buttons follow)

    def __init__(self, session, controller, parent=None):
        super().__init__(parent)
        self.session, self.controller = session, controller
        defaults = region_growing.GrowParams()
        self.mode = defaults.mode  # "confidence" or "threshold" (the controller's low..high)
        self.multiplier, self.iterations = defaults.multiplier, defaults.iterations
        self.in_3d = False
        self.max_volume_ml: float | None = defaults.max_volume_ml
        self._seed: tuple[np.ndarray, int] | None = None  # (x, y, z) index, the clicked view's normal
        self._task: Task | None = None
        self.result: region_growing.GrowResult | None = None
        session.volume_changed.connect(self.discard)
        session.image_replaced.connect(self.discard)  # a preview grown on the previous volume's values

    # --- state ------------------------------------------------------------------------
    @property
    def growing(self) -> bool:
        return self._task is not None and self._task.running

    @property
    def has_seed(self) -> bool:
        """A seed was clicked and neither accepted nor discarded: new settings regrow from it."""
        return self._seed is not None

    @property
    def pending(self) -> bool:
        """A preview waits to be accepted or discarded."""
        return self.result is not None and self.result.voxels > 0

    def params(self, normal_axis: int) -> region_growing.GrowParams:
        ctl = self.controller
        return region_growing.GrowParams(
            mode=self.mode, low=ctl.low if self.mode == "threshold" else None,
            high=ctl.high if self.mode == "threshold" else None, multiplier=self.multiplier,
            iterations=self.iterations, plane_axis=None if self.in_3d else normal_axis,
            max_volume_ml=self.max_volume_ml or None)

    # --- actions ------------------------------------------------------------------------
    def click(self, seed_xyz, normal_axis: int) -> None:
        volume = self.session.volume
        if volume is None:
            return
        if volume.is_rgb:
            self.status.emit("Region growing needs a greyscale image.")
            return
        self._seed = (np.asarray(seed_xyz, float), int(normal_axis))
        self.regrow()

    def regrow(self) -> None:
        """Grow (again) from the last seed with the current parameters; the preview follows."""
        volume = self.session.volume
        if self._seed is None or volume is None:
            return
        seed, normal = self._seed
        try:
            params = self.params(normal)
        except ValueError as exc:
            self.status.emit(f"Region growing: {exc}")
            return
        if self._task is not None:
            self._task.discard()  # a newer seed or parameter replaces the running growth
        task = self._task = Task("region growing", owner=self, on_progress=self._progressed,
                                 on_done=lambda result: self._grown(result, volume),
                                 on_error=self._failed)
        task.start(region_growing.grow_region, volume.data, volume.spacing, seed, params,
                   progress=task.report, cancel=task.is_cancelled)
        self.status.emit("Growing…")
        self.progress.emit(0.0)
        self.state_changed.emit()

    def cancel(self) -> None:
        if self.growing:
            self._task.cancel()

    def accept(self) -> int:
        """Paint the preview into the active label (one undo step); returns the voxels painted."""
        result = self.result
        if not self.pending or self.session.volume is None:
            return 0
        labels = self.session.ensure_labels()
        value = self.session.active_value
        n = labels.paint(result.region, result.mask, value, "region growing", overwrite=self.controller.overwrite)
        kept = result.voxels - n
        self._clear()
        self.status.emit(f"Region growing labelled {n} voxels with label {value}"
                         + (f"; {kept} voxels already labelled were kept" if kept else "") + ".")
        return n

    def discard(self, *_args) -> None:
        if self._task is not None:
            self._task.discard()
        had = self.pending or self.growing
        self._clear()
        if had:
            self.status.emit("Region growing: preview discarded.")

    def _clear(self) -> None:
        self._task, self.result, self._seed = None, None, None
        if self.session.preview is not None:
            self.session.set_preview()
        self.progress.emit(0.0)
        self.state_changed.emit()

    # --- results (GUI thread) ------------------------------------------------------------
    def _progressed(self, payload) -> None:
        fraction, message = payload
        self.progress.emit(float(fraction))

    def _grown(self, result: region_growing.GrowResult, volume) -> None:
        if self.session.volume is not volume:
            return  # another image is open now
        self.result = result
        self.progress.emit(1.0)
        if result.voxels == 0:
            self.session.set_preview()
            self.status.emit("Region growing: nothing connected to the seed is in range.")
        else:
            self.session.set_preview(result.region, result.mask)
            low, high = result.interval
            text = (f"{result.voxels} voxels, {result.volume_ml:.2f} mL, range {low:.4g} … {high:.4g}. "
                    "Accept (Enter) or Discard (Esc).")
            if result.stopped:
                limit = f"{self.max_volume_ml:g} mL" if self.max_volume_ml else "the limit"
                text = (f"Stopped at the maximum volume ({limit}): the region leaks; only its part "
                        "near the seed is shown. Lower the multiplier, narrow the range or grow in 2D. "
                        + text)
            self.status.emit(text)
        self.state_changed.emit()

    def _failed(self, exc: BaseException) -> None:
        self.progress.emit(0.0)
        if isinstance(exc, Cancelled):
            self.status.emit("Region growing cancelled; nothing was changed.")
        elif isinstance(exc, ValueError):  # a seed outside the volume, bad parameters
            self.status.emit(f"Region growing: {exc}")
        else:
            from medviewer.ui.errors import user_message

            reason, log = user_message(exc, "growing a region")
            self.status.emit(f"Region growing failed: {reason}" + (f" (details: {log})" if log else ""))
        self._task = None
        self.state_changed.emit()
