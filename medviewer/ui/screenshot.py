"""Render the real main window offscreen to a PNG (`medviewer screenshot`)."""
from __future__ import annotations

from medviewer.core.display import Window
from medviewer.core.errors import MedViewerError


def render_screenshot(paths: list[str], out: str, layout: str = "mpr", preset: str | None = None,
                      window: float | None = None, level: float | None = None, slice_number: int | None = None,
                      size: tuple[int, int] = (1400, 850), series: str | None = None,
                      model: str | None = None, explain: str | None = None,
                      model_dirs: list[str] | None = None, device: str | None = None,
                      labels: str | None = None, render: str | None = None, camera: str | None = None,
                      compare: list[str] | None = None, fusion: str | None = None) -> dict:
    """layout: single, mpr (1x3), 2x2, 2x2-3d (three slice views and the 3D view), 3d (the 3D view
    alone: the PNG is the rendering, docks and toolbars hidden), compare-1x2 or compare-2x2 (the
    images of `compare` opened beside the first, one a pane, linked). With a 3D layout `preset`
    names a volume-rendering preset (ct-bone ...) when it is one, else a window preset. `fusion`
    (overlay, checkerboard, difference) shows the first `compare` image fused over the first image,
    as the Fusion dock does (through its registration transform when it has one)."""
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
    if labels:
        win.annotation.load_labels(labels)
    beside = [_open_beside(win, path) for path in compare or []]
    three_d = layout in ("3d", "2x2-3d")
    win.set_layout({"single": "single", "2x2": "2x2", "2x2-3d": "2x2-3d", "3d": "3d", "compare-1x2": "compare-1x2",
                    "compare-2x2": "compare-2x2"}.get(layout, "1x3"))
    if beside:
        for pane, entry in zip(win.grid.compare_panes(), [win.workspace.primary] + beside):
            pane.set_entry(entry)
    if fusion:
        if not beside:
            raise MedViewerError("--fusion fuses the first --compare image over INPUT: add --compare IMAGE")
        from medviewer.ui.workspace_view import fuse

        fuse(win.workspace.primary, beside[0], mode=fusion)
    view3d = win.grid.view3d() if three_d else None
    if three_d and view3d.problem:
        raise MedViewerError(f"no 3D view: {view3d.problem}")
    vr_preset = None
    if three_d and preset:
        vr_preset = volume_preset(preset)  # None when it names no volume-rendering preset
        if vr_preset is None and layout == "3d":
            from medviewer.ui.view3d.transfer_functions import PRESETS

            raise MedViewerError(f"--preset {preset!r} is not a volume-rendering preset; use one of "
                                 + ", ".join(_key(name) for name in PRESETS))
    if preset and vr_preset is None:
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
    if three_d:
        _set_up_3d(app, win, view3d, vr_preset, render, camera, alone=layout == "3d", size=size)
    if layout == "3d":
        save_rgb_png(out, view3d.capture())
    else:
        image = win.grab()
        if not image.save(out):
            raise MedViewerError(f"{out}: could not write the PNG")
    info = {"out": out, "source": win.session.source_id, "layout": win.grid.layout_name,
            "window": [win.session.window.width, win.session.window.level],
            "cursor": [int(v) for v in win.session.cursor], "problems": list(win.problems), "runs": runs,
            "images": [p.entry.title for p in win.grid.compare_panes()], "fusion": win.session.fusion.mode}
    win.close()
    return info


def _open_beside(win, path: str):
    """The image at `path` opened beside the first (its workspace entry)."""
    before = len(win.workspace.entries)
    problems = len(win.problems)
    win.open_beside([path], wait=True)
    if len(win.workspace.entries) == before:
        reason = "; ".join(win.problems[problems:]) or "no images"
        raise MedViewerError(f"--compare {path}: nothing could be opened: {reason}")
    return win.workspace.entries[-1]


def _key(name: str) -> str:
    return "-".join(name.lower().replace("_", " ").replace("-", " ").split())


def volume_preset(text: str) -> str | None:
    """The volume-rendering preset that `text` names ("ct-bone", "CT bone", Slicer's "CT-Bone"), or None."""
    from medviewer.ui.view3d.transfer_functions import PRESETS

    return next((name for name in PRESETS if _key(name) == _key(text)), None)


def save_rgb_png(out: str, rgb) -> None:
    from PIL import Image

    from medviewer.io.messages import os_reason
    from medviewer.io.writer import write_atomically

    try:
        write_atomically(out, lambda fh: Image.fromarray(rgb).save(fh, format="PNG"), suffix=".png")
    except OSError as exc:
        raise MedViewerError(f"{out}: could not write the PNG: {os_reason(exc)}") from exc


def _set_up_3d(app, win, view3d, preset: str | None, render: str | None, camera: str | None, alone: bool,
               size: tuple[int, int]) -> None:
    """The 3D view as the user would set it up from the 3D panel; with `alone` only the 3D view is
    shown, so that the rendering fills the window."""
    if alone:
        for dock in win.docks.values():
            dock.hide()
        from medviewer.ui.qt import QtWidgets

        for bar in win.findChildren(QtWidgets.QToolBar):
            bar.hide()
        win.menuBar().hide()
        win.statusBar().hide()
        win.resize(*size)  # the window may shrink now: the rendering is the whole PNG, at --size
        app.processEvents()
    scene = view3d.scene
    if render:
        scene.set_render_mode(render)
    if preset:
        scene.set_preset(preset)
    if camera:
        scene.set_camera(camera)
    if alone:  # the PNG is view3d.capture(): its one frame is rendered then
        if scene.surfaces is not None:
            scene.surfaces.flush()
    else:  # the window is grabbed: the frame must be in the widget
        view3d.flush()
        app.processEvents()


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
