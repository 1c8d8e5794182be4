"""Model files are hostile input: a model folder whose manifest or weights try to make MedViewer
read outside the folder, run code, or build something other than a MONAI network is refused at
discovery, by `medviewer models` and by `medviewer infer`, with one line giving the reason; the
payloads never run. Real files, made here: torch.save archives, a __reduce__ payload, symlinks,
skops files with untrusted types."""
import hashlib
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from medviewer.ai import model_files, registry
from medviewer.ai.registry import check_weights, discover_models, read_manifest
from medviewer.cli import main
from medviewer.core.errors import MedViewerError

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "resources" / "models"
UNET = {"class": "monai.networks.nets.UNet",
        "args": {"spatial_dims": 2, "in_channels": 1, "out_channels": 3, "channels": [4, 8], "strides": [2]}}


@pytest.fixture(autouse=True)
def no_user_models(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEWER_DATA_DIR", str(tmp_path / "user"))
    monkeypatch.delenv("MEDVIEWER_MODELS", raising=False)
    monkeypatch.setattr(model_files, "_verdicts", {})


def unet_state():
    from monai.networks.nets import UNet

    torch.manual_seed(0)
    return UNet(**UNET["args"]).state_dict()


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_manifest(folder: Path, name: str, weights: str, digest: str, network=UNET, **overrides) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "name": name, "version": "0.1", "task": "segmentation",
        "input": {"modality": "MR", "dims": 2, "channels": 1, "normalisation": "zscore"},
        "outputs": {"labels": {"1": {"name": "a"}, "2": {"name": "b"}}},
        "network": network, "weights": weights, "sha256": digest,
        "licence": "test fixture", "intended_use": "research and demonstration, not for clinical use",
    }
    manifest.update(overrides)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def torch_model(root: Path, name: str, obj, network=UNET) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    torch.save(obj, folder / "model.pt")
    return write_manifest(folder, name, "model.pt", sha(folder / "model.pt"), network=network)


def skops_model(root: Path, name: str, obj) -> Path:
    import skops.io as sio

    folder = root / name
    folder.mkdir(parents=True)
    sio.dump(obj, folder / "model.skops")
    manifest = json.loads((SHIPPED / "pneumonia-svm" / "manifest.json").read_text())
    manifest.update(name=name, weights="model.skops", sha256=sha(folder / "model.skops"))
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def models_lines(root: Path, capsys) -> dict[str, str]:
    """`medviewer models --models ROOT`: {name: its one line}."""
    assert main(["models", "--models", str(root)]) == 0
    out = capsys.readouterr().out
    return {line.split("  ")[0]: line for line in out.splitlines()}


def infer_error(root: Path, name: str, capsys, image: str = "no-image-needed.png") -> str:
    """`medviewer infer` refuses before it reads the image: its one stderr line."""
    assert main(["infer", "--model", name, "--models", str(root), image]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "weights_only=False" not in err
    return err


def assert_refused_everywhere(root: Path, name: str, words: str, capsys) -> str:
    line = models_lines(root, capsys)[name]
    assert "unavailable" in line and words in line, line
    assert words in infer_error(root, name, capsys)
    return line


# --- paths in the manifest ------------------------------------------------------------------------
def test_a_weights_path_outside_the_folder_is_refused_before_anything_reads_it(tmp_path, capsys, monkeypatch):
    root = tmp_path / "models"
    outside = tmp_path / "secret.pt"
    torch.save(unet_state(), outside)  # a perfectly good state dict, but not the model's file
    write_manifest(root / "escape", "escape", "../../secret.pt", sha(outside))
    passwd = Path("/etc/passwd")
    if passwd.is_file():
        write_manifest(root / "passwd", "passwd", "../" * 12 + "etc/passwd", sha(passwd))
    opened: list[str] = []
    real_hash = registry.sha256_of
    monkeypatch.setattr(registry, "sha256_of", lambda p: opened.append(str(p)) or real_hash(p))
    monkeypatch.setattr(torch, "load", lambda *a, **k: opened.append("torch.load") or pytest.fail("loaded"))
    assert_refused_everywhere(root, "escape", "outside the model's folder", capsys)
    if passwd.is_file():
        assert_refused_everywhere(root, "passwd", "outside the model's folder", capsys)
    with pytest.raises(MedViewerError, match="outside the model's folder"):
        from medviewer.ai.backends.torch_loader import load_network

        load_network(read_manifest(root / "escape"))
    assert "torch.load" not in opened  # nothing was unpickled, and neither file was even hashed
    assert not {str(outside), str(passwd.resolve())} & set(opened) and opened, opened


def test_a_symlink_that_escapes_the_folder_is_refused_and_one_inside_is_followed(tmp_path, capsys):
    root = tmp_path / "models"
    outside = tmp_path / "elsewhere.pt"
    torch.save(unet_state(), outside)
    folder = write_manifest(root / "linked", "linked", "model.pt", sha(outside))
    os.symlink(outside, folder / "model.pt")
    assert_refused_everywhere(root, "linked", "outside the model's folder", capsys)
    inside = write_manifest(root / "blob", "blob", "model.pt", sha(outside))
    (inside / "blobs").mkdir()
    shutil.copy(outside, inside / "blobs" / "abc.pt")
    os.symlink(inside / "blobs" / "abc.pt", inside / "model.pt")
    assert "available" == models_lines(root, capsys)["blob"].rsplit("  ", 1)[1]


def test_a_manifest_that_is_a_symlink_out_of_the_folder_is_not_read(tmp_path):
    root = tmp_path / "models"
    real = write_manifest(tmp_path / "real", "real", "model.pt", "0" * 64)
    (root / "m").mkdir(parents=True)
    os.symlink(real / "manifest.json", root / "m" / "manifest.json")
    entry = next(e for e in discover_models([str(root)]) if e.folder.name == "m")
    assert not entry.available and "outside the model's folder" in entry.reason


# --- torch weights ----------------------------------------------------------------------------------
class Payload:
    """Unpickling this runs exec(): it writes the marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


def test_a_pickle_payload_never_runs_and_is_refused_in_one_line(tmp_path, capsys):
    root = tmp_path / "models"
    marker = tmp_path / "pwned"
    folder = torch_model(root, "payload", {"conv.weight": torch.zeros(2), "x": Payload(marker)})
    line = assert_refused_everywhere(root, "payload", "builtin__.exec", capsys)  # protocol 2 names
    assert "not part of a state dict" in line
    from medviewer.ai.backends.torch_loader import load_network

    with pytest.raises(MedViewerError, match="exec, which is not part of a state dict"):
        load_network(read_manifest(folder))
    raw = root / "raw"  # the same payload as a bare pickle (no zip): refused too
    raw.mkdir()
    (raw / "model.pt").write_bytes(pickle.dumps(Payload(marker)))
    write_manifest(raw, "raw", "model.pt", sha(raw / "model.pt"))
    assert_refused_everywhere(root, "raw", "not a torch.save zip archive", capsys)
    assert not marker.exists()


def test_payload_is_live(tmp_path):
    """The payload of the test above does what it says when a plain unpickler meets it."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.read_text() == "ran"


def test_torch_refusing_a_pickle_is_one_line_without_advice(tmp_path, monkeypatch):
    """Should a file get past the check, torch.load(weights_only=True) refuses it, and that
    refusal is one line: no UnpicklingError traceback, no advice to use weights_only=False."""
    from medviewer.ai.backends import torch_loader

    marker = tmp_path / "pwned"
    folder = torch_model(tmp_path / "models", "payload", {"w": Payload(marker)})
    monkeypatch.setattr(torch_loader, "check_weights", lambda spec: "")
    with pytest.raises(MedViewerError) as caught:
        torch_loader.load_network(read_manifest(folder))
    message = str(caught.value)
    assert "weights_only=True refused it" in message and "weights_only=False" not in message
    assert len(message.splitlines()) == 1 and caught.value.__cause__ is None
    assert not marker.exists()


def test_a_class_outside_the_allow_list_is_refused(tmp_path, capsys):
    root = tmp_path / "models"
    linear = torch.nn.Linear(3, 2)
    torch_model(root, "torch-linear", linear.state_dict(),
                network={"class": "torch.nn.Linear", "args": {"in_features": 3, "out_features": 2}})
    torch_model(root, "torchvision", unet_state(), network={"class": "torchvision.models.resnet18", "args": {}})
    torch_model(root, "sneaky", unet_state(), network={"class": "monai.networks.nets.unet.torch.load", "args": {}})
    torch_model(root, "scripted", unet_state(), network={"torchscript": True})
    for name in ("torch-linear", "torchvision", "sneaky"):
        assert_refused_everywhere(root, name, "is not from monai.networks.nets", capsys)
    assert_refused_everywhere(root, "scripted", "TorchScript networks are not accepted", capsys)


@pytest.mark.parametrize("make, words", [
    (lambda: {"model": unet_state(), "epoch": 3}, "entry 'model' is a mapping, not a tensor"),  # a checkpoint
    (lambda: {"conv.weight": torch.zeros(2), "note": "trained"}, "entry 'note' is a str, not a tensor"),
    (lambda: [torch.zeros(2)], "holds a list, not a state dict"),
    (lambda: {1: torch.zeros(2)}, "keys are not all names"),
])
def test_a_pickle_that_is_not_a_state_dict_is_refused(tmp_path, capsys, make, words):
    root = tmp_path / "models"
    torch_model(root, "not-a-state-dict", make())
    assert_refused_everywhere(root, "not-a-state-dict", words, capsys)


def test_a_whole_pickled_module_is_refused_without_importing_its_class(tmp_path, capsys):
    from monai.networks.nets import UNet

    torch_model(tmp_path / "models", "whole", UNet(**UNET["args"]))
    assert_refused_everywhere(tmp_path / "models", "whole", "monai.networks.nets.unet.UNet", capsys)


def _zip_with_pickle(path: Path, data: bytes) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", data)
        z.writestr("archive/version", "3\n")


def test_damaged_or_inconsistent_archives_are_refused(tmp_path):
    root = tmp_path / "models"
    good = torch_model(root, "good", unet_state())
    assert check_weights(read_manifest(good)) == ""
    # a memo index of 2**31 would make the C unpickler allocate and clear 32 GB: refused first
    bomb = root / "bomb"
    bomb.mkdir()
    _zip_with_pickle(bomb / "model.pt", b"\x80\x02N" + b"r" + struct.pack("<I", 0x7FFFFFF0) + b".")
    write_manifest(bomb, "bomb", "model.pt", sha(bomb / "model.pt"))
    assert "memo index out of range" in check_weights(read_manifest(bomb))
    # a tensor whose storage is not in the archive
    (root / "nostorage").mkdir()
    with zipfile.ZipFile(good / "model.pt") as src, zipfile.ZipFile(root / "nostorage" / "model.pt", "w") as dst:
        for info in src.infolist():
            if not info.filename.endswith("/data/0"):
                dst.writestr(info.filename, src.read(info))
    write_manifest(root / "nostorage", "nostorage", "model.pt", sha(root / "nostorage" / "model.pt"))
    assert "storage 0 is not in the archive" in check_weights(read_manifest(root / "nostorage"))
    (root / "garbage").mkdir()
    (root / "garbage" / "model.pt").write_bytes(b"PK\x03\x04" + os.urandom(200))
    write_manifest(root / "garbage", "garbage", "model.pt", sha(root / "garbage" / "model.pt"))
    assert "refused" in check_weights(read_manifest(root / "garbage"))


def test_weights_that_do_not_fit_the_network_fail_in_one_line(tmp_path):
    from medviewer.ai.backends.torch_loader import load_network

    other = dict(UNET, args=dict(UNET["args"], channels=[8, 16]))
    folder = torch_model(tmp_path / "models", "misfit", unet_state(), network=other)
    with pytest.raises(MedViewerError, match="do not fit monai.networks.nets.UNet") as caught:
        load_network(read_manifest(folder))
    assert len(str(caught.value).splitlines()) == 1


# --- skops files ------------------------------------------------------------------------------------
def test_a_skops_file_with_untrusted_types_is_refused(tmp_path, capsys):
    pytest.importorskip("skops")
    import numpy as np
    from sklearn.datasets import dump_svmlight_file
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    root = tmp_path / "models"
    marker = tmp_path / "written.svmlight"
    x = np.arange(8.0).reshape(4, 2)
    # every type here is scikit-learn's, and skops trusts FunctionTransformer by default: the old
    # "sklearn." prefix rule loaded it, and predicting would have written `marker`
    writer = FunctionTransformer(func=dump_svmlight_file, kw_args={"y": np.zeros(4), "f": str(marker)})
    skops_model(root, "writes-files", Pipeline([("f", writer), ("s", StandardScaler())]))
    skops_model(root, "calls-print", {"model": StandardScaler().fit(x), "hook": print})
    line = assert_refused_everywhere(root, "writes-files", "not trusted", capsys)
    assert "FunctionTransformer" in line
    assert "builtins.print" in assert_refused_everywhere(root, "calls-print", "not trusted", capsys)
    from medviewer.ai.backends.sklearn_io import load

    for name in ("writes-files", "calls-print"):
        with pytest.raises(MedViewerError, match="not trusted"):
            load(read_manifest(root / name))
    assert not marker.exists()


def test_the_explicit_skops_list_agrees_with_skops_own_audit_on_the_shipped_models():
    sio = pytest.importorskip("skops.io")
    from medviewer.ai.skops_check import SKLEARN_TYPES, skops_problem

    for path in sorted(SHIPPED.glob("*/model.skops")):
        assert skops_problem(path) == "", path
        assert set(sio.get_untrusted_types(file=str(path))) <= SKLEARN_TYPES, path


# --- discovery: once per SHA-256, shipped models unchanged, no heavy imports ------------------------
def test_contents_are_checked_once_per_sha256(tmp_path, monkeypatch, capsys):
    from medviewer.ai import skops_check, state_dict_check

    calls: list[str] = []
    for module, name in ((state_dict_check, "state_dict_problem"), (skops_check, "skops_problem")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda p, real=real: calls.append(Path(p).name) or real(p))
    root = tmp_path / "models"
    torch_model(root, "one", unet_state())
    shutil.copytree(root / "one", root / "copy")  # same weights, same SHA-256: looked at once
    entries = discover_models([str(root)])
    shipped = [e for e in entries if e.source == "built-in"]
    assert shipped and all(e.available for e in entries), [(e.name, e.reason) for e in entries]
    first = len(calls)
    assert first == len({e.spec.sha256 for e in entries})
    discover_models([str(root)])
    models_lines(root, capsys)
    from medviewer.ai.backends.torch_loader import load_network

    load_network(read_manifest(root / "one"))
    assert len(calls) == first


def test_listing_models_imports_neither_torch_nor_scikit_learn(tmp_path):
    code = ("import sys; from medviewer.ai.registry import discover_models; "
            "entries = discover_models(); assert entries and all(e.available for e in entries), "
            "[(e.name, e.reason) for e in entries]; "
            "print(sorted(m for m in ('torch', 'sklearn', 'skops', 'monai') if m in sys.modules))")
    env = {**os.environ, "MEDVIEWER_DATA_DIR": str(tmp_path / "user")}
    env.pop("MEDVIEWER_MODELS", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO,
                         env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_models_lines_carry_no_control_characters(tmp_path, capsys):
    root = tmp_path / "models"
    folder = torch_model(root, "plain", unet_state())
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["name"] = "evil\x1b[2J"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (root / "odd\x1b]0;title\x07").mkdir()
    assert main(["models", "--models", str(root)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "the name must be plain printable text" in out


def test_opcodes_a_state_dict_never_uses_are_refused(tmp_path):
    """A set costs 216 bytes per pickle byte: opcodes outside a state dict's are refused before
    anything is built, which bounds what a 16 MB data.pkl can make."""
    folder = tmp_path / "sets"
    folder.mkdir()
    _zip_with_pickle(folder / "model.pt", b"\x80\x04(" + b"\x8f" * 1000 + b"l.")  # MARK EMPTY_SET... LIST
    write_manifest(folder, "sets", "model.pt", sha(folder / "model.pt"))
    assert "opcode EMPTY_SET" in check_weights(read_manifest(folder))


def test_a_schema_larger_than_the_memory_allows_is_refused(monkeypatch):
    from medviewer.ai.skops_check import skops_problem

    rf = SHIPPED / "pneumonia-rf" / "model.skops"
    if not rf.is_file():
        pytest.skip("the shipped pneumonia-rf is not in resources/models")
    monkeypatch.setenv("MEDVIEWER_MEMORY_LIMIT", "8M")  # its schema.json is 4 MB
    assert "of memory" in skops_problem(rf)


def test_a_manifest_of_megabytes_is_not_read(tmp_path):
    write_manifest(tmp_path / "models" / "huge", "huge", "model.pt", "0" * 64, description="x" * (2 << 20))
    entry = next(e for e in discover_models([str(tmp_path / "models")]) if e.folder.name == "huge")
    assert not entry.available and "a manifest is a few kB" in entry.reason


def test_a_yaml_manifest_with_aliases_is_refused(tmp_path):
    yaml = pytest.importorskip("yaml")
    aliased = tmp_path / "models" / "aliased"
    aliased.mkdir(parents=True)
    # ten levels of nine aliases each: 9**10 strings once expanded (by `models --json`, say)
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 11)]
    (aliased / "manifest.yaml").write_text("\n".join(lines) + "\nname: aliased\n")
    assert yaml.safe_load((aliased / "manifest.yaml").read_text())["name"] == "aliased"
    entry = next(e for e in discover_models([str(tmp_path / "models")]) if e.folder.name == "aliased")
    assert "anchors and aliases are not accepted" in entry.reason


# --- property: any bytes give a verdict, and what passes is what torch loads ------------------------
def _flipped(data: bytes, flips, cut) -> bytes:
    out = bytearray(data)
    for where, value in flips:
        out[int(where * (len(out) - 1))] = value
    return bytes(out[: max(1, int(cut * len(out)))])


def _rezipped(archive: bytes, member_suffix: str, change) -> bytes:
    """The archive with one member's bytes changed (so the mutation reaches the parser)."""
    import io

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, change(data) if info.filename.endswith(member_suffix) else data)
    return out.getvalue()


@pytest.fixture(scope="module")
def seed_files(tmp_path_factory):
    import io

    folder = tmp_path_factory.mktemp("seeds")
    buffer = io.BytesIO()
    torch.save(unet_state(), buffer)
    seeds = {"torch": buffer.getvalue()}
    skops = SHIPPED / "pneumonia-svm" / "model.skops"
    if skops.is_file():
        seeds["skops"] = skops.read_bytes()
    return folder, seeds


def test_any_mutation_gets_a_one_line_verdict_and_what_passes_torch_loads(seed_files):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from medviewer.ai.skops_check import skops_problem
    from medviewer.ai.state_dict_check import state_dict_problem

    folder, seeds = seed_files
    flips = st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=8)

    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(kind=st.sampled_from(sorted(seeds)), inner=st.booleans(), flips=flips,
           cut=st.one_of(st.just(1.0), st.floats(0.01, 1)))
    def check(kind, inner, flips, cut):
        member = "data.pkl" if kind == "torch" else "schema.json"
        data = (_rezipped(seeds[kind], member, lambda b: _flipped(b, flips, cut)) if inner
                else _flipped(seeds[kind], flips, cut))
        path = folder / f"case.{kind}"
        path.write_bytes(data)
        verdict = (state_dict_problem if kind == "torch" else skops_problem)(path)
        assert isinstance(verdict, str) and verdict.isprintable(), verdict
        if kind == "torch" and not verdict:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
            assert all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())

    check()
