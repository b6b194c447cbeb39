"""The :class:`Scan` type: what a line-scan X-ray scanner records for one parcel.

Conventions: ``signals`` is (C, L, P) = channels x lines x detector pixels; lines run along
the belt (the direction of travel), pixels across it. Channel names are ``("low", "high")``
for a dual-energy sandwich detector and ``("single",)`` for a single-energy one. ``air`` and
``dark`` are the per-channel, per-pixel open-beam and no-beam references (C, P) in the same
raw units as ``signals``, so transmission is ``(signals - dark) / (air - dark)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["SCAN_FORMAT_VERSION", "Scan", "ScanError"]

SCAN_FORMAT_VERSION = 1
MAX_SCAN_ELEMENTS = 2**31  # a few GB of uint16: anything larger is not a parcel scan
KNOWN_CHANNEL_SETS = (("low", "high"), ("single",))


class ScanError(ValueError):
    """A scan or scan file is malformed: wrong shape, dtype, values, or missing calibration."""


@dataclass(frozen=True, eq=False)
class Scan:
    """One parcel scan as the detector recorded it.

    signals : (C, L, P) uint16 ndarray
        Raw detector values, channels x lines x pixels.
    air, dark : (C, P) float32 ndarray
        Open-beam and no-beam reference per channel and detector pixel (raw units).
    channels : tuple of str
        Channel names, ``("low", "high")`` or ``("single",)``.
    pixel_mm : float
        Detector pixel pitch across the belt, referred to the belt plane, in mm.
    line_mm : float
        Belt advance per line along the direction of travel, in mm.
    kvp : float
        Tube voltage in kV.
    metadata : dict
        JSON-serialisable scanner description (configuration, provenance).
    """

    signals: np.ndarray
    air: np.ndarray
    dark: np.ndarray
    channels: tuple[str, ...]
    pixel_mm: float
    line_mm: float
    kvp: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))
        validate_scan(self)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(channels, lines, pixels)."""
        return tuple(self.signals.shape)  # type: ignore[return-value]

    @property
    def dual_energy(self) -> bool:
        return self.channels == ("low", "high")

    def transmission(self) -> np.ndarray:
        """Dark- and air-corrected transmission (C, L, P) float32, clipped to [1e-6, 2]."""
        # Cast the references too: integer or float64 air/dark would otherwise promote to float64.
        dark = self.dark[:, None, :].astype(np.float32)
        span = np.maximum(self.air[:, None, :].astype(np.float32) - dark, np.float32(1e-3))
        out = (self.signals.astype(np.float32) - dark) / span
        return np.clip(out, 1e-6, 2.0).astype(np.float32, copy=False)


def validate_scan(scan: Scan) -> None:
    """Raise :class:`ScanError` naming the first thing wrong with ``scan``."""
    s = scan.signals
    if not isinstance(s, np.ndarray):
        raise ScanError(f"signals must be a numpy array, got {type(s).__name__}")
    if s.dtype != np.uint16:
        raise ScanError(f"signals must be uint16 raw detector values, got dtype {s.dtype}")
    if s.ndim != 3:
        raise ScanError(f"signals must have shape (channels, lines, pixels), got shape {s.shape}")
    c, n_lines, n_pix = s.shape
    if s.size > MAX_SCAN_ELEMENTS:
        raise ScanError(f"signals of shape {s.shape} are absurdly large for a parcel scan")
    if n_lines < 2 or n_pix < 2:
        raise ScanError(f"signals need at least 2 lines and 2 pixels, got shape {s.shape}")
    if scan.channels not in KNOWN_CHANNEL_SETS:
        raise ScanError(f"channels must be one of {KNOWN_CHANNEL_SETS}, got {scan.channels}")
    if len(scan.channels) != c:
        raise ScanError(f"{len(scan.channels)} channel names {scan.channels} for {c} signal channels")
    for name in ("air", "dark"):
        ref = getattr(scan, name)
        if ref is None:
            raise ScanError(f"missing calibration: {name} reference is required")
        if not isinstance(ref, np.ndarray) or ref.shape != (c, n_pix):
            shape = getattr(ref, "shape", None)
            raise ScanError(
                f"{name} reference must have shape (channels, pixels) = {(c, n_pix)}, got {shape}"
            )
        if not np.issubdtype(ref.dtype, np.floating) and not np.issubdtype(ref.dtype, np.integer):
            raise ScanError(f"{name} reference must be numeric, got dtype {ref.dtype}")
        if not np.all(np.isfinite(ref)):
            raise ScanError(f"{name} reference contains NaN or Inf")
    if np.any(scan.air <= scan.dark):
        bad = int(np.sum(scan.air <= scan.dark))
        raise ScanError(f"air reference must exceed dark reference in every pixel; {bad} pixels do not")
    for name in ("pixel_mm", "line_mm", "kvp"):
        v = getattr(scan, name)
        # bool is an int subclass, and a huge int overflows float(): both must be a ScanError.
        numeric = isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, (bool, np.bool_))
        if not numeric or not _positive_finite(v):
            raise ScanError(f"{name} must be a positive finite number, got {v!r}")
    if not 0.05 <= scan.pixel_mm <= 20 or not 0.05 <= scan.line_mm <= 20:
        raise ScanError(f"pixel_mm={scan.pixel_mm}, line_mm={scan.line_mm}: expected 0.05-20 mm")
    if not 20 <= scan.kvp <= 500:
        raise ScanError(f"kvp={scan.kvp}: expected a tube voltage of 20-500 kV")
    if not isinstance(scan.metadata, dict):
        raise ScanError(f"metadata must be a dict, got {type(scan.metadata).__name__}")


def _positive_finite(v: float) -> bool:
    try:
        f = float(v)
    except OverflowError:
        return False
    return bool(np.isfinite(f)) and f > 0
