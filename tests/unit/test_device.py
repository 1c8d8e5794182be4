import pytest

from medviewer.ai.device import choose_device
from medviewer.core.errors import MedViewerError

torch = pytest.importorskip("torch")


def test_auto_prefers_cuda_then_mps_then_cpu():
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available() else "cpu")
    assert choose_device("auto") == expected
    assert choose_device(None) == expected


def test_cpu_can_always_be_forced_and_env_overrides(monkeypatch):
    assert choose_device("cpu") == "cpu"
    monkeypatch.setenv("MEDVIEWER_DEVICE", "cpu")
    assert choose_device() == "cpu"


def test_absent_or_unknown_device_is_a_clear_error():
    with pytest.raises(MedViewerError, match="unknown device"):
        choose_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(MedViewerError, match="not available"):
            choose_device("cuda")
