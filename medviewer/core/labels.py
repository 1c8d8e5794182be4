"""Label maps: an integer volume on the image grid plus a table of named, coloured labels.

Every change goes through LabelMap.paint()/set_region()/replace() so that locked labels are
respected, other labels are not painted over unless the caller asks (``overwrite=True``, Slicer's
"modify other segments"), and each edit lands on the undo stack as the changed region only
(ITK-SNAP/Slicer style). Edits between begin_edit_block() and end_edit_block() (or inside
``with labels.edit_block("brush"):``) are one undo step, whatever the stack's length (napari's
block_history). The map's own visibility and opacity are DisplayState settings.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from medviewer.core.display_state import DisplayState
from medviewer.core.events import Event
from medviewer.core.undo import UndoStack

# A readable default palette (the first rows follow ITK-SNAP's defaults)
PALETTE = [
    (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255),
    (255, 239, 213), (0, 0, 205), (205, 133, 63), (210, 180, 140), (102, 205, 170), (0, 0, 128),
    (0, 139, 139), (46, 139, 87), (255, 228, 225), (106, 90, 205), (221, 160, 221), (233, 150, 122),
    (165, 42, 42), (255, 250, 250), (147, 112, 219), (218, 112, 214), (75, 0, 130), (255, 182, 193),
]

Region = tuple[slice, slice, slice]  # (z, y, x) slices of the label array


def normalise_region(region, shape) -> Region:
    """Explicit (start, stop) slices, clipped to the array (undo merges need numbers)."""
    out = []
    for sl, n in zip(region, shape):
        start, stop, _ = sl.indices(n)
        out.append(slice(start, max(start, stop)))
    return tuple(out)  # type: ignore[return-value]


def palette_colour(value: int) -> tuple[int, int, int]:
    if value <= len(PALETTE):
        return PALETTE[value - 1]
    rng = np.random.default_rng(value)  # stable, distinct enough colours beyond the palette
    return tuple(int(c) for c in rng.integers(40, 256, 3))  # type: ignore[return-value]


@dataclass
class Label:
    value: int
    name: str
    colour: tuple[int, int, int]
    opacity: float = 0.5
    visible: bool = True
    locked: bool = False


@dataclass
class LabelTable:
    labels: dict[int, Label] = field(default_factory=dict)

    def add(self, name: str | None = None, value: int | None = None, colour=None, **kw) -> Label:
        if value is None:
            value = next(v for v in range(1, 256) if v not in self.labels)
        if not 1 <= value <= 255:
            raise ValueError(f"label values go from 1 to 255, got {value}")
        label = Label(value, name or f"Label {value}", tuple(colour or palette_colour(value)), **kw)
        self.labels[value] = label
        return label

    def get(self, value: int) -> Label | None:
        return self.labels.get(value)

    def remove(self, value: int) -> None:
        self.labels.pop(value, None)

    def __iter__(self):
        return iter(sorted(self.labels.values(), key=lambda lab: lab.value))

    def __len__(self) -> int:
        return len(self.labels)

    def locked_values(self) -> list[int]:
        return [lab.value for lab in self.labels.values() if lab.locked]

    def lut(self) -> np.ndarray:
        """(256, 4) RGBA colour table; background and hidden labels are transparent."""
        table = np.zeros((256, 4), np.uint8)
        for lab in self.labels.values():
            if lab.visible:
                table[lab.value, :3] = lab.colour
                table[lab.value, 3] = int(round(255 * min(max(lab.opacity, 0.0), 1.0)))
        return table


class LabelMap(DisplayState):
    """uint8 labels with the image's (z, y, x) shape; edits are undoable and respect locks."""

    def __init__(self, shape: tuple[int, int, int], name: str = "Labels", table: LabelTable | None = None,
                 data: np.ndarray | None = None, max_undo: int = 200):
        super().__init__(visible=True, opacity=1.0)
        self.data = np.zeros(shape, np.uint8) if data is None else np.ascontiguousarray(data, dtype=np.uint8)
        if self.data.shape != tuple(shape):
            raise ValueError(f"label data shape {self.data.shape} does not match the image {tuple(shape)}")
        self.name = name
        self.table = table or LabelTable()
        if data is not None:  # every value present gets a row in the table
            for v in np.unique(self.data):
                if v and int(v) not in self.table.labels:
                    self.table.add(value=int(v))
        self.undo_stack = UndoStack(max_steps=max_undo)
        self.changed = Event()  # (region) after any edit, undo or redo
        self.table_changed = Event()  # () colours, names, visibility
        self.modified = False

    # --- editing ----------------------------------------------------------------------
    def paint(self, region: Region, mask: np.ndarray, value: int, description: str = "paint",
              only: int | None = None, overwrite: bool = False) -> int:
        """Set voxels of `mask` (shaped like data[region]) to `value`; locked labels are kept.
        `only`: change only voxels currently holding this value (erase just one label, relabel).
        Otherwise, painting a label (value > 0) leaves voxels of other labels alone unless
        `overwrite`; erasing (value 0) clears every unlocked label under the mask.
        Returns the number of voxels changed."""
        region = normalise_region(region, self.data.shape)
        view = self.data[region]
        if mask.shape != view.shape:
            raise ValueError(f"mask shape {mask.shape} does not match region {view.shape}")
        allowed = mask.astype(bool, copy=False)
        locked = self.table.locked_values()
        if locked:
            allowed = allowed & ~np.isin(view, locked)
        if only is not None:
            allowed = allowed & (view == only)
        elif value and not overwrite:
            allowed = allowed & (view == 0)
        allowed &= view != value
        count = int(np.count_nonzero(allowed))
        if count == 0:
            return 0
        if value and value not in self.table.labels:
            self.table.add(value=value)
            self.table_changed.emit()
        before = view.copy()
        view[allowed] = value
        self.undo_stack.push(region, before, view.copy(), description)
        self.modified = True
        self.changed.emit(region)
        return count

    def set_region(self, region: Region, values: np.ndarray, description: str, overwrite: bool = False) -> int:
        """Replace a whole region (a model's mask, a smoothed label); locked labels are kept, and a
        voxel of one label does not become another label unless `overwrite` (clearing is allowed)."""
        region = normalise_region(region, self.data.shape)
        view = self.data[region]
        mask = np.ones(view.shape, bool)
        locked = self.table.locked_values()
        if locked:
            mask &= ~np.isin(view, locked)
        if not overwrite:
            mask &= (view == 0) | (values == 0)
        changed = mask & (view != values)
        if not changed.any():
            return 0
        before = view.copy()
        view[changed] = values[changed]
        self.undo_stack.push(region, before, view.copy(), description)
        self.modified = True
        self.changed.emit(region)
        return int(changed.sum())

    def replace(self, old: int, new: int) -> int:
        """Relabel every voxel of `old` as `new` (new = 0 erases the label)."""
        full = (slice(None),) * 3
        return self.paint(full, self.data == old, new, f"replace {old} -> {new}", only=old)

    # --- one undo step for many edits (a brush stroke) ----------------------------------------
    def begin_edit_block(self, description: str) -> None:
        """Edits from now until end_edit_block() are one undo step (a stroke spans mouse events);
        a block still open (a stroke that never got its release) is closed first."""
        self.undo_stack.end_group(self.data)
        self.undo_stack.begin_group(description)

    def end_edit_block(self) -> None:
        self.undo_stack.end_group(self.data)

    @contextmanager
    def edit_block(self, description: str):
        self.begin_edit_block(description)
        try:
            yield self
        finally:
            self.end_edit_block()

    @property
    def in_edit_block(self) -> bool:
        return self.undo_stack.grouping

    def undo(self) -> Region | None:
        self.undo_stack.end_group(self.data)  # Ctrl+Z in the middle of a stroke ends the stroke first
        return self._restored(self.undo_stack.undo(self.data))

    def redo(self) -> Region | None:
        self.undo_stack.end_group(self.data)
        return self._restored(self.undo_stack.redo(self.data))

    def _restored(self, region: Region | None) -> Region | None:
        if region is not None:
            self.modified = True
            self.changed.emit(region)
        return region

    def values_present(self) -> list[int]:
        return [int(v) for v in np.unique(self.data) if v]
