"""Find every loadable volume under a path: a file, a folder (recursively) or a DICOMDIR.

DICOM SEG and RT Structure Set files are not volumes: each is linked to the series it references
(ImageSource.linked_labels, see label_links) or, when that series is not there, reported as a problem."""
from __future__ import annotations

import os
from medviewer.core.errors import ImageReadError, MedViewerError
from medviewer.io.dicom_files import analyze_pair_exists, has_dicm_prefix
from medviewer.io.dicom_header import dicomdir_files, frames_from_header, is_dicomdir, read_header
from medviewer.io.dicom_series import group_frames
from medviewer.io.label_links import LabelObject, label_kind, label_object, link_labels
from medviewer.io.sitk_image import COMPANIONS, EXTENSIONS, extension_of, inspect_file
from medviewer.io.sources import Discovery, Problem

DICOM_EXTENSIONS = {".dcm", ".dicom", ".ima", ".dic"}
_NOT_IMAGES = {".json", ".txt", ".md", ".csv", ".bval", ".bvec", ".py", ".xml", ".html", ".pdf",
               ".zip", ".gz", ".tsv", ".log", ".yaml", ".yml", ".ini", ".sh", ".lut", ".ctbl"}


def _walk(root: str) -> list[str]:
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files.extend(os.path.join(folder, n) for n in sorted(names) if not n.startswith("."))
    return files


def discover(path: str) -> Discovery:
    """Scan PATH; unreadable files are reported as problems, the rest still load."""
    path = os.path.abspath(os.path.expanduser(str(path)))
    result = Discovery(root=path)
    if not os.path.exists(path):
        raise MedViewerError(f"{path}: no such file or folder")
    explicit = os.path.isfile(path)
    files = [path] if explicit else _walk(path)
    if not explicit and not files:
        raise MedViewerError(f"{path}: the folder is empty")
    dicom_candidates: list[str] = []
    labels: list[LabelObject] = []
    for f in files:
        ext = extension_of(f)
        if ext in EXTENSIONS:
            try:
                result.sources.extend(inspect_file(f))
            except ImageReadError as exc:
                result.problems.append(Problem(exc.path, exc.reason))
        elif _dicom_by_content(f, ext):
            dicom_candidates.append(f)
        elif ext in COMPANIONS or (ext in _NOT_IMAGES and not explicit):
            result.skipped += 1
        else:
            dicom_candidates.append(f)
    _scan_dicom(dicom_candidates, result, explicit, labels)
    result.problems.extend(link_labels(result.sources, labels, named=path if explicit else None))
    return result


def _dicom_by_content(path: str, ext: str) -> bool:
    """DICOM files under names that would otherwise be skipped: `*.img` without an Analyze .hdr
    beside it (Agfa/Siemens exports) and gzip-compressed files (`*.dcm.gz`)."""
    if ext in (".img", ".img.gz"):
        return not analyze_pair_exists(path) and has_dicm_prefix(path)
    return ext == ".gz" and has_dicm_prefix(path)


def _header_or_problem(path: str, explicit: bool):
    force_allowed = explicit or extension_of(path) in DICOM_EXTENSIONS
    try:
        return read_header(path, lean=True)
    except ImageReadError as first_error:
        if not force_allowed:
            return None  # some other kind of file in a folder: not ours to judge
        if "not a DICOM file" not in first_error.reason:
            return first_error
        try:  # files without the 128-byte preamble and 'DICM' prefix (old ACR-NEMA style)
            ds, offset = read_header(path, force=True)
        except ImageReadError as exc:
            return exc
        if not any(k in ds for k in ("Rows", "DirectoryRecordSequence", "SOPClassUID", "Modality")):
            return first_error  # forced parsing found nothing DICOM-like: some other file
        return ds, offset


def _scan_dicom(candidates: list[str], result: Discovery, explicit: bool, labels: list[LabelObject]) -> None:
    if not candidates:
        return
    # Header parsing is pure Python: threads only contend for the GIL (measured slower with
    # 2 and 4 workers than with one), so it runs serially; pixel decoding is parallel.
    headers = [_header_or_problem(p, explicit) for p in candidates]
    frames = []
    seen = set(candidates)
    extra: list[str] = []
    for path, item in zip(candidates, headers):
        if item is None:
            result.skipped += 1
            continue
        if isinstance(item, ImageReadError):
            result.problems.append(Problem(item.path, item.reason))
            continue
        ds, offset = item
        if is_dicomdir(ds):
            extra.extend(p for p in dicomdir_files(path, ds) if p not in seen)
            seen.update(extra)
            continue
        if label_kind(ds) is not None:  # a SEG or RTSTRUCT: labels for a series, linked at the end
            labels.append(label_object(path, ds))
            continue
        try:
            frames.extend(frames_from_header(path, ds, offset))
        except ImageReadError as exc:
            result.problems.append(Problem(exc.path, exc.reason))
    if extra:
        missing = [p for p in extra if not os.path.isfile(p)]
        for p in missing:
            result.problems.append(Problem(p, "listed in the DICOMDIR but missing on disk"))
        _scan_dicom([p for p in extra if os.path.isfile(p)], result, True, labels)
    result.sources.extend(group_frames(frames))


def open_volume(path: str, series: str | None = None):
    """Load the only (or the chosen) volume under PATH; raises MedViewerError with the reason."""
    found = discover(path)
    source = found.find(series)
    return source.load()
