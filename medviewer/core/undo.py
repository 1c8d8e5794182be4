"""Undo/redo that stores only the changed region of each edit (before and after copies)."""
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

    def push(self, region, before: np.ndarray, after: np.ndarray, description: str) -> None:
        self._done.append(Edit(tuple(region), before, after, description))
        self._undone.clear()
        while len(self._done) > self.max_steps or (len(self._done) > 1 and self.nbytes > self.max_bytes):
            self._done.pop(0)

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

    def merge_last(self, count: int, data: np.ndarray, description: str) -> None:
        """Fold the last `count` edits into one (a brush stroke is one undo step)."""
        if count < 2 or len(self._done) < count:
            return
        edits = self._done[-count:]
        del self._done[-count:]
        lo = [min(e.region[a].start for e in edits) for a in range(3)]
        hi = [max(e.region[a].stop for e in edits) for a in range(3)]
        region = tuple(slice(a, b) for a, b in zip(lo, hi))
        after = data[region].copy()
        before = after.copy()
        for e in reversed(edits):  # roll back, newest first, inside the union box
            local = tuple(slice(r.start - u.start, r.stop - u.start) for r, u in zip(e.region, region))
            before[local] = e.before
        self._done.append(Edit(region, before, after, description))

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
        return sum(e.nbytes for e in self._done) + sum(e.nbytes for e in self._undone)

    def descriptions(self) -> list[str]:
        return [e.description for e in self._done]

    def clear(self) -> None:
        self._done.clear()
        self._undone.clear()
