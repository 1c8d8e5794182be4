"""The "Images" dock: every open image of the workspace, with what to do with it.

One row per workspace entry (the primary first, marked; a derived image says what it was made
from and how). Buttons act on the selected row:
- Show beside: the image in the 1x2 compare layout, beside the primary (or beside its source);
- Fuse over primary: the image as a colour overlay over the primary (through its registration
  transform when it was registered to the primary), the Fusion dock's settings then apply;
- Save as…: the image written with the io writer (NIfTI, NRRD, MHA by extension);
- Remove: the entry closed, its fusions turned off (not the primary).
"""
from __future__ import annotations

from medviewer.core.errors import MedViewerError
from medviewer.ui import hand_over
from medviewer.ui.file_dialogs import save_path
from medviewer.ui.list_rows import list_rows
from medviewer.ui.qt import Qt, QtWidgets
from medviewer.ui.run_controls import one_line
from medviewer.ui.workspace_view import beside_whom, fuse, show_beside, unfuse

SAVE_FILTER = "NIfTI (*.nii.gz *.nii);;NRRD (*.nrrd);;MetaImage (*.mha)"


def _row_text(workspace, entry) -> str:
    if entry is workspace.primary:
        return f"{entry.title or entry.id}  (primary)"
    text = entry.title or entry.id
    if entry.transform_fixed:
        try:
            text += f"  — registered to {workspace.get(entry.transform_fixed).title}"
        except KeyError:
            pass
    return text


class ImagesPanel(QtWidgets.QWidget):
    def __init__(self, window, parent=None):
        super().__init__(parent)
        self.win = window
        self.workspace = window.workspace
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.list = QtWidgets.QListWidget()
        self.list.setWordWrap(True)
        layout.addWidget(self.list)
        grid = QtWidgets.QGridLayout()
        self.beside_button = QtWidgets.QPushButton("Show beside")
        self.fuse_button = QtWidgets.QPushButton("Fuse over primary")
        self.save_button = QtWidgets.QPushButton("Save as…")
        self.remove_button = QtWidgets.QPushButton("Remove")
        for i, button in enumerate((self.beside_button, self.fuse_button, self.save_button, self.remove_button)):
            grid.addWidget(button, i // 2, i % 2)
        layout.addLayout(grid)
        self.status = QtWidgets.QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.beside_button.clicked.connect(self.show_beside)
        self.fuse_button.clicked.connect(self.fuse_over_primary)
        self.save_button.clicked.connect(lambda: self.save_as())
        self.remove_button.clicked.connect(self.remove)
        self.list.currentRowChanged.connect(lambda _row: self._sync_buttons())
        self.workspace.changed.connect(lambda: hand_over.soon(self.refresh, owner=self))
        self.refresh()

    def refresh(self) -> None:
        """Rows updated in place (ui.list_rows); the selected image stays selected, a new one is selected."""
        chosen = self.selected()
        entries = self.workspace.entries
        if self.list.count() and len(entries) > self.list.count():
            chosen = entries[-1]  # an image was just opened or made: select it
        self.list.blockSignals(True)
        for entry, item in zip(entries, list_rows(self.list, len(entries))):
            item.setText(_row_text(self.workspace, entry))
            item.setData(Qt.UserRole, entry.id)
            item.setToolTip(f"{entry.id}: {entry.operation}" if entry.operation else entry.id)
        row = entries.index(chosen) if chosen in entries else (len(entries) - 1)
        self.list.setCurrentRow(row)
        self.list.blockSignals(False)
        self._sync_buttons()

    def selected(self):
        item = self.list.currentItem()
        if item is None:
            return None
        try:
            return self.workspace.get(item.data(Qt.UserRole))
        except KeyError:
            return None

    def select(self, entry) -> None:
        self.refresh()
        self.list.setCurrentRow(self.workspace.entries.index(entry))

    def _sync_buttons(self) -> None:
        entry = self.selected()
        other = entry is not None and entry is not self.workspace.primary
        for button in (self.beside_button, self.fuse_button, self.remove_button):
            button.setEnabled(other)
        self.save_button.setEnabled(entry is not None and entry.volume is not None)

    # --- actions --------------------------------------------------------------------------------
    def show_beside(self) -> None:
        entry = self.selected()
        if entry is None or entry is self.workspace.primary:
            return
        left = beside_whom(self.workspace, entry)
        show_beside(self.win, left, entry)
        self.status.setText(f"{entry.title} beside {left.title}.")

    def fuse_over_primary(self) -> bool:
        entry = self.selected()
        if entry is None or entry is self.workspace.primary:
            return False
        primary = self.workspace.primary
        try:
            fuse(primary, entry, "overlay")
        except MedViewerError as exc:
            self.status.setText(one_line(exc, "fusing"))
            return False
        self.status.setText(f"{entry.title} over {primary.title} (Fusion dock: opacity, colour map, threshold).")
        return True

    def save_as(self, path: str | None = None) -> str | None:
        """Write the selected image (io writer; the format by the extension)."""
        entry = self.selected()
        if entry is None or entry.volume is None:
            return None
        if path is None:
            name = "".join(c if c.isalnum() or c in "-_." else "_" for c in (entry.title or entry.id))[:80]
            path = save_path(self, "Save image as", f"{name}.nii.gz", SAVE_FILTER)
            if path is None:
                return None
        from medviewer.io import write_volume

        try:
            written = write_volume(entry.volume, path)
        except (MedViewerError, OSError) as exc:
            self.status.setText(f"Could not save {entry.title}: {one_line(exc, 'saving an image')}")
            return None
        self.status.setText(f"Saved {entry.title}: {written}")
        return written

    def remove(self) -> bool:
        entry = self.selected()
        if entry is None or entry is self.workspace.primary:
            return False
        unfuse(self.workspace, entry)
        self.workspace.remove(entry)
        self.status.setText(f"Closed {entry.title}.")
        return True
