"""What the 3D view needs from VTK, in one place: lazy setup, numpy arrays as vtkImageData, the
grid-to-world matrix, an offscreen render window and whether OpenGL works here at all.

The scene lives in LPS world millimetres. Image data go to VTK on the *grid frame* (origin 0,
spacing = volume.spacing, no direction) and every prop gets `grid_to_world(volume)` as its user
matrix, so a VTK point p of the data is world = direction @ p + origin and p / spacing is the
(x, y, z) voxel index.
"""
from __future__ import annotations

import os
import subprocess
import sys
from functools import lru_cache

import numpy as np

from medviewer.core.memory import check_fits
from medviewer.core.volume import Volume

FALLBACK_TEXTURE_3D = 2048  # what OpenGL 3.2 guarantees is 256; every desktop GPU and llvmpipe do 2048

# The OpenGL check runs in a child process: a missing or broken OpenGL can abort the process that
# tries it, and the 2D viewer must keep running.
_PROBE = """
import sys
sys.path.insert(0, %r)
from medviewer.ui.view3d.vtk_bridge import render_probe
raise SystemExit(render_probe())
"""
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def render_probe() -> int:
    """Make an OpenGL context and render one frame; print what happened; 0 when it worked."""
    setup()
    from vtkmodules.vtkRenderingCore import vtkRenderer
    window = offscreen_render_window(8, 8)
    window.AddRenderer(vtkRenderer())
    if not window.SupportsOpenGL():
        print("no OpenGL 3.2 context")
        return 3
    window.Render()
    print("ok", window.GetClassName())
    return 0


@lru_cache(maxsize=1)
def setup() -> None:
    """Import VTK's rendering modules so that its object factories give OpenGL classes."""
    import vtkmodules.vtkInteractionStyle  # noqa: F401
    import vtkmodules.vtkRenderingOpenGL2  # noqa: F401
    import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401


def _probe(timeout: float = 60.0) -> tuple[bool, str]:
    """Try VTK's OpenGL in a child process: (worked, what it said)."""
    if getattr(sys, "frozen", False):  # a bundled app has no interpreter to start: try it here
        return render_probe() == 0, "in-process"
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE % _ROOT], capture_output=True, text=True,
                              timeout=timeout, env=dict(os.environ))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, type(exc).__name__
    said = (done.stdout.strip().splitlines() or [""])[-1]
    return done.returncode == 0 and said.startswith("ok"), said or f"exit status {done.returncode}"


@lru_cache(maxsize=1)
def opengl_problem() -> str | None:
    """None when VTK can render here, else one line saying why the 3D view is off (the 2D views
    do not need OpenGL and keep working)."""
    try:
        setup()
    except ImportError as exc:
        return f"3D view unavailable: VTK could not be loaded ({type(exc).__name__})"
    worked, _said = _probe()
    if not worked:
        return ("3D view unavailable: no usable OpenGL 3.2 here (a remote session or a missing graphics "
                "driver); the 2D views work as before")
    return None


def offscreen_render_window(width: int = 400, height: int = 400):
    """A render window that draws into memory: EGL (no X display needed), else VTK's default."""
    setup()
    from vtkmodules.vtkRenderingCore import vtkRenderWindow
    window = None
    try:
        from vtkmodules.vtkRenderingOpenGL2 import vtkEGLRenderWindow
        window = vtkEGLRenderWindow()
    except ImportError:
        pass
    if window is None or not window.SupportsOpenGL():
        window = vtkRenderWindow()
    window.SetOffScreenRendering(1)
    window.SetSize(int(width), int(height))
    return window


def max_texture_3d(render_window) -> int:
    """The largest 3D texture edge the render window's OpenGL takes (it renders once if it must)."""
    setup()
    from vtkmodules.vtkRenderingOpenGL2 import vtkTextureObject
    size = vtkTextureObject.GetMaximumTextureSize3D(render_window)
    if size <= 0:
        render_window.Render()  # the context exists only after a first frame
        size = vtkTextureObject.GetMaximumTextureSize3D(render_window)
    return int(size) if size > 0 else FALLBACK_TEXTURE_3D


def vtk_scalar_array(array_zyx: np.ndarray) -> np.ndarray:
    """The array as VTK textures take it: C-contiguous, no 64-bit or bool types (a copy only then)."""
    kind = array_zyx.dtype
    target = kind
    if kind == np.bool_:
        target = np.dtype(np.uint8)
    elif kind in (np.float64, np.int64, np.uint64):
        target = np.dtype(np.float32)
    if target == kind and array_zyx.flags.c_contiguous:
        return array_zyx
    check_fits(array_zyx.size * target.itemsize, "the 3D view's copy of the image")
    return np.ascontiguousarray(array_zyx, dtype=target)


def image_data(array_zyx: np.ndarray, spacing=(1.0, 1.0, 1.0)):
    """A (z, y, x) array as vtkImageData on the grid frame; shares the array's memory when it can
    (the VTK array keeps a reference to it)."""
    setup()
    from vtkmodules.util.numpy_support import numpy_to_vtk
    from vtkmodules.vtkCommonDataModel import vtkImageData
    array = vtk_scalar_array(array_zyx)
    nz, ny, nx = array.shape[:3]
    image = vtkImageData()
    image.SetDimensions(nx, ny, nz)
    image.SetSpacing(*(float(s) for s in spacing))
    image.SetOrigin(0.0, 0.0, 0.0)
    scalars = numpy_to_vtk(array.reshape(-1), deep=False)
    scalars.SetName("scalars")
    image.GetPointData().SetScalars(scalars)
    return image


def grid_to_world_array(volume: Volume) -> np.ndarray:
    """4x4 [direction | origin]: grid-frame mm (index * spacing) -> LPS world mm."""
    m = np.eye(4)
    m[:3, :3] = volume.direction
    m[:3, 3] = volume.origin
    return m


def grid_to_world(volume: Volume):
    """The same as a vtkMatrix4x4, for SetUserMatrix of every prop."""
    setup()
    from vtkmodules.vtkCommonMath import vtkMatrix4x4
    matrix = vtkMatrix4x4()
    for r, row in enumerate(grid_to_world_array(volume)):
        for c, value in enumerate(row):
            matrix.SetElement(r, c, float(value))
    return matrix


def capture(render_window) -> np.ndarray:
    """The render window's back buffer as (h, w, 3) uint8, top row first."""
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkRenderingCore import vtkWindowToImageFilter
    grab = vtkWindowToImageFilter()
    grab.SetInput(render_window)
    grab.SetInputBufferTypeToRGB()
    grab.ReadFrontBufferOff()
    grab.ShouldRerenderOff()
    grab.Update()
    out = grab.GetOutput()
    w, h, _ = out.GetDimensions()
    pixels = vtk_to_numpy(out.GetPointData().GetScalars()).reshape(h, w, -1)[:, :, :3]
    return np.ascontiguousarray(pixels[::-1])
