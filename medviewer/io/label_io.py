"""Label maps as NIfTI / NRRD / Slicer .seg.nrrd files, with ITK-SNAP and Slicer colour tables.

A label file is a uint8 image with exactly the image's geometry. Beside it go
``<stem>.label.txt`` (ITK-SNAP label description) and ``<stem>.ctbl`` (Slicer colour table);
a ``.seg.nrrd`` also carries Slicer's ``Segment{N}_*`` keys. Everything is written to
temporary files in the target folder first and renamed into place only when all succeeded.
"""
from __future__ import annotations

import os
import re

import numpy as np
import SimpleITK as sitk

from medviewer.core.errors import ImageReadError, ImageWriteError, MedViewerError
from medviewer.core.labels import LabelMap, LabelTable
from medviewer.core.volume import Volume
from medviewer.core.tempfiles import discard, temp_beside
from medviewer.io.messages import os_reason, plain_reason
from medviewer.io.sitk_image import check_complete, extension_of
from medviewer.io.writer import check_target, publish, to_sitk

LABEL_EXTENSIONS = (".nii", ".nii.gz", ".nrrd", ".seg.nrrd")
SPACING_RTOL = 1e-4  # relative
ORIGIN_TOL = 0.01  # in voxels of the image
DIRECTION_TOL = 1e-4
_ITKSNAP_ROW = re.compile(r'^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([-+\d.eE]+)\s+(\d+)\s+(\d+)\s+"(.*)"\s*$')


class LabelGeometryMismatch(MedViewerError):
    """The label file's grid differs from the image's; `differences` lists what differs."""

    def __init__(self, path: str, differences: list[str]):
        self.path = str(path)
        self.differences = differences
        super().__init__(f"{path}: the labels do not fit the image grid ({'; '.join(differences)})")


def label_extension(path: str) -> str:
    name = os.path.basename(str(path)).lower()
    return ".seg.nrrd" if name.endswith(".seg.nrrd") else extension_of(name)


def companion_paths(path: str) -> tuple[str, str]:
    """(ITK-SNAP .label.txt, Slicer .ctbl) written beside a label file."""
    path = str(path)
    stem = path[: len(path) - len(label_extension(path))]
    return stem + ".label.txt", stem + ".ctbl"


# --- writing -----------------------------------------------------------------------------
def itksnap_text(table: LabelTable) -> str:
    lines = ["################################################", "# ITK-SnAP Label Description File",
             "# File format: ", "# IDX   -R-  -G-  -B-  -A--  VIS MSH  LABEL",
             "################################################",
             '    0     0    0    0        0  0  0    "Clear Label"']
    for lab in table:
        r, g, b = lab.colour
        name = lab.name.replace('"', "'")
        lines.append(f'{lab.value:5d} {r:5d} {g:4d} {b:4d} {lab.opacity:8.3g} {int(lab.visible):2d}  1    "{name}"')
    return "\n".join(lines) + "\n"


def slicer_ctbl_text(table: LabelTable) -> str:
    lines = ["# Color table file written by MedViewer", f"# {len(table) + 1} values", "0 Background 0 0 0 0"]
    for lab in table:
        name = "_".join(lab.name.split()) or f"Label_{lab.value}"  # Slicer names hold no spaces
        lines.append(f"{lab.value} {name} {lab.colour[0]} {lab.colour[1]} {lab.colour[2]} "
                     f"{int(round(255 * min(max(lab.opacity, 0.0), 1.0)))}")
    return "\n".join(lines) + "\n"


def _slicer_keys(image: sitk.Image, table: LabelTable, present: list[int]) -> None:
    for n, value in enumerate(v for v in (lab.value for lab in table) if v in present):
        lab = table.get(value)
        image.SetMetaData(f"Segment{n}_ID", f"Segment_{value}")
        image.SetMetaData(f"Segment{n}_Name", lab.name)
        image.SetMetaData(f"Segment{n}_Color", " ".join(f"{c / 255:.6g}" for c in lab.colour))
        image.SetMetaData(f"Segment{n}_LabelValue", str(value))
        image.SetMetaData(f"Segment{n}_Layer", "0")
    image.SetMetaData("Segmentation_MasterRepresentation", "Binary labelmap")
    image.SetMetaData("Segmentation_ContainedRepresentationNames", "Binary labelmap|")


def save_labels(labelmap: LabelMap, image: Volume, path: str) -> list[str]:
    """Write the label file and its colour tables atomically; returns the paths written.
    On success the label map is marked as saved (modified = False); on failure it is untouched."""
    path = str(path)
    ext = label_extension(path)
    if ext not in LABEL_EXTENSIONS:
        raise ImageWriteError(f"{path}: labels are saved as {', '.join(LABEL_EXTENSIONS)}, not '{ext or 'no extension'}'")
    if labelmap.data.shape != image.shape:
        raise ImageWriteError(f"{path}: the label map {labelmap.data.shape} does not match the image {image.shape}")
    check_target(path)
    label_image = to_sitk(image.copy_geometry(labelmap.data.astype(np.uint8, copy=False)))
    if ext == ".seg.nrrd":
        _slicer_keys(label_image, labelmap.table, labelmap.values_present())
    itksnap, ctbl = companion_paths(path)
    staged: list[tuple[str, str]] = []
    try:
        tmp = _temp_beside(path, ext if ext != ".seg.nrrd" else ".nrrd", staged)
        sitk.WriteImage(label_image, tmp, useCompression=ext != ".nii")
        for text, final in ((itksnap_text(labelmap.table), itksnap), (slicer_ctbl_text(labelmap.table), ctbl)):
            with open(_temp_beside(final, "", staged), "w", encoding="utf-8") as fp:
                fp.write(text)
        for tmp, final in staged:
            publish(tmp, final)
    except (RuntimeError, OSError) as exc:
        for tmp, _ in staged:
            discard(tmp)
        reason = os_reason(exc) if isinstance(exc, OSError) else plain_reason(exc, writing=True)
        raise ImageWriteError(f"{path}: cannot save labels: {reason}") from exc
    labelmap.modified = False
    return [final for _, final in staged]


def _temp_beside(final: str, suffix: str, staged: list) -> str:
    tmp = temp_beside(final, suffix)
    staged.append((tmp, final))
    return tmp


# --- reading -----------------------------------------------------------------------------
def read_table(path: str) -> LabelTable:
    """Names and colours from <stem>.label.txt, else <stem>.ctbl, else .seg.nrrd keys (may be empty)."""
    itksnap, ctbl = companion_paths(path)
    table = LabelTable()
    if os.path.isfile(itksnap):
        for line in _lines(itksnap):
            m = _ITKSNAP_ROW.match(line)
            if m and 1 <= int(m[1]) <= 255:
                table.add(m[8], int(m[1]), (int(m[2]), int(m[3]), int(m[4])), opacity=float(m[5]),
                          visible=m[6] != "0")
    elif os.path.isfile(ctbl):
        for line in _lines(ctbl):
            parts = line.split()
            if len(parts) >= 5 and parts[0].isdigit() and 1 <= int(parts[0]) <= 255:
                alpha = int(parts[5]) / 255 if len(parts) > 5 and parts[5].isdigit() else 0.5
                table.add(parts[1].replace("_", " "), int(parts[0]),
                          tuple(int(float(c)) for c in parts[2:5]), opacity=alpha or 0.5)
    return table


def _lines(path: str) -> list[str]:
    with open(path, encoding="utf-8", errors="replace") as fp:
        return [ln.strip() for ln in fp if ln.strip() and not ln.lstrip().startswith("#")]


def _slicer_table(image: sitk.Image, table: LabelTable) -> None:
    n = 0
    while image.HasMetaDataKey(f"Segment{n}_Name"):
        try:
            value = int(image.GetMetaData(f"Segment{n}_LabelValue")) if image.HasMetaDataKey(f"Segment{n}_LabelValue") else n + 1
            colour = tuple(int(round(255 * float(c))) for c in image.GetMetaData(f"Segment{n}_Color").split()[:3])
        except (ValueError, RuntimeError):
            value, colour = n + 1, None
        if 1 <= value <= 255 and value not in table.labels:
            table.add(image.GetMetaData(f"Segment{n}_Name"), value, colour if colour and len(colour) == 3 else None)
        n += 1


def _check_values(data: np.ndarray, where: str) -> np.ndarray:
    if data.dtype.kind == "f":
        finite = np.isfinite(data)
        bad = data[~finite | (data != np.round(np.where(finite, data, 0)))]
        if bad.size:
            raise ImageReadError(where, f"holds non-integer values (e.g. {bad.flat[0]:g}); not a label image")
    if data.size and (data.min() < 0 or data.max() > 255):
        raise ImageReadError(where, f"holds values from {data.min():g} to {data.max():g}; labels must be 0 to 255")
    return data.astype(np.uint8)


def _read_label_image(path: str) -> tuple[sitk.Image, np.ndarray]:
    path = str(path)
    if os.path.isdir(path):
        raise ImageReadError(path, "this is a folder, not a label file")
    if not os.path.isfile(path):
        raise ImageReadError(path, "no such file")
    if os.path.getsize(path) == 0:
        raise ImageReadError(path, "the file is empty")
    try:
        image = sitk.ReadImage(path)
    except RuntimeError as exc:
        raise ImageReadError(path, f"not a readable label image: {plain_reason(exc)}") from exc
    check_complete(path, image)
    if image.GetNumberOfComponentsPerPixel() != 1 or image.GetDimension() not in (2, 3):
        raise ImageReadError(path, f"a label image has one value per voxel in 2D or 3D, this one has "
                                   f"{image.GetNumberOfComponentsPerPixel()} in {image.GetDimension()}D")
    return image, _check_values(sitk.GetArrayFromImage(image), path)


def geometry_differences(label: sitk.Image, image: Volume) -> list[str]:
    """What differs between a label image's grid and IMAGE's (empty when they match)."""
    n = label.GetDimension()
    size, spacing, origin, direction = np.ones(3), np.asarray(image.spacing), np.asarray(image.origin), np.eye(3)
    size[:n], spacing[:n], origin[:n] = label.GetSize(), label.GetSpacing(), label.GetOrigin()
    direction[:n, :n] = np.reshape(label.GetDirection(), (n, n))
    if n == 2:
        direction[:, 2] = image.direction[:, 2]
    dims = 2 if (n == 2 or image.is_2d) else 3
    ref_size, ref_spacing = np.asarray(image.size, float), np.asarray(image.spacing)
    ref_origin, ref_direction = np.asarray(image.origin), image.direction
    fmt = lambda v: " x ".join(f"{x:.6g}" for x in v[:dims])  # noqa: E731
    out = []
    if not np.array_equal(size, ref_size):
        out.append(f"size {' x '.join(f'{x:g}' for x in size)} vs {' x '.join(f'{x:g}' for x in ref_size)}")
    if not np.allclose(spacing[:dims], ref_spacing[:dims], rtol=SPACING_RTOL, atol=0):
        out.append(f"spacing {fmt(spacing)} vs {fmt(ref_spacing)} mm")
    if np.max(np.abs(origin[:dims] - ref_origin[:dims])) > ORIGIN_TOL * min(ref_spacing[:dims]):
        out.append(f"origin ({fmt(origin).replace(' x', ',')}) vs ({fmt(ref_origin).replace(' x', ',')}) mm")
    if not np.allclose(direction[:dims, :dims], ref_direction[:dims, :dims], atol=DIRECTION_TOL):
        show = lambda d: " ".join(f"{v:.4g}" for v in d[:dims, :dims].ravel())  # noqa: E731
        out.append(f"direction [{show(direction)}] vs [{show(ref_direction)}]")
    return out


def _labelmap(path: str | None, image: Volume, data: np.ndarray, label_image: sitk.Image) -> LabelMap:
    table = read_table(path) if path else LabelTable()
    if not len(table):
        _slicer_table(label_image, table)
    name = os.path.basename(path)[: -len(label_extension(path))] if path else ""
    return LabelMap(image.shape, name=name or "Labels", table=table, data=data)


def load_labels(path: str, image: Volume) -> LabelMap:
    """The labels in PATH on IMAGE's grid; LabelGeometryMismatch when the grids differ."""
    path = str(path)
    label_image, data = _read_label_image(path)
    differences = geometry_differences(label_image, image)
    if differences:
        raise LabelGeometryMismatch(path, differences)
    return _labelmap(path, image, data.reshape(image.shape), label_image)


def resample_labels_to(path_or_sitk: str | sitk.Image, image: Volume) -> LabelMap:
    """Labels of another grid resampled onto IMAGE's (nearest neighbour; outside is background)."""
    if isinstance(path_or_sitk, sitk.Image):
        path, source = None, path_or_sitk
        if source.GetNumberOfComponentsPerPixel() != 1 or source.GetDimension() not in (2, 3):
            raise MedViewerError("a label image has one value per voxel in 2D or 3D")
        data = _check_values(sitk.GetArrayFromImage(source), "label image")
    else:
        path = str(path_or_sitk)
        source, data = _read_label_image(path)
    labels = sitk.GetImageFromArray(data)
    labels.CopyInformation(source)
    if labels.GetDimension() == 2:
        labels = sitk.JoinSeries(labels)
    reference = sitk.Image([int(v) for v in image.size], sitk.sitkUInt8)
    reference.SetSpacing(image.spacing)
    reference.SetOrigin(image.origin)
    reference.SetDirection(tuple(float(v) for v in image.direction.ravel()))
    out = sitk.Resample(labels, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return _labelmap(path, image, sitk.GetArrayFromImage(out), source)


def read_any_labels(path: str, source, volume: Volume, resample: bool = False) -> LabelMap:
    """The one label reader (GUI and CLI): the labels in PATH as a LabelMap on VOLUME's grid.

    PATH may be a label image (.nii, .nii.gz, .nrrd, .seg.nrrd), a DICOM SEG or an RT Structure
    Set; SOURCE is the ImageSource VOLUME was loaded from (a DICOM SEG or RTSTRUCT is placed
    through the series' instance UIDs and geometry; any other source, or None, uses VOLUME alone).
    A label image of another grid raises LabelGeometryMismatch unless RESAMPLE (nearest neighbour).
    Raises ImageReadError / MedViewerError (SegReferenceMismatch, RTStructReferenceMismatch) with
    a message naming PATH."""
    from medviewer.io.label_links import label_kind_of_file

    path = str(path)
    dicom_source = source if getattr(source, "kind", "") == "dicom" else None
    kind = label_kind_of_file(path) if os.path.isfile(path) else None
    if kind == "SEG":
        from medviewer.io.dicom_seg import read_seg

        return read_seg(path, dicom_source or volume)
    if kind == "RTSTRUCT":
        from medviewer.io.rtstruct import import_rtstruct

        return import_rtstruct(path, dicom_source, volume)
    try:
        return load_labels(path, volume)
    except LabelGeometryMismatch:
        if not resample:
            raise
        return resample_labels_to(path, volume)

