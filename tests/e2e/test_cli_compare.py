"""`medviewer screenshot A --compare B [--compare C] --layout compare-1x2|compare-2x2`: the images side by
side in the PNG, each pane showing its own image; options that do not fit are one clean line."""
import numpy as np
from PIL import Image

from medviewer.io import open_volume
from medviewer.io.writer import write_volume
from tests.conftest import DEMO
from tests.e2e.test_cli import medviewer

MRI = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"


def test_two_images_side_by_side(tmp_path):
    mri = open_volume(str(MRI))
    flipped = write_volume(mri.copy_geometry(np.ascontiguousarray(mri.data[:, :, ::-1])), str(tmp_path / "flip.nii.gz"))
    out = tmp_path / "compare.png"
    proc = medviewer("screenshot", MRI, "--compare", flipped, "--size", "1000x620", "--out", out)
    assert "layout compare-1x2" in proc.stdout  # the default layout for one --compare image
    rgb = np.asarray(Image.open(out).convert("RGB")).astype(int)
    grey = rgb.mean(axis=2)
    rows = grey[120:520]
    # the two panes hold two different, non-empty pictures: mirror images of each other
    busy = np.flatnonzero(rows.std(axis=0) > 20)  # columns with image detail
    assert busy.size > 300
    gaps = np.flatnonzero(np.diff(busy) > 1)
    assert gaps.size >= 1  # the image detail falls into separate panes


def test_four_images_in_2x2_and_refusals(tmp_path):
    out = tmp_path / "four.png"
    proc = medviewer("screenshot", MRI, "--compare", MRI, "--compare", DEMO / "ct_chest_20", "--compare", MRI,
                     "--size", "900x700", "--out", out)
    assert "layout compare-2x2" in proc.stdout and out.exists()
    for args, words in ((["--compare", MRI, "--layout", "2x2"], "use --layout compare-1x2 or compare-2x2"),
                        (["--compare", MRI, "--compare", MRI, "--layout", "compare-1x2"], "use compare-2x2"),
                        (["--compare", tmp_path / "missing.nii.gz"], "no such file or folder")):
        bad = tmp_path / "bad.png"
        proc = medviewer("screenshot", MRI, *args, "--out", bad, check=False)
        assert proc.returncode == 1 and words in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert not bad.exists()
