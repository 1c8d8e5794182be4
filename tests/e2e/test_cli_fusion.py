"""`medviewer screenshot A --compare B --fusion overlay|checkerboard|difference`: B fused over A in the PNG;
a fusion that cannot be made is one clean line."""
import numpy as np
from PIL import Image

from medviewer.io import open_volume
from medviewer.io.writer import write_volume
from tests.conftest import DEMO
from tests.e2e.test_cli import medviewer

MRI = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"


def _hot(rgb: np.ndarray) -> np.ndarray:
    """Pixels of the 'hot' map's red-orange part (neither the grey image nor white)."""
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    return (r > 120) & (g < r - 40) & (b < 60)


def test_overlay_fuses_the_compare_image_in_its_colours(tmp_path):
    mri = open_volume(str(MRI))
    box = np.zeros(mri.shape, np.float32)
    box[:, 15:35, 8:28] = np.linspace(10.0, 100.0, 20)  # a block running through the map's colours
    moving = write_volume(mri.copy_geometry(box), str(tmp_path / "box.nii.gz"))
    plain, fused = tmp_path / "plain.png", tmp_path / "fused.png"
    medviewer("screenshot", MRI, "--layout", "single", "--size", "700x560", "--out", plain)
    proc = medviewer("screenshot", MRI, "--compare", moving, "--fusion", "overlay", "--layout", "single",
                     "--size", "700x560", "--out", fused)
    assert "layout single" in proc.stdout
    before, after = (np.asarray(Image.open(p).convert("RGB")) for p in (plain, fused))
    assert _hot(after).sum() > _hot(before).sum() + 5000  # the block, in the overlay's colours


def test_a_fusion_that_cannot_be_made_is_one_clean_line(tmp_path):
    proc = medviewer("screenshot", MRI, "--fusion", "overlay", "--out", tmp_path / "a.png", check=False)
    assert proc.returncode != 0 and "--fusion fuses the first --compare image" in proc.stderr
    proc = medviewer("screenshot", MRI, "--compare", MRI, "--fusion", "difference", "--layout", "3d",
                     "--out", tmp_path / "a.png", check=False)
    assert proc.returncode != 0 and "--fusion is shown in the slice views" in proc.stderr
    xray = next((DEMO / "xray").iterdir())
    proc = medviewer("screenshot", MRI, "--compare", xray, "--fusion", "checkerboard", "--out", tmp_path / "b.png",
                     check=False)
    assert proc.returncode != 0 and "cannot fuse a 2D image with a 3D one" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "b.png").exists()
