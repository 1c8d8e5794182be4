"""GUI tests run without a display: Qt's offscreen platform, pyqtgraph bound to PySide6."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")


import pytest  # noqa: E402

from tests.conftest import DEMO  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    """Each GUI test gets its own settings, data folder (sessions, recovery) and no modal dialogs."""
    monkeypatch.setenv("MEDVIEWER_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("MEDVIEWER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MEDVIEWER_NO_DIALOGS", "1")


@pytest.fixture
def window(qtbot):
    """A shown main window with PATH open (call with the path and a size)."""
    from medviewer.ui.main_window import MainWindow

    def make(path, size=(1400, 850)):
        w = MainWindow()
        qtbot.addWidget(w)
        w.resize(*size)
        w.show()
        w.open_paths([str(path)], wait=True)
        assert w.session.volume is not None
        return w
    return make


@pytest.fixture
def demo_window(window):
    """A shown main window with the demo CT open (call with a size)."""
    def make(width: int = 1400, height: int = 850):
        return window(DEMO / "ct_chest_20", (width, height))
    return make
