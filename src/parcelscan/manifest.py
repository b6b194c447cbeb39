"""Declared contents (the customs manifest) and the check of a scan against them.

A :class:`Manifest` is a list of :class:`DeclaredItem` (description, optional HS code, net mass),
parsed strictly from a dict or a JSON file (``docs/manifest.md``): unknown fields, missing fields,
negative or absurd masses and unknown units raise ValueError naming the item and the field.
Each item maps to a goods category of :mod:`parcelscan.goods`, or to none (reported, not guessed).

:func:`check_manifest` compares the declaration with what the scan measures
(:mod:`parcelscan.manifest_image` reads the scan, :mod:`parcelscan.manifest_checks` decides) and
returns a :class:`ManifestCheck`: a verdict ("consistent", "inconsistent", "cannot_tell") and the
reasons behind it, each tied to image regions (``box_px``: boxes ``(x0, y0, x1, y1)`` on the scan
grid, x = detector pixel, y = line, half-open, as in :mod:`parcelscan.result`).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .goods import GoodsCategory, categorise

if TYPE_CHECKING:
    from .result import Detection
    from .scan import Scan

__all__ = [
    "MANIFEST_FORMAT",
    "REASON_KINDS",
    "DeclaredItem",
    "ItemCheck",
    "Manifest",
    "ManifestCheck",
    "Reason",
    "check_manifest",
    "load_manifest",
    "manifest_from_label",
]

MANIFEST_FORMAT = "parcelscan-manifest"
UNITS_G = {"g": 1.0, "kg": 1000.0, "mg": 1e-3, "lb": 453.59237, "oz": 28.349523125}
_NOT_MASS = {
    **dict.fromkeys(("l", "ml", "cl"), "a volume"),
    **dict.fromkeys(("m", "cm", "mm"), "a length"),
    **dict.fromkeys(("pcs", "pc", "units"), "a count"),
    "n": "a force",
}
MAX_ITEM_MASS_G = 1e6  # a tonne: no postal parcel item weighs more
_ITEM_FIELDS = {"description", "hs_code", "net_mass", "unit", "declared_mass_g"}
_TOP_FIELDS = {"format", "format_version", "reference", "items"}

# What each reason kind means for the verdict.
REASON_KINDS = {
    "material_mismatch": "inconsistent",
    "undeclared_mass": "inconsistent",
    "total_mass_mismatch": "inconsistent",
    "unknown_description": "cannot_tell",
    "opaque": "cannot_tell",
    "not_found": "cannot_tell",
    "match": "consistent",
}


@dataclass(frozen=True)
class DeclaredItem:
    """One line of the declaration. net_mass_g : declared net mass in grams."""

    description: str
    net_mass_g: float
    hs_code: str | None = None

    @property
    def category(self) -> GoodsCategory | None:
        return categorise(self.description, self.hs_code)[0]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "description": self.description,
            "net_mass": self.net_mass_g,
            "unit": "g",
        }
        if self.hs_code:
            d["hs_code"] = self.hs_code
        return d


@dataclass(frozen=True)
class Manifest:
    """A parcel's declaration: items (at least one) and an optional reference (waybill number)."""

    items: tuple[DeclaredItem, ...]
    reference: str | None = None

    @property
    def total_mass_g(self) -> float:
        return float(sum(it.net_mass_g for it in self.items))

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        """Parse the JSON form (docs/manifest.md); raises ValueError naming what is wrong."""
        if not isinstance(data, dict):
            raise ValueError(
                f"manifest must be a JSON object with an 'items' list, got {type(data).__name__}"
            )
        unknown = sorted(set(data) - _TOP_FIELDS)
        if unknown:
            raise ValueError(f"manifest: unknown field(s) {unknown}; allowed: {sorted(_TOP_FIELDS)}")
        if "format" in data and data["format"] != MANIFEST_FORMAT:
            raise ValueError(f"manifest: format must be {MANIFEST_FORMAT!r}, got {data['format']!r}")
        if "format_version" in data and data["format_version"] != 1:
            raise ValueError(f"manifest: format_version must be 1, got {data['format_version']!r}")
        reference = data.get("reference")
        if reference is not None and not isinstance(reference, str):
            raise ValueError(f"manifest: reference must be a string, got {type(reference).__name__}")
        if "items" not in data:
            raise ValueError("manifest: missing field 'items' (a list of declared items)")
        items = data["items"]
        if not isinstance(items, list) or not items:
            raise ValueError(f"manifest: 'items' must be a non-empty list, got {items!r}")
        return cls(tuple(_parse_item(i, it) for i, it in enumerate(items)), reference)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"format": MANIFEST_FORMAT, "format_version": 1}
        if self.reference:
            d["reference"] = self.reference
        d["items"] = [it.to_dict() for it in self.items]
        return d


def _number(where: str, name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{where}: {name} must be a number, got {v!r}")
    f = float(v)
    if not math.isfinite(f):
        raise ValueError(f"{where}: {name} must be finite, got {v!r}")
    if f < 0:
        raise ValueError(f"{where}: {name} must not be negative, got {v!r}")
    if f == 0:
        raise ValueError(
            f"{where}: {name} must be positive (a declared net mass of 0 says nothing), got {v!r}"
        )
    return f


def _parse_item(i: int, it: Any) -> DeclaredItem:
    where = f"manifest item {i}"
    if not isinstance(it, dict):
        raise ValueError(f"{where}: must be an object with description and net_mass, got {it!r}")
    unknown = sorted(set(it) - _ITEM_FIELDS)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; allowed: {sorted(_ITEM_FIELDS)}")
    desc = it.get("description")
    if not isinstance(desc, str) or not desc.strip():
        raise ValueError(f"{where}: missing or empty field 'description'")
    where = f"manifest item {i} ({desc!r})"
    hs = it.get("hs_code")
    if hs is not None:
        digits = hs.replace(".", "").replace(" ", "") if isinstance(hs, str) else ""
        if not (digits.isdigit() and 4 <= len(digits) <= 10):
            raise ValueError(
                f"{where}: hs_code must be a string of 4-10 digits such as '7504.00', got {hs!r}"
            )
    if "declared_mass_g" in it:
        if "net_mass" in it or "unit" in it:
            raise ValueError(f"{where}: give either net_mass with unit, or declared_mass_g, not both")
        mass_g = _number(where, "declared_mass_g", it["declared_mass_g"])
    else:
        if "net_mass" not in it:
            raise ValueError(f"{where}: missing field 'net_mass' (with 'unit')")
        if "unit" not in it:
            raise ValueError(f"{where}: missing field 'unit' for net_mass; one of {sorted(UNITS_G)}")
        mass_g = _number(where, "net_mass", it["net_mass"]) * _unit_g(where, it["unit"])
    if mass_g > MAX_ITEM_MASS_G:
        raise ValueError(f"{where}: net mass {mass_g / 1000:g} kg is not a parcel item (limit 1000 kg)")
    return DeclaredItem(desc.strip(), mass_g, hs.strip() if isinstance(hs, str) else None)


def _unit_g(where: str, unit: Any) -> float:
    if not isinstance(unit, str):
        raise ValueError(f"{where}: unit must be a string, one of {sorted(UNITS_G)}; got {unit!r}")
    u = unit.strip().lower()
    if u in UNITS_G:
        return UNITS_G[u]
    if u in _NOT_MASS:
        raise ValueError(
            f"{where}: unit {unit!r} is {_NOT_MASS[u]}, not a mass; use one of {sorted(UNITS_G)}"
        )
    raise ValueError(f"{where}: unknown unit {unit!r}; use one of {sorted(UNITS_G)}")


def load_manifest(source: Manifest | dict | str | os.PathLike) -> Manifest:
    """A :class:`Manifest` from itself, its dict form, or the path of its JSON file."""
    if isinstance(source, Manifest):
        return source
    if isinstance(source, dict):
        return Manifest.from_dict(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"manifest file {str(path)!r} does not exist") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"manifest file {str(path)!r} is not valid JSON: {exc}") from None
        try:
            return Manifest.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    raise ValueError(
        f"manifest must be a Manifest, a dict or a path to a JSON file, got {type(source).__name__}"
    )


def manifest_from_label(label: dict) -> Manifest:
    """The declaration carried by a simulator label (``labels/<id>.json``), without its truth flag."""
    return Manifest.from_dict({"items": label["manifest"]["items"]})


# ---------------------------------------------------------------------------------------- the check
@dataclass(frozen=True)
class Reason:
    """One finding of the check. kind : one of :data:`REASON_KINDS`; text : for a person;
    box_px : boxes (x0, y0, x1, y1) on the scan grid of the image regions it refers to (may be
    empty); item : index of the declared item it concerns, or None for the whole parcel."""

    kind: str
    text: str
    box_px: tuple[tuple[int, int, int, int], ...] = ()
    item: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in REASON_KINDS:
            raise ValueError(f"reason kind must be one of {sorted(REASON_KINDS)}, got {self.kind!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "text": self.text,
            "box_px": [[int(v) for v in b] for b in self.box_px],
            "item": self.item,
        }


@dataclass(frozen=True)
class ItemCheck:
    """How one declared item fared. category : goods category key or None (unknown);
    status : "match", "opaque", "mismatch", "not_found", "unknown" or "not_checked" (goods whose
    signature is checked only through the parcel totals)."""

    description: str
    declared_mass_g: float
    category: str | None
    status: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "declared_mass_g": round(self.declared_mass_g, 1),
            "category": self.category,
            "status": self.status,
        }


@dataclass(frozen=True)
class ManifestCheck:
    """The declared-contents check of one scan.

    verdict : "consistent", "inconsistent" or "cannot_tell"; reasons : the findings, those that
    decide the verdict first; items : per declared item; declared_mass_g : sum of declared net
    masses; measured_min_g : least mass the scan shows once the packing is taken off (a lower
    bound where pixels are saturated).
    """

    verdict: str
    reasons: tuple[Reason, ...]
    items: tuple[ItemCheck, ...]
    declared_mass_g: float
    measured_min_g: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reasons": [r.to_dict() for r in self.reasons],
            "items": [it.to_dict() for it in self.items],
            "declared_mass_g": round(self.declared_mass_g, 1),
            "measured_min_g": round(self.measured_min_g, 1),
        }


def check_manifest(
    scan: Scan, detection: Detection | None, manifest: Manifest | dict | str | os.PathLike
) -> ManifestCheck:
    """Does what the scan measures agree with what was declared?

    scan : :class:`~parcelscan.scan.Scan`; detection : the detector's
    :class:`~parcelscan.result.Detection` for it, or None (then only the image checks run);
    manifest : a :class:`Manifest`, its dict form or the path of its JSON file.
    The checks (docs/manifest.md): each declared powder against the dense objects of the image
    (per-gram attenuation bound), the detector's alarm regions against the declared carriers,
    opaque and metal-reading areas against what the declared goods could hold, and the total mass.
    """
    from .manifest_checks import decide
    from .manifest_image import read_scan
    from .result import Detection
    from .scan import Scan

    if not isinstance(scan, Scan):
        raise ValueError(f"scan must be a Scan, got {type(scan).__name__}")
    if detection is not None and not isinstance(detection, Detection):
        raise ValueError(f"detection must be a Detection or None, got {type(detection).__name__}")
    manifest = load_manifest(manifest)
    materials = {c.check_material for c in (it.category for it in manifest.items) if c and c.check_material}
    reading = read_scan(scan, tuple(sorted(materials)))
    return decide(manifest, reading, detection)
