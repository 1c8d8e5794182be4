#!/usr/bin/env bash
# Install the Debian/Ubuntu system packages MedViewer needs, when they are missing (install.sh runs this).
#   bash installer/system-packages.sh          # what Qt needs: installer/qt-system-packages.txt
#   bash installer/system-packages.sh --test   # plus what the test suite needs
# As root it runs apt-get, otherwise sudo apt-get; with neither (or no dpkg: not Debian/Ubuntu) it
# prints what to install and goes on.
set -euo pipefail
cd "$(dirname "$0")/.."

# Qt's libraries for every platform and for xcb (a real X display): one list, derived from ldd
SYSTEM_PACKAGES="$(sed -e 's/#.*//' installer/qt-system-packages.txt | awk 'NF {print $1}' | tr '\n' ' ')"
# VTK (the 3D view) links to no system library but opens these at run time (dlopen): libGL/libEGL and
# libX11 come with Qt's list; the X cursor library and Mesa's drivers (llvmpipe: software rendering where
# there is no GPU driver, and EGL offscreen rendering without a display) are VTK's own
SYSTEM_PACKAGES="$SYSTEM_PACKAGES libxcursor1 libgl1-mesa-dri libegl-mesa0"
if [ "${1:-}" = "--test" ]; then
    # dciodvfy (dicom3tools) validates the DICOM SEG files; Xvfb + xauth give the desktop test an X
    # display (xvfb-run), xwininfo (x11-utils) finds its window
    SYSTEM_PACKAGES="$SYSTEM_PACKAGES dicom3tools xvfb xauth x11-utils"
fi

# Debian's python3 makes no venv without python3.X-venv (ensurepip); install.sh needs one for .venv
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ] && command -v "$PYTHON" >/dev/null 2>&1 \
        && ! "$PYTHON" -c "import ensurepip, venv" >/dev/null 2>&1; then
    SYSTEM_PACKAGES="$SYSTEM_PACKAGES python$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv"
fi

installed() {  # Debian 13 / Ubuntu 24.04 renamed some libraries with a t64 suffix (64-bit time_t)
    local pkg
    for pkg in "$1" "${1}t64"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" && return 0
    done
    return 1
}

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "note: not a Debian/Ubuntu system; Qt needs the libraries of: $SYSTEM_PACKAGES" >&2
    exit 0
fi
missing=""
for pkg in $SYSTEM_PACKAGES; do
    installed "$pkg" || missing="$missing $pkg"
done
if [ -z "$missing" ]; then
    exit 0
fi
echo "installing system packages:$missing"
if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
else
    echo "warning: MedViewer needs these system packages:$missing (install them with apt-get)" >&2
fi
