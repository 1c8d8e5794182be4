"""The series browser on the demo study: labels, thumbnails (windowing and pixels), activation."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from medviewer.core.volume import Volume
from medviewer.io import discover
from medviewer.ui.series_browser import SeriesBrowser, thumbnail_array
from tests.conftest import DEMO

SCREENSHOT = "/tmp/medviewer_series_browser.png"


def qimage_to_array(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w, stride = image.height(), image.width(), image.bytesPerLine()
    return np.frombuffer(image.constBits(), np.uint8, h * stride).reshape(h, stride)[:, : w * 3].reshape(h, w, 3)


@pytest.fixture(scope="module")
def sources() -> list:
    return discover(str(DEMO)).sources


def by_modality(sources, modality: str):
    return next(s for s in sources if (s.modality or s.description) == modality)


@pytest.fixture
def browser(qtbot) -> SeriesBrowser:
    widget = SeriesBrowser()
    qtbot.addWidget(widget)
    widget.resize(320, 360)
    widget.show()
    return widget


def loaded(browser: SeriesBrowser, sources, qtbot) -> SeriesBrowser:
    browser.set_sources(sources)
    qtbot.waitUntil(lambda: not browser.is_loading(), timeout=10000)
    return browser


# --- thumbnail_array (no Qt) ----------------------------------------------------------------
def test_ct_thumbnail_uses_a_soft_tissue_window():
    from medviewer.core.display import preset

    data = np.full((3, 100, 100), -1000, np.int16)
    data[1, :, 50:] = preset("abdomen").level  # the soft-tissue window's centre: mid grey
    data[1, 50:, 50:] = 1000
    thumb = thumbnail_array(Volume(data, modality="CT"), 96)
    assert thumb.shape == (96, 96) and thumb.dtype == np.uint8
    assert thumb[10, 10] == 0 and thumb[10, 80] in (127, 128) and thumb[80, 80] == 255


def test_other_modalities_use_percentiles_and_monochrome1_is_inverted():
    ramp = np.tile(np.arange(200, dtype=np.float32) * 7 + 100, (100, 1))[None]
    thumb = thumbnail_array(Volume(ramp, modality="MR"), 96)
    assert thumb.shape == (48, 96)  # aspect ratio kept
    assert thumb[:, 0].max() == 0 and thumb[:, -1].min() == 255 and np.all(np.diff(thumb[0].astype(int)) >= 0)
    inverted = thumbnail_array(Volume(ramp, modality="DX", invert_display=True), 96)
    assert np.array_equal(inverted, 255 - thumb)
    tall = thumbnail_array(Volume(np.zeros((1, 50, 50)), spacing=(1.0, 2.0, 1.0)), 96)
    assert tall.shape == (96, 48)  # anisotropic pixels: physical aspect
    assert thumbnail_array(Volume(np.full((2, 8, 8), 5.0)), 96).shape == (96, 96)  # flat, small: no crash


def test_rgb_thumbnail_keeps_colours():
    rgb = np.zeros((1, 60, 60, 3), np.uint8)
    rgb[..., 0] = 200
    thumb = thumbnail_array(Volume(rgb), 96)
    assert thumb.shape == (96, 96, 3) and np.all(thumb[..., 0] == 200) and np.all(thumb[..., 1] == 0)


# --- the widget ------------------------------------------------------------------------------
def test_lists_the_demo_study_with_descriptions_and_sizes(browser, sources, qtbot):
    loaded(browser, sources, qtbot)
    labels = [browser.list.item(i).text() for i in range(browser.list.count())]
    assert len(labels) == 3
    assert [label.splitlines()[0] for label in labels] == [s.description for s in sources]
    assert {"NIfTI", "JPEG", "CT Body 3.0"} == {label.splitlines()[0] for label in labels}
    ct_label = labels[sources.index(by_modality(sources, "CT"))]
    assert ct_label.splitlines()[1] == "CT · 512×512×20"


def test_thumbnails_are_computed_in_the_background(browser, sources, qtbot):
    ct = by_modality(sources, "CT")
    with qtbot.waitSignal(browser.thumbnail_ready, timeout=10000, check_params_cb=lambda sid: sid == ct.id):
        browser.set_sources(sources)
        assert browser.thumbnail(ct.id) is None and browser.is_loading()
    qtbot.waitUntil(lambda: not browser.is_loading(), timeout=10000)
    thumb = browser.thumbnail(ct.id)
    assert thumb.shape == (96, 96) and thumb.std() > 10 and thumb.mean() > 20
    assert browser.thumbnail(by_modality(sources, "XR").id).shape == (96, 96, 3)
    assert browser.thumbnail(by_modality(sources, "NIfTI").id).std() > 10


def test_the_grabbed_widget_shows_the_ct_thumbnail(browser, sources, qtbot):
    loaded(browser, sources, qtbot)
    ct_row = sources.index(by_modality(sources, "CT"))
    browser.highlight(by_modality(sources, "CT").id)
    qtbot.wait(50)
    image = browser.grab().toImage()
    assert image.save(SCREENSHOT)
    pixels = qimage_to_array(image)
    rect = browser.list.visualItemRect(browser.list.item(ct_row))
    origin = browser.list.viewport().mapTo(browser, rect.topLeft())
    icon = pixels[origin.y(): origin.y() + rect.height(), origin.x(): origin.x() + 100]
    grey = icon.mean(axis=2)
    assert grey.std() > 10 and grey.mean() > 20  # an image, not a flat or black square
    assert (grey > 200).mean() > 0.01  # bone and contrast are bright in the soft-tissue window


def test_given_volumes_give_thumbnails_at_once(browser, sources, qtbot):
    ct = by_modality(sources, "CT")
    volume = ct.load()
    browser.set_sources([ct], volumes={ct.id: volume})
    assert not browser.is_loading()
    assert np.array_equal(browser.thumbnail(ct.id), thumbnail_array(volume))


def test_double_click_and_enter_activate_a_series(browser, sources, qtbot):
    loaded(browser, sources, qtbot)
    row = sources.index(by_modality(sources, "CT"))
    item = browser.list.item(row)
    centre = browser.list.visualItemRect(item).center()
    with qtbot.waitSignal(browser.series_activated, timeout=30_000) as blocker:
        qtbot.mouseClick(browser.list.viewport(), Qt.MouseButton.LeftButton, pos=centre)
        qtbot.mouseDClick(browser.list.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert blocker.args[0] is sources[row]
    assert browser.current_source() is sources[row]
    other = (row + 1) % len(sources)
    browser.list.setCurrentRow(other)
    browser.list.setFocus()
    with qtbot.waitSignal(browser.series_activated, timeout=30_000) as blocker:
        qtbot.keyClick(browser.list, Qt.Key.Key_Return)
    assert blocker.args[0] is sources[other]


def test_highlight_marks_only_the_shown_series(browser, sources, qtbot):
    loaded(browser, sources, qtbot)
    ct = by_modality(sources, "CT")
    browser.highlight(ct.id)
    bold = [browser.list.item(i).font().bold() for i in range(browser.list.count())]
    assert bold == [s.id == ct.id for s in sources]
    browser.set_sources(sources)  # the mark survives a refresh of the list
    assert browser.list.item(sources.index(ct)).font().bold() and browser.highlighted_id() == ct.id
    browser.highlight(None)
    assert not any(browser.list.item(i).font().bold() for i in range(browser.list.count()))
    qtbot.waitUntil(lambda: not browser.is_loading(), timeout=10000)


def test_a_source_that_fails_to_load_gets_an_error_icon(browser, sources, qtbot):
    def broken_load():
        raise OSError("disk on fire")

    broken = copy.copy(by_modality(sources, "XR"))
    broken.id = "broken"
    broken.load = broken.preview = broken_load  # a file image's thumbnail reads its middle slice alone
    with qtbot.waitSignal(browser.thumbnail_ready, timeout=30_000):
        browser.set_sources([broken])
    assert browser.thumbnail("broken") is None and not browser.is_loading()
    assert "disk on fire" in browser.list.item(0).toolTip()


def test_replacing_the_list_while_loading_keeps_only_the_new_sources(browser, sources, qtbot):
    browser.set_sources(sources)
    browser.set_sources(sources[:1])
    qtbot.waitUntil(lambda: not browser.is_loading(), timeout=10000)
    qtbot.wait(700)  # results of the first list arrive and are dropped
    assert browser.list.count() == 1 and browser.thumbnail(sources[0].id) is not None
    assert browser.thumbnail(sources[-1].id) is None
    browser.shutdown()
