"""What the detector returns: frozen dataclasses with units in their names, and their JSON form.

Coordinates: boxes are ``(x0, y0, x1, y1)`` half-open pixel-edge boxes with x across the belt
(detector pixels) and y along it (scan lines), as in :mod:`parcelscan.postprocess`. ``box_px`` is on
the scan's own grid, ``box_mm`` the same box in millimetres at the belt (x times ``pixel_mm``, y times
``line_mm``). The JSON form (:meth:`Detection.to_dict`) is described by ``docs/result.schema.json``
and leaves out the heatmap array (write it with :mod:`parcelscan.viz` if needed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["SCHEMA_VERSION", "Detection", "FailedScan", "ImpenetrableArea", "Region"]

SCHEMA_VERSION = "1.0"
MATERIAL_CLASSES = ("organic", "inorganic", "metal", "impenetrable", "unknown")


def _num(v: float | None, digits: int = 4) -> float | None:
    """JSON-safe float: None for None or non-finite values, else rounded."""
    if v is None or not math.isfinite(v):
        return None
    return round(float(v), digits)


@dataclass(frozen=True)
class Region:
    """One place in the parcel where the model sees a concealed dense mass.

    box_px : (x0, y0, x1, y1) on the scan grid; box_mm : the same box in mm at the belt.
    centroid_px : (x, y) mean of the region's pixel centres on the scan grid.
    score : highest probability inside the region, in [0, 1].
    area_cm2 : footprint of the region at the belt.
    mass_g : estimated mass of what the region adds to the rays it covers, under the hypothesis
        ``mass_material``; None where no estimate could be made (single pixel at the scan edge).
    mass_lower_bound : True when opaque pixels make ``mass_g`` a lower bound.
    mass_material : the material hypothesis the mass was computed for (best low-channel fit;
        unreliable on opaque masses, see :mod:`parcelscan.preprocess.mass`).
    apparent_z : apparent atomic number of what the region adds (its own a_L / a_H, background
        removed), as a standard dual-energy scanner would read it; None for single-energy scans or
        when the region adds too little attenuation to read.
    material_class : operator class of that apparent Z: organic (< 10), inorganic (10-18), metal
        (>= 18), impenetrable (mostly opaque), or unknown.
    carrier : what surrounds the region when material lies all around it: "organic bulk"
        (mannequin, clothing, books, food: low-Z), "ceramic stack" (tiles, porcelain: mid-Z),
        "metal" (high-Z), "dense stack" (near-opaque surroundings such as a tile stack seen
        end-on, whose material cannot be read), or None (open clutter, air).
    """

    box_px: tuple[int, int, int, int]
    box_mm: tuple[float, float, float, float]
    centroid_px: tuple[float, float]
    score: float
    area_cm2: float
    mass_g: float | None
    mass_lower_bound: bool
    mass_material: str | None
    apparent_z: float | None
    material_class: str
    carrier: str | None

    @property
    def inside_carrier(self) -> bool:
        return self.carrier is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "box_px": [int(v) for v in self.box_px],
            "box_mm": [round(float(v), 2) for v in self.box_mm],
            "centroid_px": [round(float(v), 2) for v in self.centroid_px],
            "score": _num(self.score),
            "area_cm2": _num(self.area_cm2, 2),
            "mass_g": _num(self.mass_g, 1),
            "mass_lower_bound": bool(self.mass_lower_bound),
            "mass_material": self.mass_material,
            "apparent_z": _num(self.apparent_z, 2),
            "material_class": self.material_class,
            "carrier": self.carrier,
            "inside_carrier": self.inside_carrier,
        }


@dataclass(frozen=True)
class ImpenetrableArea:
    """A connected opaque area (high-channel attenuation beyond the card's limit) large enough to
    hide a mass the scanner cannot see through: the operator must open or re-scan the parcel.

    box_px, box_mm : as for :class:`Region`; area_cm2 : its footprint at the belt.
    """

    box_px: tuple[int, int, int, int]
    box_mm: tuple[float, float, float, float]
    area_cm2: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "box_px": [int(v) for v in self.box_px],
            "box_mm": [round(float(v), 2) for v in self.box_mm],
            "area_cm2": _num(self.area_cm2, 2),
        }


@dataclass(frozen=True, eq=False)
class Detection:
    """The detector's answer for one scan.

    source : file path or caller's label of the scan, None if not known.
    score : parcel score in [0, 1]; alarm : ``score > threshold``.
    threshold : the operating threshold used (the card's unless overridden).
    regions : highest score first; reported whatever the alarm, each with its own score.
    impenetrable : opaque areas large enough to hide a mass; ``impenetrable_warning`` is True when
        there is any, independently of the alarm.
    heatmap : (H, W) float32 probabilities at the model's resolution; ``heatmap_scales`` =
        (model pixels per scan line, per scan pixel) maps it to the scan grid.
    scan_shape : (L, P) lines and pixels of the scan; line_mm, pixel_mm : its pitches.
    timings_ms : per-stage wall time in milliseconds (inference is this scan's share of its batch).
    model : name, version, precision, sha256 and providers of the model that produced it.
    manifest : the declared-contents check when a manifest was given (see parcelscan.manifest).
    """

    source: str | None
    score: float
    alarm: bool
    threshold: float
    regions: tuple[Region, ...]
    impenetrable: tuple[ImpenetrableArea, ...]
    heatmap: np.ndarray = field(repr=False)
    heatmap_scales: tuple[float, float]
    scan_shape: tuple[int, int]
    line_mm: float
    pixel_mm: float
    timings_ms: dict[str, float]
    model: dict[str, Any]
    manifest: Any = None

    ok = True

    @property
    def impenetrable_warning(self) -> bool:
        return bool(self.impenetrable)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict following ``docs/result.schema.json`` (no heatmap array)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "ok": True,
            "source": self.source,
            "score": _num(self.score, 6),
            "alarm": bool(self.alarm),
            "threshold": _num(self.threshold, 6),
            "regions": [r.to_dict() for r in self.regions],
            "impenetrable_warning": self.impenetrable_warning,
            "impenetrable": [a.to_dict() for a in self.impenetrable],
            "scan": {
                "lines": int(self.scan_shape[0]),
                "pixels": int(self.scan_shape[1]),
                "line_mm": _num(self.line_mm),
                "pixel_mm": _num(self.pixel_mm),
            },
            "timings_ms": {k: _num(v, 3) for k, v in self.timings_ms.items()},
            "model": dict(self.model),
            "manifest": None if self.manifest is None else self.manifest.to_dict(),
        }


@dataclass(frozen=True)
class FailedScan:
    """Stands in for the :class:`Detection` of a scan that could not be processed, so one bad scan
    never takes down the others of a batch.

    source : file path or label; error : the message naming what was wrong;
    error_type : the exception class name (``ScanError`` for unreadable or invalid scans);
    exception : the exception itself (not part of the JSON form).
    """

    source: str | None
    error: str
    error_type: str
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    ok = False
    alarm = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "ok": False,
            "source": self.source,
            "error": self.error,
            "error_type": self.error_type,
        }
