"""What the image and DICOS readers share: the sidecar JSON, belt-margin calibration, and
turning decoded pixels plus whatever the file says into a validated :class:`Scan`.

Conventions (see ``docs/scan_format.md``, "Sidecar JSON" and "Belt-margin calibration"):
signals are (C, L, P) uint16 in the scan's raw units; a sidecar's ``air`` and ``dark`` are in the
image file's own units and are multiplied by ``scale`` (257 for 8-bit files) like the pixels.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..scan import Scan, ScanError, validate_scan

__all__ = [
    "DEFAULT_KVP",
    "DEFAULT_PIXEL_MM",
    "ESTIMATED",
    "SIDECAR_FORMAT",
    "Acquisition",
    "atomic_write",
    "build_scan",
    "estimate_from_margin",
    "json_text",
    "loads_json",
    "prepare_for_write",
    "read_sidecar",
    "sidecar_text",
]

SIDECAR_FORMAT = "parcelscan-sidecar"
SIDECAR_VERSION = 1
DEFAULT_PIXEL_MM = 0.8  # a common line-scan pitch; line_mm defaults to pixel_mm (square pixels)
DEFAULT_KVP = 140.0
ESTIMATED = "estimated from belt margin"

# Belt-margin calibration: the first and last MARGIN_FRACTION of the lines (1 to MARGIN_MAX_LINES
# each) are taken as open beam. Thresholds are relative to the channel's median margin level.
MARGIN_FRACTION = 0.1
MARGIN_MAX_LINES = 32
MARGIN_MAX_SPREAD = 0.10  # p90 - p10 of a pixel column over the margin lines
MARGIN_MAX_BAD_COLUMNS = 0.05  # fraction of columns allowed to exceed that spread
MARGIN_MIN_LEVEL = 0.01 * 65535  # a margin below 1 % of full scale is not open beam
MARGIN_MAX_INTERIOR_RATIO = 1.1  # 99th percentile of interior / margin, per column: air is brightest
_MAX_SIDECAR_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Acquisition:
    """What a file states besides its pixels; ``None`` where it states nothing.

    air, dark : (C, P) float32 ndarray or None
        References in the scan's raw units (already scaled).
    assumed : tuple of str
        Assumptions the reader made beyond the defaults below (e.g. the DICOS frame order).
    """

    air: np.ndarray | None = None
    dark: np.ndarray | None = None
    pixel_mm: float | None = None
    line_mm: float | None = None
    kvp: float | None = None
    metadata: dict[str, Any] | None = None
    assumed: tuple[str, ...] = ()


def build_scan(
    path: Path,
    signals: np.ndarray,
    channels: tuple[str, ...],
    acq: Acquisition,
    source: str,
    extra_metadata: dict[str, Any] | None = None,
) -> Scan:
    """Assemble a validated Scan, filling gaps with documented defaults and recording them.

    Missing references are estimated from the belt margin (``metadata["calibration"]``), missing
    pitch or voltage take ``DEFAULT_*`` (listed in ``metadata["assumed"]``). Metadata given by
    the file is kept exactly as written, so round trips are exact.
    """
    metadata = dict(acq.metadata) if acq.metadata is not None else {"source": source}
    metadata.update(extra_metadata or {})
    assumed = list(acq.assumed)
    pixel_mm, line_mm, kvp = acq.pixel_mm, acq.line_mm, acq.kvp
    if pixel_mm is None:
        pixel_mm = DEFAULT_PIXEL_MM
        assumed.append("pixel_mm")
    if line_mm is None:
        line_mm = pixel_mm
        assumed.append("line_mm")
    if kvp is None:
        kvp = DEFAULT_KVP
        assumed.append("kvp")
    air, dark = acq.air, acq.dark
    if air is None or dark is None:
        try:
            air, dark = estimate_from_margin(signals, channels)
        except ScanError as exc:
            raise ScanError(f"{path}: no air/dark calibration given and {exc}") from exc
        metadata["calibration"] = ESTIMATED
    if assumed:
        metadata["assumed"] = assumed
    try:
        return Scan(signals, air, dark, channels, pixel_mm, line_mm, kvp, metadata)
    except ScanError as exc:
        raise ScanError(f"{path}: invalid scan: {exc}") from exc


def estimate_from_margin(signals: np.ndarray, channels: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Estimate open-beam and dark references from the empty belt before and after the parcel.

    Parameters
    ----------
    signals : (C, L, P) uint16 ndarray
    channels : tuple of str
        Names used in error messages.

    Returns
    -------
    air, dark : (C, P) float32 ndarray
        ``air`` is the per-column median over the first and last ``m`` lines
        (``m = clip(round(0.1 L), 1, 32)``); ``dark`` is 0.

    Raises
    ------
    ScanError
        The margin does not look like open beam: nearly black (median below 1 % of full
        scale), more than 5 % of its columns vary by more than 10 % (p90 - p10 against the
        median level) over the margin lines, or the interior is brighter (its 99th percentile
        of signal / column air above 1.1).
    """
    c, n_lines, n_pix = signals.shape
    m = int(np.clip(round(MARGIN_FRACTION * n_lines), 1, MARGIN_MAX_LINES))
    m = min(m, n_lines // 2)
    air = np.empty((c, n_pix), np.float32)
    for k, name in enumerate(channels):
        x = signals[k].astype(np.float32)
        lead, trail = x[:m], x[n_lines - m :]
        both = np.concatenate([lead, trail])
        column_air = np.median(both, axis=0)
        level = float(np.median(column_air))
        where = f"the belt margin (first and last {m} lines) of channel '{name}'"
        if level < MARGIN_MIN_LEVEL:
            raise ScanError(f"{where} is nearly black (median {level:.0f}), not open beam")
        spread = (np.percentile(both, 90, axis=0) - np.percentile(both, 10, axis=0)) / level
        bad = spread > MARGIN_MAX_SPREAD
        if bad.mean() > MARGIN_MAX_BAD_COLUMNS:
            raise ScanError(
                f"{where} does not look like open beam: {int(bad.sum())} of {n_pix} pixel columns vary "
                f"by more than {MARGIN_MAX_SPREAD:.0%} (the parcel touches the edge?)"
            )
        # A few columns may catch a strap or label at one end: the brighter end is the empty one.
        column_air[bad] = np.maximum(np.median(lead, axis=0), np.median(trail, axis=0))[bad]
        interior = x[m : n_lines - m] / np.maximum(column_air, 1.0)
        if interior.size and (top := float(np.percentile(interior, 99))) > MARGIN_MAX_INTERIOR_RATIO:
            raise ScanError(
                f"{where} is darker than the scan interior (whose 99th percentile reads {top:.2f} times "
                "the margin, column by column): the parcel covers the edge, or the image is inverted"
            )
        if np.any(column_air <= 0):
            raise ScanError(f"{where} reads 0 in {int(np.sum(column_air <= 0))} pixel columns (dead pixels?)")
        air[k] = column_air
    return air, np.zeros_like(air)


def read_sidecar(
    image: Path, sidecar: Path, channels: tuple[str, ...], n_pix: int, scale: float, *, calibration: bool
) -> Acquisition | None:
    """Read ``sidecar`` (JSON) if it exists; ``None`` if there is none.

    With ``calibration`` the sidecar must give ``air`` and ``dark``; without (pseudo-colour
    images, which have no raw units) it must not. Errors name the image and the sidecar.
    """
    try:
        raw = sidecar.read_bytes()
    except FileNotFoundError:
        return None
    where = f"{image}: sidecar {sidecar.name}"
    if len(raw) > _MAX_SIDECAR_BYTES:
        raise ScanError(f"{where} is {len(raw)} bytes, more than the {_MAX_SIDECAR_BYTES} allowed")
    try:
        doc = loads_json(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise ScanError(f"{where} is not valid UTF-8 JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ScanError(f"{where} must hold a JSON object, got {type(doc).__name__}")
    fmt, version = doc.get("format", SIDECAR_FORMAT), doc.get("format_version", SIDECAR_VERSION)
    if fmt != SIDECAR_FORMAT:
        raise ScanError(f"{where}: 'format' is {fmt!r}, expected {SIDECAR_FORMAT!r}")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= SIDECAR_VERSION:
        raise ScanError(f"{where}: unsupported format_version {version!r} (this reader: {SIDECAR_VERSION})")
    values = {}
    for key in ("pixel_mm", "line_mm", "kvp"):
        if doc.get(key) is not None:
            values[key] = _number(doc[key], f"{where}: '{key}'")
    metadata = doc.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise ScanError(f"{where}: 'metadata' must be an object, got {type(metadata).__name__}")
    refs = {}
    for key in ("air", "dark"):
        if not calibration:
            if key in doc:
                raise ScanError(f"{where}: '{key}' makes no sense for a pseudo-colour image; remove it")
            continue
        if key not in doc:
            raise ScanError(f"{where} lacks '{key}' (the {'open' if key == 'air' else 'no'}-beam reference)")
        refs[key] = _reference(doc[key], channels, n_pix, f"{where}: '{key}'") * np.float32(scale)
    if refs and np.any(refs["air"] <= refs["dark"]):
        bad = int(np.sum(refs["air"] <= refs["dark"]))
        raise ScanError(f"{where}: 'air' must exceed 'dark' in every pixel; {bad} pixels do not")
    return Acquisition(air=refs.get("air"), dark=refs.get("dark"), metadata=metadata, **values)


def sidecar_text(scan: Scan, air: np.ndarray, dark: np.ndarray, path: Path) -> str:
    """The sidecar JSON for ``scan`` with per-pixel float32 references (exact on reading back)."""
    doc = {
        "format": SIDECAR_FORMAT,
        "format_version": SIDECAR_VERSION,
        "pixel_mm": float(scan.pixel_mm),
        "line_mm": float(scan.line_mm),
        "kvp": float(scan.kvp),
        "air": {name: air[k].tolist() for k, name in enumerate(scan.channels)},
        "dark": {name: dark[k].tolist() for k, name in enumerate(scan.channels)},
        "metadata": scan.metadata,
    }
    return json_text(doc, f"cannot write {path}: metadata")


def json_text(doc: Any, what: str) -> str:
    try:
        return json.dumps(doc, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ScanError(f"{what} is not plain JSON ({exc})") from exc


def prepare_for_write(scan: Scan, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``scan`` as a reader will see it; return its references as float32 (C, P)."""
    if not isinstance(scan, Scan):
        raise TypeError(f"scan must be a parcelscan Scan, got {type(scan).__name__}")
    validate_scan(scan)  # arrays are mutable: re-check what may have changed since construction
    with np.errstate(over="ignore"):  # an overflow to Inf is reported just below
        air = np.ascontiguousarray(scan.air, dtype=np.float32)
        dark = np.ascontiguousarray(scan.dark, dtype=np.float32)
    try:
        Scan(scan.signals, air, dark, scan.channels, scan.pixel_mm, scan.line_mm, scan.kvp, scan.metadata)
    except ScanError as exc:
        raise ScanError(f"cannot write {path}: {exc} (after conversion to float32)") from exc
    return air, dark


def atomic_write(path: Path, data: bytes | Callable[[IO[bytes]], None]) -> None:
    """Write ``data`` (bytes, or a function writing to a binary file) to a temporary file beside
    ``path``, fsync, then rename over ``path``: a reader never sees a half-written file and a failed
    write leaves any old file intact."""
    # os.open with 0o666 lets the umask set the permissions, as for any new file (mkstemp gives 0600).
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _reference(value: Any, channels: tuple[str, ...], n_pix: int, where: str) -> np.ndarray:
    """A number (every channel and pixel) or {channel: number or list of P numbers} -> (C, P)."""
    if not isinstance(value, dict):
        return np.full((len(channels), n_pix), _number(value, where, positive=False), np.float32)
    if set(value) != set(channels):
        raise ScanError(f"{where} has channels {sorted(value)}, the image has {list(channels)}")
    out = np.empty((len(channels), n_pix), np.float32)
    for k, name in enumerate(channels):
        item = value[name]
        if isinstance(item, list):
            if len(item) != n_pix:
                raise ScanError(f"{where}['{name}'] has {len(item)} values, the image has {n_pix} pixels")
            out[k] = [_number(v, f"{where}['{name}'][{i}]", positive=False) for i, v in enumerate(item)]
        else:
            out[k] = _number(item, f"{where}['{name}']", positive=False)
    return out


def _number(value: Any, where: str, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScanError(f"{where} must be a number, got {value!r}")
    try:
        f = float(value)
    except OverflowError:
        f = math.inf
    # float32 references: a finite float64 beyond 3.4e38 would become Inf.
    if not math.isfinite(f) or abs(f) > 1e30 or (positive and f <= 0):
        raise ScanError(f"{where} must be a finite{' positive' if positive else ''} number, got {value!r}")
    return f


def loads_json(text: str) -> Any:
    """Standard JSON only: ``NaN``/``Infinity`` raise ValueError."""
    return json.loads(text, parse_constant=_reject_constant)


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-standard JSON constant {name}")
