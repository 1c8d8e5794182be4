"""Decode the pixels of a DICOM series into one array, in parallel.

Uncompressed little-endian slices are read straight from the file into the output
(no pydicom pixel handling, one small buffer per thread); everything else goes through
pydicom's decoders (pylibjpeg, openjpeg, libjpeg, RLE). Rescale slope/intercept are
applied per frame, so the values are HU for CT.
"""
from __future__ import annotations

import math
import os
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pydicom
from pydicom.uid import UID

from medviewer.core.errors import ImageReadError
from medviewer.core.memory import check_fits
from medviewer.core.volume import Volume
from medviewer.io.dicom_files import open_dicom
from medviewer.io.dicom_header import FrameRecord, _number, syntax_from_encoding
from medviewer.io.messages import library_reason
from medviewer.io.sitk_buffer import empty_array

_local = threading.local()


def worker_count() -> int:
    return max(2, min(8, 2 * (os.cpu_count() or 2)))


def _stored_range(f: FrameRecord) -> tuple[int, int]:
    bits = max(1, min(f.bits_stored, f.bits_allocated))
    if f.pixel_representation == 1:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2 ** bits - 1


def channels(f: FrameRecord) -> int:
    """Values per pixel in the output: 3 for colour (RGB, YBR, palette colour), else 1."""
    return 3 if f.photometric == "PALETTE COLOR" else f.samples


def output_dtype(frames: list[FrameRecord]) -> np.dtype:
    """The smallest dtype holding every rescaled value exactly."""
    first = frames[0]
    if first.photometric == "PALETTE COLOR":
        return np.dtype(np.uint16)  # palette entries are 16-bit; rescaling makes no sense here
    if first.samples > 1:
        return np.dtype(np.uint8) if first.bits_allocated <= 8 else np.dtype(np.uint16)
    if first.bits_allocated > 16 and first.bits_allocated != 32:
        return np.dtype(np.float32)
    integral = all(f.slope == 1.0 and float(f.intercept).is_integer() for f in frames)
    if not integral:
        return np.dtype(np.float32)
    lo = min(_stored_range(f)[0] + int(f.intercept) for f in frames)
    hi = max(_stored_range(f)[1] + int(f.intercept) for f in frames)
    for dtype in (np.uint8, np.int16, np.uint16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.float64)


def _stored_dtype(f: FrameRecord) -> np.dtype | None:
    if f.bits_allocated == 8:
        return np.dtype(np.int8 if f.pixel_representation else np.uint8)
    if f.bits_allocated == 16:
        return np.dtype("<i2" if f.pixel_representation else "<u2")
    if f.bits_allocated == 32:
        return np.dtype("<i4" if f.pixel_representation else "<u4")
    return None


def _fast_path_ok(f: FrameRecord) -> bool:
    if f.pixel_offset is None or f.frame is not None or f.samples != 1 or f.tile is not None:
        return False  # (a mosaic tile is a part of the stored image, not its start)
    if not f.photometric.startswith("MONOCHROME"):
        return False
    if _stored_dtype(f) is None:
        return False
    # signed values stored in fewer bits than allocated need sign extension: let pydicom do it
    return not (f.pixel_representation == 1 and f.bits_stored < f.bits_allocated)


def _read_native(f: FrameRecord, out: np.ndarray) -> bool:
    """Read one uncompressed slice straight from the file; False if the layout is unexpected."""
    dtype = _stored_dtype(f)
    nbytes = f.rows * f.columns * dtype.itemsize
    buf = getattr(_local, "buf", None)
    if buf is None or len(buf) < nbytes:
        buf = _local.buf = bytearray(nbytes)
    with open(f.path, "rb") as fp:
        fp.seek(f.pixel_offset)
        head = fp.read(12)
        if len(head) < 8 or head[:4] != b"\xe0\x7f\x10\x00":
            return False
        explicit = f.transfer_syntax == "1.2.840.10008.1.2.1"
        if explicit:
            length = int.from_bytes(head[8:12], "little")
            fp.seek(f.pixel_offset + 12)
        else:
            length = int.from_bytes(head[4:8], "little")
            fp.seek(f.pixel_offset + 8)
        if length == 0xFFFFFFFF or length < nbytes:
            return False
        view = memoryview(buf)[:nbytes]
        if fp.readinto(view) != nbytes:
            raise ImageReadError(f.path, "pixel data is truncated")
    stored = np.frombuffer(view, dtype=dtype).reshape(f.rows, f.columns)
    if f.bits_stored < f.bits_allocated:  # unsigned (signed goes through pydicom): bits above HighBit
        stored = stored & dtype.type((1 << max(f.bits_stored, 1)) - 1)  # are overlays or noise, as pydicom masks them
    _rescale_into(stored, f, out)
    return True


def _rescale_into(stored: np.ndarray, f: FrameRecord, out: np.ndarray) -> None:
    if f.slope == 1.0:
        out[...] = stored
        if f.intercept:  # output_dtype() chose a type that holds the intercept and the result
            out += out.dtype.type(f.intercept)
    else:
        out[...] = stored.astype(np.float64) * f.slope + f.intercept


def _decode_file(path: str, frames: list[tuple[int, FrameRecord]], out: np.ndarray) -> None:
    """Decode the frames one file contributes (slice index in out, frame record)."""
    first = frames[0][1]
    if first.defect:  # found while reading the header (pixel data shorter than the header says)
        raise ImageReadError(path, first.defect)
    if len(frames) == 1 and _fast_path_ok(first):
        try:
            if _read_native(first, out[frames[0][0]]):
                return
        except OSError as exc:
            raise ImageReadError(path, f"cannot read pixel data: {exc}") from exc
    try:
        with open_dicom(path) as fp:
            ds = pydicom.dcmread(fp, force=True)
        if not str(getattr(ds, "file_meta", {}).get("TransferSyntaxUID", "")):
            syntax_from_encoding(ds)
        if not any(t in ds for t in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
            raise ImageReadError(path, "no pixel data in the file (truncated or not an image)")
        from pydicom.pixels import pixel_array

        if first.photometric == "PALETTE COLOR":
            from pydicom.pixels import apply_color_lut

            def pixel_array(ds, index=None, _decode=pixel_array):  # noqa: F811 - palette -> RGB
                return apply_color_lut(_decode(ds, index=index), ds)

        if first.frame is None:
            arrays = {None: pixel_array(ds)}
        elif len(frames) == first.nframes_in_file:
            allf = pixel_array(ds)
            if first.nframes_in_file == 1:
                allf = allf[np.newaxis]
            arrays = {k: allf[k] for k in range(first.nframes_in_file)}
        else:
            arrays = {f.frame: pixel_array(ds, index=f.frame) for _, f in frames}
    except ImageReadError:
        raise
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - also pylibjpeg-rle's Rust PanicException (a BaseException)
        if isinstance(exc, MemoryError):
            raise ImageReadError(path, "not enough memory to decode the pixel data") from exc
        name = UID(first.transfer_syntax).name
        raise ImageReadError(path, f"cannot decode pixel data ({name}): {_one_line(exc)}") from exc
    for z, f in frames:
        arr = arrays[f.frame]
        stored = f.stored_shape or (f.rows, f.columns)
        if arr.shape[:2] != stored:
            raise ImageReadError(path, f"pixel data shape {arr.shape} does not match {stored[0]}x{stored[1]}")
        if f.tile is not None:  # one slice of a mosaic
            arr = arr[f.tile[0]:f.tile[0] + f.rows, f.tile[1]:f.tile[1] + f.columns]
        if channels(f) > 1:
            out[z] = arr
        else:
            _rescale_into(arr, f, out[z])


def _one_line(exc: BaseException) -> str:
    return library_reason(exc, limit=300)


def load_series(series) -> Volume:
    frames: list[FrameRecord] = series.frames
    dtype = output_dtype(frames)
    first = frames[0]
    shape = (len(frames), first.rows, first.columns) + ((channels(first),) if channels(first) > 1 else ())
    check_fits(math.prod(shape) * dtype.itemsize, f"{series.id}: the {'x'.join(map(str, shape[::-1][-3:]))} "
                                                   f"{dtype.name} volume")
    out = empty_array(shape, dtype, channels=len(shape) == 4)  # on a SimpleITK buffer: written without a copy
    by_file: dict[str, list[tuple[int, FrameRecord]]] = defaultdict(list)
    for z, f in enumerate(frames):
        by_file[f.path].append((z, f))
    jobs = list(by_file.items())
    if len(jobs) == 1:
        _decode_file(jobs[0][0], jobs[0][1], out)
    else:
        with ThreadPoolExecutor(worker_count()) as pool:
            for fut in [pool.submit(_decode_file, p, fr, out) for p, fr in jobs]:
                fut.result()
    if series.grid_positions is not None:
        out = _resample_along_normal(out, series.slice_positions, series.grid_positions)
    header = first.header
    metadata = {
        "source": "dicom",
        "series_id": series.id,
        "files": series.files,
        "PatientName": str(header.get("PatientName", "")),
        "PatientID": str(header.get("PatientID", "")),
        "StudyDate": str(header.get("StudyDate", "")),
        "StudyInstanceUID": str(header.get("StudyInstanceUID", "")),
        "SeriesInstanceUID": first.series_uid,
        "FrameOfReferenceUID": str(header.get("FrameOfReferenceUID", "")),  # what links images in world
        "SeriesNumber": str(header.get("SeriesNumber", "")),
        "SeriesDescription": first.description,
        "PhotometricInterpretation": first.photometric,
        "TransferSyntaxes": series.transfer_syntaxes,
        "oriented": first.orientation is not None,  # patient orientation known (letters can be shown)
        "spacing_known": series.spacing_known,  # False: no PixelSpacing of any kind, 1 mm is a placeholder
    }
    if series.value_note:
        metadata["file_notes"] = series.value_note  # written as the NIfTI description
    for key in ("WindowCenter", "WindowWidth", "RepetitionTime"):
        if key in header:
            value = header[key].value
            first_value = value[0] if isinstance(value, pydicom.multival.MultiValue) and len(value) else value
            number = _number(first_value, float("nan"))  # empty, text or "1\\2" in a damaged file: none
            if np.isfinite(number):
                metadata[key] = number
    return Volume(data=out, spacing=series.spacing, origin=series.origin, direction=series.direction,
                  modality=series.modality, metadata=metadata, is_2d=len(frames) == 1,
                  invert_display=first.photometric == "MONOCHROME1", warnings=list(series.warnings))


def _resample_along_normal(data: np.ndarray, positions: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Linear interpolation of slices at uneven positions onto a regular grid."""
    out = np.empty((len(grid),) + data.shape[1:], dtype=data.dtype)
    idx = np.clip(np.searchsorted(positions, grid, side="right") - 1, 0, len(positions) - 2)
    for k, (i, g) in enumerate(zip(idx, grid)):
        p0, p1 = positions[i], positions[i + 1]
        w = 0.0 if p1 == p0 else float(np.clip((g - p0) / (p1 - p0), 0.0, 1.0))
        mixed = data[i].astype(np.float64) * (1 - w) + data[i + 1].astype(np.float64) * w
        out[k] = np.round(mixed) if out.dtype.kind in "iu" else mixed
    return out
