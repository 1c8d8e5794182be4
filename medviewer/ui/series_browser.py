"""Study/series list: one row per series with a thumbnail of its middle slice.

The volumes of one acquisition (fMRI time points, DWI directions, echoes, a 4D file) are one row,
"name / MR · 64×64×36 / N volumes", that opens the first volume; the window's volume bar goes through the others.

Thumbnails come from volumes the caller has already loaded; the others are computed in
worker threads (``source.preview()``, the middle slice of a DICOM series) and handed to the GUI
thread by medviewer.ui.hand_over, so Qt objects are only ever touched on the GUI thread. The list
is rebuilt only from set_sources(), never from inside one of its own signals.
"""
from __future__ import annotations

import concurrent.futures

import numpy as np

from medviewer.core.display import default_window
from medviewer.io.volume_4d import volume_groups
from medviewer.ui import hand_over
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem, QMenu, QVBoxLayout, QWidget

THUMB_SIZE = 96
BACKGROUND = "#202020"
ID_ROLE = Qt.ItemDataRole.UserRole


# --- Qt-free logic -------------------------------------------------------------------
def _resize(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Box-average by the integer part of the shrink factor, then nearest-neighbour to size."""
    fy, fx = max(1, image.shape[0] // out_h), max(1, image.shape[1] // out_w)
    if fy > 1 or fx > 1:
        h, w = image.shape[0] // fy * fy, image.shape[1] // fx * fx
        image = image[:h, :w].reshape(h // fy, fy, w // fx, fx, *image.shape[2:]).mean(axis=(1, 3))
    rows = np.minimum(((np.arange(out_h) + 0.5) * image.shape[0] / out_h).astype(int), image.shape[0] - 1)
    cols = np.minimum(((np.arange(out_w) + 0.5) * image.shape[1] / out_w).astype(int), image.shape[1] - 1)
    return image[rows][:, cols]


def thumbnail_array(volume, size: int = THUMB_SIZE) -> np.ndarray:
    """The middle slice as uint8, (H, W) or (H, W, 3), longest side ``size``, true aspect ratio.

    Windowed as the viewer opens the image (core.display.default_window: CT soft tissue,
    otherwise the file's window or the 1st-99th percentiles); 8-bit RGB is kept as it is; MONOCHROME1 (invert_display) is inverted.
    """
    data = np.asarray(volume.data)
    middle = data[data.shape[0] // 2]
    rgb = middle.ndim == 3
    if rgb:
        middle = middle[..., :3]
    sx, sy = float(volume.spacing[0]), float(volume.spacing[1])
    height_mm, width_mm = middle.shape[0] * sy, middle.shape[1] * sx
    scale = size / max(height_mm, width_mm)
    out_h = min(size, max(1, round(height_mm * scale)))
    out_w = min(size, max(1, round(width_mm * scale)))
    small = np.nan_to_num(_resize(middle.astype(np.float32), out_h, out_w))
    if rgb and data.dtype == np.uint8:
        return np.ascontiguousarray(np.clip(np.round(small), 0, 255).astype(np.uint8))
    window = default_window(small, str(volume.modality).upper(), volume.metadata)
    lo, hi = window.low, window.high
    out = np.clip((small - lo) * (255.0 / (hi - lo)), 0, 255)
    if volume.invert_display and not rgb:
        out = 255.0 - out
    return np.ascontiguousarray(np.round(out).astype(np.uint8))


def size_text(size) -> str:
    x, y, z = (int(v) for v in size)
    return f"{x}×{y}" if z == 1 else f"{x}×{y}×{z}"


def _short_name(source) -> str:
    return source.modality or (source.description or "?")[:5]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class _Pool:
    """A thread pool started on first use and restartable after shutdown()."""

    def __init__(self, workers: int):
        self.workers = workers
        self.executor: concurrent.futures.ThreadPoolExecutor | None = None

    def get(self) -> concurrent.futures.ThreadPoolExecutor:
        if self.executor is None:
            self.executor = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="thumbnail")
        return self.executor

    def shutdown(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None


def _thumbnail_of(source, size: int) -> np.ndarray:  # worker thread: no Qt objects
    return thumbnail_array(source.preview(), size)


# --- Qt -------------------------------------------------------------------------------
def _pixmap(array: np.ndarray, size: int) -> QPixmap:
    array = np.ascontiguousarray(array)
    h, w = array.shape[:2]
    fmt = QImage.Format.Format_RGB888 if array.ndim == 3 else QImage.Format.Format_Grayscale8
    buffer = array.tobytes()  # kept alive until the image has been copied out of it
    image = QImage(buffer, w, h, array.strides[0], fmt).copy()
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(BACKGROUND))
    painter = QPainter(pixmap)
    painter.drawImage((size - w) // 2, (size - h) // 2, image)
    painter.end()
    return pixmap


def _placeholder(size: int, name: str, note: str = "…", colour: str = "#9a9a9a") -> QPixmap:
    """A drawn stand-in icon: the modality and a note ("…" loading, "!" failed)."""
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(BACKGROUND))
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QColor("#555555"))
    painter.drawRoundedRect(QRectF(4.5, 4.5, size - 9, size - 9), 8, 8)
    painter.setPen(QColor(colour))
    font = painter.font()
    font.setPixelSize(max(10, size // 5))
    font.setBold(True)
    painter.setFont(font)
    painter.drawText(QRectF(0, 0, size, size * 0.6), Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignHCenter,
                     name)
    painter.drawText(QRectF(0, size * 0.6, size, size * 0.3), Qt.AlignmentFlag.AlignCenter, note)
    painter.end()
    return pixmap


class SeriesBrowser(QWidget):
    """A list of series with thumbnails; double-click or Enter activates one."""

    series_activated = Signal(object)  # the ImageSource
    open_beside_requested = Signal(object)  # the ImageSource: context menu "Open beside"
    thumbnail_ready = Signal(str)  # source id, once its thumbnail (or its error icon) is shown

    def __init__(self, parent: QWidget | None = None, thumbnail_size: int = THUMB_SIZE, workers: int = 2):
        super().__init__(parent)
        self._size = thumbnail_size
        self.list = QListWidget()
        self.list.setIconSize(QSize(thumbnail_size, thumbnail_size))
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setUniformItemSizes(True)
        self.list.setSpacing(2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list)
        self.list.itemActivated.connect(self._activate)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        self._pool = _Pool(workers)
        pool = self._pool  # the lambda must not keep the widget alive
        self.destroyed.connect(lambda *_: pool.shutdown())
        self._tasks: list[hand_over.Task] = []
        self._sources: dict[str, object] = {}
        self._thumbnails: dict[str, np.ndarray] = {}
        self._pending: set[str] = set()
        self._highlighted: str | None = None
        self._row_of: dict[str, str] = {}  # source id -> id of its row (a group's first volume)

    # --- public API ------------------------------------------------------------------
    def set_sources(self, sources: list, volumes: dict | None = None) -> None:
        """List the sources, a group of volumes as one row; thumbnails from ``volumes``
        (id -> Volume) or loaded in the background."""
        self._drop_tasks()
        self._sources, self._thumbnails, self._row_of = {}, {}, {}
        self.list.clear()
        volumes = volumes or {}
        for group in volume_groups(sources):
            source = group[0]
            self._row_of.update((member.id, source.id) for member in group)
            item = QListWidgetItem(QIcon(_placeholder(self._size, _short_name(source))), self._label(source, len(group)))
            item.setData(ID_ROLE, source.id)
            item.setToolTip(self._tooltip(source, len(group)))
            self.list.addItem(item)
            self._sources[source.id] = source
            if volumes.get(source.id) is not None:
                try:
                    self._show_thumbnail(item, thumbnail_array(volumes[source.id], self._size), "")
                except Exception as exc:
                    self._show_thumbnail(item, None, _one_line(exc))
            else:
                self._pending.add(source.id)
                task = hand_over.Task("thumbnail", owner=self,
                                      on_done=lambda array, sid=source.id: self._show_computed(sid, array, ""),
                                      on_error=lambda exc, sid=source.id: self._show_computed(sid, None, _one_line(exc)))
                self._tasks.append(task.start(_thumbnail_of, source, self._size, executor=self._pool.get()))
        if self._highlighted is not None:
            self.highlight(self._highlighted)

    def sources(self) -> list:
        """One source per row (the first volume of a group)."""
        return list(self._sources.values())

    def current_source(self):
        item = self.list.currentItem()
        return self._sources.get(item.data(ID_ROLE)) if item is not None else None

    def highlight(self, source_id: str | None) -> None:
        """Mark the series now shown (bold, tinted; any volume of a group marks its row); None
        clears the mark."""
        source_id = self._row_of.get(source_id, source_id)
        self._highlighted = source_id
        tint = QColor(self.palette().highlight().color())
        tint.setAlpha(70)
        for item in self._items():
            on = item.data(ID_ROLE) == source_id
            font = QFont(item.font())
            font.setBold(on)
            item.setFont(font)
            item.setBackground(tint if on else QBrush())
            if on:
                self.list.scrollToItem(item)

    def highlighted_id(self) -> str | None:
        return self._highlighted

    def thumbnail(self, source_id: str) -> np.ndarray | None:
        """The thumbnail array shown for a source (None while loading or after an error)."""
        return self._thumbnails.get(source_id)

    def is_loading(self) -> bool:
        return bool(self._pending)

    def shutdown(self) -> None:
        """Stop background work; thumbnails not yet computed keep their placeholder."""
        self._drop_tasks()
        self._pool.shutdown()

    # --- internals -------------------------------------------------------------------
    def _items(self) -> list[QListWidgetItem]:
        return [self.list.item(i) for i in range(self.list.count())]

    @staticmethod
    def _label(source, volumes: int = 1) -> str:
        details = " · ".join(t for t in (source.modality, size_text(source.size)) if t)
        text = f"{source.description or '(no description)'}\n{details}"
        return text + f"\n{volumes} volumes" if volumes > 1 else text  # a line of its own: a narrow dock cuts lines

    @staticmethod
    def _tooltip(source, volumes: int = 1) -> str:
        spacing = " × ".join(f"{v:.3g}" for v in source.spacing)
        lines = [f"{source.description} ({source.kind})", f"id: {source.id}",
                 f"{size_text(source.size)} voxels, {spacing} mm", f"{len(source.files)} file(s)"]
        if volumes > 1:
            lines.insert(2, f"{volumes} volumes of one acquisition (this is the first)")
        return "\n".join(lines + [f"⚠ {w}" for w in source.warnings])

    def _drop_tasks(self) -> None:
        for task in self._tasks:
            task.discard()  # their thumbnails are for a list that is gone
        self._tasks, self._pending = [], set()

    def _show_computed(self, source_id: str, array, error: str) -> None:
        self._pending.discard(source_id)
        for item in self._items():
            if item.data(ID_ROLE) == source_id:
                self._show_thumbnail(item, array, error)

    def _show_thumbnail(self, item: QListWidgetItem, array: np.ndarray | None, error: str) -> None:
        source_id = item.data(ID_ROLE)
        if array is None:
            item.setIcon(QIcon(_placeholder(self._size, _short_name(self._sources[source_id]), "!", "#e05050")))
            item.setToolTip(item.toolTip() + f"\ncannot load: {error}")
        else:
            self._thumbnails[source_id] = array
            item.setIcon(QIcon(_pixmap(array, self._size)))
        self.thumbnail_ready.emit(source_id)

    def context_actions(self, item: QListWidgetItem) -> QMenu:
        """The menu of a row: open it in place of the image shown, or beside it."""
        menu = QMenu(self)
        source = self._sources.get(item.data(ID_ROLE))
        menu.addAction("Open", lambda: self._activate(item))
        menu.addAction("Open beside", lambda: source is not None and self.open_beside_requested.emit(source))
        return menu

    def _context_menu(self, pos) -> None:
        item = self.list.itemAt(pos)
        if item is not None:
            menu = self.context_actions(item)
            menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            menu.popup(self.list.viewport().mapToGlobal(pos))

    def _activate(self, item: QListWidgetItem) -> None:
        source = self._sources.get(item.data(ID_ROLE))
        if source is not None:
            self.series_activated.emit(source)
