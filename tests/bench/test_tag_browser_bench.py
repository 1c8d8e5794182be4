"""The DICOM tag browser on an enhanced multi-frame MR header against pydicom's own walk of it.

Run: python -m pytest tests/bench/test_tag_browser_bench.py --bench -s
Each round reads the header afresh (pydicom converts raw elements on first access, so neither side
gets them pre-converted), then times
  - opening it: TagBrowser.set_dataset (top-level rows; sequences are built when expanded) against
    pydicom reading each top-level element's keyword and value text;
  - the first filter (builds the search index over every nested element): set_filter, 64 matches,
    against pydicom's Dataset.iterall() matching the same query in tag, keyword, name and value.
Criteria (formerly asserted in tests/gui/test_tag_browser.py): median open < 1.0 s, median first
filter < 2.0 s; the ratios to pydicom are printed.
"""
from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MEDVIEWER_NO_DIALOGS", "1")

import pydicom  # noqa: E402

from tests.conftest import shared  # noqa: E402

ENHANCED_MR = ("dicom", "enhanced_mr", "In", "Philips", "IM_0027_fMAP.dcm")
ROUNDS, MAX_OPEN_S, MAX_FILTER_S = 5, 1.0, 2.0
QUERY = "InStackPositionNumber"


def _read(path):
    return pydicom.dcmread(path, stop_before_pixels=True)


def _pydicom_top_level(ds) -> int:
    rows = [(tag, ds[tag].keyword, str(ds[tag].value) if ds[tag].VR != "SQ" else "") for tag in sorted(ds.keys())]
    return len(rows)


def _pydicom_search(ds, query: str) -> int:
    query = query.lower()
    found = 0
    for elem in ds.iterall():
        value = str(elem.value) if elem.VR != "SQ" else ""
        found += query in f"{elem.tag}\x1f{elem.keyword}\x1f{elem.name}\x1f{value}".lower()
    return found


def _timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def test_tag_browser_open_and_filter(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEWER_SETTINGS", str(tmp_path / "s.ini"))
    monkeypatch.setenv("MEDVIEWER_DATA_DIR", str(tmp_path / "d"))
    path = shared(*ENHANCED_MR)
    from medviewer.ui.qt import application
    from medviewer.ui.tag_browser import TagBrowser

    app = application()
    times = {k: [] for k in ("open", "open_pydicom", "filter", "filter_pydicom")}
    for _ in range(ROUNDS):
        browser = TagBrowser()
        browser.resize(900, 600)
        dt, _ = _timed(browser.set_dataset, _read(path))
        times["open"].append(dt)
        dt, n = _timed(browser.set_filter, QUERY)
        assert n == 64
        times["filter"].append(dt)
        shown_rows = browser.tree.topLevelItemCount()
        browser.deleteLater()
        app.processEvents()
        dt, rows = _timed(_pydicom_top_level, _read(path))
        assert rows + len(_read(path).file_meta) == shown_rows  # the same elements, file meta aside
        times["open_pydicom"].append(dt)
        dt, n = _timed(_pydicom_search, _read(path), QUERY)
        assert n == 64
        times["filter_pydicom"].append(dt)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\ntag browser, {path.name}: median of {ROUNDS} (min-max)")
    for ours, base, what in (("open", "open_pydicom", "open (top-level rows)"),
                             ("filter", "filter_pydicom", f"first filter {QUERY!r}")):
        print(f"  {what:<40} {med[ours] * 1e3:8.1f} ms ({min(times[ours]) * 1e3:.1f}-{max(times[ours]) * 1e3:.1f})"
              f"   pydicom {med[base] * 1e3:8.1f} ms   ratio {med[ours] / med[base]:.2f}")
    assert med["open"] < MAX_OPEN_S
    assert med["filter"] < MAX_FILTER_S
