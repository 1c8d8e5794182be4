"""Discovery and loading off the GUI thread (one worker, so requests run in order); the results
are handed over by medviewer.ui.hand_over and emitted as signals on the GUI thread. A newer
request makes an older one stale: its result is dropped (double-clicking series B while A loads
shows B only)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from medviewer.core.errors import MedViewerError
from medviewer.ui import hand_over
from medviewer.ui.qt import QtCore, Signal


def discover_paths(paths: list[str]) -> tuple[list, list[str]]:
    """(sources, problems) of every path; a reader bug becomes a problem, never an exception."""
    from medviewer.io import discover

    sources, problems = [], []
    for path in paths:
        try:
            found = discover(path)
        except MedViewerError as exc:
            problems.append(str(exc))
            continue
        except Exception as exc:  # never let a reader bug take the app down
            problems.append(f"{path}: {_unexpected(exc, f'reading {path}')}")
            continue
        sources.extend(found.sources)
        problems.extend(str(p) for p in found.problems)
        if not found.sources and not found.problems:
            problems.append(f"{path}: no images found")
    return sources, problems


def load_failure(source, exc: BaseException) -> str:
    """The one-line reason a source could not be loaded."""
    if isinstance(exc, MedViewerError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return f"{source.id}: not enough memory to load this series"
    return f"{source.id}: {_unexpected(exc, f'loading {source.id}')}"


def _unexpected(exc: BaseException, context: str) -> str:
    """The reason in one line, and where the stack was logged."""
    from medviewer.io.error_log import report

    reason, log = report(exc, context)
    return reason + (f" (details: {log})" if log else "")


class Loader(QtCore.QObject):
    discovered = Signal(object, object)  # (sources, problems: list[str])
    loaded = Signal(object, object)  # (source, volume)
    failed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="medviewer-load")
        self._tasks: dict[str, hand_over.Task] = {}  # "discover" / "load" -> the current request

    def open_paths(self, paths: list[str], wait: bool = False) -> None:
        paths = [str(p) for p in paths]
        self._drop("load")  # a new study replaces the series being loaded
        if wait:
            self._drop("discover")
            self.discovered.emit(*discover_paths(paths))
        else:
            self._start("discover", lambda result: self.discovered.emit(*result), discover_paths, paths)

    def load(self, source, wait: bool = False) -> None:
        if wait:
            self._drop("load")
            try:
                volume = source.load()
            except Exception as exc:
                self.failed.emit(load_failure(source, exc))
                return
            self.loaded.emit(source, volume)
        else:
            self._start("load", lambda volume: self.loaded.emit(source, volume), source.load,
                        on_error=lambda exc: self.failed.emit(load_failure(source, exc)))

    def run(self, kind: str, fn, *args, on_done, on_error=None) -> None:
        """fn(*args) on the loading worker, after the requests before it; on_done(result) or
        on_error(exception) on the GUI thread. A newer call of the same kind makes this one stale."""
        self._start(kind, on_done, fn, *args, on_error=on_error)

    def busy(self) -> bool:
        return any(task.running for task in self._tasks.values())

    def _drop(self, kind: str) -> None:
        task = self._tasks.pop(kind, None)
        if task is not None:
            task.discard()

    def _start(self, kind: str, on_done, fn, *args, on_error=None) -> None:
        self._drop(kind)
        task = hand_over.Task(f"loader-{kind}", on_done=on_done, on_error=on_error, owner=self)
        self._tasks[kind] = task
        task.start(fn, *args, executor=self._pool)

    def shutdown(self) -> None:
        for kind in list(self._tasks):
            self._drop(kind)
        self._pool.shutdown(wait=False, cancel_futures=True)
