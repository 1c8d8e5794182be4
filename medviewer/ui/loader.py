"""Discovery and loading off the GUI thread; results come back as Qt signals (queued)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from medviewer.core.errors import MedViewerError
from medviewer.ui.qt import QtCore, Signal


class Loader(QtCore.QObject):
    discovered = Signal(object, object)  # (sources, problems: list[str])
    loaded = Signal(object, object)  # (source, volume)
    failed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="medviewer-load")

    def open_paths(self, paths: list[str], wait: bool = False) -> None:
        self._run(self._discover, [str(p) for p in paths], wait=wait)

    def load(self, source, wait: bool = False) -> None:
        self._run(self._load, source, wait=wait)

    def _run(self, fn, arg, wait: bool) -> None:
        if wait:
            fn(arg)
        else:
            self._pool.submit(fn, arg)

    def _discover(self, paths: list[str]) -> None:
        from medviewer.io import discover

        sources, problems = [], []
        for path in paths:
            try:
                found = discover(path)
            except MedViewerError as exc:
                problems.append(str(exc))
                continue
            except Exception as exc:  # never let a reader bug take the app down
                problems.append(f"{path}: unexpected error while reading: {exc}")
                continue
            sources.extend(found.sources)
            problems.extend(str(p) for p in found.problems)
            if not found.sources and not found.problems:
                problems.append(f"{path}: no images found")
        self.discovered.emit(sources, problems)

    def _load(self, source) -> None:
        try:
            volume = source.load()
        except MedViewerError as exc:
            self.failed.emit(str(exc))
            return
        except MemoryError:
            self.failed.emit(f"{source.id}: not enough memory to load this series")
            return
        except Exception as exc:
            self.failed.emit(f"{source.id}: unexpected error while loading: {exc}")
            return
        self.loaded.emit(source, volume)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
