"""A text progress bar for training on a terminal: one line per epoch redrawn batch by batch.

Only drawn when the stream is a terminal (logs and CI output keep just the per-epoch lines).
"""
from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, total: int, label: str, stream: TextIO | None = None, enabled: bool | None = None,
                 width: int = 28):
        self.total, self.label, self.width = max(int(total), 1), label, width
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled if enabled is not None else bool(getattr(self.stream, "isatty", lambda: False)())
        self.done, self.started = 0, time.monotonic()

    def render(self, extra: str = "") -> str:
        frac = min(self.done / self.total, 1.0)
        filled = int(round(frac * self.width))
        elapsed = time.monotonic() - self.started
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        return (f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} "
                f"{elapsed:.0f}s<{eta:.0f}s" + (f" {extra}" if extra else ""))

    def update(self, n: int = 1, extra: str = "") -> None:
        self.done += n
        if self.enabled:
            self.stream.write("\r" + self.render(extra) + "\x1b[K")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
