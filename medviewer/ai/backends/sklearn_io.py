"""Saving and loading scikit-learn models safely with skops (no pickle). A file is loaded only
after registry.check_weights has passed it (every type in it on ai.skops_check's explicit list);
skops is then trusted with exactly the types its own audit reports, all of which must be on
SKLEARN_TYPES."""
from __future__ import annotations

import os
from typing import Any

from medviewer.ai.registry import ModelSpec, check_weights
from medviewer.ai.skops_check import SKLEARN_TYPES
from medviewer.core.errors import MedViewerError
from medviewer.core.tempfiles import write_path_atomically
from medviewer.io.messages import clean_text, library_reason

_cache: dict[str, tuple[float, Any]] = {}


def save(estimator: Any, path: str | os.PathLike) -> None:
    """skops zip, deflated (a 200-tree forest: 1.8 MB instead of 10.6 MB, and faster to load)."""
    import zipfile

    import skops.io as sio

    write_path_atomically(os.fspath(path), lambda tmp: sio.dump(estimator, tmp, compression=zipfile.ZIP_DEFLATED,
                                                                compresslevel=9), suffix=".skops")


def load(spec: ModelSpec) -> Any:
    """The verified estimator of a registry model (cached; reloaded when the file changes)."""
    reason = check_weights(spec)
    if reason:
        raise MedViewerError(f"{spec.folder}: cannot load the model: {reason}")
    path = spec.weights_path
    key, mtime = str(path), path.stat().st_mtime
    cached = _cache.get(key)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=str(path))
        refused = [clean_text(t) for t in untrusted if t not in SKLEARN_TYPES]
        if refused:
            raise MedViewerError(f"{spec.folder}: cannot load the model: it holds types that are not trusted "
                                 f"({', '.join(refused[:3])})")
        estimator = sio.load(str(path), trusted=untrusted)
    except MedViewerError:
        raise
    except Exception as exc:  # skops raises a variety of errors for damaged files
        raise MedViewerError(f"{spec.folder}: cannot load the model: {library_reason(exc)}") from exc
    _cache[key] = (mtime, estimator)
    return estimator
