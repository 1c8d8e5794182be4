"""Scene3D: everything the 3D view shows, on one vtkRenderer, without Qt.

Volume rendering (vtkSmartVolumeMapper: GPU ray casting, CPU fallback) with Slicer's presets and
the opacity-ramp editor, render modes (volume, maximum-intensity projection, surfaces only),
camera presets in LPS world, clipping by an index box or by the crosshair planes, the three MPR
planes as slices in 3D, picking a voxel, and capture. The label surfaces (LabelSurfaces) share the
renderer. Tests drive it on an offscreen render window; View3D hosts it in Qt.

    scene = Scene3D(render_window)
    scene.set_volume(volume); scene.set_preset("CT bone"); scene.set_camera("L")
    rgb = scene.capture()
"""
from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

from medviewer.core.errors import MedViewerError
from medviewer.core.oblique import crossing_point, plane_normal
from medviewer.core.volume import Volume
from medviewer.ui.view3d import transfer_functions as tf
from medviewer.ui.view3d import vtk_bridge as bridge

RENDER_MODES = ("volume", "mip", "surface")
BACKGROUND = (0.07, 0.08, 0.10)
# camera presets in LPS world: (from the focal point towards the camera, view up). "A" looks from
# the anterior (-y in LPS) with superior up, as Slicer's A button does.
CAMERA_VIEWS = {
    "A": ((0, -1, 0), (0, 0, 1)), "P": ((0, 1, 0), (0, 0, 1)),
    "L": ((1, 0, 0), (0, 0, 1)), "R": ((-1, 0, 0), (0, 0, 1)),
    "S": ((0, 0, 1), (0, -1, 0)), "I": ((0, 0, -1), (0, -1, 0)),
}
PICK_ISOVALUE = 0.1  # the rendered volume is "hit" where the ray's opacity first exceeds this


def _label_surfaces(renderer):
    """LabelSurfaces on the renderer, or None while that module does not exist."""
    try:
        from medviewer.ui.view3d.label_surfaces import LabelSurfaces
    except ModuleNotFoundError as exc:
        if exc.name != "medviewer.ui.view3d.label_surfaces":
            raise
        return None
    return LabelSurfaces(renderer)


class Scene3D:
    def __init__(self, render_window, max_texture_3d: int | None = None,
                 request_render: Callable[[], None] | None = None) -> None:
        bridge.setup()
        from vtkmodules.vtkRenderingCore import vtkRenderer, vtkVolume
        from vtkmodules.vtkRenderingVolumeOpenGL2 import vtkSmartVolumeMapper
        self.render_window = render_window
        self.renderer = vtkRenderer()
        self.renderer.SetBackground(*BACKGROUND)
        # translucent label surfaces (opacity < 1) in the right order, also inside the rendered volume;
        # VTK peels only while something translucent is shown; peeling needs an alpha channel and no
        # multisampling (with either missing, EGL/llvmpipe drew a blank frame)
        render_window.SetAlphaBitPlanes(1)
        render_window.SetMultiSamples(0)
        self.renderer.SetUseDepthPeeling(True)
        self.renderer.SetUseDepthPeelingForVolumes(True)
        self.renderer.SetMaximumNumberOfPeels(4)
        self.renderer.SetOcclusionRatio(0.1)
        render_window.AddRenderer(self.renderer)
        # called after every change; View3D coalesces it into one render per event-loop turn
        self.request_render = request_render or (lambda: None)
        self._max_texture = max_texture_3d
        self.volume: Volume | None = None
        self.downsampled: str | None = None
        self.render_mode = "volume"
        self.preset: str | None = None
        self.opacity_ramp: tuple[float, float] = (1.0, 0.0)  # (window, level) of the editor
        self.first_frame_ms: float | None = None
        self.last_render_ms: float | None = None
        self._first_frame_due = False
        self._volume_preset: str | None = None  # what "volume" mode goes back to after "mip"
        self._high = 0.0  # the image's bright end (99.5th percentile), for relative presets
        self._full_image = None  # full-resolution vtkImageData for the planes
        self._mapper = vtkSmartVolumeMapper()
        self._mapper.SetRequestedRenderModeToDefault()  # GPU ray casting, CPU when there is no GPU path
        self._mapper.SetBlendModeToComposite()
        self._prop = vtkVolume()
        self._prop.SetMapper(self._mapper)
        self._property = None
        self._clip_planes = None  # vtkPlaneCollection of the index box, or None
        self._clip_crosshair = False
        self._cursor = np.zeros(3)
        self._octant = None
        self._planes: list = []  # three vtkImageSlice (x, y, z), made on first show
        self._planes_on = False
        self._plane_rotations: dict | None = None  # {view plane: 3x3} from the 2D views' oblique MPR
        self._plane_centre = None
        self._plane_axes: dict[str, int] = {}  # view plane -> the index axis normal to it
        self._plane_window = (400.0, 40.0)
        self.surfaces = _label_surfaces(self.renderer)
        self.renderer.AddObserver("StartEvent", self._before_render)

    # --- the image ------------------------------------------------------------------
    @property
    def max_texture_3d(self) -> int:
        if self._max_texture is None:
            self._max_texture = bridge.max_texture_3d(self.render_window)
        return self._max_texture

    def set_volume(self, volume: Volume) -> None:
        if volume.is_2d or min(volume.shape) < 2:
            raise MedViewerError("the 3D view needs a volume: this image is 2D (a single slice)")
        if volume.is_rgb:
            raise MedViewerError("the 3D view renders grey-value volumes: this image is RGB colour")
        limit = self.max_texture_3d
        factors = [max(1, math.ceil(n / limit)) for n in volume.size]  # (x, y, z)
        data = volume.data
        if max(factors) > 1:
            fx, fy, fz = factors
            data = data[::fz, ::fy, ::fx]
            self.downsampled = (f"downsampled {max(factors)}x for rendering: {max(volume.size)} > "
                                f"{limit} texels")
        else:
            self.downsampled = None
        spacing = [s * f for s, f in zip(volume.spacing, factors)]
        self.volume = volume
        self._image = bridge.image_data(data, spacing)
        self._full_image = None
        self._mapper.SetInputData(self._image)
        self._prop.SetUserMatrix(bridge.grid_to_world(volume))
        sample = np.asarray(volume.data[::4, ::4, ::4], dtype=np.float32)
        self._high = float(np.percentile(sample, 99.5)) if sample.size else 0.0
        if self.renderer.GetVolumes().GetNumberOfItems() == 0:
            self.renderer.AddVolume(self._prop)
        for actor in self._planes:
            self.renderer.RemoveViewProp(actor)
        self._planes = []
        from medviewer.core.slicing import PLANES, plane_geometry
        self._plane_axes = {name: plane_geometry(volume, name).normal_axis for name in PLANES}
        self._plane_rotations, self._plane_centre = None, None
        self._cursor = np.array([s // 2 for s in volume.size], dtype=float)
        self._volume_preset = tf.default_preset(volume.modality)
        self.set_preset(tf.default_preset(volume.modality, mip=self.render_mode == "mip"))
        if self.surfaces is not None:
            self.surfaces.set_volume(volume)
        if self._planes_on:
            self._make_planes()
        self.set_camera("A")
        self._first_frame_due = True

    # --- how it is rendered -------------------------------------------------------------
    def set_render_mode(self, mode: str) -> None:
        if mode not in RENDER_MODES:
            raise MedViewerError(f"unknown 3D render mode {mode!r} (use one of {', '.join(RENDER_MODES)})")
        previous, self.render_mode = self.render_mode, mode
        self._prop.SetVisibility(mode != "surface")
        if mode == "mip":
            self._mapper.SetBlendModeToMaximumIntensity()
        else:
            self._mapper.SetBlendModeToComposite()
        if self.volume is not None and (mode == "mip") != (previous == "mip"):
            modality = self.volume.modality
            self.set_preset(tf.default_preset(modality, mip=True) if mode == "mip"
                            else self._volume_preset or tf.default_preset(modality))
        self.request_render()

    def set_preset(self, name: str) -> None:
        if name not in tf.PRESETS:
            raise MedViewerError(f"unknown volume-rendering preset {name!r} (use one of "
                                 f"{', '.join(tf.PRESETS)})")
        self.preset = name
        if "MIP" not in name:
            self._volume_preset = name
        self.opacity_ramp = tf.initial_ramp(tf.PRESETS[name], self._high)
        self._apply_transfer_function()

    def shift_opacity(self, d_window: float, d_level: float) -> tuple[float, float]:
        """The editor: widen/narrow (d_window) and move (d_level) the opacity ramp, in image units."""
        window, level = self.opacity_ramp
        self.opacity_ramp = (max(window + d_window, 1e-3), level + d_level)
        self._apply_transfer_function()
        return self.opacity_ramp

    def _apply_transfer_function(self) -> None:
        if self.preset is None:
            return
        self._property = tf.volume_property(tf.PRESETS[self.preset], *self.opacity_ramp, prop=self._property)
        self._prop.SetProperty(self._property)
        self.request_render()

    # --- camera ---------------------------------------------------------------------------
    def _world_bounds(self) -> list[float]:
        v = self.volume
        corners = np.array([[i, j, k] for i in (0, v.size[0] - 1) for j in (0, v.size[1] - 1)
                            for k in (0, v.size[2] - 1)], dtype=float)
        world = v.index_to_world(corners)
        lo, hi = world.min(axis=0), world.max(axis=0)
        return [lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]]

    def set_camera(self, view: str) -> None:
        """Look from the patient's A, P, L, R, S or I side at the whole volume."""
        if view not in CAMERA_VIEWS:
            raise MedViewerError(f"unknown camera view {view!r} (use one of {', '.join(CAMERA_VIEWS)})")
        if self.volume is None:
            return
        towards, up = CAMERA_VIEWS[view]
        bounds = self._world_bounds()
        centre = np.array([(bounds[0] + bounds[1]) / 2, (bounds[2] + bounds[3]) / 2, (bounds[4] + bounds[5]) / 2])
        camera = self.renderer.GetActiveCamera()
        camera.SetFocalPoint(*centre)
        camera.SetPosition(*(centre + np.asarray(towards, dtype=float) * 1000.0))
        camera.SetViewUp(*up)
        self._frame(bounds)
        self.request_render()

    def reset_camera(self) -> None:
        self.set_camera("A")

    def set_orthographic(self, on: bool) -> None:
        self.renderer.GetActiveCamera().SetParallelProjection(bool(on))
        if self.volume is not None:
            self._frame(self._world_bounds())
        self.request_render()

    def _frame(self, bounds) -> None:
        """Fit the volume's box (not its bounding sphere, which leaves a thin slab small) to the view."""
        r = self.renderer
        r.ResetCamera(bounds)
        extent = 0.0
        for x in bounds[0:2]:
            for y in bounds[2:4]:
                for z in bounds[4:6]:
                    r.SetWorldPoint(x, y, z, 1.0)
                    r.WorldToView()
                    vx, vy, _ = r.GetViewPoint()
                    extent = max(extent, abs(vx), abs(vy))
        if extent > 1e-6:
            r.GetActiveCamera().Zoom(0.9 / extent)
        r.ResetCameraClippingRange(bounds)

    # --- clipping ---------------------------------------------------------------------------
    def set_clip_box(self, box) -> None:
        """Show only ((x0, x1), (y0, y1), (z0, z1)) (voxel index, inclusive), or everything (None)."""
        from vtkmodules.vtkCommonDataModel import vtkPlane, vtkPlaneCollection
        self._mapper.RemoveAllClippingPlanes()
        self._clip_planes = None
        if box is not None and self.volume is not None:
            v = self.volume
            planes = vtkPlaneCollection()
            for axis, (lo, hi) in enumerate(box):
                for at, inward in ((min(lo, hi), 1.0), (max(lo, hi), -1.0)):
                    ijk = np.zeros(3)
                    ijk[axis] = at
                    normal = np.zeros(3)
                    normal[axis] = inward
                    plane = vtkPlane()
                    plane.SetOrigin(*v.index_to_world(ijk))
                    plane.SetNormal(*(v.direction @ normal))
                    planes.AddItem(plane)
            self._clip_planes = planes
            self._mapper.SetClippingPlanes(planes)
        self.request_render()

    def set_clip_crosshair(self, on: bool, cursor=None) -> None:
        """Cut away the octant of the volume between the crosshair planes and the camera."""
        self._clip_crosshair = bool(on)
        if cursor is not None:
            self._cursor = np.asarray(cursor, dtype=float)
        self._mapper.SetCropping(self._clip_crosshair)
        self._octant = None
        self.request_render()

    def _update_cropping(self) -> None:
        v = self.volume
        centre = self._cursor * np.asarray(v.spacing)  # grid-frame mm
        far = (np.array(self._image.GetDimensions()) - 1) * np.array(self._image.GetSpacing()) + 1.0
        camera = np.array(self.renderer.GetActiveCamera().GetPosition())
        in_grid = v.direction.T @ (camera - np.asarray(v.origin))
        octant = tuple(int(in_grid[a] > centre[a]) for a in range(3))
        if octant == self._octant:
            return
        self._octant = octant
        self._mapper.SetCroppingRegionPlanes(centre[0], far[0], centre[1], far[1], centre[2], far[2])
        removed = octant[0] + 3 * octant[1] + 9 * octant[2]
        self._mapper.SetCroppingRegionFlags(0x7FFFFFF & ~(1 << removed))

    def _before_render(self, *_args) -> None:
        if self.volume is None:
            return
        if self._clip_crosshair:
            self._update_cropping()
        if self.surfaces is not None:
            for actor in self.surfaces.actors():
                mapper = actor.GetMapper()
                if mapper is not None and mapper.GetClippingPlanes() is not self._clip_planes:
                    mapper.SetClippingPlanes(self._clip_planes)

    # --- MPR planes in 3D ------------------------------------------------------------------
    @property
    def follows_cursor(self) -> bool:
        """Whether a cursor move changes the picture (planes shown or the crosshair clip on)."""
        return self._planes_on or self._clip_crosshair

    def show_planes(self, on: bool, cursor=None) -> None:
        self._planes_on = bool(on)
        if cursor is not None:
            self._cursor = np.asarray(cursor, dtype=float)
        if self._planes_on and not self._planes and self.volume is not None:
            self._make_planes()
        for actor in self._planes:
            actor.SetVisibility(self._planes_on)
        self.update_planes(self._cursor)

    def set_plane_window(self, width: float, centre: float) -> None:
        """The grey window of the planes (the 2D views' window)."""
        self._plane_window = (float(width), float(centre))
        for actor in self._planes:
            actor.GetProperty().SetColorWindow(self._plane_window[0])
            actor.GetProperty().SetColorLevel(self._plane_window[1])
        if self._planes_on:
            self.request_render()

    def _make_planes(self) -> None:
        from vtkmodules.vtkCommonDataModel import vtkPlane
        from vtkmodules.vtkRenderingImage import vtkImageResliceMapper
        from vtkmodules.vtkRenderingCore import vtkImageSlice
        if self._full_image is None:
            self._full_image = bridge.image_data(self.volume.data, self.volume.spacing)
        matrix = bridge.grid_to_world(self.volume)
        for _axis in range(3):  # the planes normal to index x (sagittal), y (coronal), z (axial)
            mapper = vtkImageResliceMapper()  # any plane: the 2D views' turned planes too
            mapper.SetInputData(self._full_image)
            mapper.SetSlicePlane(vtkPlane())  # in world coordinates; placed by update_planes
            actor = vtkImageSlice()
            actor.SetMapper(mapper)
            actor.SetUserMatrix(matrix)
            actor.GetProperty().SetColorWindow(self._plane_window[0])
            actor.GetProperty().SetColorLevel(self._plane_window[1])
            actor.GetProperty().SetInterpolationTypeToLinear()
            self.renderer.AddViewProp(actor)
            self._planes.append(actor)

    def set_plane_rotations(self, rotations: dict | None, centre=None) -> None:
        """The 2D views' turned planes (oblique MPR): {plane: 3x3 world rotation} and the world point
        where they cross (None: the cursor voxel's centre); None rotations: the grid planes."""
        self._plane_rotations = dict(rotations) if rotations else None
        self._plane_centre = None if centre is None else np.asarray(centre, dtype=float)
        self.update_planes(self._cursor)

    def update_planes(self, cursor) -> None:
        """Move the planes (and the crosshair clip) to the cursor (x, y, z); cheap."""
        self._cursor = np.asarray(cursor, dtype=float)
        if self._planes and self.volume is not None:
            v = self.volume
            centre = crossing_point(v, self._plane_centre, self._cursor)
            rotations = self._plane_rotations or {}
            for view, axis in self._plane_axes.items():
                normal = plane_normal(v, view, rotations.get(view, np.eye(3)))
                actor = self._planes[axis]
                plane = actor.GetMapper().GetSlicePlane()
                plane.SetOrigin(*centre)
                plane.SetNormal(*normal)
                actor.GetMapper().Modified()
        self._octant = None
        if self.follows_cursor:
            self.request_render()

    # --- picking ------------------------------------------------------------------------------
    def pick(self, x: float, y: float) -> tuple[int, int, int] | None:
        """The (x, y, z) voxel index under display pixel (x, y) (VTK's: origin bottom-left): on a
        surface, a plane or the rendered volume (where its opacity first exceeds PICK_ISOVALUE)."""
        if self.volume is None:
            return None
        from vtkmodules.vtkRenderingVolume import vtkVolumePicker
        picker = vtkVolumePicker()
        picker.SetTolerance(1e-6)
        picker.SetVolumeOpacityIsovalue(PICK_ISOVALUE)
        picker.UseVolumeGradientOpacityOff()
        picker.PickCroppingPlanesOff()
        picker.PickFromListOn()
        targets = list(self.surfaces.actors()) if self.surfaces is not None else []
        targets += [a for a in self._planes if a.GetVisibility()]
        if self._prop.GetVisibility():
            targets.append(self._prop)
        for prop in targets:
            picker.AddPickList(prop)
        if not targets or not picker.Pick(float(x), float(y), 0.0, self.renderer):
            return None
        ijk = np.round(self.volume.world_to_index(picker.GetPickPosition()))
        ijk = np.clip(ijk, 0, np.asarray(self.volume.size) - 1).astype(int)
        return tuple(int(v) for v in ijk)

    # --- frames --------------------------------------------------------------------------------
    def render(self) -> None:
        start = time.perf_counter()
        self.render_window.Render()
        self.last_render_ms = (time.perf_counter() - start) * 1000.0
        if self._first_frame_due:
            self._first_frame_due = False
            self.first_frame_ms = self.last_render_ms

    def capture(self) -> np.ndarray:
        """The current frame as (h, w, 3) uint8, top row first."""
        self.render()
        return bridge.capture(self.render_window)

    def close(self) -> None:
        if self.surfaces is not None:
            self.surfaces.close()
        self.renderer.RemoveAllViewProps()
        self.render_window.RemoveRenderer(self.renderer)
