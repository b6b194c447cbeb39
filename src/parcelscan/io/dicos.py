"""DICOS (NEMA's DICOM for security screening) digital X-ray images "for processing".

One file holds one scan as a multi-frame DX image: frame 0 = low, frame 1 = high (or a single
frame for single energy), Rows = lines, Columns = detector pixels, 16-bit unsigned raw values,
MONOCHROME2 (a higher value is more transmission, so air is bright). The tags written and read
are listed in ``docs/scan_format.md`` ("DICOS"). The calibration travels in a private block
(creator ``"parcelscan"``, group 0x0011); files from elsewhere without it are calibrated from
the belt margin. pydicom parses; this module interprets and never lets its exceptions escape.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    DICOSDigitalXRayImageStorageForPresentation,
    DICOSDigitalXRayImageStorageForProcessing,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    ExplicitVRLittleEndian,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds

from ..scan import MAX_SCAN_ELEMENTS, Scan, ScanError
from ._calibration import Acquisition, atomic_write, build_scan, json_text, loads_json, prepare_for_write

__all__ = ["DICOM_MAGIC", "looks_like_dicom", "read_dicos", "write_dicos"]

DICOM_MAGIC = b"DICM"  # at byte 128, after the preamble
SOP_CLASS = DICOSDigitalXRayImageStorageForProcessing  # 1.2.840.10008.5.1.4.1.1.501.2.2
_FOR_PROCESSING = {DICOSDigitalXRayImageStorageForProcessing, DigitalXRayImageStorageForProcessing}
_FOR_PRESENTATION = {DICOSDigitalXRayImageStorageForPresentation, DigitalXRayImageStorageForPresentation}
PRIVATE_GROUP = 0x0011
PRIVATE_CREATOR = "parcelscan"
_AIR, _DARK, _HEADER = 0x10, 0x11, 0x12  # element offsets in the private block
_UNCOMPRESSED = {"1.2.840.10008.1.2": "<", "1.2.840.10008.1.2.1": "<", "1.2.840.10008.1.2.2": ">"}
_EXPLICIT_VRS = {
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"OB", b"OD", b"OF",
    b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"SV", b"TM", b"UC", b"UI", b"UL", b"UN",
    b"UR", b"US", b"UT", b"UV",
}  # fmt: skip


def looks_like_dicom(head: bytes) -> bool:
    """True for ``DICM`` at byte 128, or a bare data set (no preamble) whose first element is in
    group 0002 or 0008, explicit VR, or implicit VR (group 0008) with a short length."""
    if head[128:132] == DICOM_MAGIC:
        return True
    if len(head) < 8 or head[:2] not in (b"\x02\x00", b"\x08\x00"):
        return False
    implicit_length = int.from_bytes(head[4:8], "little")
    return head[4:6] in _EXPLICIT_VRS or (head[:2] == b"\x08\x00" and implicit_length < 1024)


def read_dicos(path: str | os.PathLike) -> Scan:
    """Read a DICOS/DICOM DX image "for processing" with one (single) or two (low, high) frames.

    Raises
    ------
    ScanError
        Not a DICOM file, not a DX image for processing, pixel data that is not 16-bit unsigned
        single-sample or does not fit Rows x Columns x frames, invalid private calibration, or
        a belt margin that cannot serve as calibration. The message names the file.
    OSError
        The file cannot be opened.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        preamble = fh.read(132)[128:132] == DICOM_MAGIC
        fh.seek(0)
        try:
            ds = pydicom.dcmread(fh, force=not preamble)
            signals, channels, acq = _interpret(ds, path)
        except ScanError:
            raise
        except Exception as exc:
            # pydicom parses lazily and raises an open set of exceptions (struct.error,
            # KeyError, ValueError, TypeError, ...) on damaged input: all mean a damaged file.
            raise ScanError(f"{path}: damaged or not a DICOM file ({type(exc).__name__}: {exc})") from exc
    return build_scan(path, signals, channels, acq, "DICOS")


def new_dataset(path: str | os.PathLike, sop_class: str) -> FileDataset:
    """An empty Part 10 dataset (preamble, explicit VR little endian) of ``sop_class`` with a new
    SOP Instance UID, for the DICOS writers."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    return ds


def write_dicos(scan: Scan, path: str | os.PathLike) -> Path:
    """Write ``scan`` as a DICOS DX image for processing (Explicit VR Little Endian), atomically.

    The calibration (float32 air, dark) and the exact pitch, voltage and metadata go into the
    private block, so reading the file back gives the scan exactly. Returns the path written.
    """
    path = Path(path)
    air, dark = prepare_for_write(scan, path)
    c, n_lines, n_pix = scan.signals.shape
    if max(n_lines, n_pix) > 65535 or scan.signals.nbytes >= 2**32 - 1:
        raise ScanError(f"cannot write {path}: {c} x {n_lines} x {n_pix} exceeds DICOM's 65535 rows/columns")
    header = {"pixel_mm": float(scan.pixel_mm), "line_mm": float(scan.line_mm), "kvp": float(scan.kvp)}
    header["metadata"] = scan.metadata
    text = json_text(header, f"cannot write {path}: metadata")
    ds = new_dataset(path, SOP_CLASS)
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "DX"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PresentationIntentType = "FOR PROCESSING"
    ds.Manufacturer = "parcelscan"
    ds.KVP = format_number_as_ds(float(scan.kvp))
    ds.ImagerPixelSpacing = [format_number_as_ds(float(v)) for v in (scan.line_mm, scan.pixel_mm)]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns, ds.NumberOfFrames = n_lines, n_pix, c
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.FrameLabelVector = [name.upper() for name in scan.channels]
    ds.FrameIncrementPointer = 0x00182002  # frames are indexed by FrameLabelVector
    ds.PixelData = np.ascontiguousarray(scan.signals, dtype="<u2").tobytes()
    ds["PixelData"].VR = "OW"
    block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    block.add_new(_AIR, "OF", air.astype("<f4").tobytes())
    block.add_new(_DARK, "OF", dark.astype("<f4").tobytes())
    block.add_new(_HEADER, "UT", text)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    atomic_write(path, buf.getvalue())
    return path


def _interpret(ds: Dataset, path: Path) -> tuple[np.ndarray, tuple[str, ...], Acquisition]:
    sop = ds.get("SOPClassUID") or getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", None)
    intent = str(ds.get("PresentationIntentType") or "FOR PROCESSING")
    if sop in _FOR_PRESENTATION or intent != "FOR PROCESSING":
        raise ScanError(f"{path}: a DX image 'for presentation' (processed for display), not raw data")
    if sop not in _FOR_PROCESSING:
        raise ScanError(f"{path}: SOP class {sop or 'missing'} is not a (DICOS) DX image for processing")
    if "PixelData" not in ds:
        raise ScanError(f"{path}: DX image without pixel data")
    rows, cols, frames = int(ds.Rows), int(ds.Columns), int(ds.get("NumberOfFrames") or 1)
    spp, bits, sign = int(ds.SamplesPerPixel), int(ds.BitsAllocated), int(ds.PixelRepresentation)
    if (spp, bits, sign) != (1, 16, 0):
        raise ScanError(
            f"{path}: pixels with SamplesPerPixel {spp}, BitsAllocated {bits}, PixelRepresentation "
            f"{sign}; expected 1, 16, 0 (unsigned 16-bit raw values)"
        )
    if frames not in (1, 2) or rows < 2 or cols < 2 or rows * cols * frames > MAX_SCAN_ELEMENTS:
        raise ScanError(f"{path}: {frames} frames of {rows} x {cols}; expected 1 or 2 frames, at least 2 x 2")
    signals = _pixels(ds, path, frames, rows, cols)
    labels = _frame_labels(ds)
    assumed = ()
    if not labels:
        labels = ["LOW", "HIGH"] if frames == 2 else ["SINGLE"]
        assumed = ("frame order (0 = low, 1 = high)",) if frames == 2 else ()
    order = tuple(_energy(label) for label in labels)
    if order not in (("low", "high"), ("high", "low"), ("single",)) or len(order) != frames:
        raise ScanError(f"{path}: frame labels {labels} for {frames} frames; expected LOW and HIGH")
    if order == ("high", "low"):
        signals, order = signals[::-1].copy(), ("low", "high")
    spacing = ds.get("ImagerPixelSpacing") or ds.get("PixelSpacing")
    if spacing is not None and len(spacing) != 2:
        raise ScanError(f"{path}: pixel spacing {list(spacing)} must have 2 values (row, column)")
    line_mm, pixel_mm = (float(spacing[0]), float(spacing[1])) if spacing else (None, None)
    kvp = float(ds.KVP) if ds.get("KVP") not in (None, "") else None
    acq = Acquisition(pixel_mm=pixel_mm, line_mm=line_mm, kvp=kvp, assumed=assumed)
    return signals, order, _private(ds, path, acq, len(order), cols)


def _frame_labels(ds: Dataset) -> list[str]:
    """FrameLabelVector, else the FrameLabel of each per-frame functional group; [] if neither."""
    vector = ds.get("FrameLabelVector")
    if vector:
        return [str(vector)] if isinstance(vector, (str, bytes)) else [str(v) for v in vector]
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    contents = [(group.get("FrameContentSequence") or [Dataset()])[0] for group in per_frame]
    labels = [str(content.get("FrameLabel") or "") for content in contents]
    return labels if labels and all(labels) else []


def _energy(label: str) -> str | None:
    """'LOW', 'Low energy', 'LE' -> 'low'; 'HIGH', 'HE' -> 'high'; 'SINGLE' -> 'single'."""
    words = label.strip().upper().replace("_", " ").split()
    for name, keys in (("low", {"LOW", "LE"}), ("high", {"HIGH", "HE"}), ("single", {"SINGLE"})):
        if keys & set(words):
            return name
    return None


def _pixels(ds: Dataset, path: Path, frames: int, rows: int, cols: int) -> np.ndarray:
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is None:  # a bare data set: pydicom has guessed the encoding while parsing
        order = "<" if ds.original_encoding[1] is not False else ">"
    else:
        order = _UNCOMPRESSED.get(str(syntax))
    n = frames * rows * cols
    if order is None:  # compressed: only if a pixel data handler for it is installed
        try:
            values = np.asarray(ds.pixel_array)
        except Exception as exc:
            raise ScanError(f"{path}: cannot decode pixel data in transfer syntax {syntax} ({exc})") from exc
        if values.size != n or values.dtype != np.uint16:
            raise ScanError(f"{path}: pixel data decoded to {values.dtype} {values.shape}, not {n} uint16")
    else:
        raw = ds.PixelData
        if not isinstance(raw, bytes) or len(raw) < 2 * n:
            size = len(raw) if isinstance(raw, bytes) else "undefined"
            raise ScanError(f"{path}: pixel data of {size} bytes, {frames} x {rows} x {cols} needs {2 * n}")
        values = np.frombuffer(raw, dtype=order + "u2", count=n).astype(np.uint16)
    stored = int(ds.get("BitsStored") or 16)
    if 1 <= stored < 16:  # bits above BitsStored are not part of the value
        values = values & np.uint16((1 << stored) - 1)
    return values.reshape(frames, rows, cols)


def _private(ds: Dataset, path: Path, acq: Acquisition, c: int, n_pix: int) -> Acquisition:
    try:
        block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)
    except KeyError:
        return acq
    where = f"{path}: private '{PRIVATE_CREATOR}' block"
    refs = []
    for offset, name in ((_AIR, "air"), (_DARK, "dark")):
        if offset not in block:
            raise ScanError(f"{where} lacks the '{name}' reference")
        raw = block[offset].value
        if not isinstance(raw, bytes) or len(raw) != 4 * c * n_pix:
            size = len(raw) if isinstance(raw, (bytes, str)) else "no"
            raise ScanError(f"{where}: '{name}' holds {size} bytes, expected {c} x {n_pix} float32")
        refs.append(np.frombuffer(raw, "<f4").astype(np.float32).reshape(c, n_pix))
    pixel_mm, line_mm, kvp, metadata = acq.pixel_mm, acq.line_mm, acq.kvp, None
    if _HEADER in block:
        raw = block[_HEADER].value
        try:
            header = loads_json(raw.decode("utf-8") if isinstance(raw, bytes) else str(raw))
        except (ValueError, RecursionError) as exc:
            raise ScanError(f"{where}: header is not valid JSON ({exc})") from exc
        if not isinstance(header, dict) or not isinstance(header.get("metadata", {}), dict):
            raise ScanError(f"{where}: header must be a JSON object with a 'metadata' object")
        metadata = header.get("metadata")
        # The public DS tags carry at most 16 characters: restore the exact value if it agrees.
        pixel_mm, line_mm, kvp = (
            _exact(header.get(k), v) for k, v in (("pixel_mm", pixel_mm), ("line_mm", line_mm), ("kvp", kvp))
        )
    return Acquisition(refs[0], refs[1], pixel_mm, line_mm, kvp, metadata, acq.assumed)


def _exact(private: Any, public: float | None) -> float | None:
    if not isinstance(private, float) or not np.isfinite(private) or private <= 0:
        return public
    if public is None:
        return private
    return private if abs(private - public) <= 1e-9 * abs(public) else public
