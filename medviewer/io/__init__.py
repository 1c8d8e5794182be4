"""Readers and writers: DICOM (pydicom + pylibjpeg), NIfTI/NRRD/MHA/PNG/JPEG (SimpleITK)."""
from medviewer.io.discover import discover, open_volume
from medviewer.io.writer import write_volume

__all__ = ["discover", "open_volume", "write_volume"]
