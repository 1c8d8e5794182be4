#!/usr/bin/env bash
# Install MedViewer from this source folder into ./.venv (Linux, Python >= 3.10).
#   bash installer/install.sh          # the viewer and its command line
#   bash installer/install.sh --test   # plus what the test suite needs
# TORCH_SPEC picks the PyTorch build: the default is the CPU wheel 2.13.0 that CI uses;
# on a CUDA workstation use e.g. TORCH_SPEC="torch" to get PyPI's CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
extras=""
if [ "${1:-}" = "--test" ]; then extras="[test]"; fi

# Qt (PySide6) needs a few system libraries, even offscreen; install those a bare Debian/Ubuntu lacks
SYSTEM_PACKAGES="libgl1 libegl1 libopengl0 libxkbcommon0 libfontconfig1 libfreetype6 libdbus-1-3 libglib2.0-0"
# the tests validate DICOM SEG files with dciodvfy (dicom3tools)
if [ "${1:-}" = "--test" ]; then SYSTEM_PACKAGES="$SYSTEM_PACKAGES dicom3tools"; fi
missing=""
if command -v dpkg-query >/dev/null 2>&1; then
    for pkg in $SYSTEM_PACKAGES; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
    done
fi
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
    elif command -v sudo >/dev/null 2>&1; then
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
    else
        echo "warning: Qt needs these system packages:$missing (install them with apt-get)" >&2
    fi
fi

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first, so that the project's "torch>=2.2" does not pull a multi-GB CUDA build
.venv/bin/python -m pip install --quiet "$TORCH_SPEC"
.venv/bin/python -m pip install --quiet -e ".${extras}"
echo "MedViewer installed in $(pwd)/.venv — run .venv/bin/medviewer"
