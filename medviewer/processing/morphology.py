"""Grey-level morphology: erode, dilate, open, close (SimpleITK ``GrayscaleErode``,
``GrayscaleDilate``, ``GrayscaleMorphologicalOpening``, ``GrayscaleMorphologicalClosing``) with a
ball, box or cross of a radius in voxels. The result keeps the input's voxel type and grid.
"""
from __future__ import annotations

import SimpleITK as sitk

from medviewer.processing.operations import Operation, Param, filtered, register

KERNELS = {"ball": sitk.sitkBall, "box": sitk.sitkBox, "cross": sitk.sitkCross}
FILTERS = {
    "erode": ("Grey erosion", sitk.GrayscaleErodeImageFilter),
    "dilate": ("Grey dilation", sitk.GrayscaleDilateImageFilter),
    "open": ("Grey opening", sitk.GrayscaleMorphologicalOpeningImageFilter),
    "close": ("Grey closing", sitk.GrayscaleMorphologicalClosingImageFilter),
}
PARAMS = (Param("radius", "int", 1, 1, 20, unit="voxels"),
          Param("kernel", "choice", "ball", choices=tuple(KERNELS)))


def morphology_filter(name: str, radius: int, kernel: str):
    f = FILTERS[name][1]()
    f.SetKernelRadius(radius)
    f.SetKernelType(KERNELS[kernel])
    return f


def _runner(name: str):
    def run(volume, p, steps):
        return filtered(volume, steps, morphology_filter(name, p["radius"], p["kernel"]),
                        f"{FILTERS[name][0].lower()}, {p['kernel']} radius {p['radius']}", dtype=None)
    return run


for _name, (_title, _) in FILTERS.items():
    register(Operation(_name, _title, "Morphology", PARAMS, "image",
                       f"{_title.lower()} (SimpleITK {FILTERS[_name][1].__name__.removesuffix('ImageFilter')})",
                       run=_runner(_name), bytes_per_voxel=12))
