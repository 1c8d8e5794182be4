"""The volume bar: "Volume k / N" of a series with several volumes (fMRI time points, DWI
directions, echoes, the time points of a 4D NIfTI/NRRD), as Slicer's sequence browser and
ITK-SNAP's 4D slider do.

The volumes of one acquisition share a voxel grid, so switching replaces only the image
(Session.replace_image): slice, crosshair, zoom/pan, window/level, label maps (their undo and
autosave), heat maps and measurements stay. A volume is read on the loader's worker; while one is
being read, newer requests only move the target, and a result that is no longer the target is
not shown (dragging the slider over 40 volumes shows the last one, not the 40). Recently shown
volumes are kept up to CACHE_BYTES, so flipping back and forth does not read the file again.

Keys: Ctrl+Page Up / Ctrl+Page Down next / previous volume (Page Up/Down alone scroll slices).
Play steps through the volumes at the toolbar's cine rate, each once the previous is on screen.
"""
from __future__ import annotations

import collections

from medviewer.io.volume_4d import group_key, volume_groups
from medviewer.ui.loader import load_failure
from medviewer.ui.qt import Qt, QtCore, QtGui, QtWidgets, Signal

CACHE_BYTES = 256 * 2**20
NEXT_KEY, PREVIOUS_KEY = "Ctrl+PgUp", "Ctrl+PgDown"
PLAY_INTERVAL_MS = 100  # until set_fps


# --- Qt-free ---------------------------------------------------------------------------------
def volume_caption(index: int, count: int, source) -> str:
    """'Volume 3 / 40', with the diffusion weighting when the header gives it
    ('Volume 3 / 40 · b = 1000 · g (0.71, 0.00, -0.71)')."""
    text = f"Volume {index + 1} / {count}"
    if source is not None and source.diffusion is not None:
        b, gradient = source.diffusion
        text += f" · b = {b:g}"
        if gradient is not None:
            text += " · g (" + ", ".join(f"{g:.2f}" for g in gradient) + ")"
    return text


class VolumeCache:
    """The last volumes read, up to max_bytes (the newest is always kept)."""

    def __init__(self, max_bytes: int = CACHE_BYTES):
        self.max_bytes = max_bytes
        self._items: collections.OrderedDict[str, object] = collections.OrderedDict()

    def get(self, key: str):
        volume = self._items.get(key)
        if volume is not None:
            self._items.move_to_end(key)
        return volume

    def put(self, key: str, volume) -> None:
        self._items[key] = volume
        self._items.move_to_end(key)
        while len(self._items) > 1 and sum(v.nbytes for v in self._items.values()) > self.max_bytes:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


# --- Qt --------------------------------------------------------------------------------------
class VolumeBar(QtWidgets.QToolBar):
    """A toolbar shown while the image on screen is one volume of several.

    volume_ready(source, volume): the last volume asked for has been read; the window shows it.
    failed(message): it could not be read (one line); the slider goes back to the one shown."""

    volume_ready = Signal(object, object)
    failed = Signal(str)

    def __init__(self, loader, parent=None, cache_bytes: int = CACHE_BYTES):
        super().__init__("Volumes", parent)
        self.setObjectName("toolbar-volumes")
        self.loader = loader
        self.cache = VolumeCache(cache_bytes)
        self._groups: dict[tuple, list] = {}
        self.group: list = []  # the volumes of the series on screen, in order
        self.shown = 0  # index in group of the volume on screen
        self.wanted = 0  # the last one asked for
        self._loading: int | None = None  # the one being read
        self._generation = 0  # a new image makes every read in flight stale

        self.caption = QtWidgets.QLabel("")
        self.caption.setObjectName("volume-caption")
        self.caption.setMinimumWidth(120)
        self.slider = QtWidgets.QSlider(Qt.Horizontal)
        self.slider.setObjectName("volume-slider")
        self.slider.setMinimumWidth(220)
        self.slider.setPageStep(1)
        self.slider.valueChanged.connect(self.request)
        self.previous_action = self._action("◀", "Previous volume", PREVIOUS_KEY, lambda: self.step(-1))
        self.addWidget(QtWidgets.QLabel(" Volume "))
        self.addWidget(self.slider)
        self.next_action = self._action("▶", "Next volume", NEXT_KEY, lambda: self.step(+1))
        self.play_action = QtGui.QAction("▶▶ Play", self)
        self.play_action.setToolTip("Play through the volumes at the cine rate (fps)")
        self.play_action.setCheckable(True)
        self.play_action.toggled.connect(self._play)
        self.addAction(self.play_action)
        self.addWidget(self.caption)
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(PLAY_INTERVAL_MS)
        self._timer.timeout.connect(self._play_step)
        self.setVisible(False)

    def _action(self, text: str, tip: str, key: str, slot) -> QtGui.QAction:
        action = QtGui.QAction(text, self)
        action.setToolTip(f"{tip} ({QtGui.QKeySequence(key).toString(QtGui.QKeySequence.NativeText)})")
        action.setShortcut(QtGui.QKeySequence(key))
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def shortcut_actions(self) -> list[QtGui.QAction]:
        """Actions to add to the window, so that their keys work whatever has the focus."""
        return [self.previous_action, self.next_action]

    # --- the sources and the image on screen ----------------------------------------------
    def set_sources(self, sources: list) -> None:
        self._groups = {group_key(members[0]): members for members in volume_groups(sources)}

    def group_of(self, source) -> list:
        """The volumes of the source's acquisition, in order ([source] for a lone volume)."""
        return self._groups.get(group_key(source), [source])

    def first_of_group(self, source):
        return self.group_of(source)[0]

    def show_source(self, source, volume=None) -> None:
        """A new image is on screen (opened, or a series activated): follow its group; reads in
        flight for the previous image are dropped. None: no image."""
        self._generation += 1
        self._loading = None
        self.cache.clear()
        self.play_action.setChecked(False)
        self.group = self.group_of(source) if source is not None else []
        index = next((i for i, s in enumerate(self.group) if s.id == source.id), 0) if source is not None else 0
        self.shown = self.wanted = index
        if volume is not None and len(self.group) > 1:
            self.cache.put(source.id, volume)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(self.group) - 1))
        self.slider.setValue(index)
        self.slider.blockSignals(False)
        self._show_caption()
        self.setVisible(len(self.group) > 1)

    @property
    def count(self) -> int:
        return len(self.group)

    def busy(self) -> bool:
        return self._loading is not None

    # --- switching --------------------------------------------------------------------------
    def step(self, delta: int) -> None:
        if self.count > 1:
            self.request(max(0, min(self.count - 1, self.wanted + delta)))

    def request(self, index: int) -> None:
        """Show volume `index` of the group (0-based) once it has been read."""
        if not self.group:
            return
        self.wanted = max(0, min(self.count - 1, int(index)))
        if self.slider.value() != self.wanted:
            self.slider.blockSignals(True)
            self.slider.setValue(self.wanted)
            self.slider.blockSignals(False)
        if self._loading is None:
            self._next()
        else:
            self._show_caption()

    def _next(self) -> None:
        k = self.wanted
        if k == self.shown:
            self._show_caption()
            return
        source = self.group[k]
        cached = self.cache.get(source.id)
        if cached is not None:
            self._apply(k, cached)
            return
        self._loading = k
        self._show_caption()
        generation = self._generation
        self.loader.run("volume", source.load,
                        on_done=lambda volume: self._loaded(generation, k, volume),
                        on_error=lambda exc: self._load_failed(generation, k, exc))

    def _loaded(self, generation: int, k: int, volume) -> None:
        if generation != self._generation:
            return  # read for an image no longer on screen
        self._loading = None
        self.cache.put(self.group[k].id, volume)
        if k == self.wanted:
            self._apply(k, volume)
        else:
            self._next()  # the user has moved on: read the one wanted now

    def _load_failed(self, generation: int, k: int, exc: BaseException) -> None:
        if generation != self._generation:
            return
        self._loading = None
        if k != self.wanted:
            self._next()
            return
        self.play_action.setChecked(False)
        self.request(self.shown)  # back to the volume on screen
        self.failed.emit(load_failure(self.group[k], exc))

    def _apply(self, k: int, volume) -> None:
        self.shown = k
        self._show_caption()
        self.volume_ready.emit(self.group[k], volume)

    def _show_caption(self) -> None:
        if not self.group:
            self.caption.setText("")
            return
        text = volume_caption(self.wanted, self.count, self.group[self.wanted])
        self.caption.setText(text + (" …" if self._loading is not None else ""))
        self.slider.setToolTip(text)

    # --- play -------------------------------------------------------------------------------
    def set_fps(self, fps: float) -> None:
        """Volumes per second while playing (the toolbar's cine rate)."""
        self._timer.setInterval(max(1, int(1000 / max(fps, 0.1))))

    def _play(self, playing: bool) -> None:
        if playing and self.count > 1:
            self._timer.start()
        else:
            self._timer.stop()

    def _play_step(self) -> None:
        if self._loading is None and self.count > 1:  # the next one once the last is on screen
            self.request((self.shown + 1) % self.count)

