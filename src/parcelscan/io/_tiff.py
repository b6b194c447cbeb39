"""Just enough TIFF for two-sample 16-bit images, which OpenCV cannot write and decodes wrongly.

OpenCV (5.0) refuses to encode a 2-channel image and decodes a 2-sample TIFF as 8-bit grey.
So the reader inspects the first IFD itself: two-sample files are decoded here (baseline,
uncompressed, strips, chunky or planar, either byte order); every other TIFF goes to OpenCV,
after its declared size has been checked. The writer emits a baseline uncompressed TIFF
(one strip, BlackIsZero, ``ExtraSamples = [0]`` for the second sample) that libtiff, tifffile
and ImageJ read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

__all__ = ["TiffInfo", "decode_two_sample", "encode_tiff", "inspect_tiff"]

_TYPE_SIZES = {1: 1, 3: 2, 4: 4}  # BYTE, SHORT, LONG: all the integer tags we need use these
_TYPE_CODES = {1: "B", 3: "H", 4: "I"}
_MAX_ENTRIES = 4096
_MAX_VALUES = 2**20


@dataclass(frozen=True)
class TiffInfo:
    """The first image of a TIFF file, as its IFD declares it."""

    width: int
    height: int
    samples: int
    tags: dict[int, tuple[int, ...]]
    byteorder: str  # "<" or ">"


def inspect_tiff(data: bytes) -> TiffInfo:
    """Parse the header and first IFD. Raises ValueError describing what is wrong."""
    if len(data) < 8:
        raise ValueError("TIFF header truncated")
    bo = {b"II": "<", b"MM": ">"}.get(data[:2])
    if bo is None or struct.unpack(bo + "H", data[2:4])[0] != 42:
        raise ValueError("not a classic TIFF header")
    (ifd,) = struct.unpack(bo + "I", data[4:8])
    if ifd < 8 or ifd + 2 > len(data):
        raise ValueError(f"first IFD offset {ifd} lies outside the {len(data)}-byte file")
    (n,) = struct.unpack(bo + "H", data[ifd : ifd + 2])
    if n == 0 or n > _MAX_ENTRIES or ifd + 2 + 12 * n > len(data):
        raise ValueError(f"IFD with {n} entries does not fit the file")
    tags: dict[int, tuple[int, ...]] = {}
    for i in range(n):
        tag, typ, count, raw = struct.unpack(bo + "HHI4s", data[ifd + 2 + 12 * i : ifd + 14 + 12 * i])
        if typ not in _TYPE_SIZES:
            continue  # rationals, ASCII, ...: not needed here
        size = _TYPE_SIZES[typ] * count
        if count > _MAX_VALUES:
            raise ValueError(f"tag {tag} declares {count} values")
        if size <= 4:
            blob = raw[:size]
        else:
            (off,) = struct.unpack(bo + "I", raw)
            if off + size > len(data):
                raise ValueError(f"tag {tag} values lie outside the file")
            blob = data[off : off + size]
        tags[tag] = struct.unpack(f"{bo}{count}{_TYPE_CODES[typ]}", blob)
    try:
        width, height = tags[256][0], tags[257][0]
    except (KeyError, IndexError):
        raise ValueError("IFD lacks ImageWidth or ImageLength") from None
    samples = (tags.get(277) or (1,))[0]
    return TiffInfo(width, height, samples, tags, bo)


def decode_two_sample(data: bytes, info: TiffInfo) -> np.ndarray:
    """Decode a baseline uncompressed 16-bit unsigned two-sample TIFF to (L, P, 2) uint16."""
    t = info.tags
    bits = t.get(258, (1,))
    if len(bits) not in (1, 2) or any(b != 16 for b in bits):
        raise ValueError(f"two-sample TIFF with BitsPerSample {bits}; only 16-bit is supported")
    if t.get(339, (1,))[0] != 1:
        raise ValueError(f"two-sample TIFF with SampleFormat {t[339][0]}; only unsigned integers work")
    if t.get(259, (1,))[0] != 1:
        raise ValueError(f"two-sample TIFF with Compression {t[259][0]}; only uncompressed is supported")
    if 322 in t or 273 not in t or 279 not in t:
        raise ValueError("two-sample TIFF without strips (tiled or missing StripOffsets/StripByteCounts)")
    offsets, counts = t[273], t[279]
    if len(offsets) != len(counts):
        raise ValueError(f"{len(offsets)} strip offsets but {len(counts)} strip byte counts")
    chunks = []
    for off, cnt in zip(offsets, counts, strict=True):
        if off + cnt > len(data):
            raise ValueError(f"strip at {off} of {cnt} bytes runs past the end of the {len(data)}-byte file")
        chunks.append(data[off : off + cnt])
    blob = b"".join(chunks)
    need = info.width * info.height * 2 * 2
    if len(blob) < need:
        raise ValueError(f"strips hold {len(blob)} bytes, the image needs {need}")
    values = np.frombuffer(blob, dtype=info.byteorder + "u2", count=need // 2).astype(np.uint16)
    if t.get(284, (1,))[0] == 2:  # planar: all of sample 0, then all of sample 1
        return np.ascontiguousarray(values.reshape(2, info.height, info.width).transpose(1, 2, 0))
    return values.reshape(info.height, info.width, 2)


def encode_tiff(image: np.ndarray) -> bytes:
    """Encode (L, P, S) uint16, S in {1, 2}, as a little-endian uncompressed one-strip TIFF."""
    n_lines, n_pix, s = image.shape
    pixels = np.ascontiguousarray(image, dtype="<u2").tobytes()
    ifd_offset = 8 + len(pixels)  # even, as TIFF requires
    if ifd_offset + 2 + 12 * 13 + 4 > 2**32 - 1:
        raise ValueError(f"image of {len(pixels)} bytes is too large for a classic TIFF")

    def short(*values: int) -> bytes:
        return struct.pack(f"<{len(values)}H", *values).ljust(4, b"\0")

    def long(value: int) -> bytes:
        return struct.pack("<I", value)

    entries = [
        (256, 4, 1, long(n_pix)),
        (257, 4, 1, long(n_lines)),
        (258, 3, s, short(*([16] * s))),
        (259, 3, 1, short(1)),  # no compression
        (262, 3, 1, short(1)),  # BlackIsZero
        (273, 4, 1, long(8)),
        (277, 3, 1, short(s)),
        (278, 4, 1, long(n_lines)),
        (279, 4, 1, long(len(pixels))),
        (284, 3, 1, short(1)),  # chunky
    ]
    if s == 2:
        entries.append((338, 3, 1, short(0)))  # the second sample is "unspecified", not alpha
    entries.append((339, 3, s, short(*([1] * s))))  # unsigned integers
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHI", *e[:3]) + e[3] for e in entries)
    return b"II*\0" + long(ifd_offset) + pixels + ifd + long(0)
