"""Autosave of label maps to a recovery file, so that a crash or kill loses seconds of work only."""
from __future__ import annotations

import hashlib
import io
import json
import os
import time

import numpy as np

from medviewer.core.labels import Label, LabelMap, LabelTable
from medviewer.core.paths import data_dir
from medviewer.core.tempfiles import remove_stale_in, write_atomically


def recovery_folder() -> str:
    return str(data_dir() / "recovery")


def clean_stale_temporaries() -> list[str]:
    """Remove the temporaries that killed autosaves left in the recovery and session folders
    (only our own, of writers no longer running); run at start. Never raises."""
    removed = []
    for folder in (recovery_folder(), str(data_dir() / "sessions")):
        removed += remove_stale_in(folder)
    return removed


def recovery_path(image_key: str) -> str:
    digest = hashlib.sha1(image_key.encode()).hexdigest()[:16]
    return os.path.join(recovery_folder(), f"{digest}.npz")


def save_recovery(image_key: str, label_maps: list[LabelMap]) -> str:
    """Write every label map (data + table) atomically; returns the file written."""
    return write_recovery(image_key, recovery_snapshot(label_maps))


def recovery_snapshot(label_maps: list[LabelMap]) -> tuple[list[dict], dict]:
    """What an autosave writes: the label tables (copied now) and the label arrays (by reference:
    a background writer may see edits made while it compresses; the next autosave catches up)."""
    tables = [{"name": m.name, "labels": [dict(vars(lab)) for lab in m.table]} for m in label_maps]
    arrays = {f"map{i}": m.data for i, m in enumerate(label_maps)}
    return tables, arrays


def write_recovery(image_key: str, snapshot: tuple[list[dict], dict]) -> str:
    """Compress and write a snapshot atomically (safe to run off the GUI thread)."""
    tables, arrays = snapshot
    path = recovery_path(image_key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, meta=np.frombuffer(json.dumps(
        {"image": image_key, "saved": time.time(), "maps": tables}).encode(), dtype=np.uint8), **arrays)

    def fill(f) -> None:
        f.write(buffer.getvalue())
        f.flush()
        os.fsync(f.fileno())

    return write_atomically(path, fill, suffix=".npz")


def load_recovery(image_key: str, shape: tuple[int, int, int]) -> list[LabelMap]:
    """The autosaved label maps of this image ([] when there are none or they do not fit)."""
    path = recovery_path(image_key)
    if not os.path.isfile(path):
        return []
    try:
        with np.load(path) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            if meta.get("image") != image_key:
                return []
            maps = []
            for i, info in enumerate(meta["maps"]):
                data = z[f"map{i}"]
                if data.shape != tuple(shape):
                    return []
                table = LabelTable({d["value"]: Label(**{**d, "colour": tuple(d["colour"])}) for d in info["labels"]})
                maps.append(LabelMap(shape, info["name"], table, data=data))
            return maps
    except (OSError, ValueError, KeyError, TypeError):
        return []  # a damaged recovery file must not stop the image from opening


def recovery_time(image_key: str) -> float | None:
    path = recovery_path(image_key)
    return os.path.getmtime(path) if os.path.isfile(path) else None


def discard_recovery(image_key: str) -> None:
    try:
        os.unlink(recovery_path(image_key))
    except FileNotFoundError:
        pass
