"""Putting workspace entries on screen: one image beside another, one fused over another.

    show_beside(window, left, right)                # the 1x2 compare layout: left | right
    beside_whom(workspace, entry)                   # what an entry is compared with by default
    fuse(fixed, moving, mode="overlay")             # moving shown over fixed (session.fusion)
    transform_between(fixed, moving)                # the transform fixed world -> moving world, or None
    unfuse(workspace, entry)                        # every fusion that shows entry is turned off

Used by the Process, Register and Images panels, so that "show a result" means one thing.
"""
from __future__ import annotations

from medviewer.core.session import same_grid


def show_beside(window, left, right) -> None:
    """Left and right side by side in the compare-1x2 layout (the left pane's plane is kept)."""
    window.set_layout("compare-1x2")
    panes = window.grid.compare_panes()
    panes[0].set_entry(left)
    if len(panes) > 1 and right is not None:
        panes[1].set_entry(right)


def beside_whom(workspace, entry):
    """The image an entry is best compared with: the one it was computed from when it lies on that
    image's voxels (a filtered copy), else an image whose voxel grid it was resampled onto (a
    registration result: its fixed image), else its source, else the primary."""
    try:
        source = workspace.get(entry.derived_from) if entry.derived_from else None
    except KeyError:
        source = None
    if entry.volume is not None:
        grid_mates = [e for e in workspace.entries if e is not entry and e.volume is not None
                      and same_grid(e.volume, entry.volume)]
        if source is not None and source in grid_mates:
            return source
        if grid_mates:
            return grid_mates[0]
    return source or workspace.primary


def transform_between(fixed, moving):
    """What resamples `moving` onto `fixed`: its registration transform when it was registered to
    `fixed`; None (world coordinates taken as they are) otherwise."""
    return moving.transform if moving.transform_fixed == fixed.id else None


def fuse(fixed, moving, mode: str = "overlay", **display) -> None:
    """Show `moving` over `fixed` in `mode` ("overlay", "checkerboard", "difference"). Raises the
    fusion's MedViewerError (2D over 3D, no overlap) with nothing changed."""
    fixed.session.fusion.set(moving=moving.volume, transform=transform_between(fixed, moving), mode=mode,
                             **display)


def unfuse(workspace, entry) -> None:
    """Turn off every fusion that shows `entry`'s image (it is being removed)."""
    for other in workspace.entries:
        fusion = getattr(other.session, "fusion", None)
        if fusion is not None and entry.volume is not None and fusion.moving is entry.volume:
            fusion.clear()
