"""A hanging-protocol-like rule: which series of a study open side by side, in which layout (no Qt).

Within the study of the first series found (the one the viewer opens anyway), keep the latest
series of each kind — modality and series description, "T1 MPRAGE" and "T1 MPRAGE repeat" being two
kinds but a re-run with the same description being one — where the latest is the highest series
number (then the later series date/time). Localisers and other single-slice series are left out when
the study has volumes; the extra volumes of one acquisition (time points, diffusion directions) are
its first volume's series. The opened series comes first; the others follow by series number.
Up to four: two -> "compare-1x2", three or four -> "compare-2x2"; a study of one kind gives
("", [first]): the viewer keeps its current behaviour.

Sources are read duck-typed (io.ImageSource): `kind`, `modality`, `description`, `size`,
`volume_index`, and for DICOM a `header` (pydicom Dataset-like, `.get(keyword)`).
"""
from __future__ import annotations

from dataclasses import dataclass

MAX_PANES = 4


@dataclass(frozen=True)
class SeriesFacts:
    study: str  # StudyInstanceUID ("" for a file: a study of its own)
    kind: tuple[str, str]  # (modality, normalised description)
    number: int  # SeriesNumber (-1 unknown)
    when: str  # SeriesDate + SeriesTime, sortable text
    slices: int


def _text(header, keyword: str) -> str:
    if header is None:
        return ""
    try:
        value = header.get(keyword, "")
    except Exception:  # a damaged header: the fact is unknown
        return ""
    return str(getattr(value, "value", value) or "").strip()


def series_facts(source) -> SeriesFacts:
    header = getattr(source, "header", None) if getattr(source, "kind", "") == "dicom" else None
    number = _text(header, "SeriesNumber")
    try:
        series_number = int(float(number))
    except ValueError:
        series_number = -1
    description = " ".join(str(getattr(source, "description", "") or "").lower().split())
    size = tuple(getattr(source, "size", (1, 1, 1)) or (1, 1, 1))
    return SeriesFacts(study=_text(header, "StudyInstanceUID"),
                       kind=(str(getattr(source, "modality", "") or "").upper(), description),
                       number=series_number,
                       when=_text(header, "SeriesDate") + _text(header, "SeriesTime"),
                       slices=int(size[2]) if len(size) > 2 else 1)


def choose_layout(sources: list) -> tuple[str, list]:
    """(layout name, the sources to show, the opened one first); ("", [first]) when one is enough."""
    if not sources:
        return "", []
    first = sources[0]
    facts = {id(s): series_facts(s) for s in sources}
    study = facts[id(first)].study
    if getattr(first, "kind", "") != "dicom" or not study:
        return "", [first]
    candidates = [s for s in sources if getattr(s, "kind", "") == "dicom" and facts[id(s)].study == study
                  and int(getattr(s, "volume_index", 0) or 0) == 0]
    if any(facts[id(s)].slices > 1 for s in candidates):
        candidates = [s for s in candidates if facts[id(s)].slices > 1 or s is first]
    latest: dict[tuple, object] = {}
    for source in candidates:
        f = facts[id(source)]
        kept = latest.get(f.kind)
        if kept is None or (f.number, f.when) > (facts[id(kept)].number, facts[id(kept)].when):
            latest[f.kind] = source
    latest[facts[id(first)].kind] = first  # the opened series stands for its kind
    others = sorted((s for s in latest.values() if s is not first),
                    key=lambda s: (facts[id(s)].number, facts[id(s)].when))
    chosen = [first] + others[:MAX_PANES - 1]
    if len(chosen) == 1:
        return "", chosen
    return ("compare-1x2" if len(chosen) == 2 else "compare-2x2"), chosen


def describe_choice(layout: str, sources: list) -> str:
    """What the status bar says about the rule's choice."""
    if not layout:
        return ""
    names = ", ".join(str(getattr(s, "description", "") or getattr(s, "id", "?")) for s in sources)
    return f"Hanging rule: the latest series of each kind side by side ({layout}): {names}"
