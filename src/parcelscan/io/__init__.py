"""Reading and writing scan files: the only package that opens them.

:func:`load_scan` recognises a file by its content (its first bytes), never by its name, and
hands it to the matching reader; :func:`save_scan` writes the native format. Formats
(``docs/scan_format.md``): the native ``.npz``; 16-bit PNG/TIFF raw scans, single files or
``_low``/``_high`` pairs (:mod:`.raster`, writers :func:`write_png_pair`, :func:`write_tiff`);
8-bit grayscale and pseudo-colour exports (:mod:`.pseudocolour`, :func:`read_pseudocolour`);
DICOS DX images (:mod:`.dicos`, writer :func:`write_dicos`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..scan import Scan, ScanError
from ._image import JPEG_MAGIC, PNG_MAGIC, TIFF_MAGICS
from .dicos import looks_like_dicom, read_dicos, write_dicos
from .npz import read_npz, write_npz
from .pseudocolour import read_pseudocolour
from .raster import read_image, write_png_pair, write_tiff
from .tdr import write_tdr

__all__ = [
    "load_scan",
    "read_pseudocolour",
    "save_scan",
    "write_dicos",
    "write_png_pair",
    "write_tdr",
    "write_tiff",
]

_SNIFF_BYTES = 132  # a DICOM file says "DICM" at bytes 128-131


def _starts_with(*magics: bytes) -> Callable[[bytes], bool]:
    return lambda head: head.startswith(magics)


# (test on the first _SNIFF_BYTES bytes, reader, format name), tried in order. PNG, TIFF and JPEG
# share one reader, which decides by the decoded content (bit depth, channels, colour, name).
_READERS: tuple[tuple[Callable[[bytes], bool], Callable[[Path], Scan], str], ...] = (
    (_starts_with(b"PK\x03\x04"), read_npz, "parcelscan native .npz (b'PK\\x03\\x04')"),
    (_starts_with(PNG_MAGIC), read_image, "PNG (b'\\x89PNG')"),
    (_starts_with(*TIFF_MAGICS), read_image, "TIFF (b'II*\\x00' or b'MM\\x00*')"),
    (_starts_with(JPEG_MAGIC), read_image, "JPEG (b'\\xff\\xd8\\xff')"),
    (looks_like_dicom, read_dicos, "DICOS/DICOM (b'DICM' at byte 128)"),
)


def load_scan(path: str | os.PathLike) -> Scan:
    """Read a scan file of any supported format, recognised by its first bytes.

    Parameters
    ----------
    path : str or PathLike
        The scan file; its extension is ignored.

    Returns
    -------
    Scan
        The validated scan.

    Raises
    ------
    ScanError
        The format is not recognised, or the file is malformed (the message names the file).
    OSError
        The file cannot be opened (missing, a directory, no permission).
    """
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    for matches, reader, _ in _READERS:
        if matches(head):
            return reader(path)
    known = ", ".join(name for _, _, name in _READERS)
    what = "empty file" if not head else f"first bytes {head[:16]!r}"
    raise ScanError(f"{path}: unrecognised scan file format ({what}); known formats: {known}")


def save_scan(scan: Scan, path: str | os.PathLike) -> Path:
    """Write ``scan`` to ``path`` in the native format (atomically, name used exactly as given).

    Returns the path written. See :func:`parcelscan.io.npz.write_npz` for extra arrays.
    """
    return write_npz(scan, path)
