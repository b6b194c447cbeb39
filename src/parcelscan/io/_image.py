"""Decoding PNG, TIFF and JPEG files to arrays, with the checks OpenCV does not make for us.

The file is read once into memory and decoded with ``cv2.imdecode(..., IMREAD_UNCHANGED)``
(the same decoder as ``cv2.imread``, but with non-ASCII paths working everywhere and the
bytes we sniffed being the bytes we decode). ``IMREAD_UNCHANGED`` keeps the bit depth and the
channels, and ignores any EXIF orientation. The declared size is checked from the PNG or
TIFF header before decoding; two-sample TIFFs are decoded by :mod:`._tiff`.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from ..scan import MAX_SCAN_ELEMENTS, ScanError
from ._tiff import decode_two_sample, inspect_tiff

__all__ = ["JPEG_MAGIC", "PNG_MAGIC", "TIFF_MAGICS", "decode_image", "image_kind"]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TIFF_MAGICS = (b"II*\x00", b"MM\x00*")
JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}  # colour type -> channels (palette expands to RGB)


def image_kind(head: bytes) -> str | None:
    """``"PNG"``, ``"TIFF"``, ``"JPEG"`` or None, from the first bytes of a file."""
    if head.startswith(PNG_MAGIC):
        return "PNG"
    if head.startswith(TIFF_MAGICS):
        return "TIFF"
    if head.startswith(JPEG_MAGIC):
        return "JPEG"
    return None


def decode_image(path: Path) -> np.ndarray:
    """Decode an image file to (L, P, K) uint8 or uint16, rows = lines, columns = pixels.

    Channels are in the file's order: grey (K = 1); R, G, B (K = 3); R, G, B, A (K = 4); the
    two samples of a two-sample TIFF (K = 2). OpenCV's BGR order is undone here.

    Raises
    ------
    ScanError
        Not a PNG/TIFF/JPEG, damaged, truncated, or of an implausible size (names the file).
    OSError
        The file cannot be opened.
    """
    data = path.read_bytes()
    kind = image_kind(data[:8])
    if kind is None:
        raise ScanError(f"{path}: not a PNG, TIFF or JPEG file (first bytes {data[:8]!r})")
    if kind == "PNG":
        _check_png_header(path, data)
    elif kind == "TIFF":
        try:
            info = inspect_tiff(data)
        except (ValueError, struct.error) as exc:
            raise ScanError(f"{path}: damaged or truncated TIFF ({exc})") from exc
        _check_size(path, info.height, info.width, info.samples)
        if info.samples == 2:
            try:
                return decode_two_sample(data, info)
            except (ValueError, struct.error) as exc:
                raise ScanError(f"{path}: cannot decode the two-sample TIFF ({exc})") from exc
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except (cv2.error, MemoryError, OverflowError) as exc:
        raise ScanError(f"{path}: cannot decode the {kind} image ({type(exc).__name__}: {exc})") from exc
    if image is None:  # imdecode reports most failures this way, not by raising
        raise ScanError(f"{path}: cannot decode the {kind} image (damaged, truncated or unsupported)")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise ScanError(f"{path}: decoded to shape {image.shape}, expected (lines, pixels[, channels])")
    _check_size(path, image.shape[0], image.shape[1], image.shape[2])
    if image.shape[2] == 3:
        image = image[:, :, ::-1]
    elif image.shape[2] == 4:
        image = image[:, :, [2, 1, 0, 3]]
    return np.ascontiguousarray(image)


def _check_png_header(path: Path, data: bytes) -> None:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise ScanError(f"{path}: damaged or truncated PNG (no IHDR chunk)")
    width, height, _depth, colour = struct.unpack(">IIBB", data[16:26])
    if colour not in _PNG_CHANNELS:
        raise ScanError(f"{path}: damaged PNG (colour type {colour})")
    _check_size(path, height, width, _PNG_CHANNELS[colour])


def _check_size(path: Path, n_lines: int, n_pix: int, channels: int) -> None:
    if n_lines < 2 or n_pix < 2:
        raise ScanError(f"{path}: image of {n_lines} lines x {n_pix} pixels; a scan needs at least 2 of each")
    if n_lines * n_pix * channels > MAX_SCAN_ELEMENTS:
        raise ScanError(
            f"{path}: image of {n_lines} x {n_pix} x {channels} is absurdly large for a parcel scan "
            f"(more than {MAX_SCAN_ELEMENTS} values)"
        )
