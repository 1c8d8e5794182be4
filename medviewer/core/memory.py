"""How much memory an allocation may take, checked before it is made.

A header can claim any size (a 62 kB file that says 1.5 GB, one bad slice position that makes a
resampling grid of many GB). Readers call `check_fits(nbytes, what)` with the bytes they are about
to allocate (all copies that will be alive at once); it raises `TooLarge`, a one-line
MedViewerError, when that exceeds what the machine can give: the available memory (Linux
MemAvailable, or the cgroup limit when that is smaller) less a reserve for the rest of the program.
"""
from __future__ import annotations

import os

from medviewer.core.errors import MedViewerError

RESERVE = 512 * 2**20  # left for the program itself, the GUI and the decoders' buffers
# MEDVIEWER_MEMORY_LIMIT (bytes, or with a K/M/G suffix) caps what one allocation may take:
# for tests, and for users who share a machine
ENV_LIMIT = "MEDVIEWER_MEMORY_LIMIT"


class TooLarge(MedViewerError):
    """An allocation would not fit in the available memory."""


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as fp:
            for line in fp:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room() -> int | None:
    """Room left under a cgroup v2/v1 memory limit, when there is one."""
    for limit_path, usage_path in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_path) as fp:
                raw = fp.read().strip()
            if raw == "max":
                continue
            limit = int(raw)
            with open(usage_path) as fp:
                usage = int(fp.read().strip())
        except (OSError, ValueError):
            continue
        if limit < 2**60:  # v1 reports "no limit" as a huge number
            return max(limit - usage, 0)
    return None


def _parse_size(text: str) -> int | None:
    text = text.strip().upper()
    scale = 1
    for suffix, factor in (("K", 2**10), ("M", 2**20), ("G", 2**30), ("T", 2**40)):
        if text.endswith(suffix) or text.endswith(suffix + "B"):
            text = text[: text.rindex(suffix)]
            scale = factor
            break
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value * scale) if value > 0 else None


def available_bytes() -> int:
    """Bytes one allocation may take now (never negative)."""
    candidates = [v for v in (_meminfo_available(), _cgroup_room()) if v is not None]
    if not candidates:  # not Linux: psutil when installed, otherwise no limit known
        try:
            import psutil

            candidates.append(int(psutil.virtual_memory().available))
        except Exception:  # noqa: BLE001 - psutil missing or failing: no limit from it
            candidates.append(2**62)
    room = max(min(candidates) - RESERVE, 0)
    env = _parse_size(os.environ.get(ENV_LIMIT, ""))
    return min(room, env) if env is not None else room


def human(nbytes: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if abs(nbytes) < 1024 or unit == "TB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} TB"  # pragma: no cover


def check_fits(nbytes: int | float, what: str) -> None:
    """Raise TooLarge when NBYTES (everything the caller will hold at once) does not fit.
    WHAT names the thing, e.g. "the 512x512x4000 int16 volume"."""
    room = available_bytes()
    if nbytes > room:
        raise TooLarge(f"{what} needs {human(nbytes)} of memory; {human(room)} is available")
