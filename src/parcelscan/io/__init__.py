"""Reading and writing scan files: the only package that opens them.

:func:`load_scan` recognises a file by its content (its first bytes), never by its name, and
hands it to the matching reader; :func:`save_scan` writes the native format. Readers for other
formats (PNG, TIFF, DICOS) register here by their magic bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..scan import Scan, ScanError
from .npz import read_npz, write_npz

__all__ = ["load_scan", "save_scan"]

_SNIFF_BYTES = 16

# (magic bytes at offset 0, reader, format name), tried in order.
_READERS: tuple[tuple[bytes, Callable[[Path], Scan], str], ...] = (
    (b"PK\x03\x04", read_npz, "parcelscan native .npz"),
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
    for magic, reader, _ in _READERS:
        if head.startswith(magic):
            return reader(path)
    known = ", ".join(f"{name} ({magic!r})" for magic, _, name in _READERS)
    what = "empty file" if not head else f"first bytes {head!r}"
    raise ScanError(f"{path}: unrecognised scan file format ({what}); known formats: {known}")


def save_scan(scan: Scan, path: str | os.PathLike) -> Path:
    """Write ``scan`` to ``path`` in the native format (atomically, name used exactly as given).

    Returns the path written. See :func:`parcelscan.io.npz.write_npz` for extra arrays.
    """
    return write_npz(scan, path)
