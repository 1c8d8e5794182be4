"""The DICOM tag browser on real headers: columns, filtering, lazy nested sequences, bad input."""
from __future__ import annotations

import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from medviewer.io import discover
from medviewer.ui.tag_browser import TagBrowser
from tests.conftest import DEMO, shared

ENHANCED_MR = ("dicom", "enhanced_mr", "In", "Philips", "IM_0027_fMAP.dcm")


def children(parent) -> list:
    return [parent.child(i) for i in range(parent.childCount())]


def top_items(browser: TagBrowser) -> list:
    return [browser.tree.topLevelItem(i) for i in range(browser.tree.topLevelItemCount())]


def row(item) -> tuple[str, str, str, str]:
    return tuple(item.text(c) for c in range(4))


def find(items: list, tag: str):
    found = [i for i in items if i.text(0) == tag]
    assert found, f"{tag} not in {[i.text(0) for i in items]}"
    return found[0]


def shown(item) -> bool:
    """Not hidden, and every ancestor visible and expanded."""
    if item.isHidden():
        return False
    parent = item.parent()
    while parent is not None:
        if parent.isHidden() or not parent.isExpanded():
            return False
        parent = parent.parent()
    return True


def shown_tags(browser: TagBrowser) -> set[str]:
    return {i.text(0) for i in top_items(browser) if not i.isHidden()}


@pytest.fixture(scope="module")
def demo_sources():
    return {s.modality or s.description: s for s in discover(str(DEMO)).sources}  # CT, XR, NIfTI


@pytest.fixture
def browser(qtbot) -> TagBrowser:
    widget = TagBrowser()
    qtbot.addWidget(widget)
    widget.resize(900, 600)
    return widget


@pytest.fixture(scope="module")
def enhanced_mr():
    return pydicom.dcmread(shared(*ENHANCED_MR), stop_before_pixels=True)


def test_ct_header_shows_modality_and_file_meta(browser, demo_sources):
    browser.set_source(demo_sources["CT"])
    items = top_items(browser)
    assert row(find(items, "(0008,0060)")) == ("(0008,0060)", "Modality", "CS", "CT")
    assert items[0].text(0) == "(0002,0000)"  # file meta group first
    assert "JPEG 2000" in find(items, "(0002,0010)").text(3)
    assert find(items, "(0028,0030)").text(3) == "0.9765625\\0.9765625"
    assert browser.instance_spin.isVisibleTo(browser) and browser.instance_spin.maximum() == 20


def test_filter_by_keyword_tag_and_value(browser, demo_sources):
    browser.set_source(demo_sources["CT"])
    everything = shown_tags(browser)
    assert browser.set_filter("modality") >= 1
    assert "(0008,0060)" in shown_tags(browser) and "(0028,0030)" not in shown_tags(browser)
    for query in ("0028,0030", "00280030", "(0028,0030)", "Pixel Spacing", "PIXELSPACING"):
        assert browser.set_filter(query) == 1, query
        assert shown_tags(browser) == {"(0028,0030)"}, query
    browser.set_filter("body 3.0")  # a value: the series description
    assert shown_tags(browser) == {"(0008,103E)"}
    assert browser.set_filter("no such thing") == 0 and shown_tags(browser) == set()
    browser.set_filter("")
    assert shown_tags(browser) == everything


def test_typing_in_the_filter_box_filters_after_a_pause(browser, demo_sources, qtbot):
    browser.set_source(demo_sources["CT"])
    qtbot.keyClicks(browser.filter_edit, "kernel")
    qtbot.waitUntil(lambda: shown_tags(browser) == {"(0018,1210)"}, timeout=30_000)
    assert "match" in browser.message_label.text()


def test_instance_picker_reads_another_file(browser, demo_sources):
    source = demo_sources["CT"]
    browser.set_source(source)
    first = find(top_items(browser), "(0020,0013)").text(3)
    browser.set_filter("ImagePositionPatient")
    browser.instance_spin.setValue(20)
    assert browser.dataset().filename == list(dict.fromkeys(f.path for f in source.frames))[19]
    assert find(top_items(browser), "(0020,0013)").text(3) != first
    assert shown_tags(browser) == {"(0020,0032)"}  # the filter stays on
    browser.instance_spin.setValue(1)
    browser.set_filter("")
    assert find(top_items(browser), "(0020,0013)").text(3) == first


@pytest.mark.parametrize("modality", ["NIfTI", "XR"])
def test_images_without_a_dicom_header_show_a_message(browser, demo_sources, modality):
    browser.set_source(demo_sources["CT"])
    browser.set_source(demo_sources[modality])
    assert browser.tree.topLevelItemCount() == 0
    assert "No DICOM header" in browser.message_label.text()
    assert not browser.instance_spin.isVisibleTo(browser)
    browser.set_dataset(None)
    assert browser.tree.topLevelItemCount() == 0 and browser.set_filter("a") == 0


def test_enhanced_mr_sequences_expand_lazily(browser, enhanced_mr):
    browser.set_dataset(enhanced_mr)  # its time: tests/bench/test_tag_browser_bench.py
    per_frame = find(top_items(browser), "(5200,9230)")
    assert row(per_frame)[1:] == ("PerFrameFunctionalGroupsSequence", "SQ", "64 items")
    assert per_frame.childCount() == 1 and per_frame.child(0).text(0) == "…"  # not built yet
    per_frame.setExpanded(True)
    items = children(per_frame)
    assert [i.text(0) for i in items[:2]] == ["Item 1", "Item 2"] and len(items) == 64
    items[0].setExpanded(True)
    content = find(children(items[0]), "(0020,9111)")
    content.setExpanded(True)
    content.child(0).setExpanded(True)
    position = find(children(content.child(0)), "(0020,9057)")
    expected = enhanced_mr.PerFrameFunctionalGroupsSequence[0].FrameContentSequence[0].InStackPositionNumber
    assert row(position) == ("(0020,9057)", "InStackPositionNumber", "UL", str(expected))
    assert children(items[1])[0].text(0) == "…"  # siblings stay unbuilt


def test_filter_finds_elements_deep_inside_sequences(browser, enhanced_mr):
    browser.set_dataset(enhanced_mr)
    assert browser.set_filter("InStackPositionNumber") == 64  # its time: tests/bench/test_tag_browser_bench.py
    assert shown_tags(browser) == {"(5200,9230)"}
    per_frame = find(top_items(browser), "(5200,9230)")
    for n in (0, 63):
        content = find(children(per_frame.child(n)), "(0020,9111)")
        position = find(children(content.child(0)), "(0020,9057)")
        assert shown(position)
        assert find(children(content.child(0)), "(0020,9056)").isHidden()  # a non-matching sibling
    assert browser.set_filter("0020,9057") == 65  # 64 frames + the Dimension Index Pointer (AT) value
    assert browser.set_filter("xyzzy") == 0 and shown_tags(browser) == set()
    browser.set_filter("")
    assert len(shown_tags(browser)) == browser.tree.topLevelItemCount()


def test_a_matching_sequence_shows_all_its_children(browser, enhanced_mr):
    browser.set_dataset(enhanced_mr)
    browser.set_filter("SharedFunctionalGroupsSequence")
    shared_groups = find(top_items(browser), "(5200,9229)")
    assert not shared_groups.isHidden()
    shared_groups.setExpanded(True)
    shared_groups.child(0).setExpanded(True)
    assert all(not i.isHidden() for i in children(shared_groups.child(0)))


def test_bad_values_and_long_values_do_not_break_it(browser):
    ds = Dataset()
    ds[0x00280010] = RawDataElement(BaseTag(0x00280010), "US", 3, b"\x01\x02\x03", 0, True, True)
    ds[0x00080060] = RawDataElement(BaseTag(0x00080060), "SQ", 4, b"\xff\xfe\x00a", 0, True, True)
    ds[0x00280030] = RawDataElement(BaseTag(0x00280030), "DS", 7, b"bad\\val", 0, True, True)
    ds.add_new(0x00204000, "LT", "x" * 500)
    ds.add_new(0x00291010, "OB", bytes(range(256)) * 4)
    browser.set_dataset(ds)
    items = top_items(browser)
    assert find(items, "(0028,0010)").text(3).startswith("<unreadable:")
    assert find(items, "(0008,0060)").text(3).startswith("<unreadable:")
    assert find(items, "(0028,0030)").text(3) == "bad\\val"
    assert len(find(items, "(0020,4000)").text(3)) <= 201
    assert find(items, "(0029,1010)").text(3) == "<1024 bytes>"
    assert browser.set_filter("unreadable") == 2


def test_malformed_files_do_not_crash(browser):
    folder = shared("dicom", "malformed")
    paths = sorted(folder.glob("*.dcm"))
    assert paths
    for path in paths:
        try:
            ds = pydicom.dcmread(path, force=True)
        except Exception:
            ds = None
        browser.set_dataset(ds)
        for query in ("a", "0001", ""):
            browser.set_filter(query)
        browser.tree.expandAll()
        for source in discover(str(path)).sources:
            browser.set_source(source)
            browser.tree.expandAll()
