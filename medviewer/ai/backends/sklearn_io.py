"""Saving and loading scikit-learn models safely with skops (no pickle): beyond the types skops
trusts by default, only scikit-learn classes are accepted when loading."""
from __future__ import annotations

import os
from typing import Any

from medviewer.ai.registry import ModelSpec, check_weights
from medviewer.core.errors import MedViewerError
from medviewer.core.tempfiles import write_path_atomically

TRUSTED_PREFIXES = ("sklearn.",)  # estimator classes only; functions and other types are refused
_cache: dict[str, tuple[float, Any]] = {}


def save(estimator: Any, path: str | os.PathLike) -> None:
    import skops.io as sio

    write_path_atomically(os.fspath(path), lambda tmp: sio.dump(estimator, tmp), suffix=".skops")


def load(spec: ModelSpec) -> Any:
    """The verified estimator of a registry model (cached; reloaded when the file changes)."""
    reason = check_weights(spec)
    if reason:
        raise MedViewerError(f"{spec.folder}: {reason}")
    path = spec.weights_path
    key, mtime = str(path), path.stat().st_mtime
    cached = _cache.get(key)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=str(path))
        refused = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
        if refused:
            raise MedViewerError(f"{spec.folder}: the model file holds types that are not scikit-learn's "
                                 f"({', '.join(refused[:3])}); refusing to load it")
        estimator = sio.load(str(path), trusted=untrusted)
    except MedViewerError:
        raise
    except Exception as exc:  # skops raises a variety of errors for damaged files
        raise MedViewerError(f"{spec.folder}: cannot load the model: {' '.join(str(exc).split())[:200]}") from exc
    _cache[key] = (mtime, estimator)
    return estimator
