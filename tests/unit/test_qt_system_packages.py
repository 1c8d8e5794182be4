"""installer/qt-system-packages.txt covers every system library Qt's libraries and plugins link to.

A library missing on a user's machine makes Qt abort (rc 134) with a hint that names the wrong one,
and this machine's image may have packages a fresh Debian lacks, so the list is checked against
`ldd` of the installed PySide6 (and `dpkg -S` where there is dpkg) rather than trusted.
"""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO

INSTALLER = REPO / "installer"


def _derive():
    spec = importlib.util.spec_from_file_location("derive_qt_packages", INSTALLER / "derive_qt_packages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def derive():
    return _derive()


@pytest.fixture(scope="module")
def pyside(derive) -> Path:
    return derive.pyside_dir()


@pytest.fixture(scope="module")
def linked(derive, pyside) -> dict[str, dict[str, str | None]]:
    if shutil.which("ldd") is None:
        pytest.skip("ldd is not installed")
    return {rel: derive.ldd(pyside / rel) for rel in derive.ANY_PLATFORM + derive.XCB}


def test_every_library_qt_links_to_is_found(linked):
    missing = sorted({f"{soname} (needed by {rel})" for rel, libs in linked.items()
                      for soname, path in libs.items() if path is None})
    assert not missing, ("Qt cannot load these; bash installer/install.sh installs "
                         "installer/qt-system-packages.txt:\n" + "\n".join(missing))


def test_the_checked_files_include_the_xcb_plugin_and_its_gl_integrations(derive, pyside):
    for rel in derive.ANY_PLATFORM + derive.XCB:
        assert (pyside / rel).is_file(), rel
    assert "Qt/plugins/platforms/libqxcb.so" in derive.XCB


def test_every_package_of_a_linked_library_is_in_the_list(derive, pyside, linked):
    if shutil.which("dpkg") is None:
        pytest.skip("not a Debian system (no dpkg)")
    listed = derive.read_list()
    sections, not_found = derive.derive(pyside)
    assert not not_found
    needed = {package: sonames for packages in sections.values() for package, sonames in packages.items()}
    assert "libxcb-icccm4" in needed and "libxcb-keysyms1" in needed  # the ones that were left out
    # Debian 13 / Ubuntu 24.04 call some of them NAMEt64; install.sh accepts either
    absent = {p: s for p, s in needed.items() if p not in listed and p.removesuffix("t64") not in listed}
    assert not absent, f"add to installer/qt-system-packages.txt: {absent}"


def test_every_library_in_the_list_is_one_qt_links_to(derive, linked):
    sonames = {soname for libs in linked.values() for soname in libs}
    stale = {package: [s for s in names if s not in sonames] for package, names in derive.read_list().items()}
    assert not {p: s for p, s in stale.items() if s}, "no longer needed by Qt: remove or re-derive"
    assert all(derive.read_list().values()), "each package names the libraries of it that Qt needs"


def test_the_viewer_and_the_installer_read_the_same_list(derive):
    from medviewer.display_check import QT_PACKAGES_FILE, qt_library_packages

    assert QT_PACKAGES_FILE == derive.LIST_FILE
    owners = qt_library_packages()
    assert owners["libxcb-icccm.so.4"] == "libxcb-icccm4" and owners["libxcb-keysyms.so.1"] == "libxcb-keysyms1"
    assert set(owners.values()) == set(derive.read_list())
    script = (INSTALLER / "system-packages.sh").read_text()
    assert "installer/qt-system-packages.txt" in script
    assert "system-packages.sh" in (INSTALLER / "install.sh").read_text()
