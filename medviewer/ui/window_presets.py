"""The user's own window presets ("Window > Save window as preset…"), kept in the settings file
beside the built-in CT presets. Stored as one JSON text {name: [width, level]} under WINDOW_PRESETS_KEY
so that every QSettings backend (INI file, registry, plist) keeps it the same."""
from __future__ import annotations

import json
import math

from medviewer.core.display import ALIASES, CT_PRESETS, Window
from medviewer.core.errors import MedViewerError

WINDOW_PRESETS_KEY = "window_presets"
MAX_NAME = 40


def _settings():
    from medviewer.ui.main_window import settings

    return settings()


def clean_name(name: str) -> str:
    """The preset's name as listed, or MedViewerError saying what is wrong with it."""
    text = " ".join("".join(c for c in str(name) if c.isprintable()).split())
    if not text:
        raise MedViewerError("a window preset needs a name")
    if len(text) > MAX_NAME:
        raise MedViewerError(f"a window preset name has at most {MAX_NAME} characters")
    if text.lower() in CT_PRESETS or text.lower() in ALIASES or text.lower() in ("auto", "—"):
        raise MedViewerError(f"{text!r} is a built-in preset; choose another name")
    return text


def user_presets() -> dict[str, Window]:
    """name -> Window; an unreadable entry in the settings is skipped."""
    raw = _settings().value(WINDOW_PRESETS_KEY, "")
    try:
        stored = json.loads(raw) if isinstance(raw, str) and raw else {}
    except ValueError:
        return {}
    presets = {}
    for name, value in (stored.items() if isinstance(stored, dict) else ()):
        try:
            width, level = (float(v) for v in value)
        except (TypeError, ValueError):
            continue
        if width > 0 and math.isfinite(width) and math.isfinite(level):
            presets[str(name)] = Window(width, level)
    return presets


def _store(presets: dict[str, Window]) -> None:
    _settings().setValue(WINDOW_PRESETS_KEY,
                         json.dumps({n: [w.width, w.level] for n, w in presets.items()}))


def save_preset(name: str, window: Window) -> str:
    """Save (or overwrite) a preset; returns the name it is listed under."""
    name = clean_name(name)
    if not (window.width > 0 and math.isfinite(window.width) and math.isfinite(window.level)):
        raise MedViewerError(f"window W {window.width} L {window.level} cannot be saved")
    presets = user_presets()
    presets[name] = Window(float(window.width), float(window.level))
    _store(presets)
    return name


def delete_preset(name: str) -> None:
    presets = user_presets()
    presets.pop(name, None)
    _store(presets)
