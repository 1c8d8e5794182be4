"""The layering contract of GUIDE.md section 1, machine-checked."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_import_linter_contracts_are_kept():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    proc = subprocess.run([exe, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "broken" in proc.stdout and "0 broken" in proc.stdout


def test_non_ui_packages_load_neither_torch_nor_qt():
    code = (
        "import sys, json\n"
        "import medviewer, medviewer.core, medviewer.io, medviewer.ai, medviewer.ai.device, "
        "medviewer.processing, medviewer.cli, medviewer.app, medviewer.io.dicom_pixels, medviewer.ai.registry\n"
        "from medviewer.io import discover\n"
        "heavy = ['torch', 'PySide6', 'pyqtgraph', 'vtk', 'sklearn', 'monai']\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_info_command_does_not_load_torch_or_qt(demo_ct):
    code = (
        "import sys, io, contextlib\n"
        "from medviewer.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    rc = main(['info', {str(demo_ct)!r}, '--json'])\n"
        "assert rc == 0\n"
        "print([m for m in ('torch', 'PySide6', 'sklearn') if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
