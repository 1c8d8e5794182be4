"""DICOM Segmentation (SEG) objects: label maps out (highdicom) and back onto a series' grid.

Writing: one BINARY segment per label value present, named and coloured from the label
table, referencing every source instance. A SEG must name the study, series and instances
it segments. When a source has its SOP Instance UIDs (the file meta keeps them) and frame of
reference but blank Study/Series Instance UIDs (as the anonymised demo CT), the SEG still
references every instance by its real SOP Instance UID and carries Study/Series UIDs derived
deterministically from those instance UIDs (the same on every export), with a warning: a viewer
matching instances finds them, while the study/series UIDs exist only in the SEG. A source with
no instance UIDs or no frame of reference is refused. Label values survive the round trip through each segment's Segment
Description ("label value N"); DICOM requires segment numbers 1..N without gaps.

Reading: each frame lands on the slice its Plane Position names (or, lacking one, the slice
of the instance it was derived from); a SEG of another frame of reference or series is refused.
"""
from __future__ import annotations

import copy
import re

import numpy as np
import pydicom
from pydicom.sr.codedict import codes
from pydicom.uid import UID, generate_uid

from medviewer import __version__
from medviewer.io.messages import os_reason
from medviewer.io.writer import check_target, write_path_atomically
from medviewer.core.errors import ImageReadError, ImageWriteError, MedViewerError
from medviewer.core.labels import LabelMap, LabelTable
from medviewer.core.volume import Volume

SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
SEG_CLASSES = (SEG_STORAGE, "1.2.840.10008.5.1.4.1.1.66.7")  # Segmentation, Label Map Segmentation
_VALUE_NOTE = re.compile(r"label value (\d+)")
POSITION_TOL = 0.05  # voxels
# Type 2 patient/study attributes highdicom copies into the SEG: absent ones are added empty ("unknown")
_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID",
          "StudyDate", "StudyTime", "ReferringPhysicianName")


class SegReferenceMismatch(MedViewerError):
    """The SEG segments another frame of reference, series or grid than the open image."""


_ABNORMAL = ("neoplasm", "tumor", "tumour", "lesion", "mass", "nodule", "cyst", "edema", "oedema",
             "necrosis", "hemorrhage", "haemorrhage", "metastasis")
_TISSUES = {"fat": "Fat", "muscle": "Muscle", "bone": "Bone", "skin": "Skin"}
_ORGANS = ("Liver", "Lung", "Kidney", "Spleen", "Heart", "Hippocampus", "Brain", "Aorta", "Bladder", "Pancreas",
           "Prostate", "Vertebra", "Rib", "Trachea", "Esophagus", "Stomach", "Gallbladder", "Thyroid", "Colon",
           "Skull", "Artery", "Vein")


def property_codes(name: str):
    """(category, type) SNOMED codes for a label name; 'Tissue'/'Tissue' when nothing fits."""
    words = re.findall(r"[a-z]+", name.lower())  # in order: the first word that fits decides
    for word in words:
        if word in _ABNORMAL or word.rstrip("s") in _ABNORMAL:
            return codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Neoplasm if "tum" in word or "neo" in word \
                else codes.SCT.Lesion
        if word.rstrip("s") in _TISSUES:
            return codes.SCT.Tissue, getattr(codes.SCT, _TISSUES[word.rstrip("s")])
    for organ in _ORGANS:
        if organ.lower() in words or organ.lower() + "s" in words:
            return codes.SCT.AnatomicalStructure, getattr(codes.SCT, organ)
    return codes.SCT.Tissue, codes.SCT.Tissue


def _source_headers(series) -> list[pydicom.Dataset]:
    """The source headers in volume order, with SOP UIDs from the file meta where the dataset's are blank."""
    first = series.frames[0].path
    if series.grid_positions is not None:
        raise ImageWriteError(f"{first}: the series has uneven slice spacing, so its labels lie on a resampled "
                              "grid no source image matches; save them as NIfTI or NRRD instead")
    if any(f.frame is not None for f in series.frames):
        raise ImageWriteError(f"{first}: DICOM SEG export supports series of single-frame images only; "
                              "save the labels as NIfTI or NRRD instead")
    headers, instance_uids = [], []
    for f in series.frames:
        ds = f.full_header()
        meta = getattr(ds, "file_meta", None) or {}
        sop_class = str(ds.get("SOPClassUID", "") or "") or str(meta.get("MediaStorageSOPClassUID", ""))
        sop_uid = str(ds.get("SOPInstanceUID", "") or "") or str(meta.get("MediaStorageSOPInstanceUID", ""))
        missing = [k for k, v in (("SOPClassUID", sop_class), ("SOPInstanceUID", sop_uid),
                                  ("FrameOfReferenceUID", str(ds.get("FrameOfReferenceUID", "") or "").strip()))
                   if not v]
        if missing:
            raise ImageWriteError(f"{f.path}: the source DICOM has no {' or '.join(missing)} (blanked, e.g. by "
                                  "anonymisation); a DICOM SEG must reference them, so save the labels as NIfTI "
                                  "or NRRD instead")
        instance_uids.append(sop_uid)
        absent = [k for k in _TYPE2 if k not in ds]
        ds = copy.deepcopy(ds)  # never change the loaded header itself
        ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop_uid
        for keyword in absent:
            setattr(ds, keyword, "")
        headers.append(ds)
    derived = derived_uids(instance_uids)
    for ds in headers:
        for keyword, uid in derived.items():
            if not str(ds.get(keyword, "") or "").strip():
                setattr(ds, keyword, uid)
    return headers


def derived_uids(instance_uids: list[str]) -> dict[str, str]:
    """Study and Series Instance UIDs for a source series that has none, derived from its
    instances' SOP Instance UIDs: the same series always gets the same UIDs."""
    from pydicom.uid import generate_uid

    key = sorted(instance_uids)
    return {"StudyInstanceUID": generate_uid(entropy_srcs=["medviewer-study"] + key),
            "SeriesInstanceUID": generate_uid(entropy_srcs=["medviewer-series"] + key)}


def blank_uid_warning(series) -> str | None:
    """The warning to show when write_seg had to derive Study/Series UIDs for this series."""
    header = series.frames[0].full_header()
    blank = [k for k in ("StudyInstanceUID", "SeriesInstanceUID") if not str(header.get(k, "") or "").strip()]
    if not blank:
        return None
    return (f"the source series has no {' or '.join(blank)}: the SEG references its instances by their "
            "SOP Instance UIDs and carries study/series UIDs derived from them")


def write_seg(labelmap: LabelMap, image: Volume, source_series, path: str) -> str:
    """Write a binary DICOM SEG of every label present in LABELMAP; returns the path."""
    import highdicom as hd

    path = str(path)
    check_target(path)
    if labelmap.data.shape != image.shape or image.shape[0] != len(source_series.frames):
        raise ImageWriteError(f"{path}: the labels {labelmap.data.shape} do not match the source series "
                              f"({len(source_series.frames)} slices of {image.shape[1]}x{image.shape[2]})")
    headers = _source_headers(source_series)
    present = labelmap.values_present()
    if not present:
        raise ImageWriteError(f"{path}: the label map is empty; a DICOM SEG needs at least one labelled voxel")
    lut = np.zeros(256, np.uint8)
    descriptions = []
    for number, value in enumerate(present, 1):
        lut[value] = number
        label = labelmap.table.get(value)
        name = (label.name if label else f"Label {value}")[:64] or f"Label {value}"
        category, kind = property_codes(name)
        colour = hd.color.CIELabColor.from_rgb(*label.colour) if label else None
        desc = hd.seg.SegmentDescription(number, name, category, kind, "MANUAL", display_color=colour)
        desc.SegmentDescription = f"label value {value}"
        descriptions.append(desc)
    series_number = 1000 + int(headers[0].get("SeriesNumber") or 0)
    try:
        seg = hd.seg.Segmentation(
            source_images=headers, pixel_array=lut[labelmap.data], segmentation_type="BINARY",
            segment_descriptions=descriptions, series_instance_uid=generate_uid(), series_number=series_number,
            sop_instance_uid=generate_uid(), instance_number=1, manufacturer="MedViewer",
            manufacturer_model_name="MedViewer", software_versions=__version__, device_serial_number="0",
            content_label="LABELS", content_description=(labelmap.name or "Labels")[:64],
            series_description=f"Labels {labelmap.name}"[:64], omit_empty_frames=True)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ImageWriteError(f"{path}: cannot build the DICOM SEG: {' '.join(str(exc).split())[:200]}") from exc
    try:
        write_path_atomically(path, seg.save_as, suffix=".dcm")
    except OSError as exc:
        raise ImageWriteError(f"{path}: cannot write: {os_reason(exc)}") from exc
    return path


# --- reading -------------------------------------------------------------------------------
def _reference_ids(reference) -> tuple[str, str, dict[str, int]]:
    """(frame of reference UID, series UID, SOP Instance UID -> slice) of a series or volume."""
    frames = getattr(reference, "frames", None)
    if frames is None:
        meta = getattr(reference, "metadata", {}) or {}
        return str(meta.get("FrameOfReferenceUID", "")), str(meta.get("SeriesInstanceUID", "")), {}
    header = frames[0].full_header()
    by_uid = {}
    if getattr(reference, "grid_positions", None) is None:
        for k, f in enumerate(frames):
            uid = f.sop_uid
            if uid:
                by_uid[uid] = k
    return str(header.get("FrameOfReferenceUID", "") or ""), frames[0].series_uid, by_uid


def _item(ds, sequence: str):
    seq = ds.get(sequence) if ds is not None else None
    return seq[0] if seq else None


def _frame_attr(shared, per_frame, sequence: str, keyword: str):
    for group in (per_frame, shared):
        item = _item(group, sequence)
        if item is not None and keyword in item:
            return item.get(keyword)
    return None


def read_seg(path: str, reference) -> LabelMap:
    """The segments of a DICOM SEG as a LabelMap on REFERENCE's grid (a DicomSeries or a Volume)."""
    path = str(path)
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:  # pydicom raises many kinds for damaged files
        raise ImageReadError(path, f"cannot read DICOM: {' '.join(str(exc).split())[:200]}") from exc
    if str(ds.get("SOPClassUID", "")) not in SEG_CLASSES:
        name = UID(str(ds.get("SOPClassUID", ""))).name if ds.get("SOPClassUID") else "no SOP class"
        raise ImageReadError(path, f"not a DICOM SEG ({name})")
    for_uid, series_uid, by_uid = _reference_ids(reference)
    seg_for = str(ds.get("FrameOfReferenceUID", "") or "")
    if for_uid and seg_for and seg_for != for_uid:
        raise SegReferenceMismatch(f"{path}: the SEG belongs to frame of reference {seg_for}, the open series "
                                   f"to {for_uid}: it segments another scan")
    referenced = {str(item.get("SeriesInstanceUID", "")) for item in ds.get("ReferencedSeriesSequence", [])}
    if series_uid and referenced and series_uid not in referenced:
        raise SegReferenceMismatch(f"{path}: the SEG references series {', '.join(sorted(referenced))}, "
                                   f"not the open series {series_uid}")
    values, table = _segment_table(ds)
    nx, ny, nz = (int(v) for v in reference.size)
    if (int(ds.Rows), int(ds.Columns)) != (ny, nx):
        raise SegReferenceMismatch(f"{path}: SEG frames are {ds.Columns}x{ds.Rows}, the image slices {nx}x{ny}")
    geometry = Volume(np.zeros((1, 1, 1), np.uint8), spacing=reference.spacing, origin=reference.origin,
                      direction=reference.direction)
    spacing = _frame_attr(shared := _item(ds, "SharedFunctionalGroupsSequence"),
                          _item(ds, "PerFrameFunctionalGroupsSequence"), "PixelMeasuresSequence", "PixelSpacing")
    if spacing is not None and not np.allclose([float(v) for v in spacing], reference.spacing[1::-1], rtol=1e-3):
        raise SegReferenceMismatch(f"{path}: SEG pixel spacing {[float(v) for v in spacing]} mm differs from the "
                                   f"image's {list(reference.spacing[1::-1])} mm")
    pixels = ds.pixel_array
    pixels = pixels[np.newaxis] if pixels.ndim == 2 else pixels
    kind = str(ds.get("SegmentationType", "BINARY"))
    threshold = 0.5 * float(ds.get("MaximumFractionalValue", 1)) if kind == "FRACTIONAL" else 0
    per_frames = ds.get("PerFrameFunctionalGroupsSequence") or [None] * len(pixels)
    data = np.zeros((nz, ny, nx), np.uint8)
    for n, (frame, pf) in enumerate(zip(pixels, per_frames)):
        k = _slice_of(path, n, shared, pf, geometry, nz, by_uid)
        number = int(_frame_attr(shared, pf, "SegmentIdentificationSequence", "ReferencedSegmentNumber") or 1)
        if max(number, int(frame.max()) if kind == "LABELMAP" else 0) >= len(values):
            raise ImageReadError(path, f"SEG frame {n + 1} refers to a segment the SEG does not describe")
        if kind == "LABELMAP":
            data[k][frame > 0] = values[frame[frame > 0]]
        else:
            data[k][frame > threshold] = values[number]
    name = str(ds.get("ContentDescription", "") or ds.get("SeriesDescription", "") or "") or "Segmentation"
    return LabelMap((nz, ny, nx), name=name, table=table, data=data)


def _segment_table(ds) -> tuple[np.ndarray, LabelTable]:
    import highdicom as hd

    segments = [s for s in ds.get("SegmentSequence", []) if int(s.SegmentNumber) > 0]  # 0: a label map's background
    numbers = [int(s.SegmentNumber) for s in segments]
    if not segments:
        raise ImageReadError(str(ds.filename), "the SEG describes no segments")
    noted = [_VALUE_NOTE.search(str(s.get("SegmentDescription", "") or "")) for s in segments]
    wanted = [int(m[1]) if m else n for m, n in zip(noted, numbers)]
    if len(set(wanted)) != len(wanted) or not all(1 <= v <= 255 for v in wanted):
        wanted = numbers
    if not all(1 <= v <= 255 for v in wanted):
        raise ImageReadError(str(ds.filename), f"the SEG has {len(segments)} segments; at most 255 fit a label map")
    values = np.zeros(max(numbers) + 1, np.uint8)
    table = LabelTable()
    for segment, number, value in zip(segments, numbers, wanted):
        values[number] = value
        lab = segment.get("RecommendedDisplayCIELabValue")
        colour = hd.color.CIELabColor.from_dicom_value([int(v) for v in lab]).to_rgb() if lab else None
        table.add(str(segment.get("SegmentLabel", "") or "") or None, value, colour)
    return values, table


def _slice_of(path: str, n: int, shared, per_frame, geometry: Volume, nz: int, by_uid: dict) -> int:
    position = _frame_attr(shared, per_frame, "PlanePositionSequence", "ImagePositionPatient")
    orientation = _frame_attr(shared, per_frame, "PlaneOrientationSequence", "ImageOrientationPatient")
    if orientation is not None and not np.allclose(np.asarray(orientation, float),
                                                   geometry.direction[:, :2].T.ravel(), atol=1e-3):
        raise SegReferenceMismatch(f"{path}: SEG frame {n + 1} is oriented {list(orientation)}, unlike the image slices")
    if position is not None:
        i, j, k = geometry.world_to_index(np.asarray(position, float))
        if abs(i) > POSITION_TOL or abs(j) > POSITION_TOL or abs(k - round(k)) > POSITION_TOL or not 0 <= round(k) < nz:
            raise SegReferenceMismatch(f"{path}: SEG frame {n + 1} at {[round(float(v), 2) for v in position]} mm "
                                       "lies off the image grid")
        return int(round(k))
    source = _item(_item(per_frame, "DerivationImageSequence"), "SourceImageSequence")
    uid = str(source.get("ReferencedSOPInstanceUID", "")) if source is not None else ""
    if uid in by_uid:
        return by_uid[uid]
    raise SegReferenceMismatch(f"{path}: SEG frame {n + 1} has no plane position and no source image in the open series")
