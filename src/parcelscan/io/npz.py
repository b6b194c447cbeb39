"""The native scan file: a compressed ``.npz`` archive with a JSON header (format version 1).

Layout (see ``docs/scan_format.md``)::

    signals.npy   (C, L, P) uint16   raw detector values, channels x lines x pixels
    air.npy       (C, P) float32     open-beam reference
    dark.npy      (C, P) float32     no-beam reference
    header.npy    (N,) uint8         UTF-8 JSON: format, format_version, channels,
                                     pixel_mm, line_mm, kvp, metadata
    extra_<name>.npy                 optional caller arrays, ignored unless asked for

Nothing is pickled: the reader uses ``allow_pickle=False`` and refuses object arrays. Every
malformed file raises :class:`~parcelscan.scan.ScanError` naming the file; a file that cannot
be opened at all (missing, permissions) raises the usual :class:`OSError`.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any, Literal, overload

import numpy as np
from numpy.lib import format as npy_format

from ..scan import MAX_SCAN_ELEMENTS, SCAN_FORMAT_VERSION, Scan, ScanError
from ._calibration import atomic_write, prepare_for_write

__all__ = ["FORMAT_NAME", "read_npz", "write_npz"]

FORMAT_NAME = "parcelscan-scan"
EXTRA_PREFIX = "extra_"
_MAX_HEADER_BYTES = 16 * 2**20  # JSON header (metadata included); far above any real scanner description
_EXTRA_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
_HEADER_KEYS = ("channels", "pixel_mm", "line_mm", "kvp", "metadata")
_CALIBRATION = {"air": "open-beam calibration", "dark": "no-beam calibration"}

# What a damaged archive can raise from zipfile, zlib or numpy while we read it. The file is
# already open when these can occur, so an OSError here is a bad seek/read inside the content.
_CORRUPT = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    ValueError,
    OSError,
    KeyError,
    IndexError,
    NotImplementedError,  # unsupported compression method
    RuntimeError,  # "file is encrypted"
    struct.error,
    OverflowError,
    RecursionError,
)


def write_npz(scan: Scan, path: str | os.PathLike, *, extras: dict[str, np.ndarray] | None = None) -> Path:
    """Write ``scan`` to ``path`` in the native format, atomically.

    The archive is written to a temporary file in the same directory and renamed over ``path``,
    so a reader never sees a half-written file and a failed write leaves any old file intact.
    The name is used exactly as given: no ``.npz`` suffix is appended.

    Parameters
    ----------
    scan : Scan
        The scan; ``air`` and ``dark`` are stored as float32.
    path : str or PathLike
        Destination file.
    extras : dict of str to ndarray, optional
        Additional arrays stored as ``extra_<name>``; names use ``[A-Za-z0-9_]``, at most 64
        characters. Object arrays are refused. The reader ignores them unless asked.

    Returns
    -------
    Path
        The path written.
    """
    if not isinstance(scan, Scan):
        raise TypeError(f"scan must be a parcelscan Scan, got {type(scan).__name__}")
    path = Path(path)
    # Re-check what may have changed since construction (arrays are mutable), exactly as the reader
    # will see it: a float64 reference may overflow or tie in float32.
    air, dark = prepare_for_write(scan, path)
    _check_json(scan.metadata, "metadata")
    header = {
        "format": FORMAT_NAME,
        "format_version": SCAN_FORMAT_VERSION,
        "channels": list(scan.channels),
        "pixel_mm": float(scan.pixel_mm),
        "line_mm": float(scan.line_mm),
        "kvp": float(scan.kvp),
        "metadata": scan.metadata,
    }
    text = json.dumps(header, ensure_ascii=False, allow_nan=False)
    arrays = {
        "signals": np.ascontiguousarray(scan.signals),
        "air": air,
        "dark": dark,
        "header": np.frombuffer(text.encode("utf-8"), dtype=np.uint8),
    }
    for name, value in (extras or {}).items():
        arrays[EXTRA_PREFIX + _check_extra(name, value)] = value
    # a file handle: numpy appends no ".npz" to the name
    atomic_write(path, lambda fh: np.savez_compressed(fh, allow_pickle=False, **arrays))
    return path


@overload
def read_npz(path: str | os.PathLike, *, with_extras: Literal[False] = ...) -> Scan: ...
@overload
def read_npz(
    path: str | os.PathLike, *, with_extras: Literal[True]
) -> tuple[Scan, dict[str, np.ndarray]]: ...
def read_npz(path: str | os.PathLike, *, with_extras: bool = False) -> Scan | tuple[Scan, dict]:
    """Read a native scan file.

    Array headers are checked (dtype, shape, size) before any array data is decompressed, so a
    damaged or hostile file cannot make the reader allocate more than ``MAX_SCAN_ELEMENTS``.

    Parameters
    ----------
    path : str or PathLike
        A file written by :func:`write_npz`.
    with_extras : bool
        Also return the ``extra_<name>`` arrays, as ``{name: array}``.

    Returns
    -------
    Scan, or (Scan, dict of str to ndarray) when ``with_extras``.

    Raises
    ------
    ScanError
        The file is not a parcelscan scan, is damaged or truncated, was written by a newer
        parcelscan, or holds an invalid scan. The message names the file.
    OSError
        The file cannot be opened.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        try:
            with zipfile.ZipFile(fh) as zf:
                header, arrays, extras = _read_archive(zf, path, with_extras)
        except ScanError:
            raise
        except _CORRUPT as exc:
            raise ScanError(f"{path}: damaged or truncated scan file ({type(exc).__name__}: {exc})") from exc
    try:
        scan = Scan(
            arrays["signals"],
            arrays["air"],
            arrays["dark"],
            tuple(header["channels"]),
            header["pixel_mm"],
            header["line_mm"],
            header["kvp"],
            header["metadata"],
        )
    except ScanError as exc:
        raise ScanError(f"{path}: invalid scan: {exc}") from exc
    return (scan, extras) if with_extras else scan


def _read_archive(
    zf: zipfile.ZipFile, path: Path, with_extras: bool
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
    members = {info.filename[:-4]: info for info in zf.infolist() if info.filename.endswith(".npy")}
    if "header" not in members:
        raise ScanError(f"{path}: a zip archive but not a parcelscan scan file (no 'header' entry)")
    header = _parse_header(_read_member(zf, members["header"], path, "header", _check_header_spec), path)
    for name in ("signals", "air", "dark"):
        if name not in members:
            what = f" ({_CALIBRATION[name]})" if name in _CALIBRATION else ""
            raise ScanError(f"{path}: missing '{name}'{what} array")
    signals = _read_member(zf, members["signals"], path, "signals", _check_signals_spec)
    c, _, n_pix = signals.shape
    arrays = {"signals": signals}
    for name in ("air", "dark"):
        arrays[name] = _read_member(zf, members[name], path, name, _ref_spec_checker((c, n_pix)))
    extras = {}
    if with_extras:
        for key, info in members.items():
            if key.startswith(EXTRA_PREFIX):
                extras[key[len(EXTRA_PREFIX) :]] = _read_member(zf, info, path, key, _check_any_spec)
    return header, arrays, extras


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, name: str, check) -> np.ndarray:
    """Read one ``.npy`` entry, letting ``check(shape, dtype)`` refuse it before decompression."""
    with zf.open(info) as f:
        shape, _fortran_order, dtype = _read_npy_header(f, path, name)
        problem = check(shape, dtype)
        if problem:
            raise ScanError(f"{path}: '{name}' array {problem}")
        needed = f.tell() + math.prod(shape) * dtype.itemsize
        if info.file_size < needed:
            raise ScanError(f"{path}: '{name}' entry holds {info.file_size} bytes, its shape needs {needed}")
    with zf.open(info) as f:
        array = npy_format.read_array(f, allow_pickle=False)
        if f.read(1):  # draining to the end also makes zipfile verify the CRC
            raise ScanError(f"{path}: '{name}' entry has trailing data after the array")
    return array


def _read_npy_header(f: IO[bytes], path: Path, name: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = npy_format.read_magic(f)
    if version == (1, 0):
        return npy_format.read_array_header_1_0(f)
    if version == (2, 0):
        return npy_format.read_array_header_2_0(f)
    raise ScanError(f"{path}: '{name}' array uses unsupported .npy version {version}")


def _check_any_spec(shape: tuple[int, ...], dtype: np.dtype) -> str | None:
    if any(d < 0 for d in shape):
        return f"has a negative dimension in shape {shape}"
    if dtype.hasobject:
        return f"has object dtype {dtype}, which would need pickle"
    if math.prod(shape) > MAX_SCAN_ELEMENTS:
        return f"of shape {shape} is absurdly large (more than {MAX_SCAN_ELEMENTS} elements)"
    return None


def _check_header_spec(shape: tuple[int, ...], dtype: np.dtype) -> str | None:
    if dtype != np.uint8 or len(shape) != 1 or shape[0] < 0:
        return f"must be 1-D uint8 (UTF-8 JSON), got dtype {dtype} shape {shape}"
    if shape[0] > _MAX_HEADER_BYTES:
        return f"is {shape[0]} bytes, more than the {_MAX_HEADER_BYTES} allowed"
    return None


def _check_signals_spec(shape: tuple[int, ...], dtype: np.dtype) -> str | None:
    if len(shape) != 3:
        return f"must have shape (channels, lines, pixels), got shape {shape}"
    if dtype != np.uint16:
        return f"must be uint16 raw detector values, got dtype {dtype}"
    return _check_any_spec(shape, dtype)


def _ref_spec_checker(expected: tuple[int, int]):
    def check(shape: tuple[int, ...], dtype: np.dtype) -> str | None:
        if tuple(shape) != expected:
            return f"must have shape (channels, pixels) = {expected}, got {shape}"
        if dtype != np.float32:
            return f"must be float32, got dtype {dtype}"
        return None

    return check


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-standard JSON constant {name}")


def _parse_header(raw: np.ndarray, path: Path) -> dict[str, Any]:
    try:
        header = json.loads(raw.tobytes().decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ScanError(f"{path}: header is not valid UTF-8 JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise ScanError(f"{path}: header must be a JSON object, got {type(header).__name__}")
    if header.get("format") != FORMAT_NAME:
        raise ScanError(f"{path}: header format is {header.get('format')!r}, expected {FORMAT_NAME!r}")
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ScanError(f"{path}: header format_version must be a positive integer, got {version!r}")
    if version > SCAN_FORMAT_VERSION:
        raise ScanError(
            f"{path}: written by a newer parcelscan (format_version {version}; this version reads "
            f"up to {SCAN_FORMAT_VERSION}); upgrade parcelscan to read it"
        )
    for key in _HEADER_KEYS:
        if key not in header:
            raise ScanError(f"{path}: header lacks '{key}'")
    channels = header["channels"]
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise ScanError(f"{path}: header 'channels' must be a list of names, got {channels!r}")
    if not isinstance(header["metadata"], dict):
        raise ScanError(f"{path}: header 'metadata' must be an object, got {header['metadata']!r}")
    return header


def _check_json(value: Any, where: str) -> None:
    """Refuse anything that would not come back from JSON as written, naming where it sits."""
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ScanError(f"{where} = {value!r}: NaN and Inf are not JSON; use None")
        return
    if isinstance(value, (list, tuple)):  # a tuple reads back as a list
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ScanError(f"{where} has key {key!r} of type {type(key).__name__}; JSON keys are str")
            _check_json(item, f"{where}[{key!r}]")
        return
    hint = (
        " (convert numpy values with .item() or .tolist())"
        if isinstance(value, np.generic | np.ndarray)
        else ""
    )
    raise ScanError(f"{where} is a {type(value).__name__}, which is not JSON-serialisable{hint}")


def _check_extra(name: Any, value: Any) -> str:
    if not isinstance(name, str) or not _EXTRA_NAME.fullmatch(name):
        raise ScanError(f"extra array name {name!r} must match [A-Za-z0-9_]{{1,64}}")
    if not isinstance(value, np.ndarray):
        raise ScanError(f"extra '{name}' must be a numpy array, got {type(value).__name__}")
    problem = _check_any_spec(value.shape, value.dtype)
    if problem:
        raise ScanError(f"extra '{name}' {problem}")
    return name
