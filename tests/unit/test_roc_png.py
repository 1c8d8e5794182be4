"""ROC curve PNGs (medviewer.io.roc_png) and `medviewer evaluate --roc-png/--out`."""
import json
import os
import subprocess
import sys

import pytest
from PIL import Image, ImageFilter, ImageOps

from medviewer.core.errors import MedViewerError
from medviewer.io.roc_png import COLOURS, HEIGHT, PLOT, WIDTH, write_roc_png
from tests.conftest import DEMO, REPO, shared

PERFECT = {"label": "perfect", "fpr": [0.0, 0.0, 0.0, 0.5, 1.0], "tpr": [0.0, 0.5, 1.0, 1.0, 1.0], "auc": 1.0}
NOISY = {"label": "noisy", "fpr": [0.0, 0.1, 0.1, 0.3, 0.3, 0.6, 1.0],
         "tpr": [0.0, 0.2, 0.5, 0.5, 0.8, 0.9, 1.0], "auc": 0.79}


def _close(pixel, colour, tol=40):
    return all(abs(int(p) - int(c)) <= tol for p, c in zip(pixel, colour))


def test_png_has_the_size_and_a_real_plot(tmp_path):
    path = tmp_path / "roc.png"
    assert write_roc_png(path, [PERFECT]) == str(path)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (WIDTH, HEIGHT)
        im = im.convert("RGB")
    colours = im.getcolors(maxcolors=WIDTH * HEIGHT)
    assert len(colours) > 50  # text, grid, curve and anti-aliasing, not a blank canvas
    assert max(colours)[1] == (255, 255, 255)  # on white
    # a perfect classifier runs up the left edge of the plot, then along its top
    left, top, right, bottom = PLOT
    up = [im.getpixel((x, y)) for y in range(top + 40, bottom - 40, 20) for x in (left - 1, left, left + 1)]
    along = [im.getpixel((x, y)) for x in range(left + 40, right - 40, 20) for y in (top - 1, top, top + 1)]
    for run in (up, along):
        assert sum(_close(p, COLOURS[0]) for p in run) >= len(run) // 3
    # the middle of the plot (above the chance line, off the legend) is background or grid, not curve
    middle = [im.getpixel((x, top + 60)) for x in range(left + 120, right - 120, 10)]
    assert not any(_close(p, COLOURS[0], tol=25) for p in middle)


def test_several_curves_get_distinct_colours(tmp_path):
    path = write_roc_png(tmp_path / "two.png", [PERFECT, NOISY], title="two models")
    with Image.open(path) as im:
        colours = {c for _n, c in im.convert("RGB").getcolors(maxcolors=WIDTH * HEIGHT)}
    for colour in COLOURS[:2]:
        assert any(_close(c, colour, tol=10) for c in colours)


def test_odd_but_valid_curves_are_drawn(tmp_path):
    many = [{**NOISY, "label": f"model {n} with a rather long name to shorten", "auc": float("nan")}
            for n in range(12)]
    write_roc_png(tmp_path / "many.png", many, title="t" * 300)  # colours cycle, long text fits
    write_roc_png(tmp_path / "point.png", [{"label": "one point", "fpr": [0.2], "tpr": [0.7]}])
    write_roc_png(tmp_path / "ints.png", [{"label": "ints", "fpr": (0, 1), "tpr": (0, 1), "auc": 0.5}])
    assert sorted(os.listdir(tmp_path)) == ["ints.png", "many.png", "point.png"]  # no temporary files left


def test_overwrites_in_place(tmp_path):
    path = tmp_path / "roc.png"
    path.write_bytes(b"old")
    write_roc_png(path, [NOISY])
    with Image.open(path) as im:
        assert im.size == (WIDTH, HEIGHT)
    assert os.listdir(tmp_path) == ["roc.png"]


@pytest.mark.parametrize("curves, message", [
    ([], "no curves"),
    ([{"label": "a", "fpr": [0, 0.5, 1], "tpr": [0, 1]}], "3 false positive rates but 2 true positive rates"),
    ([{"label": "a", "fpr": [], "tpr": []}], "no points"),
    ([{"label": "a", "fpr": [0, 1]}], "no 'tpr'"),
    ([{"label": "a", "fpr": [0, 2], "tpr": [0, 1]}], "outside [0, 1]"),
    ([{"label": "a", "fpr": [0, float("nan")], "tpr": [0, 1]}], "outside [0, 1]"),
    ([{"label": "a", "fpr": [0, "x"], "tpr": [0, 1]}], "non-numeric"),
])
def test_bad_curves_raise_a_clear_error(tmp_path, curves, message):
    with pytest.raises(MedViewerError, match=message.replace("[", r"\[").replace("]", r"\]")):
        write_roc_png(tmp_path / "bad.png", curves)
    assert not os.listdir(tmp_path)


def test_unwritable_place_raises_a_medviewer_error(tmp_path):
    with pytest.raises(MedViewerError, match="cannot write"):
        write_roc_png(tmp_path / "missing" / "roc.png", [PERFECT])


def test_module_imports_no_qt_torch_or_sklearn():
    code = ("import sys, medviewer.io.roc_png; "
            "print(sorted(m for m in ('PySide6', 'torch', 'sklearn', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


# --- the CLI, with evaluate() replaced (no torch needed) ---

def _fake_result(spec):
    if spec.task == "classification":
        return {"model": spec.name, "task": "classification", "n": 7, "positive_class": "PNEUMONIA",
                "roc_auc": 0.79, "roc": {"fpr": NOISY["fpr"], "tpr": NOISY["tpr"]}}
    return {"model": spec.name, "task": "segmentation", "n": 1, "labels": {}, "mean_dice": 0.8}


@pytest.fixture
def fake_evaluate(monkeypatch, tmp_path):
    import medviewer.ai.evaluation as evaluation

    if not (REPO / "resources/models/pneumonia-cnn/manifest.json").is_file():
        pytest.skip("shipped pneumonia-cnn absent")
    monkeypatch.setenv("MEDVIEWER_DATA_DIR", str(tmp_path / "user"))
    monkeypatch.setattr(evaluation, "evaluate", lambda spec, *a, **k: _fake_result(spec))
    monkeypatch.chdir(tmp_path)


def test_cli_roc_png_and_out(fake_evaluate, tmp_path, capsys):
    from medviewer.cli import main

    assert main(["evaluate", "--model", "pneumonia-cnn", "--data", "x", "--roc-png", "a.png"]) == 0
    captured = capsys.readouterr()
    assert "wrote a.png" in captured.err and "roc_png" not in captured.out
    assert [p for p in os.listdir(tmp_path) if p != "user"] == ["a.png"]

    assert main(["evaluate", "--model", "pneumonia-cnn", "--data", "x", "--out", "res", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    png = os.path.join("res", "roc_pneumonia-cnn.png")
    assert printed["roc_png"] == png and (tmp_path / png).is_file()
    saved = json.loads((tmp_path / "res" / "evaluation.json").read_text())
    assert saved["roc"]["fpr"] == NOISY["fpr"] and saved["roc_png"] == png
    assert sorted(os.listdir(tmp_path / "res")) == ["evaluation.json", "roc_pneumonia-cnn.png"]


def test_cli_without_roc_png_or_out_writes_nothing(fake_evaluate, tmp_path, capsys):
    from medviewer.cli import main

    assert main(["evaluate", "--model", "pneumonia-cnn", "--data", "x", "--json"]) == 0
    assert "roc_png" not in json.loads(capsys.readouterr().out)
    assert [p for p in os.listdir(tmp_path) if p != "user"] == []


def test_cli_roc_png_in_a_missing_folder_fails_before_evaluating(fake_evaluate, capsys):
    from medviewer.cli import main

    assert main(["evaluate", "--model", "pneumonia-cnn", "--data", "x", "--roc-png", "no/such/a.png"]) == 1
    assert "no such folder" in capsys.readouterr().err


def test_cli_segmentation_rejects_roc_png_and_out_writes_only_json(fake_evaluate, tmp_path, capsys):
    from medviewer.cli import main

    if not (REPO / "resources/models/hippocampus-unet/manifest.json").is_file():
        pytest.skip("shipped hippocampus-unet absent")
    assert main(["evaluate", "--model", "hippocampus-unet", "--data", "x", "--roc-png", "a.png"]) == 1
    assert "ROC curves are for classification models" in capsys.readouterr().err
    assert main(["evaluate", "--model", "hippocampus-unet", "--data", "x", "--out", "res"]) == 0
    assert os.listdir(tmp_path / "res") == ["evaluation.json"]


# --- end to end: the shipped classifier on a tiny folder-per-class set made from the demo X-ray ---

def _run(*args, tmp_path):
    env = {**os.environ, "MEDVIEWER_DATA_DIR": str(tmp_path / "user"), "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "medviewer", "evaluate", *map(str, args)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=REPO)


def _tiny_dataset(root):
    """NORMAL/ and PNEUMONIA/ with two images each, all derived from the demo X-ray (labels are not
    meant to be right: the test is about the outputs, not the model's accuracy)."""
    with Image.open(DEMO / "xray" / "chest_xray_pneumonia.jpeg") as im:
        grey = im.convert("L")
    variants = {"PNEUMONIA": [grey, ImageOps.mirror(grey)],
                "NORMAL": [grey.filter(ImageFilter.GaussianBlur(3)), ImageOps.autocontrast(grey, cutoff=5)]}
    for cls, images in variants.items():
        (root / cls).mkdir(parents=True)
        for n, image in enumerate(images):
            image.save(root / cls / f"img{n}.png")
    return root


def test_evaluate_out_writes_roc_png_and_evaluation_json(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("monai")
    if not (REPO / "resources/models/pneumonia-cnn/manifest.json").is_file():
        pytest.skip("shipped pneumonia-cnn absent")
    data = _tiny_dataset(tmp_path / "data")
    out = tmp_path / "results"
    proc = _run("--model", "pneumonia-cnn", "--data", data, "--out", out, "--device", "cpu", "--json",
                tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    png = out / "roc_pneumonia-cnn.png"
    assert printed["roc_png"] == str(png) and printed["n"] == 4
    saved = json.loads((out / "evaluation.json").read_text())
    assert saved["tp"] + saved["fn"] == 2 and saved["tn"] + saved["fp"] == 2
    assert len(saved["roc"]["fpr"]) == len(saved["roc"]["tpr"]) == 5 and saved["roc_png"] == str(png)
    with Image.open(png) as im:
        assert im.size == (WIDTH, HEIGHT)
        assert len(im.convert("RGB").getcolors(maxcolors=WIDTH * HEIGHT)) > 50


def test_evaluate_segmentation_out_writes_only_the_json(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("monai")
    if not (REPO / "resources/models/hippocampus-unet/manifest.json").is_file():
        pytest.skip("shipped hippocampus-unet absent")
    data = shared("hippocampus")
    out = tmp_path / "results"
    proc = _run("--model", "hippocampus-unet", "--data", data, "--limit", "1", "--out", out, "--device", "cpu",
                tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert os.listdir(out) == ["evaluation.json"] and "mean_dice" in proc.stdout
    assert json.loads((out / "evaluation.json").read_text())["n"] == 1
