"""Per-image session data kept between runs (measurements), as JSON in the user data folder."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from medviewer.core.measurements import Measurement
from medviewer.core.paths import data_dir
from medviewer.core.tempfiles import write_atomically


def _key(image_key: str) -> str:
    return hashlib.sha1(image_key.encode()).hexdigest()[:16]


def _path(image_key: str) -> Path:
    return data_dir() / "sessions" / f"{_key(image_key)}.json"


def save_measurements(image_key: str, measurements: list[Measurement]) -> None:
    path = _path(image_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"image": image_key, "measurements": [m.to_dict() for m in measurements]})
    write_atomically(str(path), lambda fh: fh.write(text), suffix=".json", text=True)


def load_measurements(image_key: str) -> list[Measurement]:
    path = _path(image_key)
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
        return [Measurement.from_dict(d) for d in data.get("measurements", [])]
    except (ValueError, KeyError, TypeError):
        return []  # a damaged session file must not stop the image from opening
