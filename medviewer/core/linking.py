"""Linked cursors (hence scrolling) and windows between the open images, in world coordinates (no Qt).

Two entries of the workspace are related when
- a transform relates them (entry.transform maps the world of entry.transform_fixed to the
  entry's world, ITK's fixed -> moving convention; registration sets it), or else
- they share a frame of reference: the same FrameOfReferenceUID, or neither has one (the files'
  world coordinates, as 3D Slicer assumes); an entry with no UID of its own that was derived from
  another on the source's voxel grid (processing) shares its source's frame; one on another grid
  (a registration result resampled onto the fixed image) is in the world its own geometry states. An image with no patient geometry (a PNG or
  JPEG, a DICOM radiograph without orientation) is in pixel coordinates: it relates only to other
  such images, never to a world one.
Relations chain (a prior registered to the primary, a denoised copy of that prior ...).

A cursor move in one linked session puts the cursor of every other linked, related session on the
same world point (its nearest voxel). A point outside another image leaves that image's cursor
where it is and marks the entry "outside" (`outside(entry)`; the pane says so). `link_window`
copies the window (and inversion) between linked images of one modality. Every propagation is
guarded against re-entry: the followers' own cursor events do not echo back.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from medviewer.core.events import Event
from medviewer.core.session import same_grid
from medviewer.core.workspace import ImageEntry, Workspace

INVERSE_ITERATIONS = 50  # fixed-point inversion of a transform with no closed-form inverse (B-spline)
INVERSE_TOLERANCE_MM = 1e-4


def transform_point(transform, point) -> np.ndarray:
    return np.asarray(transform.TransformPoint(tuple(float(v) for v in point)), float)


def inverse_point(transform, point) -> np.ndarray:
    """The p with transform(p) == point: the closed-form inverse when the transform has one (rigid,
    affine), else fixed-point iteration (a smooth deformation moves points by far less than its
    own scale, so p <- p + (point - T(p)) converges)."""
    point = np.asarray(point, float)
    try:
        inverse = transform.GetInverse()
    except (RuntimeError, AttributeError):  # SimpleITK: "Unable to create inverse!"
        inverse = None
    if inverse is not None:
        return transform_point(inverse, point)
    p = point.copy()
    for _ in range(INVERSE_ITERATIONS):
        step = point - transform_point(transform, p)
        p = p + step
        if float(np.abs(step).max()) < INVERSE_TOLERANCE_MM:
            break
    return p


PIXEL_FRAME = "(pixels)"  # the frame_key of images that have no patient geometry


def frame_key(workspace: Workspace, entry: ImageEntry) -> str:
    """The frame of reference an entry's world coordinates are in ("" = the file's own world)."""
    if entry.volume is not None and entry.volume.metadata.get("oriented", True) is False:
        return PIXEL_FRAME
    seen = set()
    while not entry.frame_of_reference and entry.derived_from and entry.id not in seen:
        seen.add(entry.id)
        try:
            source = workspace.get(entry.derived_from)
        except KeyError:
            break
        if entry.volume is None or source.volume is None or not same_grid(entry.volume, source.volume):
            break
        entry = source
    return entry.frame_of_reference


class Linker:
    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.enabled = True
        self.link_window = False
        self.outside_changed = Event()  # (entry) its outside mark changed
        self._outside: set[str] = set()
        self._busy = False
        self._hooks: dict[str, tuple] = {}  # entry id -> (session, cursor callback, window callback)
        self._paths: dict[tuple[str, str], list | None] = {}  # (from id, to id) -> steps; cleared on changes
        workspace.changed.connect(self._sync_entries)
        self._sync_entries()

    # --- relations ------------------------------------------------------------------------
    def _step(self, a: ImageEntry, b: ImageEntry):
        """How a world point of `a` becomes one of `b` in one step, or None."""
        if b.transform is not None and b.transform_fixed == a.id:
            return lambda p, t=b.transform: transform_point(t, p)
        if a.transform is not None and a.transform_fixed == b.id:
            return lambda p, t=a.transform: inverse_point(t, p)
        if frame_key(self.workspace, a) != frame_key(self.workspace, b):
            return None
        return lambda p: np.asarray(p, float)

    def world_in(self, entry: ImageEntry, world, entry_a: ImageEntry) -> np.ndarray | None:
        """A world point (LPS mm) of entry_a in entry's world, or None when nothing relates them."""
        world = np.asarray(world, float)
        if entry is entry_a:
            return world
        key = (entry_a.id, entry.id)
        if key not in self._paths:
            self._paths[key] = self._path(entry, entry_a)
        steps = self._paths[key]
        if steps is None:
            return None
        for step in steps:
            world = step(world)
        return world

    def _path(self, entry: ImageEntry, entry_a: ImageEntry) -> list | None:
        """The steps from entry_a's world to entry's, breadth first: the fewest (a direct transform
        before a detour); None when nothing relates them."""
        previous = {entry_a.id: None}
        queue = deque([entry_a])
        while queue:
            a = queue.popleft()
            if a is entry:
                break
            for b in self.workspace.entries:
                if b.id not in previous and self._step(a, b) is not None:
                    previous[b.id] = a
                    queue.append(b)
        if entry.id not in previous:
            return None
        path = [entry]
        while previous[path[-1].id] is not None:
            path.append(previous[path[-1].id])
        path.reverse()
        return [self._step(a, b) for a, b in zip(path, path[1:])]

    def linked_with(self, entry: ImageEntry) -> list[ImageEntry]:
        """The other linked entries whose cursor follows this one's."""
        if not entry.linked:
            return []
        return [e for e in self.workspace.entries
                if e is not entry and e.linked and e.volume is not None
                and self.world_in(e, np.zeros(3), entry) is not None]

    def cursor_world(self, entry: ImageEntry) -> np.ndarray | None:
        session = entry.session
        if session.volume is None:
            return None
        return session.volume.index_to_world(session.cursor)

    def outside(self, entry: ImageEntry) -> bool:
        """Whether the last linked cursor fell outside this entry's image."""
        return entry.id in self._outside

    # --- propagation ------------------------------------------------------------------------
    def follow(self, source: ImageEntry) -> None:
        """Put every linked entry's cursor on the world point of source's cursor."""
        if not self.enabled or self._busy or not source.linked or source.volume is None:
            return
        world = self.cursor_world(source)
        self._busy = True
        try:
            for entry in self.linked_with(source):
                self._place(entry, self.world_in(entry, world, source))
        finally:
            self._busy = False

    def _place(self, entry: ImageEntry, world) -> None:
        volume = entry.volume
        ijk = volume.world_to_index(world)
        inside = bool(np.all(ijk > -0.5) and np.all(ijk < np.asarray(volume.size) - 0.5))
        if inside:
            entry.session.set_cursor(ijk)
        self._set_outside(entry, not inside)

    def _set_outside(self, entry: ImageEntry, outside: bool) -> None:
        if outside != (entry.id in self._outside):
            (self._outside.add if outside else self._outside.discard)(entry.id)
            self.outside_changed.emit(entry)

    def _window_followed(self, source: ImageEntry, window, invert) -> None:
        if not (self.enabled and self.link_window) or self._busy or not source.linked or source.volume is None:
            return
        self._busy = True
        try:
            for entry in self.linked_with(source):
                if entry.volume.modality == source.volume.modality and not entry.volume.is_rgb:
                    entry.session.set_window(window)
                    if entry.session.invert != invert:
                        entry.session.set_invert(invert)
        finally:
            self._busy = False

    def _sync_entries(self) -> None:
        self._paths.clear()  # an entry came or went, or a transform or title changed
        ids = {e.id for e in self.workspace.entries}
        for entry_id in [i for i in self._hooks if i not in ids]:
            session, on_cursor, on_window = self._hooks.pop(entry_id)
            session.cursor_changed.disconnect(on_cursor)
            session.window_changed.disconnect(on_window)
            session.volume_changed.disconnect(self._paths.clear)
            self._outside.discard(entry_id)
        for entry in self.workspace.entries:
            hook = self._hooks.get(entry.id)
            if hook is not None and hook[0] is entry.session:
                continue

            def on_cursor(*_args, entry=entry):
                self.follow(entry)

            def on_window(window, invert, entry=entry):
                self._window_followed(entry, window, invert)

            entry.session.volume_changed.connect(self._paths.clear)  # before its cursor moves: fresh relations
            entry.session.cursor_changed.connect(on_cursor)
            entry.session.window_changed.connect(on_window)
            entry.changed.connect(lambda entry=entry: self._relinked(entry))
            self._hooks[entry.id] = (entry.session, on_cursor, on_window)
            if entry is not self.workspace.primary:
                self._join(entry)

    def _join(self, entry: ImageEntry) -> None:
        """A new (or re-linked) entry starts on the point the others show."""
        leader = next((e for e in self.workspace.entries if e is not entry and e.linked
                       and e.volume is not None and self.world_in(entry, np.zeros(3), e) is not None), None)
        if leader is None or not entry.linked or entry.volume is None or not self.enabled:
            return
        self._busy = True
        try:
            self._place(entry, self.world_in(entry, self.cursor_world(leader), leader))
        finally:
            self._busy = False

    def _relinked(self, entry: ImageEntry) -> None:
        self._paths.clear()
        if entry.linked:
            self._join(entry)
        else:
            self._set_outside(entry, False)
