"""Render the real main window offscreen to a PNG (`medviewer screenshot`)."""
from __future__ import annotations

from medviewer.core.display import Window
from medviewer.core.errors import MedViewerError


def render_screenshot(paths: list[str], out: str, layout: str = "mpr", preset: str | None = None,
                      window: float | None = None, level: float | None = None, slice_number: int | None = None,
                      size: tuple[int, int] = (1400, 850), series: str | None = None) -> dict:
    from medviewer.ui.main_window import MainWindow
    from medviewer.ui.qt import application

    app = application()
    win = MainWindow(persistent=False)
    win.resize(*size)
    win.show()
    if series is not None:
        from medviewer.io import discover

        source = discover(paths[0]).find(series)
        win._on_discovered([source], [])  # same path as a double-click in the series browser
        win.load_source(source, wait=True)
    else:
        win.open_paths(paths, wait=True)
    if win.session.volume is None:
        raise MedViewerError("nothing could be opened: " + ("; ".join(win.problems) or "no images"))
    win.set_layout("single" if layout == "single" else ("2x2" if layout == "2x2" else "1x3"))
    if preset:
        win.apply_preset(preset)
    if window is not None or level is not None:
        w = win.session.window
        win.session.set_window(Window(window if window is not None else w.width, level if level is not None else w.level))
    if slice_number is not None:
        view = win.grid.active_view()
        n = view.geometry_.n_slices
        if not 1 <= slice_number <= n:
            raise MedViewerError(f"--slice {slice_number} is outside 1..{n}")
        view.set_slice(slice_number - 1)
    for _ in range(3):
        app.processEvents()
    win.grid.fit_all()
    app.processEvents()
    image = win.grab()
    if not image.save(out):
        raise MedViewerError(f"{out}: could not write the PNG")
    info = {"out": out, "source": win.session.source_id, "layout": win.grid.layout_name,
            "window": [win.session.window.width, win.session.window.level],
            "cursor": [int(v) for v in win.session.cursor], "problems": list(win.problems)}
    win.close()
    return info
