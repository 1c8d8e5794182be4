"""DICOM label objects (SEG, RTSTRUCT) met while scanning a folder, linked to the series they label.

A SEG or an RT Structure Set is not an image: discovery does not make it a source, it records
it as a ``LabelObject`` (what it references, read from its header) and then attaches its path
to ``ImageSource.linked_labels`` of the series it references, matched in this order:

1. SOP Instance UIDs: a SEG's ReferencedSeriesSequence > ReferencedInstanceSequence and per-frame
   DerivationImageSequence > SourceImageSequence; an RTSTRUCT's ContourImageSequence items (under
   RTReferencedSeriesSequence and under each contour). A series' instance UIDs come from its
   headers or, where those are blank (the anonymised demo CT), from the file meta.
2. Series Instance UID: a SEG's ReferencedSeriesSequence, an RTSTRUCT's ReferencedFrameOfReference
   > RTReferencedStudy > RTReferencedSeries. A series with a blank Series Instance UID is matched by
   the UID ``dicom_seg.write_seg`` derives for it from its instance UIDs.
3. Only when the object names no series and no instance: its frame of reference (an RTSTRUCT
   written with just a Frame of Reference UID); where several series share it, the one(s) with
   the most slices (the planning CT rather than its localizer).

An object whose series is not among the sources becomes one Problem line; it never stops the
images from loading. The label pixels are read only when the series is opened
(``label_io.read_any_labels``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from medviewer.io.sources import ImageSource, Problem

SEG_CLASSES = ("1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7")  # Segmentation, Label Map Seg.
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
KIND_NAMES = {"SEG": "a DICOM SEG", "RTSTRUCT": "an RT Structure Set"}
OPEN_HINT = "open it with Labels > Open labels… after its image"


@dataclass
class LabelObject:
    """What a SEG or RTSTRUCT file references (read from its header, no pixels)."""

    path: str
    kind: str  # "SEG" or "RTSTRUCT"
    series_uids: set[str] = field(default_factory=set)
    instance_uids: set[str] = field(default_factory=set)
    frame_of_reference: str = ""


def _text(ds: Dataset | None, keyword: str) -> str:
    value = ds.get(keyword, "") if ds is not None else ""
    return "" if value is None else str(value).strip()


def sop_class_of(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    return _text(ds, "SOPClassUID") or (_text(meta, "MediaStorageSOPClassUID") if meta is not None else "")


def label_kind(ds: Dataset) -> str | None:
    """'SEG' or 'RTSTRUCT' for a DICOM label object, None for anything else."""
    sop = sop_class_of(ds)
    if sop in SEG_CLASSES:
        return "SEG"
    if sop == RTSTRUCT_STORAGE or (not sop and _text(ds, "Modality") == "RTSTRUCT"):
        return "RTSTRUCT"
    if not sop and _text(ds, "Modality") == "SEG" and "SegmentSequence" in ds:
        return "SEG"
    return None


def label_kind_of_file(path: str) -> str | None:
    """'SEG' or 'RTSTRUCT' when PATH is a DICOM label object; None for anything else (NIfTI, a CT ...)."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True,
                             specific_tags=["SOPClassUID", "Modality", "SegmentSequence"])
    except Exception:  # not DICOM or unreadable: the caller's reader explains
        return None
    return label_kind(ds)


def _items(ds: Dataset | None, keyword: str) -> list[Dataset]:
    if ds is None:
        return []
    seq = ds.get(keyword)
    return list(seq) if seq else []


def _add(uids: set[str], ds: Dataset | None, keyword: str) -> None:
    uid = _text(ds, keyword)
    if uid:
        uids.add(uid)


def label_object(path: str, ds: Dataset) -> LabelObject:
    """The references of a SEG or RTSTRUCT header (label_kind(ds) must not be None)."""
    kind = label_kind(ds) or ""
    obj = LabelObject(path=path, kind=kind, frame_of_reference=_text(ds, "FrameOfReferenceUID"))
    if kind == "SEG":
        for series in _items(ds, "ReferencedSeriesSequence"):
            _add(obj.series_uids, series, "SeriesInstanceUID")
            for instance in _items(series, "ReferencedInstanceSequence"):
                _add(obj.instance_uids, instance, "ReferencedSOPInstanceUID")
        for frame in _items(ds, "PerFrameFunctionalGroupsSequence"):
            for derivation in _items(frame, "DerivationImageSequence"):
                for source in _items(derivation, "SourceImageSequence"):
                    _add(obj.instance_uids, source, "ReferencedSOPInstanceUID")
        return obj
    frames_of_reference = set()
    for ref in _items(ds, "ReferencedFrameOfReferenceSequence"):
        _add(frames_of_reference, ref, "FrameOfReferenceUID")
        for study in _items(ref, "RTReferencedStudySequence"):
            for series in _items(study, "RTReferencedSeriesSequence"):
                _add(obj.series_uids, series, "SeriesInstanceUID")
                for image in _items(series, "ContourImageSequence"):
                    _add(obj.instance_uids, image, "ReferencedSOPInstanceUID")
    for roi in _items(ds, "StructureSetROISequence"):
        _add(frames_of_reference, roi, "ReferencedFrameOfReferenceUID")
    for roi in _items(ds, "ROIContourSequence"):
        for contour in _items(roi, "ContourSequence"):
            for image in _items(contour, "ContourImageSequence"):
                _add(obj.instance_uids, image, "ReferencedSOPInstanceUID")
    if not obj.frame_of_reference and len(frames_of_reference) == 1:
        obj.frame_of_reference = next(iter(frames_of_reference))
    return obj


# --- what a series offers to match against ------------------------------------------------------
def _series_ids(source: ImageSource) -> tuple[set[str], set[str], str]:
    """(instance UIDs, series UIDs, frame of reference) of a DICOM source; empty for files."""
    frames = getattr(source, "frames", None)
    if not frames:
        return set(), set(), ""
    instances = set()
    for f in frames:
        meta = getattr(f.header, "file_meta", None)
        uid = _text(f.header, "SOPInstanceUID") or (_text(meta, "MediaStorageSOPInstanceUID") if meta else "")
        if uid:
            instances.add(uid)
    series = {frames[0].series_uid} if frames[0].series_uid else set()
    if not series and instances:
        from medviewer.io.dicom_seg import derived_uids

        series.add(derived_uids(sorted(instances))["SeriesInstanceUID"])
    return instances, series, _text(frames[0].header, "FrameOfReferenceUID")


def _targets(obj: LabelObject, offers: list[tuple[ImageSource, set[str], set[str], str]]) -> list[ImageSource]:
    if obj.instance_uids:
        overlap = [(len(obj.instance_uids & instances), s) for s, instances, _, _ in offers]
        best = max((n for n, _ in overlap), default=0)
        if best:
            return [s for n, s in overlap if n == best]
    if obj.series_uids:
        found = [s for s, _, series, _ in offers if series & obj.series_uids]
        if found:
            return found
    if obj.series_uids or obj.instance_uids or not obj.frame_of_reference:
        return []
    same_frame = [s for s, _, _, frame in offers if frame and frame == obj.frame_of_reference]
    most = max((int(s.size[2]) for s in same_frame), default=0)
    return [s for s in same_frame if int(s.size[2]) == most]


def _unlinked_reason(obj: LabelObject, named: bool) -> str:
    what = KIND_NAMES.get(obj.kind, f"a {obj.kind}")
    if obj.series_uids:
        target = f"series {', '.join(sorted(obj.series_uids))}"
    elif obj.instance_uids:
        n = len(obj.instance_uids)
        target = f"{n} image{'s' if n > 1 else ''} (by SOP Instance UID)"
    elif obj.frame_of_reference:
        target = f"frame of reference {obj.frame_of_reference}"
    else:
        return f"{what} that names no series, image or frame of reference: {OPEN_HINT}"
    if named:
        return f"{what} (labels for {target}), not an image: {OPEN_HINT}"
    return f"{what} for {target}, which is not in this folder: {OPEN_HINT}"


def link_labels(sources: list[ImageSource], objects: list[LabelObject], named: str | None = None) -> list[Problem]:
    """Attach each object's path to the linked_labels of the series it references; the objects
    that reference no series among SOURCES come back as problems (one line each). NAMED: the
    file the user named itself (not a folder), whose problem says it is labels, not an image."""
    if not objects:
        return []
    offers = [(s, *_series_ids(s)) for s in sources]
    problems = []
    for obj in objects:
        targets = _targets(obj, offers)
        for source in targets:
            if obj.path not in source.linked_labels:
                source.linked_labels.append(obj.path)
                source.linked_labels.sort()
        if not targets:
            problems.append(Problem(obj.path, _unlinked_reason(obj, obj.path == named)))
    return problems
