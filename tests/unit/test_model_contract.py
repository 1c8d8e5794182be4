"""A model refuses images outside its training distribution, not only outside its modality: the
shipped manifests record the physical extent (hippocampus-unet) and the colour (chest X-ray models)
of their training images, and check_input refuses what lies outside with a reason naming it.
No torch is needed: check_input only reads the manifest and the image's geometry (and pixels)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medviewer.ai.inference import check_input, colour_fraction, physical_extent
from medviewer.ai.registry import discover_models, read_manifest
from medviewer.io import open_volume
from tests.conftest import DEMO, REPO, SHARED_DATA

MODELS = REPO / "resources" / "models"
UNET = MODELS / "hippocampus-unet"
XRAY_MODELS = ("pneumonia-cnn", "pneumonia-svm", "pneumonia-rf", "cxr-anomaly")
DEMO_MRI = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"
DEMO_XRAY = DEMO / "xray" / "chest_xray_pneumonia.jpeg"
SHARED = SHARED_DATA
HIPPOCAMPUS = SHARED / "hippocampus" / "imagesTr"
BRAIN_T1 = SHARED / "brain_t1" / "KmeansTest_T1UCharRaw.nii.gz"
CHEST_XRAY = SHARED / "chest_xray" / "train"


@pytest.fixture(scope="module")
def unet():
    if not (UNET / "manifest.json").is_file():
        pytest.skip("the shipped hippocampus-unet is not in resources/models")
    return read_manifest(UNET)


def whole_head(crop):
    """The demo crop mirrored out to a 200x200x150 mm grid (1 mm voxels): tissue-like values
    everywhere, the size of a head."""
    x, y, z = crop.size
    pads = [((150 - z) // 2, 150 - z - (150 - z) // 2), ((200 - y) // 2, 200 - y - (200 - y) // 2),
            ((200 - x) // 2, 200 - x - (200 - x) // 2)]
    return crop.copy_geometry(np.pad(crop.data, pads, mode="reflect"))


def test_the_shipped_manifest_records_the_extent_of_its_training_crops(unet):
    ext = unet.input["extent_mm"]
    # MSD hippocampus crops: a few centimetres per axis, hippocampus long axis front-back
    assert 25 <= ext["median"][0] <= 45 and 40 <= ext["median"][1] <= 60 and 25 <= ext["median"][2] <= 45
    assert all(lo <= m <= hi for lo, m, hi in zip(ext["min"], ext["median"], ext["max"]))
    tr = unet.manifest["training"]
    n_train = tr["n_cases"] - len(tr["val_cases"]) - len(tr.get("test_cases", []))
    assert ext["tolerance"] >= 1 and ext["measured_on"].startswith(f"{n_train} training-side cases")


def _typical(spec) -> str:
    """The training crops' median extent as the refusal names it, from the shipped manifest."""
    return "×".join(f"{v:g}" for v in spec.input["extent_mm"]["median"]) + " mm"


def test_the_demo_crop_passes(unet):
    crop = open_volume(DEMO_MRI)
    assert np.allclose(physical_extent(crop, unet.input["direction"]), [35, 51, 35])
    assert check_input(unet, crop) == ""


def test_a_whole_head_sized_volume_built_from_the_demo_crop_is_refused_naming_the_extents(unet):
    head = whole_head(open_volume(DEMO_MRI))
    assert head.size == (200, 200, 150)
    reason = check_input(unet, head)
    assert reason.startswith(f"hippocampus-unet was trained on hippocampus crops of about {_typical(unet)}")
    assert "this image covers 200×200×150 mm" in reason and "crop it to the hippocampus first" in reason
    # the same voxels stretched over a head-sized grid (spacing, not content, makes it a head)
    x, y, z = open_volume(DEMO_MRI).size
    stretched = open_volume(DEMO_MRI).copy_geometry(open_volume(DEMO_MRI).data,
                                                    spacing=(200 / x, 200 / y, 150 / z))
    assert "this image covers 200×200×150 mm" in check_input(unet, stretched)


def test_zero_padding_around_the_crop_is_not_a_head(unet):
    """Zero is what the trainer pads the crops with and what the zscore-nonzero normalisation leaves
    out: a crop on a larger zero grid (masked rather than cropped) is still a crop."""
    crop = open_volume(DEMO_MRI)
    padded = crop.copy_geometry(np.pad(crop.data, ((60, 60), (80, 80), (60, 60))))
    assert np.allclose(physical_extent(padded, unet.input["direction"], nonzero=True), [35, 51, 35])
    assert check_input(unet, padded) == ""


def test_too_thin_a_slab_is_refused(unet):
    crop = open_volume(DEMO_MRI)
    slab = crop.copy_geometry(crop.data[15:18])
    assert "this image covers only 35×51×3 mm" in check_input(unet, slab)


@pytest.mark.skipif(not HIPPOCAMPUS.is_dir(), reason="shared hippocampus data not here")
def test_every_shared_hippocampus_case_passes(unet):
    files = sorted(HIPPOCAMPUS.glob("*.nii.gz"))
    assert len(files) == 217
    refused = {f.name: r for f in files if (r := check_input(unet, open_volume(f)))}
    assert refused == {}


@pytest.mark.skipif(not BRAIN_T1.is_file(), reason="shared brain T1 not here")
def test_the_shared_whole_brain_t1_is_refused(unet):
    brain = open_volume(BRAIN_T1)
    assert brain.size == (128, 128, 62) and brain.spacing == (2.0, 2.0, 3.0)
    reason = check_input(unet, brain)
    # a coronal acquisition: in the model's (axial) axes 256 left-right, 186 front-back, 256 up-down
    assert "this image covers 256×186×256 mm" in reason and "crop it to the hippocampus first" in reason
    assert _typical(unet) in reason


@pytest.mark.skipif(not BRAIN_T1.is_file(), reason="shared brain T1 not here")
def test_infer_refuses_the_whole_brain_with_the_reason(unet, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "medviewer", "infer", "--model", "hippocampus-unet",
                           str(BRAIN_T1), "--out", str(tmp_path / "out"), "--device", "cpu"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MEDVIEWER_DATA_DIR": str(tmp_path / "user")})
    assert proc.returncode != 0
    assert f"hippocampus crops of about {_typical(unet)}" in proc.stderr and "256×186×256 mm" in proc.stderr
    assert not list((tmp_path / "out").glob("*.nii.gz"))


@pytest.mark.parametrize("name", XRAY_MODELS)
def test_xray_models_take_the_demo_xray_and_refuse_a_colour_picture(name):
    if not (MODELS / name / "manifest.json").is_file():
        pytest.skip(f"{name} not shipped")
    spec = read_manifest(MODELS / name)
    assert "extent_mm" not in spec.input  # JPEGs without pixel spacing: no millimetres to compare
    xray = open_volume(DEMO_XRAY)
    assert xray.is_rgb and colour_fraction(xray.data) == 0.0  # grey stored as RGB
    assert check_input(spec, xray) == ""
    grey = xray.copy_geometry(xray.data[..., 0].copy())
    assert check_input(spec, grey) == ""
    tinted = xray.copy_geometry(xray.data.copy())
    tinted.data[..., 0] = 255  # every pixel red-shifted: a colour picture, not an X-ray
    reason = check_input(spec, tinted)
    assert reason.startswith(f"{name} was trained on grey chest X-rays (no coloured pixels)")
    assert "100% of this image's pixels are coloured" in reason
    annotated = xray.copy_geometry(xray.data.copy())
    annotated.data[0, 10:14, 10:60] = (255, 0, 0)  # a small red mark on the film still runs
    assert check_input(spec, annotated) == ""


@pytest.mark.skipif(not CHEST_XRAY.is_dir(), reason="shared chest X-rays not here")
def test_shared_training_xrays_pass():
    specs = [read_manifest(MODELS / n) for n in XRAY_MODELS if (MODELS / n / "manifest.json").is_file()]
    files = [f for cls in ("NORMAL", "PNEUMONIA") for f in sorted((CHEST_XRAY / cls).glob("*.jpeg"))[::40]]
    assert len(files) > 100 and specs
    refused = [(s.name, f.name) for f in files for s in specs if check_input(s, open_volume(f))]
    assert refused == []


@pytest.mark.skipif(not HIPPOCAMPUS.is_dir(), reason="shared hippocampus data not here")
def test_the_shipped_figures_are_reproduced_from_the_training_cases(unet):
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from measure_training_contract import hippocampus
    finally:
        sys.path.remove(str(REPO / "scripts"))
    (path, (key, value)), = hippocampus(MODELS, HIPPOCAMPUS.parent).items()
    assert key == "extent_mm" and value == unet.input["extent_mm"]


@pytest.mark.skipif(not HIPPOCAMPUS.is_dir(), reason="shared hippocampus data not here")
def test_the_segmentation_trainer_writes_the_extent_of_its_training_cases(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("monai")
    from medviewer.ai.training.segmentation import case_split_three, discover_cases, train_segmentation

    out = tmp_path / "tiny-unet"
    train_segmentation(HIPPOCAMPUS.parent, out, size=(32, 48, 32), epochs=1, limit=4, name="tiny-unet",
                       progress=lambda s: None)
    spec = read_manifest(out)
    ext = spec.input["extent_mm"]
    cases = discover_cases(HIPPOCAMPUS.parent)[:4]
    train_idx, val_idx, test_idx = case_split_three(4, seed=0)
    assert len(train_idx) == 2 and len(val_idx) == len(test_idx) == 1
    measured = np.array([physical_extent(open_volume(cases[i][1]), spec.input["direction"]) for i in train_idx])
    assert ext["min"] == measured.min(0).tolist() and ext["max"] == measured.max(0).tolist()
    assert ext["measured_on"].startswith("2 training-side cases")
    assert check_input(spec, open_volume(DEMO_MRI)) == ""
    assert "crop it to the hippocampus first" in check_input(spec, whole_head(open_volume(DEMO_MRI)))


def _old_style(folder: Path, source: Path) -> Path:
    shutil.copytree(source, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["input"].pop("extent_mm", None)
    manifest["input"].pop("intensity", None)
    manifest["name"] = "old-" + manifest["name"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_an_old_manifest_without_the_fields_still_loads_and_passes(unet, tmp_path):
    folder = _old_style(tmp_path / "models" / "old-unet", UNET)
    entries = {e.name: e for e in discover_models([str(tmp_path / "models")])}
    assert entries["old-hippocampus-unet"].available, entries["old-hippocampus-unet"].reason
    old = entries["old-hippocampus-unet"].spec
    assert old.folder == folder and "extent_mm" not in old.input
    assert check_input(old, whole_head(open_volume(DEMO_MRI))) == ""  # nothing recorded, nothing refused
    xray_folder = _old_style(tmp_path / "xr" / "old-cnn", MODELS / "pneumonia-cnn")
    tinted = open_volume(DEMO_XRAY)
    tinted.data[..., 0] = 255
    assert check_input(read_manifest(xray_folder), tinted) == ""


def test_a_malformed_contract_makes_the_model_unavailable_with_the_reason(unet, tmp_path):
    folder = tmp_path / "models" / "bad-unet"
    shutil.copytree(UNET, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["name"] = "bad-unet"
    manifest["input"]["extent_mm"] = {"min": [30, 40], "max": [40, 50, 60]}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    entry = next(e for e in discover_models([str(tmp_path / "models")]) if e.name == "bad-unet")
    assert not entry.available and "extent_mm needs min and max" in entry.reason
    # the shipped models are still there
    assert all(e.available for e in discover_models() if e.source == "built-in")


def test_check_input_imports_no_torch():
    code = ("import sys; from medviewer.ai.inference import check_input; from medviewer.ai.registry import "
            "read_manifest; from medviewer.io import open_volume; from pathlib import Path; "
            f"check_input(read_manifest(Path({str(UNET)!r})), open_volume({str(DEMO_MRI)!r})); "
            "print('torch' in sys.modules)")
    if not (UNET / "manifest.json").is_file():
        pytest.skip("the shipped hippocampus-unet is not in resources/models")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.stdout.strip() == "False", out.stderr
