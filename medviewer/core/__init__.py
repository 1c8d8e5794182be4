"""Pure-numpy data model of MedViewer (no Qt, no torch)."""
from medviewer.core.volume import Volume

__all__ = ["Volume"]
