"""The decisions of the declared-contents check: readings of the scan -> reasons -> verdict.

Pure functions of a :class:`~parcelscan.manifest.Manifest`, a
:class:`~parcelscan.manifest_image.ScanReading` and an optional detection. What each check
concludes, and how far it can (docs/manifest.md):

- declared powders: a jar of M grams of nickel can attenuate no more than M grams of nickel do.
  A compact object that needs more than ``OVER`` x the declared mass of the declared material,
  that a lanthanide oxide of about the declared mass explains, and that no declared item fits (a
  powder by its mass, a magnet, motor or loudspeaker by its steel-equivalent) is a material
  mismatch when it is opaque, or when nothing else fits the declaration. Each declared powder
  (heaviest first) then takes the free object closest to its mass; a saturated match cannot tell
  nickel from a lanthanide oxide (physics.md: smuggling-sized quantities are mostly opaque).
- the detector's alarm regions outside the declared powders are undeclared dense masses,
  "inside the declared X" when the region's carrier is a declared item;
- an opaque area where none of the declared goods can stop the beam, and metal beyond what the
  declared goods can hold, are undeclared dense masses;
- the parcel's measured mass far above the declared total is a total-mass mismatch.

The thresholds were set on simulated parcels of the training seed (scripts/evaluate_manifest.py),
for at most ~1 % of honest declarations flagged.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from .goods import GoodsCategory, categorise
from .manifest import REASON_KINDS, ItemCheck, Manifest, ManifestCheck, Reason
from .manifest_image import LANTHANIDE, ScanReading

__all__ = ["decide"]

OVER = 1.5  # least mass above OVER x declared: more than the declared material can explain
HEIGHT_FACTOR = 1.6  # footprint of a pixel 30 cm above the belt over its footprint on the belt
MATCH_LOW = (0.5, 0.15)  # least share of the declared mass a readable / an opaque match holds
LANTHANIDE_LOW = 0.2  # a lanthanide explanation must hold this share of the declared mass
SATURATED = 0.5  # objects with at least this share of saturated pixels count as opaque
MAGNET_WINDOW = (0.2, 1.3)  # steel-equivalent of a declared magnet, motor or loudspeaker / its mass
METAL_SLACK_G = 300.0  # metal beyond 1.5 x what the declared goods may hold, plus this, is undeclared
OPAQUE_MIN_CM2 = 2.0  # an opaque area this large hides 20 g of dysprosium oxide (regions.py)
TOTAL_FACTOR, TOTAL_SLACK_G = 3.0, 2000.0  # measured > factor x declared + slack: total mismatch
# Declared goods a detector region's carrier can be (regions.py: what surrounds the region).
CARRIER_GROUPS = {
    "organic bulk": ("mannequins", "clothing", "books", "toys", "food", "cosmetics"),
    "ceramic stack": ("ceramics",),
}


def _kg(g: float) -> str:
    return f"{g / 1000:.1f} kg" if g >= 1000 else f"{g:.0f} g"


def decide(manifest: Manifest, reading: ScanReading, detection=None) -> ManifestCheck:
    """Reasons and verdict for one scan; see the module docstring."""
    cats = [categorise(it.description, it.hs_code) for it in manifest.items]
    status = ["not_checked"] * len(cats)
    reasons: list[Reason] = []
    for i, (cat, why) in enumerate(cats):
        if cat is None:
            status[i] = "unknown"
            reasons.append(Reason("unknown_description", f"{why}: what it holds cannot be checked", (), i))
    explained: set[int] = set()
    # The per-gram bound needs only the high (or single) channel: it holds for single-energy scans too.
    reasons += _powders(manifest, cats, reading, status, explained)
    reasons += _detections(manifest, cats, reading, detection, explained)
    if all(c is not None for c, _ in cats):
        reasons += _parcel(manifest, [c for c, _ in cats], reading)
    rank = {"inconsistent": 0, "cannot_tell": 1, "consistent": 2}
    reasons.sort(key=lambda r: rank[REASON_KINDS[r.kind]])
    verdict = REASON_KINDS[reasons[0].kind] if reasons else "consistent"
    items = tuple(
        ItemCheck(it.description, it.net_mass_g, c.key if c else None, s)
        for it, (c, _), s in zip(manifest.items, cats, status, strict=True)
    )
    return ManifestCheck(verdict, tuple(reasons), items, manifest.total_mass_g, reading.parcel.total_min_g)


def _powders(manifest: Manifest, cats, reading: ScanReading, status: list, explained: set) -> list[Reason]:
    """Each declared powder against the compact dense objects (see the module docstring)."""
    powders = [(i, c) for i, (c, _) in enumerate(cats) if c is not None and c.check_material]
    powders.sort(key=lambda ic: -manifest.items[ic[0]].net_mass_g)  # the heaviest chooses first
    objects, masses = reading.objects, reading.masses
    opaque = [o.saturated_fraction >= SATURATED for o in objects]

    def fits(i: int, mat: str, k: int) -> bool:
        least, m = masses[k][mat], manifest.items[i].net_mass_g
        return least <= OVER * m and least * HEIGHT_FACTOR >= MATCH_LOW[opaque[k]] * m

    fitting = {i: [k for k in range(len(objects)) if fits(i, c.check_material, k)] for i, c in powders}
    explained.update(k for ks in fitting.values() for k in ks)
    for i, (c, _) in enumerate(cats):  # a declared magnet, motor or loudspeaker explains one object its size
        if c is not None and c.group == "magnets/loudspeakers":
            lo, hi = (f * manifest.items[i].net_mass_g for f in MAGNET_WINDOW)
            explained.update(k for k in range(len(objects)) if lo <= masses[k]["steel"] <= hi)

    def lanthanide(i: int, mat: str, k: int) -> bool:
        """Too much for the declared material, about right for a lanthanide oxide of the declared mass."""
        least, ln, m = masses[k][mat], masses[k][LANTHANIDE], manifest.items[i].net_mass_g
        return least > OVER * m and ln <= OVER * m and ln * HEIGHT_FACTOR >= LANTHANIDE_LOW * m

    suspects: dict[int, list[int]] = defaultdict(list)  # item -> objects only a lanthanide explains
    for k in range(len(objects)):
        items = [
            i for i, c in powders if "lanthanide" not in c.classes and lanthanide(i, c.check_material, k)
        ]
        if items and k not in explained:  # charge the object to the item whose mass it fits best
            suspects[min(items, key=lambda i: _misfit(masses[k][LANTHANIDE], manifest.items[i]))].append(k)
    out, taken = [], set()
    for i, c in powders:
        item, mat, bad = manifest.items[i], c.check_material, suspects.get(i, [])
        free = [k for k in fitting[i] if k not in taken]
        # An opaque suspect always flags; a readable one only when nothing else fits the declaration
        # (small readable objects of clutter weigh as a lanthanide of a small declaration too often).
        if bad and (any(opaque[k] for k in bad) or not free):
            k = max(bad, key=lambda k: (opaque[k], masses[k][mat]))
            status[i] = "mismatch"
            text = _mismatch_text(item, c, masses[k], opaque[k])
            out.append(Reason("material_mismatch", text, (objects[k].box_px,), i))
        elif free:
            k = min(free, key=lambda k: _misfit(masses[k][mat], item))
            taken.add(k)
            least = masses[k][mat]
            if opaque[k]:
                status[i] = "opaque"
                text = (
                    f"declared {_kg(item.net_mass_g)} {c.name}: the object that fits it is opaque; it needs "
                    f"at least {_kg(least)} of {mat}, so {mat} fits, but a lanthanide oxide of the declared "
                    "mass would look the same: the X-ray cannot tell them apart (open the parcel)"
                )
                out.append(Reason("opaque", text, (objects[k].box_px,), i))
            else:
                status[i] = "match"
                text = (
                    f"declared {_kg(item.net_mass_g)} {c.name}: a compact object holding about "
                    f"{_kg(least)}-{_kg(least * HEIGHT_FACTOR)} of {mat} (height unknown) fits it"
                )
                out.append(Reason("match", text, (objects[k].box_px,), i))
        else:
            status[i] = "not_found"
            text = f"declared {_kg(item.net_mass_g)} {c.name}: no compact object in the image fits it"
            out.append(Reason("not_found", text, (), i))
    out.sort(key=lambda r: r.item)
    return out


def _misfit(least_g: float, item) -> float:
    """How far a least mass is from what the declared item implies (mid-height footprint)."""
    return abs(np.log(max(least_g, 1e-3) * 1.3 / item.net_mass_g))


def _mismatch_text(item, cat: GoodsCategory, mass: dict[str, float], opaque: bool) -> str:
    mat, least = cat.check_material, mass[cat.check_material]
    return (
        f"declared {_kg(item.net_mass_g)} {cat.name}; the compact {'opaque ' if opaque else ''}object there "
        f"attenuates as much as at least {_kg(least)} of {mat} would: per gram at least "
        f"{least / item.net_mass_g:.1f}x more than {mat} (high channel, beam hardening included), "
        f"consistent with a lanthanide oxide such as Dy2O3 or Tb4O7 (at least {_kg(mass[LANTHANIDE])})"
    )


def _detections(manifest: Manifest, cats, reading: ScanReading, detection, explained: set) -> list[Reason]:
    """The detector's alarm regions: undeclared dense masses, inside a declared carrier if any."""
    if detection is None:
        return []
    out = []
    boxes = [reading.objects[k].box_px for k in explained]
    for region in detection.regions:
        if region.score <= detection.threshold or any(_inside(region.centroid_px, b) for b in boxes):
            continue  # below the alarm, or a declared powder the powder check already weighed
        groups = CARRIER_GROUPS.get(region.carrier, ())
        host = next((i for i, (c, _) in enumerate(cats) if c is not None and c.group in groups), None)
        mass = f"about {_kg(region.mass_g)}" if region.mass_g else "unknown mass"
        if region.mass_lower_bound and region.mass_g:
            mass = f"at least {_kg(region.mass_g)}"
        where = (
            f"inside the declared {manifest.items[host].description}" if host is not None else "in the parcel"
        )
        text = f"undeclared dense mass of {mass} {where} (detector score {region.score:.2f})"
        out.append(Reason("undeclared_mass", text, (tuple(region.box_px),), host))
    return out


def _inside(point, box) -> bool:
    x, y = point
    return box[0] <= x < box[2] and box[1] <= y < box[3]


def _parcel(manifest: Manifest, cats: list[GoodsCategory], reading: ScanReading) -> list[Reason]:
    """The parcel as a whole: opaque areas, metal and total mass against what was declared."""
    out, p = [], reading.parcel
    names = ", ".join(sorted({c.name for c in cats}))
    if p.saturated_cm2 >= OPAQUE_MIN_CM2 and not any(_can_be_opaque(c) for c in cats):
        text = (
            f"opaque area of {p.saturated_cm2:.0f} cm^2 (at least {_kg(p.saturated_min_g)} even as a "
            f"lanthanide oxide, the densest per gram): none of the declared goods ({names}) can stop the beam"
        )
        out.append(Reason("undeclared_mass", text, p.saturated_boxes_px[:5]))
    budget = sum(c.dense_share * it.net_mass_g for c, it in zip(cats, manifest.items, strict=True))
    if p.mass_g["metal"] > 1.5 * budget + METAL_SLACK_G:
        text = (
            f"about {_kg(p.mass_g['metal'])} of metal-reading material where the declared goods ({names}) "
            f"hold at most {_kg(budget)}"
        )
        out.append(Reason("undeclared_mass", text, p.metal_boxes_px[:5]))
    declared = manifest.total_mass_g
    if p.total_min_g > TOTAL_FACTOR * declared + TOTAL_SLACK_G:
        text = (
            f"total measured mass at least {_kg(p.total_min_g)} without packing, "
            f"{p.total_min_g / declared:.1f}x the declared {_kg(declared)}"
        )
        out.append(Reason("total_mass_mismatch", text))
    return out


def _can_be_opaque(cat: GoodsCategory) -> bool:
    """Whether goods of this category can stop the beam: dense goods, powders, thick stacks."""
    return cat.check_material is not None or cat.dense_share >= 0.5 or cat.areal_density_g_cm2[1] >= 40
