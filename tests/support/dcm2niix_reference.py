"""medviewer against reference conversions of real DICOM corpora: the cases, the runs, the table.

Written once for tests/unit/test_dcm2niix_corpus.py and scripts/compare_dcm2niix.py.

Cases (`corpus_cases(data_root)`), each an input a user would hand to medviewer and a reference:
- dcm_qa_nih, transfer_syntaxes, enhanced_mr (neurolabusc dcm_qa*): every NIfTI in Ref/ (dcm2niix's
  output), matched to the input files of In/ with the same Manufacturer and SeriesNumber as its
  JSON sidecar (.bval/.bvec compared where Ref/ has them);
- dcm_qa_agfa (no Ref/): each export read by SimpleITK's ImageSeriesReader, and the Agfa export
  against the direct Siemens export as medviewer reads it (their pixels are bit-identical);
- nibabel's bundled files (nibabel/nicom/tests/data): Siemens DWI mosaics (.dcm.gz), a slice whose
  SliceThickness is an empty string, two mosaics whose tiles do not fill the frame (nibabel gives
  their geometry but no pixels), each against nibabel's dicomwrappers.

Each case is run the two ways a user does (`run_case`): "load" (medviewer.io.discover + source.load(),
what the viewer and `info` see) and "convert" (`medviewer convert` through medviewer.cli.main into a
.nii.gz, read back with nibabel; with --4d when the command has it, else one call per volume).
The volumes of one acquisition are the sources sharing an ImageSource.volume_group, ordered by
volume_index (before that field is filled in: the sources of one Series Instance UID, in
medviewer's order). A reference is compared with the acquisitions of its series (SeriesNumber)
that have its number of volumes (else the closest number); the best one is reported.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

from tests.support.world_images import Image, Outcome, compare, from_volumes, read_nibabel_dicom, \
    read_nifti, read_simpleitk_series

VIAS = ("load", "convert")
NIBABEL_FILES = ("siemens_dwi_0.dcm.gz", "siemens_dwi_1000.dcm.gz", "slicethickness_empty_string.dcm",
                 "0.dcm", "1.dcm")


@dataclass
class Case:
    corpus: str
    series: str  # the input, as the table names it
    input: Path  # the file or folder handed to medviewer
    reference: str  # what it is compared with, as the table names it
    read_reference: Callable[[], Image] = field(repr=False)
    series_number: int | None = None  # compare with medviewer's series of this number only

    @property
    def id(self) -> str:
        return f"{self.corpus}:{self.series}:{self.reference}".replace(" ", "_")


@dataclass
class Row:
    case: Case
    via: str  # "load" or "convert"
    medviewer: str = ""  # the medviewer series compared (first volume's id)
    size: str = "-"  # medviewer's grid, XxYxZ (xT volumes)
    ref_size: str = "-"
    outcome: Outcome | None = None
    failure: str = ""  # why nothing could be compared (a traceback, no such series ...)
    refusal: str = ""  # medviewer's one-line refusal (MedViewerError, `medviewer: error: ...`)
    warned: str = ""  # medviewer's warning that it did not unpack a mosaic
    # Where the reference reader itself gives no pixels (nibabel cannot unpack a mosaic whose tiles
    # do not fill the frame), medviewer may refuse in one line naming the file and the mosaic, or
    # show the frame as stored with a warning that says so; not show the tiles silently, nor give
    # another reason (a wrong one would hide a bug).
    accepted: bool = False

    @property
    def volumes(self) -> int:
        return _volume_count(self.size)

    @property
    def ref_volumes(self) -> int:
        return _volume_count(self.ref_size)

    @property
    def passed(self) -> bool:
        return self.accepted or (self.outcome is not None and self.outcome.passed)

    @property
    def verdict(self) -> str:
        if self.accepted:
            return "PASS " + ("refused: " + self.refusal if self.refusal else "warned: " + self.warned)
        if self.outcome is None:
            return "FAIL " + ("refused: " + self.refusal if self.refusal else self.failure)
        if self.passed:
            return "PASS"
        o = self.outcome
        reasons = [] if o.grid == "ok" else ["grid: " + o.grid]
        if self.volumes != self.ref_volumes:
            reasons.append(f"{self.volumes} volumes vs {self.ref_volumes}")
        if not o.pixels_ok and o.grid == "ok":
            reasons.append("pixels: " + o.pixels)
        if o.diffusion not in ("ok", "-", "- (not written)"):
            reasons.append("diffusion: " + o.diffusion)
        return "FAIL " + "; ".join(reasons)


def _volume_count(size: str) -> int:
    return int(size.split(" x")[1]) if " x" in size else 1


# --- the cases -------------------------------------------------------------------------------
def corpus_cases(data_root: str | Path) -> list[Case]:
    dicom = Path(data_root) / "dicom"
    cases: list[Case] = []
    for corpus in ("dcm_qa_nih", "transfer_syntaxes", "enhanced_mr"):
        cases += dcm2niix_cases(dicom / corpus, corpus)
    cases += agfa_cases(dicom / "dcm_qa_agfa")
    return cases + nibabel_cases()


def _vendor(name: str) -> str:
    return (name or "").strip().split(" ")[0].lower()


def _series_key(path: Path) -> tuple | None:
    """(vendor, SeriesNumber) of a DICOM file, reading its header only up to the SeriesNumber
    (an enhanced file's per-frame sequences come later: 8 ms instead of 0.4 s)."""
    from pydicom.filereader import read_partial
    from pydicom.tag import Tag

    series_number = Tag(0x0020, 0x0011)
    try:
        with open(path, "rb") as fh:
            ds = read_partial(fh, stop_when=lambda tag, vr, length: tag > series_number)
        return (_vendor(str(ds.get("Manufacturer", ""))), int(ds.SeriesNumber))
    except Exception:  # noqa: BLE001 - a README or other non-DICOM file beside the series
        return None


def _index_series(folder: Path, series_files: dict, folder_keys: dict) -> None:
    """Which series each DICOM file of FOLDER holds. A folder whose first and last DICOM files are
    of one series is taken as that series throughout (a 150-file series costs two reads, not 150)."""
    files = sorted(p for p in folder.iterdir() if p.is_file())
    first = next(((p, k) for p in files if (k := _series_key(p))), None)
    last = next(((p, k) for p in reversed(files) if (k := _series_key(p))), None)
    if first is None:
        return
    if first[1] == last[1]:
        keyed = [(p, first[1]) for p in files[files.index(first[0]): files.index(last[0]) + 1]]
    else:
        keyed = [(p, k) for p in files if (k := _series_key(p))]
    for path, key in keyed:
        series_files[key].append(path)
        folder_keys[folder].add(key)


def dcm2niix_cases(root: Path, corpus: str) -> list[Case]:
    """One case per NIfTI in ROOT/Ref, with the In/ files of the same vendor and series number."""
    if not (root / "Ref").is_dir() or not (root / "In").is_dir():
        return []
    series_files: dict[tuple, list[Path]] = defaultdict(list)
    folder_keys: dict[Path, set] = defaultdict(set)
    for folder in sorted({p.parent for p in (root / "In").rglob("*") if p.is_file()}):
        _index_series(folder, series_files, folder_keys)
    cases = []
    for nii in sorted((root / "Ref").glob("*.nii*")):
        sidecar = Path(re.sub(r"\.nii(\.gz)?$", ".json", str(nii)))
        meta = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
        key = (_vendor(meta.get("Manufacturer", "")), meta.get("SeriesNumber"))
        files = series_files.get(key)
        if not files:
            continue  # dcm2niix's output of a series whose input is not in this copy
        folder = files[0].parent
        if all(f.parent == folder for f in files) and folder_keys[folder] == {key}:
            target = folder
        elif len(files) == 1:
            target = files[0]
        else:
            continue  # a series mixed into a folder with others: no single path names it
        cases.append(Case(corpus, str(target.relative_to(root / "In")), target, nii.name,
                          partial(read_nifti, nii), series_number=int(key[1])))
    return cases


def agfa_cases(root: Path) -> list[Case]:
    exports = {name: root / name for name in ("Agfa", "Siemens") if (root / name).is_dir()}
    cases = [Case("dcm_qa_agfa", f"{name}/", folder, "SimpleITK ImageSeriesReader",
                  partial(read_simpleitk_series, sorted(str(p) for p in folder.glob("*.img"))))
             for name, folder in exports.items()]
    if len(exports) == 2:
        cases.append(Case("dcm_qa_agfa", "Agfa/", exports["Agfa"], "medviewer on Siemens/",
                          partial(medviewer_image, exports["Siemens"])))
    return cases


def nibabel_cases() -> list[Case]:
    try:
        import nibabel
    except ImportError:
        return []
    folder = Path(nibabel.__file__).parent / "nicom" / "tests" / "data"
    return [Case("nibabel", name, folder / name, "nibabel dicomwrappers", partial(read_nibabel_dicom, folder / name))
            for name in NIBABEL_FILES if (folder / name).is_file()]


# --- medviewer's side --------------------------------------------------------------------------
def _natural(text: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _series_number(source) -> int | None:
    header = getattr(source, "header", None)
    try:
        return int(header.SeriesNumber)
    except (AttributeError, TypeError, ValueError):
        return None


def acquisitions(sources) -> list[list]:
    """Candidate volume lists: each volume_group (by volume_index), each Series Instance UID with
    several sources (in medviewer's order), and each source alone."""
    groups: dict[tuple, list] = defaultdict(list)
    for s in sources:
        if s.volume_group:
            groups[("group", s.volume_group)].append(s)
        else:
            uid = getattr(getattr(s, "header", None), "SeriesInstanceUID", None)
            if uid:
                groups[("uid", str(uid))].append(s)
    out = [sorted(g, key=lambda s: (s.volume_index, _natural(s.id))) for g in groups.values() if len(g) > 1]
    return out + [[s] for s in sources]


def medviewer_image(path: str | Path) -> Image:
    """What medviewer loads from PATH: its acquisition with the most volumes."""
    from medviewer.io.discover import discover

    found = discover(str(path))
    if not found.sources:
        raise LookupError(found.nothing_found())
    volumes = max(acquisitions(found.sources), key=len)
    return _load(volumes)


def _load(sources) -> Image:
    return from_volumes([s.load() for s in sources], [s.diffusion for s in sources])


def _cli(argv: list[str]) -> tuple[int, str]:
    """Run `medviewer ARGV` in this process; (exit status, what it printed on stderr)."""
    from medviewer.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse: --help, usage errors
            rc = exc.code if isinstance(exc.code, int) else 2
    return rc, out.getvalue() + err.getvalue()


def convert_options() -> frozenset[str]:
    """Which of --4d and --philips-scaling this medviewer's `convert` offers (from its --help)."""
    rc, text = _cli(["convert", "--help"])
    return frozenset(o for o in ("--4d", "--philips-scaling") if rc == 0 and o in text)


class Refused(Exception):
    """medviewer said no in one clean line."""


def _convert(argv: list[str], out: Path, told: list[str]) -> Image:
    """The file `medviewer convert ARGV` wrote; its warnings are added to TOLD."""
    rc, text = _cli(argv)
    told.extend(line[len("medviewer: warning: "):] for line in text.splitlines()
                if line.startswith("medviewer: warning: "))
    if rc == 0 and out.is_file():
        return read_nifti(out)
    errors = [line for line in text.splitlines() if line.startswith("medviewer: error:")]
    call = "`medviewer " + " ".join(a for a in argv if not a.startswith("/")) + f"` exit {rc}"
    if rc == 1 and len(errors) == 1 and "the details are in" not in text and "no log file" not in text:
        raise Refused(errors[0][len("medviewer: error: "):])
    raise RuntimeError(f"{call}: " + " ".join(text.split())[:300])


def _converted(case: Case, volumes, folder: Path, options: frozenset, extra: list[str],
               told: list[str]) -> Image:
    """medviewer convert's output for VOLUMES (all of the input when None) as one Image."""
    import numpy as np

    base = ["convert", str(case.input)]
    if "--4d" in options:
        out = folder / "all.nii.gz"
        series = ["--series", volumes[0].id] if volumes else []
        return _convert(base + [str(out)] + series + ["--4d"] + extra, out, told)
    if not volumes:
        return _convert(base + [str(folder / "v.nii.gz")] + extra, folder / "v.nii.gz", told)
    images = [_convert(base + [str(folder / f"v{k}.nii.gz"), "--series", s.id] + extra,
                       folder / f"v{k}.nii.gz", told) for k, s in enumerate(volumes)]
    for im in images[1:]:
        if im.shape != images[0].shape or not np.allclose(im.affine, images[0].affine, atol=1e-4):
            raise RuntimeError("the volumes were written on different grids")
    return Image.of(np.concatenate([im.data for im in images], axis=3), images[0].affine)


def _size(image: Image) -> str:
    x, y, z, t = image.shape
    return f"{x}x{y}x{z}" + (f" x{t}" if t > 1 else "")


def _fill(row: Row, mine: Image, ref: Image, check_diffusion: bool = True, values: str = "display") -> Row:
    row.outcome = compare(mine, ref, check_diffusion, values)
    row.size, row.ref_size = _size(mine), _size(ref)
    return row


def _error_text(exc: BaseException) -> str:
    kind = "" if type(exc).__name__ in ("MedViewerError", "ImageReadError", "LookupError", "RuntimeError") \
        else f"{type(exc).__name__}: "
    return " ".join(f"{kind}{exc}".split())[:300]


def run_case(case: Case, workdir: str | Path | None = None, options: frozenset | None = None) -> list[Row]:
    """The case through `load` and `convert`: one Row each. OPTIONS: convert_options() (asked when None)."""
    rows = [Row(case, via) for via in VIAS]
    try:
        ref = case.read_reference()
    except Exception as exc:  # noqa: BLE001 - the row says the reference could not be read
        for row in rows:
            row.failure = "reference unreadable: " + _error_text(exc)
        return rows
    for row in rows:
        row.ref_size = _size(ref)
    volumes = _run_load(rows[0], case, ref)
    options = convert_options() if options is None else options
    fp = ref.display_factor is not None and "--philips-scaling" in options
    with contextlib.ExitStack() as stack:
        folder = Path(workdir) if workdir else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        folder = folder / re.sub(r"[^\w.-]+", "_", case.id)
        folder.mkdir(parents=True, exist_ok=True)
        told: list[str] = []
        try:
            mine = _converted(case, volumes, folder, options, ["--philips-scaling", "fp"] if fp else [], told)
            _fill(rows[1], mine, ref, check_diffusion="--4d" in options, values="fp" if fp else "display")
            _warned(rows[1], ref, told)
        except Refused as exc:
            _refused(rows[1], case, ref, str(exc))
        except Exception as exc:  # noqa: BLE001 - a medviewer failure is the finding
            rows[1].failure = _error_text(exc)
    for row in rows:
        row.medviewer = volumes[0].id if volumes else ""
    return rows


def _refused(row: Row, case: Case, ref: Image, message: str) -> None:
    row.refusal = " ".join(message.split())[:300]
    row.accepted = ref.data is None and case.input.name in message and "mosaic" in message.lower()


def _warned(row: Row, ref: Image, warnings: list[str]) -> None:
    said = [w for w in warnings if "mosaic" in w.lower()]
    if said and not row.passed:
        row.warned = " ".join(said[0].split())[:300]
        row.accepted = ref.data is None


def _run_load(row: Row, case: Case, ref: Image):
    """Fill ROW from discover + load; the volumes compared, or None when there are none."""
    from medviewer.core.errors import MedViewerError
    from medviewer.io.discover import discover

    try:
        found = discover(str(case.input))
        if not found.sources:
            raise MedViewerError(found.nothing_found())
        best = _best_acquisition(found, case, ref)
    except MedViewerError as exc:
        _refused(row, case, ref, str(exc))
        return None
    except Exception as exc:  # noqa: BLE001 - a medviewer failure is the finding
        row.failure = _error_text(exc)
        return None
    if isinstance(best, str):
        row.failure = best
        return None
    volumes, mine = best
    _fill(row, mine, ref)
    _warned(row, ref, [w for s in volumes for w in s.warnings])
    return volumes


def _best_acquisition(found, case: Case, ref: Image):
    """(volumes, Image) of the acquisition closest to REF; a reason string when there is none."""
    sources = [s for s in found.sources
               if case.series_number is None or _series_number(s) in (case.series_number, None)]
    if not sources:
        return f"no series {case.series_number} among medviewer's " + ", ".join(s.id for s in found.sources)
    candidates = acquisitions(sources)
    want = ref.shape[3]
    closest = min(abs(len(c) - want) for c in candidates)
    best = None
    for volumes in (c for c in candidates if abs(len(c) - want) == closest):
        mine = _load(volumes)
        outcome = compare(mine, ref)
        rank = (outcome.passed, outcome.grid == "ok", outcome.agreement, -outcome.corner_mm)
        if best is None or rank > best[0]:
            best = (rank, volumes, mine)
        if outcome.passed:
            break
    return best[1], best[2]


# --- the table -------------------------------------------------------------------------------
COLUMNS = ("series", "reference", "via", "medviewer vs reference size", "volumes", "corner mm", "pixels", "verdict")


def table(rows: list[Row]) -> str:
    """One Markdown table per corpus."""
    by_corpus: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_corpus[row.case.corpus].append(row)
    parts = []
    for corpus, members in by_corpus.items():
        passed = sum(r.passed for r in members)
        lines = [f"### {corpus} ({passed}/{len(members)} pass)", "",
                 "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        for r in members:
            corner = "-" if r.outcome is None else f"{r.outcome.corner_mm:.3g}"
            pixels = "-" if r.outcome is None else r.outcome.pixels
            volumes = f"{r.volumes if r.outcome else '-'} vs {r.ref_volumes if r.ref_size != '-' else '-'}"
            cells = (r.case.series, r.case.reference, r.via, f"{r.size.split(' x')[0]} vs {r.ref_size.split(' x')[0]}",
                     volumes, corner, pixels, r.verdict)
            lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def default_data_root() -> Path:
    repo = Path(__file__).resolve().parents[2]
    return Path(os.environ.get("MEDVIEWER_SHARED_DATA", repo.parent / "shared" / "data"))
