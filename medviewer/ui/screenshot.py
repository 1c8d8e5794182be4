"""Render the real main window offscreen to a PNG (`medviewer screenshot`)."""
from __future__ import annotations

from medviewer.core.display import Window
from medviewer.core.errors import MedViewerError


def render_screenshot(paths: list[str], out: str, layout: str = "mpr", preset: str | None = None,
                      window: float | None = None, level: float | None = None, slice_number: int | None = None,
                      size: tuple[int, int] = (1400, 850), series: str | None = None,
                      model: str | None = None, explain: str | None = None,
                      model_dirs: list[str] | None = None, device: str | None = None) -> dict:
    from medviewer.ui.main_window import MainWindow
    from medviewer.ui.qt import application

    app = application()
    win = MainWindow(persistent=False, model_dirs=model_dirs)
    if device:
        win.ai_panel.bridge.service.device = device
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
    runs = []
    if model or explain:
        runs = _run_models(app, win, model, explain)
    for _ in range(3):
        app.processEvents()
    win.grid.fit_all()
    app.processEvents()
    image = win.grab()
    if not image.save(out):
        raise MedViewerError(f"{out}: could not write the PNG")
    info = {"out": out, "source": win.session.source_id, "layout": win.grid.layout_name,
            "window": [win.session.window.width, win.session.window.level],
            "cursor": [int(v) for v in win.session.cursor], "problems": list(win.problems), "runs": runs}
    win.close()
    return info


def _run_models(app, win, model: str | None, explain: str | None) -> list[str]:
    """Run the model (and its explanation) from the AI panel, as a user would, and wait for them."""
    import time

    import numpy as np

    panel = win.ai_panel
    win.docks["AI"].raise_()
    if model is None:
        entry = panel.selected_entry()
        if entry is None:
            raise MedViewerError("--explain needs --model NAME (no model fits this image)")
        model = entry.name
    entry = next((e for e in panel.entries if e.name == model), None)
    if entry is None:
        raise MedViewerError(f"no model named {model!r} (see `medviewer models`)")
    reason = panel.compatibility(entry)
    if reason:
        raise MedViewerError(f"{model} cannot run on this image: {reason}")
    panel.select_model(model)
    done = []
    for task in [None] + ([explain] if explain else []):
        job = panel.run(task)
        deadline = time.monotonic() + 600
        while not (job.done() and job not in panel.bridge.jobs):
            app.processEvents()
            time.sleep(0.01)
            if time.monotonic() > deadline:
                job.cancel()
                raise MedViewerError(f"{model}: {job.task} took longer than 10 minutes")
        if job.state != "done":
            raise MedViewerError(f"{model}: {job.task} {job.state}: {job.error}")
        done.append(f"{job.task} {1000 * job.timings.get('total', 0):.0f} ms on {job.device}")
    # show the slice where the result is
    session = win.session
    focus = None
    if session.heatmaps:
        focus = session.heatmaps[-1].data
    if session.active_labels is not None and session.active_labels.data.any():
        focus = session.active_labels.data > 0
    if focus is not None and session.volume is not None and not session.volume.is_2d:
        z, y, x = np.unravel_index(int(np.argmax(focus)), focus.shape)
        coords = np.argwhere(focus > (0 if focus.dtype == bool else 0.5 * focus.max()))
        if len(coords):
            z, y, x = np.round(coords.mean(0)).astype(int)
        session.set_cursor((x, y, z))
    return done
