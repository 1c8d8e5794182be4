"""Undo/redo that stores only the changed region of each edit (before and after copies).

begin_group()/end_group() make the edits pushed between them one step (a brush stroke): they are
collected aside, so the step limit and memory trimming never split or miscount a group."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Edit:
    region: tuple[slice, ...]
    before: np.ndarray
    after: np.ndarray
    description: str

    @property
    def nbytes(self) -> int:
        return int(self.before.nbytes + self.after.nbytes)


class UndoStack:
    def __init__(self, max_steps: int = 200, max_bytes: int = 2 * 1024**3):
        self.max_steps = max_steps
        self.max_bytes = max_bytes
        self._done: list[Edit] = []
        self._undone: list[Edit] = []
        self._group: list[Edit] | None = None  # edits of the open group, oldest first
        self._group_description = ""

    def push(self, region, before: np.ndarray, after: np.ndarray, description: str) -> None:
        edit = Edit(tuple(region), before, after, description)
        self._undone.clear()
        if self._group is not None:
            self._group.append(edit)
            return
        self._append(edit)

    def _append(self, edit: Edit) -> None:
        self._done.append(edit)
        while len(self._done) > self.max_steps or (len(self._done) > 1 and self.nbytes > self.max_bytes):
            self._done.pop(0)

    # --- groups ---------------------------------------------------------------------------------
    @property
    def grouping(self) -> bool:
        return self._group is not None

    def begin_group(self, description: str) -> None:
        """Collect the next pushes into one step (an open group is closed first)."""
        if self._group is not None:
            raise RuntimeError("an undo group is already open")
        self._group, self._group_description = [], description

    def end_group(self, data: np.ndarray) -> None:
        """Close the open group (no-op if none): its edits become one step on their union box.
        `data` is the array the edits were made on, in its state after them."""
        edits, self._group = self._group, None
        if not edits:
            return
        if len(edits) == 1:
            edit = edits[0]
            self._append(Edit(edit.region, edit.before, edit.after, self._group_description))
            return
        lo = [min(e.region[a].start for e in edits) for a in range(3)]
        hi = [max(e.region[a].stop for e in edits) for a in range(3)]
        region = tuple(slice(a, b) for a, b in zip(lo, hi))
        after = data[region].copy()
        before = after.copy()
        for e in reversed(edits):  # roll back, newest first, inside the union box
            local = tuple(slice(r.start - u.start, r.stop - u.start) for r, u in zip(e.region, region))
            before[local] = e.before
        self._append(Edit(region, before, after, self._group_description))

    def undo(self, data: np.ndarray):
        if not self._done:
            return None
        edit = self._done.pop()
        data[edit.region] = edit.before
        self._undone.append(edit)
        return edit.region

    def redo(self, data: np.ndarray):
        if not self._undone:
            return None
        edit = self._undone.pop()
        data[edit.region] = edit.after
        self._done.append(edit)
        return edit.region

    def __len__(self) -> int:
        return len(self._done)

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self._done + self._undone + (self._group or []))

    def descriptions(self) -> list[str]:
        return [e.description for e in self._done]

    def clear(self) -> None:
        self._done.clear()
        self._undone.clear()
        self._group = None
