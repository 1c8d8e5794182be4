"""The images open at once (no Qt): the primary image and every other one beside it.

The main window's Session is the *primary* image: the one labelled and run through models. Every
other open image (another series, a prior study, a processing or registration result) is an
`ImageEntry` holding its own Session; a pane that shows it is just a SliceView of that session.

An entry may carry a transform (SimpleITK, ITK's fixed -> moving convention): it maps a world
point (LPS mm) of the entry `transform_fixed` to this entry's world. Registration sets it;
core.linking follows it when it links cursors between the two.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from medviewer.core.events import Event
from medviewer.core.session import Session
from medviewer.core.volume import Volume


@dataclass(eq=False)
class ImageEntry:
    id: str  # "image-1" (the primary), "image-2" ...
    title: str
    session: Session
    derived_from: str | None = None  # the entry it was computed from (processing, registration)
    operation: str = ""  # "" for an opened image, else how it was made
    transform: object | None = None  # SimpleITK transform: world of `transform_fixed` -> this world
    transform_fixed: str | None = None
    linked: bool = True  # follows linked cursors, scrolling, zoom and window
    changed: Event = field(default_factory=Event, repr=False)  # () linked toggled

    @property
    def volume(self) -> Volume | None:
        return self.session.volume

    @property
    def frame_of_reference(self) -> str:
        volume = self.session.volume
        return str(volume.metadata.get("FrameOfReferenceUID", "") or "") if volume is not None else ""

    def set_linked(self, linked: bool) -> None:
        if bool(linked) != self.linked:
            self.linked = bool(linked)
            self.changed.emit()


class Workspace:
    """The open images; `changed` fires when one is added, removed, retitled or given a transform."""

    def __init__(self, primary: Session):
        self.primary = ImageEntry("image-1", primary.title, primary)
        self.entries: list[ImageEntry] = [self.primary]
        self.changed = Event()  # ()
        self._next = 2

    def add(self, volume: Volume, title: str, derived_from: str | None = None, operation: str = "",
            source_id: str = "") -> ImageEntry:
        """A new entry with its own Session showing `volume`."""
        if derived_from is not None:
            self.get(derived_from)  # KeyError for an unknown source
        session = Session()
        session.set_volume(volume, source_id or title, title=title)
        entry = ImageEntry(f"image-{self._next}", title, session, derived_from=derived_from, operation=operation)
        self._next += 1
        self.entries.append(entry)
        self.changed.emit()
        return entry

    def remove(self, entry: ImageEntry) -> None:
        if entry is self.primary:
            raise ValueError("the primary image cannot be removed; open another image instead")
        if entry not in self.entries:
            raise ValueError(f"{entry.id} is not in the workspace")
        self.entries.remove(entry)
        for other in self.entries:  # what was derived from it keeps its pixels, not the link
            if other.derived_from == entry.id:
                other.derived_from = None
            if other.transform_fixed == entry.id:
                other.transform, other.transform_fixed = None, None
        self.changed.emit()

    def get(self, entry_id: str) -> ImageEntry:
        for entry in self.entries:
            if entry.id == entry_id:
                return entry
        raise KeyError(f"no image {entry_id!r} in the workspace")

    def entry_of(self, session: Session) -> ImageEntry | None:
        return next((e for e in self.entries if e.session is session), None)

    def others(self) -> list[ImageEntry]:
        return [e for e in self.entries if e is not self.primary]

    def set_transform(self, moving: ImageEntry, transform, fixed: ImageEntry) -> None:
        """`transform` maps fixed's world to moving's world (as registration returns it)."""
        if moving is fixed:
            raise ValueError("an image cannot be registered to itself")
        moving.transform, moving.transform_fixed = transform, fixed.id
        self.changed.emit()

    def set_title(self, entry: ImageEntry, title: str) -> None:
        entry.title = title
        entry.session.title = title
        self.changed.emit()

    def primary_replaced(self) -> None:
        """The primary session shows another image: retitle it; transforms to the old image go."""
        self.primary.title = self.primary.session.title
        for other in self.others():
            if other.transform_fixed == self.primary.id:
                other.transform, other.transform_fixed = None, None
            if other.derived_from == self.primary.id:
                other.derived_from = None
        self.changed.emit()
