"""Errors that carry a message fit to show a user."""
from __future__ import annotations


class MedViewerError(Exception):
    """Base of the errors MedViewer reports to users (one line, names the file)."""


class ImageReadError(MedViewerError):
    def __init__(self, path: str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ImageWriteError(MedViewerError):
    pass


class Cancelled(MedViewerError):
    """A long job (inference, explanation, training) stopped because the user asked."""
