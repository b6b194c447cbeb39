"""Catalogue of goods categories and the X-ray signature each should have.

A customs description (and optional HS code) maps to one :class:`GoodsCategory` by
:func:`categorise`; a description that names no category, or two equally well, maps to None and
is reported as unknown, never guessed. Each category states what the scanner should see:

- ``composition``: typical materials and their mass shares (names in
  :data:`parcelscan.physics.materials.CATALOGUE`), from which :func:`per_gram_attenuation`
  computes the low/high-channel attenuation per gram for a given scanner (thin limit, cm^2/g);
- ``check_material``: for single-material goods (powders, tiles) the material whose per-gram
  attenuation the image region must show (see :mod:`parcelscan.manifest`);
- ``classes``: the operator material classes the goods may show (organic, inorganic, metal,
  lanthanide); ``dense_share``: the largest share of the declared mass that is metal or heavier;
- ``areal_density_g_cm2``: plausible areal densities seen from below;
- ``measured_over_declared``: plausible measured mass over declared net mass (a powder's jar or
  bag adds to it; goods declared with their packaging do not).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .physics.materials import get_material, mixture
from .physics.observer import SpectralModel

__all__ = ["CATEGORIES", "GoodsCategory", "categorise", "per_gram_attenuation"]

CLASSES = ("organic", "inorganic", "metal", "lanthanide")
# Descriptions too vague to check against an image, however common they are on declarations.
VAGUE = ("gift", "gifts", "goods", "sample", "samples", "parts", "spare parts", "merchandise", "items")


@dataclass(frozen=True)
class GoodsCategory:
    """One kind of goods and its expected X-ray signature; see the module docstring."""

    key: str
    group: str
    phrases: tuple[str, ...]
    hs_prefixes: tuple[str, ...]
    composition: tuple[tuple[str, float], ...]
    classes: tuple[str, ...]
    dense_share: float = 0.0
    areal_density_g_cm2: tuple[float, float] = (0.1, 10.0)
    measured_over_declared: tuple[float, float] = (0.8, 1.25)
    check_material: str | None = None

    @property
    def name(self) -> str:
        return self.phrases[0]

    @property
    def powder(self) -> bool:
        return self.group in ("metal powders", "chemical powders")

    def to_dict(self) -> dict:
        return {"key": self.key, "group": self.group, "name": self.name}


_POWDER = {
    "dense_share": 1.0,
    "areal_density_g_cm2": (0.5, 60.0),
    # the net powder mass is declared; the jar or bag adds up to its own weight again
    "measured_over_declared": (0.8, 2.0),
}


def _powder(key: str, group: str, phrases, hs, material: str, classes=("metal",)) -> GoodsCategory:
    return GoodsCategory(
        key, group, tuple(phrases), tuple(hs), ((material, 1.0),), classes, check_material=material, **_POWDER
    )


CATEGORIES: tuple[GoodsCategory, ...] = (
    # metal powders: a jar or bag of one metal
    _powder(
        "nickel_powder", "metal powders", ["nickel powder", "ni powder", "nickel flakes"], ["7504"], "Ni"
    ),
    _powder("iron_powder", "metal powders", ["iron powder", "fe powder", "steel powder"], ["7205"], "Fe"),
    _powder("copper_powder", "metal powders", ["copper powder", "cu powder"], ["7406"], "Cu"),
    _powder("zinc_powder", "metal powders", ["zinc powder", "zinc dust"], ["7903"], "Zn"),
    _powder(
        "aluminium_powder",
        "metal powders",
        ["aluminium powder", "aluminum powder"],
        ["7603"],
        "Al",
        ("inorganic",),
    ),
    _powder("tungsten_powder", "metal powders", ["tungsten powder"], ["810110"], "W"),
    # chemical powders that look dense and are legitimate, rare earths included
    _powder(
        "cerium_oxide_powder",
        "chemical powders",
        ["cerium oxide polishing powder", "cerium oxide powder", "cerium oxide", "ceria", "polishing powder"],
        ["284610", "3405"],
        "CeO2",
        ("lanthanide",),
    ),
    _powder(
        "lanthanum_oxide_powder",
        "chemical powders",
        ["lanthanum oxide powder", "lanthanum oxide"],
        ["284690"],
        "La2O3",
        ("lanthanide",),
    ),
    _powder(
        "barium_sulfate_powder",
        "chemical powders",
        ["barium sulfate powder", "barium sulphate powder", "barium sulfate", "barium sulphate", "barite"],
        ["283327", "2511"],
        "BaSO4",
    ),
    GoodsCategory(
        "ceramic_tiles",
        "ceramics",
        ("ceramic tiles", "porcelain tiles", "tiles", "floor tiles", "wall tiles"),
        ("6907", "6908"),
        (("porcelain", 0.93), ("zircon_glaze", 0.07)),
        ("inorganic",),
        dense_share=0.1,
        areal_density_g_cm2=(2.0, 80.0),
    ),  # a stack on edge is opaque
    GoodsCategory(
        "ceramic_tableware",
        "ceramics",
        ("ceramic tableware", "tableware", "porcelain tableware", "crockery"),
        ("6911", "6912"),
        (("porcelain", 0.9), ("lead_glaze", 0.1)),
        ("inorganic", "metal"),
        dense_share=0.2,
        areal_density_g_cm2=(0.5, 40.0),
    ),
    GoodsCategory(
        "mannequins",
        "mannequins",
        ("mannequin", "mannequins", "display dummy", "dress form"),
        ("961800",),
        (("GFRP", 0.6), ("polyethylene", 0.4)),
        ("organic", "inorganic"),
        dense_share=0.02,
        areal_density_g_cm2=(0.2, 6.0),
    ),  # hollow shells
    GoodsCategory(
        "clothing",
        "clothing",
        ("clothing", "clothes", "garments", "apparel", "t-shirts", "jeans", "towels", "textiles"),
        ("61", "62", "6302"),
        (("cellulose", 0.5), ("polyester", 0.5)),
        ("organic",),
        dense_share=0.02,
        areal_density_g_cm2=(0.1, 8.0),
    ),
    GoodsCategory(
        "shoes",
        "clothing",
        ("shoes", "footwear", "boots", "sneakers"),
        ("64",),
        (("rubber", 0.5), ("polyester", 0.3), ("cellulose", 0.2)),
        ("organic",),
        dense_share=0.05,
        areal_density_g_cm2=(0.2, 10.0),
    ),
    GoodsCategory(
        "books",
        "books",
        ("books", "book", "magazines", "printed matter", "catalogues"),
        ("4901", "4902"),
        (("paper", 1.0),),
        ("organic",),
        dense_share=0.0,
        areal_density_g_cm2=(0.5, 12.0),
    ),
    GoodsCategory(
        "electronics",
        "electronics",
        (
            "electronics",
            "electronic goods",
            "laptop computer",
            "laptop",
            "mobile phone",
            "smartphone",
            "power bank",
            "phone charger",
            "laptop power adapter",
            "charger",
            "transformer",
            "headphones",
            "batteries",
            "battery",
        ),
        ("8471", "8504", "8506", "8507", "8517", "851830", "8528"),
        (("ABS", 0.35), ("pcb", 0.2), ("li_ion_cell", 0.3), ("Al", 0.05), ("steel", 0.1)),
        ("organic", "inorganic", "metal"),
        dense_share=0.8,
        areal_density_g_cm2=(0.2, 30.0),
    ),
    GoodsCategory(
        "toys",
        "toys",
        ("toys", "toy", "plush toys", "games"),
        ("9503",),
        (("ABS", 0.7), ("polyester", 0.3)),
        ("organic",),
        dense_share=0.1,
        areal_density_g_cm2=(0.05, 6.0),
    ),
    GoodsCategory(
        "plastic_goods",
        "toys",
        ("plastic goods", "plastic articles", "plastics", "household plastics"),
        ("3924", "3926"),
        (("polyethylene", 0.6), ("ABS", 0.4)),
        ("organic",),
        dense_share=0.05,
        areal_density_g_cm2=(0.05, 8.0),
    ),
    GoodsCategory(
        "tools",
        "tools",
        (
            "tools",
            "hand tools",
            "tool set",
            "drill bits",
            "cutlery",
            "bolts and nuts",
            "screws",
            "door lock",
            "locks",
            "cordless drill",
            "power tools",
            "hardware",
        ),
        ("82", "7318", "8301", "8467"),
        (("steel", 0.85), ("ABS", 0.1), ("WC", 0.05)),
        ("organic", "inorganic", "metal"),
        dense_share=1.0,
        areal_density_g_cm2=(0.5, 80.0),
    ),
    GoodsCategory(  # a compact reel of tin-lead: weighed against its declared mass like a powder
        "solder",
        "tools",
        ("solder wire", "solder", "tin-lead solder", "soldering wire"),
        ("8311",),
        (("solder", 1.0),),
        ("metal",),
        dense_share=1.0,
        areal_density_g_cm2=(0.5, 80.0),
        measured_over_declared=(0.8, 1.6),
        check_material="solder",
    ),
    GoodsCategory(  # legitimate rare earth (NdFeB) in context
        "magnets",
        "magnets/loudspeakers",
        (
            "ferrite magnets",
            "magnets",
            "magnet",
            "loudspeaker",
            "loudspeakers",
            "speaker",
            "speakers",
            "electric motor",
            "motors",
            "motor",
        ),
        ("8505", "851821", "851822", "851829", "8501"),
        (("ferrite", 0.4), ("steel", 0.3), ("Cu", 0.15), ("NdFeB", 0.1), ("ABS", 0.05)),
        ("organic", "inorganic", "metal", "lanthanide"),
        dense_share=1.0,
        areal_density_g_cm2=(0.3, 80.0),
    ),
    GoodsCategory(
        "cosmetics",
        "cosmetics",
        ("cosmetics", "cosmetic", "skin care", "perfume", "shampoo", "makeup"),
        ("33",),
        (("cosmetic", 0.8), ("polyethylene", 0.1), ("glass", 0.1)),
        ("organic", "inorganic"),
        dense_share=0.05,
        areal_density_g_cm2=(0.2, 15.0),
    ),
    GoodsCategory(  # cans are steel or aluminium, bottles glass
        "food",
        "food",
        (
            "food",
            "canned food",
            "soft drinks",
            "mineral water",
            "wine",
            "beer",
            "spirits",
            "drinks",
            "beverages",
            "tea",
            "coffee",
            "sweets",
        ),
        ("04", "09", "16", "17", "18", "19", "20", "21", "22"),
        (("water", 0.75), ("sugar", 0.1), ("steel", 0.1), ("glass", 0.05)),
        ("organic", "inorganic", "metal"),
        dense_share=0.3,
        areal_density_g_cm2=(0.2, 25.0),
    ),
)

_BY_KEY = {c.key: c for c in CATEGORIES}


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9%.\- ]+", " ", text.lower()).split())


def _hs_digits(hs_code: str) -> str:
    return re.sub(r"[ .]", "", hs_code)


def categorise(description: str, hs_code: str | None = None) -> tuple[GoodsCategory | None, str]:
    """The category a declared item belongs to, and why (a phrase a person can check).

    The longest catalogue phrase found as whole words in the description wins; a tie between two
    categories, a vague description ("gift", "parts") or no match gives (None, why). An HS code
    decides only when the description matches nothing; when both match different categories the
    description wins and ``why`` says so.
    """
    text = _normalise(description)
    if text in VAGUE:
        return None, f"description {description!r} is too vague to check against the image"
    best: list[tuple[int, GoodsCategory, str]] = []
    for cat in CATEGORIES:
        for phrase in cat.phrases:
            if re.search(rf"(?<![a-z0-9]){re.escape(phrase)}(?![a-z0-9])", text):
                best.append((len(phrase), cat, phrase))
    by_hs = _by_hs(hs_code) if hs_code else None
    if best:
        top = max(n for n, _, _ in best)
        winners = {c.key: (c, p) for n, c, p in best if n == top}
        if len(winners) > 1:
            names = " / ".join(sorted(c.name for c, _ in winners.values()))
            return None, f"description {description!r} is ambiguous ({names})"
        cat, phrase = next(iter(winners.values()))
        why = f"description matches {phrase!r}"
        if by_hs is not None and by_hs.key != cat.key:
            why += f"; HS code {hs_code} points to {by_hs.name} instead"
        return cat, why
    if by_hs is not None:
        return by_hs, f"HS code {hs_code} (description {description!r} not in the catalogue)"
    return None, f"description {description!r} is not in the goods catalogue"


def _by_hs(hs_code: str) -> GoodsCategory | None:
    digits = _hs_digits(hs_code)
    hits = [(len(p), c) for c in CATEGORIES for p in c.hs_prefixes if digits.startswith(p)]
    return max(hits, key=lambda t: t[0])[1] if hits else None


def get_category(key: str) -> GoodsCategory:
    """A category by its key, e.g. ``"nickel_powder"``."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise ValueError(f"unknown goods category {key!r}; known: {', '.join(_BY_KEY)}") from None


def per_gram_attenuation(category: GoodsCategory | str, model: SpectralModel) -> np.ndarray:
    """Attenuation per gram (cm^2/g) at each channel of ``model``, in the thin limit.

    This is what one gram spread over one square centimetre adds to a_c = -ln(S_c / S_c,air) with
    nothing else in the beam; a thick layer adds less per gram (beam hardening), never more, so
    ``per_gram * mass`` bounds the integral of a_c over the goods' footprint. Returns (C,) float.
    """
    if isinstance(category, GoodsCategory):
        parts = [(get_material(m), w) for m, w in category.composition]
        material = mixture(category.key, parts, 1.0) if len(parts) > 1 else parts[0][0]
    else:
        material = get_material(category)
    areal = 1e-4  # g/cm^2: thin enough that a_c is linear in it to better than 0.1 %
    a, _ = model.attenuation(np.array([[areal]]), material.mu_rho(model.energies_kev)[None])
    return a[:, 0] / areal
