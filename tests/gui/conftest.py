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
def demo_window(qtbot):
    """A shown main window with the demo CT open (call with a size)."""
    def make(width: int = 1400, height: int = 850):
        from medviewer.ui.main_window import MainWindow

        w = MainWindow()
        qtbot.addWidget(w)
        w.resize(width, height)
        w.show()
        w.open_paths([str(DEMO / "ct_chest_20")], wait=True)
        assert w.session.volume is not None
        return w
    return make
