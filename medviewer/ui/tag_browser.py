"""A DICOM tag browser (as in Horos, OHIF or Slicer): a filter box over a tree of elements.

Sequences are filled in lazily, when first expanded, so an enhanced multi-frame header with
thousands of nested items opens at once. The filter searches the whole pydicom dataset (an
index built on first use) and then creates only the tree items on the path to each match.
"""
from __future__ import annotations

import os
import warnings

import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag
from pydicom.uid import UID
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QLineEdit, QSpinBox, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

MAX_CHARS = 200  # longer values are cut for display (the tooltip shows more)
MAX_TOOLTIP = 2000
MAX_LIST_ITEMS = 64  # values of a long multi-valued element joined for display
FILTER_DELAY_MS = 150
TAG_WIDTH = 110  # the least width of the tag column
COLUMNS = ("Tag", "Keyword", "VR", "Value")
_SEP = "\x1f"  # joins the searchable fields so a query cannot match across two of them


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _bytes_text(value: bytes) -> str:
    text = value.rstrip(b"\0 ")
    if text and all(32 <= b < 127 for b in text[:MAX_CHARS]):  # e.g. a private creator read as UN
        return f'<{len(value)} bytes: "{text[:MAX_CHARS].decode("ascii")}">'
    if len(value) <= 16:
        return f"<{len(value)} bytes: {value.hex(' ')}>" if value else ""
    return f"<{len(value)} bytes>"


def _scalar_text(value) -> str:
    if isinstance(value, (bytes, bytearray)):
        return _bytes_text(bytes(value))
    if isinstance(value, UID):
        name = value.name
        return f"{value} ({name})" if name and name != str(value) else str(value)
    if isinstance(value, BaseTag):
        return _tag_text(value)
    return str(value)


def value_text(elem, limit: int = MAX_CHARS) -> str:
    """What the Value column shows for a data element; never raises."""
    try:
        if elem.VR == "SQ":
            n = len(elem.value or [])
            return f"{n} item{'' if n == 1 else 's'}"
        value = elem.value
        if value is None:
            return ""
        if isinstance(value, (list, tuple, MultiValue)):
            text = "\\".join(_scalar_text(v) for v in list(value[:MAX_LIST_ITEMS]))
            if len(value) > MAX_LIST_ITEMS:
                text += f"\\… ({len(value)} values)"
        else:
            text = _scalar_text(value)
    except Exception as exc:  # a value pydicom cannot decode must not break the browser
        return f"<unreadable: {_one_line(exc)}>"
    text = text.replace("\r\n", " ").translate({0: " ", 9: " ", 10: " ", 13: " "})
    return text if len(text) <= limit else text[:limit] + "…"


def _entries(ds: Dataset) -> list[tuple[int, object, str | None]]:
    """(tag, element or None, error) for each element of a dataset, in tag order."""
    out = []
    for tag in sorted(ds.keys()):
        try:
            out.append((int(tag), ds[tag], None))
        except Exception as exc:
            out.append((int(tag), None, _one_line(exc)))
    return out


def _columns(entry) -> tuple[list[str], str, list]:
    """Column texts, the element's name, and its sequence items (empty when not a sequence)."""
    tag, elem, error = entry
    if elem is None:
        return [_tag_text(tag), "", "", f"<unreadable: {error}>"], "", []
    try:
        name = elem.name
        keyword = elem.keyword or name
        vr = str(elem.VR or "")
    except Exception as exc:
        name, keyword, vr = "", f"<unreadable: {_one_line(exc)}>", ""
    items = [] if vr != "SQ" else [i for i in (elem.value or []) if isinstance(i, Dataset)]
    return [_tag_text(tag), keyword, vr, value_text(elem)], name, items


class _Node(QTreeWidgetItem):
    """A tree row; path holds the child indices from the root, kind/payload what its children are."""

    def __init__(self, texts: list[str], path: tuple, kind: str = "", payload=None):
        super().__init__(texts)
        self.path, self.kind, self.payload = path, kind, payload
        self.loaded = not kind
        if kind:
            self.addChild(QTreeWidgetItem(["…"]))  # placeholder until expanded


def _element_node(entry, path: tuple) -> _Node:
    texts, name, items = _columns(entry)
    node = _Node(texts, path, "seq" if items else "", items)
    node.setToolTip(1, name)
    if len(texts[3]) > 60:
        node.setToolTip(3, value_text(entry[1], MAX_TOOLTIP) if entry[1] is not None else texts[3])
    return node


def _item_node(index: int, ds: Dataset, path: tuple) -> _Node:
    n = len(ds)
    return _Node([f"Item {index + 1}", "", "", f"{n} element{'' if n == 1 else 's'}"], path,
                 "item" if n else "", ds)


class TagBrowser(QWidget):
    """Filter box, optional instance picker and a Tag / Keyword / VR / Value tree."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.filter_edit = QLineEdit(placeholderText="Filter: keyword, name, tag (0008,0060) or value")
        self.filter_edit.setClearButtonEnabled(True)
        self.instance_spin = QSpinBox(prefix="instance ", visible=False)
        self.message_label = QLabel()
        self.tree = QTreeWidget(columnCount=len(COLUMNS), uniformRowHeights=True)
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setIndentation(14)
        for column, width in enumerate((TAG_WIDTH, 260, 36)):
            self.tree.setColumnWidth(column, width)
        top = QHBoxLayout()
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.instance_spin)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.message_label)
        layout.addWidget(self.tree, 1)
        self._timer = QTimer(self, singleShot=True, interval=FILTER_DELAY_MS)
        self._timer.timeout.connect(lambda: self.set_filter(self.filter_edit.text()))
        self.filter_edit.textChanged.connect(self._timer.start)
        self.tree.itemExpanded.connect(self._expanded)
        self.instance_spin.valueChanged.connect(self._show_instance)
        self._source = None
        self._paths: list[str] = []
        self._dataset: Dataset | None = None
        self._roots: list = []
        self._index: list[tuple[tuple, str]] | None = None
        self._summary = ""
        self.set_dataset(None)

    # --- public API ------------------------------------------------------------------
    def set_dataset(self, ds: Dataset | None, message: str | None = None) -> None:
        """Show a dataset (its file meta group first); None shows an empty tree and the message."""
        self._source, self._paths = None, []
        self.instance_spin.setVisible(False)
        self._show(ds, message)

    def set_source(self, source) -> None:
        """Show an ImageSource's DICOM header; a series of several files gets an instance picker."""
        header = getattr(source, "header", None) if source is not None else None
        if header is None:
            what = f" ({source.description or source.kind} image)" if source is not None else ""
            self.set_dataset(None, f"No DICOM header{what}")
            return
        frames = getattr(source, "frames", None)
        paths = list(dict.fromkeys(f.path for f in frames)) if frames else list(source.files)
        self._source, self._paths = source, paths
        self.instance_spin.blockSignals(True)
        self.instance_spin.setRange(1, max(1, len(paths)))
        self.instance_spin.setSuffix(f" of {len(paths)}")
        self.instance_spin.setValue(1)
        self.instance_spin.blockSignals(False)
        self.instance_spin.setVisible(len(paths) > 1)
        self._show(header, None, paths[0] if paths else "")

    def dataset(self) -> Dataset | None:
        return self._dataset

    def set_filter(self, text: str) -> int:
        """Filter now (the line edit waits for a pause in typing); returns the number of matches."""
        self._timer.stop()
        if self.filter_edit.text() != text:
            self.filter_edit.blockSignals(True)
            self.filter_edit.setText(text)
            self.filter_edit.blockSignals(False)
        query = text.strip().lower()
        matches: set[tuple] = set()
        ancestors: set[tuple] = set()
        if query and self._dataset is not None:
            matches = {path for path, hay in self._search_index() if query in hay}
            for path in matches:
                ancestors.update(path[:n] for n in range(1, len(path)))
        self.tree.setUpdatesEnabled(False)
        try:
            self._apply(self._top_items(), matches, ancestors, not query)
        finally:
            self.tree.setUpdatesEnabled(True)
        self._fit_tag_column(max((len(p) - 1 for p in matches), default=0))
        if self._dataset is not None:
            self.message_label.setText(f"{len(matches)} matching element(s) · {self._summary}"
                                       if query else self._summary)
        return len(matches)

    # --- internals -------------------------------------------------------------------
    def _show(self, ds: Dataset | None, message: str | None, path: str = "") -> None:
        self.tree.clear()
        self.tree.setColumnWidth(0, TAG_WIDTH)
        self._dataset, self._index, self._roots = ds, None, []
        if ds is None:
            self.message_label.setText(message or "No DICOM header")
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            meta = getattr(ds, "file_meta", None)
            self._roots = (_entries(meta) if isinstance(meta, Dataset) else []) + _entries(ds)
            self.tree.addTopLevelItems([_element_node(e, (i,)) for i, e in enumerate(self._roots)])
        self._summary = f"{len(self._roots)} elements" + (f" · {os.path.basename(path)}" if path else "")
        self.message_label.setText(message or self._summary)
        if self.filter_edit.text().strip():
            self.set_filter(self.filter_edit.text())

    def _show_instance(self, number: int) -> None:
        if not self._paths or not 1 <= number <= len(self._paths):
            return
        path = self._paths[number - 1]
        if number == 1:
            self._show(self._source.header, None, path)
            return
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        except Exception as exc:
            self._show(None, f"{os.path.basename(path)}: cannot read the header ({_one_line(exc)})")
            return
        self._show(ds, None, path)

    def _top_items(self) -> list:
        return [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]

    def _expanded(self, node) -> None:
        if isinstance(node, _Node):
            self._populate(node)
            self._fit_tag_column(len(node.path))

    def _fit_tag_column(self, depth: int) -> None:
        """Nested rows are indented: widen the tag column so tags at this depth stay readable."""
        text = self.tree.fontMetrics().horizontalAdvance("(DDDD,DDDD)") + 12
        width = max(self.tree.columnWidth(0), TAG_WIDTH, text + self.tree.indentation() * (depth + 1))
        self.tree.setColumnWidth(0, width)

    def _populate(self, node: _Node) -> None:
        """Replace the placeholder of a sequence or item by its real children (once)."""
        if node.loaded:
            return
        node.loaded = True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if node.kind == "seq":
                children = [_item_node(i, ds, node.path + (i,)) for i, ds in enumerate(node.payload)]
            else:
                children = [_element_node(e, node.path + (i,)) for i, e in enumerate(_entries(node.payload))]
        node.takeChildren()
        node.addChildren(children)

    def _search_index(self) -> list[tuple[tuple, str]]:
        """(path, lower-case searchable text) for every element, nested ones included."""
        if self._index is None:
            self._index = []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._index_entries(self._roots, (), self._index)
        return self._index

    def _index_entries(self, entries: list, prefix: tuple, index: list) -> None:
        for i, entry in enumerate(entries):
            texts, name, items = _columns(entry)
            path = prefix + (i,)
            value = texts[3] if texts[2] != "SQ" else ""
            index.append((path, _SEP.join((texts[0], f"{entry[0]:08X}", texts[1], name, value)).lower()))
            for j, item in enumerate(items):
                self._index_entries(_entries(item), path + (j,), index)

    def _apply(self, nodes: list, matches: set, ancestors: set, show_all: bool) -> None:
        """Show matches, their ancestors (built and expanded) and everything inside a match."""
        for node in nodes:
            if not isinstance(node, _Node):
                continue
            on_path = node.path in ancestors
            visible = show_all or on_path or node.path in matches
            node.setHidden(not visible)
            if not visible:
                continue
            if on_path:
                self._populate(node)
                node.setExpanded(True)
            if node.loaded and node.childCount():
                children = [node.child(i) for i in range(node.childCount())]
                self._apply(children, matches, ancestors, show_all or node.path in matches)
