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

# the system libraries Qt needs (offscreen and on an X display), and with --test the test tools
bash installer/system-packages.sh "${1:-}"

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first, so that the project's "torch>=2.2" does not pull a multi-GB CUDA build
.venv/bin/python -m pip install --quiet "$TORCH_SPEC"
.venv/bin/python -m pip install --quiet -e ".${extras}"
echo "MedViewer installed in $(pwd)/.venv — run .venv/bin/medviewer"
