#!/usr/bin/env python3
"""Derive installer/qt-system-packages.txt: the Debian packages of the system libraries Qt links to.

    python3 installer/derive_qt_packages.py [SITE_PACKAGES]      print the list (to review and commit)
    python3 installer/derive_qt_packages.py --check [SITE_PACKAGES]
                                              exit 1 if a library is "not found" or its package is
                                              not in the list (what tests/unit/test_qt_system_packages.py checks)

How: `ldd` of the Qt libraries and plugins that `medviewer` maps into its process (read from
/proc/PID/maps with the offscreen and the xcb platform) gives every shared library they need,
direct and indirect; `dpkg -S` names the package of each. Packages that every Debian system has
(the Essential ones and what they depend on, read from the dpkg database) are left out. Libraries
that are "not found" here cannot be mapped to a package: install the package first (apt-file
search SONAME), then run this again. Stdlib only, so the system python3 runs it.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

LIST_FILE = Path(__file__).resolve().with_name("qt-system-packages.txt")

# PySide6 files (relative to the PySide6 package) that medviewer loads with any platform ...
ANY_PLATFORM = [
    "QtCore.abi3.so", "QtGui.abi3.so", "QtWidgets.abi3.so", "QtOpenGL.abi3.so", "QtOpenGLWidgets.abi3.so",
    "QtSvg.abi3.so", "QtTest.abi3.so",
    "Qt/lib/libQt6DBus.so.6",  # loaded by the platform plugins for the desktop services, dlopens libdbus
    "Qt/plugins/platforms/libqoffscreen.so",
]
# ... and what the xcb platform (a real X display, Xvfb included) adds
XCB = [
    "Qt/plugins/platforms/libqxcb.so",
    "Qt/lib/libQt6XcbQpa.so.6",
    "Qt/plugins/xcbglintegrations/libqxcb-glx-integration.so",
    "Qt/plugins/xcbglintegrations/libqxcb-egl-integration.so",
    "Qt/plugins/platforminputcontexts/libcomposeplatforminputcontextplugin.so",
    "Qt/plugins/platforminputcontexts/libibusplatforminputcontextplugin.so",
]
SECTIONS = {"any platform (offscreen, screenshots)": ANY_PLATFORM, "the xcb platform (an X display)": XCB}


def pyside_dir(site_packages: str | None = None) -> Path:
    if site_packages:
        return Path(site_packages) / "PySide6"
    import importlib.util

    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("PySide6 is not installed for this python; pass the venv's site-packages")
    return Path(list(spec.submodule_search_locations)[0])


def ldd(path: Path) -> dict[str, str | None]:
    """soname -> resolved path (None: "not found"), direct and indirect dependencies."""
    out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=True).stdout
    found: dict[str, str | None] = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (not found|(\S+))", line)
        if m:
            found[m.group(1)] = None if m.group(2) == "not found" else m.group(3)
    return found


def packages_of(paths: list[str]) -> dict[str, str]:
    """path -> the Debian package that ships it (trying /lib <-> /usr/lib and the symlink's target),
    in one `dpkg -S` call (each call reads the whole dpkg database)."""
    variants: dict[str, list[str]] = {}
    for path in paths:
        names = [path, str(Path(path).resolve())]
        names += [n.replace("/usr/lib/", "/lib/", 1) for n in names if n.startswith("/usr/lib/")]
        names += [n.replace("/lib/", "/usr/lib/", 1) for n in names if n.startswith("/lib/")]
        variants[path] = list(dict.fromkeys(names))
    wanted = sorted({n for names in variants.values() for n in names})
    out = subprocess.run(["dpkg", "-S", *wanted], capture_output=True, text=True).stdout if wanted else ""
    owner: dict[str, str] = {}
    for line in out.splitlines():
        package, _, name = line.partition(": ")
        if name and not package.startswith("diversion"):
            owner.setdefault(name.strip(), package.split(",")[0].split(":")[0].strip())
    return {path: next(owner[n] for n in names if n in owner)
            for path, names in variants.items() if any(n in owner for n in names)}


def base_packages() -> set[str]:
    """Packages on every Debian system: the Essential ones and, recursively, what they depend on."""
    fmt = "${Package}\t${Essential}\t${Pre-Depends}\t${Depends}\t${Provides}\t${db:Status-Abbrev}\n"
    out = subprocess.run(["dpkg-query", "-W", "-f", fmt], capture_output=True, text=True, check=True).stdout
    deps: dict[str, list[str]] = {}
    provided: dict[str, list[str]] = {}
    essential = []
    for line in out.splitlines():
        package, is_essential, pre, dep, provides, status = line.split("\t")
        if not status.startswith("ii"):
            continue
        package = package.split(":")[0]
        deps[package] = [re.split(r"[\s(:]", alt.strip())[0] for group in f"{pre},{dep}".split(",")
                         if group.strip() for alt in group.split("|")]
        for name in provides.split(","):
            if name.strip():
                provided.setdefault(re.split(r"[\s(]", name.strip())[0], []).append(package)
        if is_essential == "yes":
            essential.append(package)
    seen: set[str] = set()
    todo = list(essential)
    while todo:
        name = todo.pop()
        for package in [name] if name in deps else provided.get(name, []):
            if package not in seen:
                seen.add(package)
                todo.extend(deps[package])
    return seen


def read_list(path: Path = LIST_FILE) -> dict[str, list[str]]:
    """package -> its sonames, from the list file (comments after #)."""
    packages: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            packages[fields[0]] = fields[1:]
    return packages


def derive(pyside: Path) -> tuple[dict[str, dict[str, list[str]]], list[str]]:
    """({section: {package: sonames}}, ["soname (needed by FILE)" not found])."""
    needs = {title: {rel: ldd(pyside / rel) for rel in files} for title, files in SECTIONS.items()}
    system = sorted({path for files in needs.values() for libs in files.values() for path in libs.values()
                     if path and "/PySide6/" not in path and "/shiboken6/" not in path})  # not in the wheel
    owner, base = packages_of(system), base_packages()
    sections: dict[str, dict[str, list[str]]] = {}
    listed: set[str] = set()
    not_found: list[str] = []
    for title, files in needs.items():
        packages: dict[str, list[str]] = {}
        for rel, libs in files.items():
            for soname, resolved in libs.items():
                if resolved is None:
                    not_found.append(f"{soname} (needed by {rel})")
                elif resolved in system and resolved not in owner:
                    not_found.append(f"{soname} at {resolved}: no Debian package owns it")
                elif resolved in owner and owner[resolved] not in base and owner[resolved] not in listed:
                    sonames = packages.setdefault(owner[resolved], [])
                    if soname not in sonames:
                        sonames.append(soname)
        listed.update(packages)
        sections[title] = dict(sorted(packages.items()))
    return sections, sorted(set(not_found))


def main(argv: list[str]) -> int:
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    pyside = pyside_dir(args[0] if args else None)
    sections, not_found = derive(pyside)
    if check:
        listed = read_list()
        problems = [f"not found: {nf}" for nf in not_found]
        for packages in sections.values():
            problems += [f"{package} ({', '.join(sonames)}) is not in {LIST_FILE.name}"
                         for package, sonames in packages.items() if package not in listed]
        print("\n".join(problems) or f"{LIST_FILE.name} covers every library Qt needs here")
        return 1 if problems else 0
    for nf in not_found:
        print(f"# NOT FOUND: {nf}", file=sys.stderr)
    for title, packages in sections.items():
        print(f"# --- {title}")
        for package, sonames in packages.items():
            print(f"{package:<22} {' '.join(sorted(sonames))}")
    return 1 if not_found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
