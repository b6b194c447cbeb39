"""Material catalogue: elemental mass fractions, density ranges and material classes.

A :class:`Material` is a composition (elemental mass fractions) plus the range of densities
it is found at (a packed powder and a sintered block of Dy2O3 are the same material at
different densities). Its mass-attenuation coefficient follows the mixture rule
mu/rho = sum_i w_i (mu/rho)_i over the shipped elemental table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cached_property

import numpy as np

from .attenuation import ENERGIES_KEV, atomic_mass, atomic_number, element_mu_rho

__all__ = [
    "CATALOGUE",
    "Material",
    "MaterialClass",
    "get_material",
    "mass_fractions",
    "mixture",
]


class MaterialClass(IntEnum):
    """Ground-truth material classes used by the per-pixel class map."""

    AIR = 0
    ORGANIC = 1  # effective Z < 10
    INORGANIC = 2  # light inorganic / mixed, 10 <= Z < 18
    METAL = 3  # Z >= 18, not a lanthanide compound
    LANTHANIDE = 4  # rare-earth bearing (La..Lu make up >= 2 wt %)


_TOKEN = re.compile(r"([A-Z][a-z]?)(\d*\.?\d*)")


def mass_fractions(formula: str) -> dict[str, float]:
    """Elemental mass fractions of a chemical formula such as ``"Dy2O3"`` or ``"C6H10O5"``."""
    if not formula or _TOKEN.sub("", formula):
        raise ValueError(f"cannot parse chemical formula {formula!r}")
    moles: dict[str, float] = {}
    for symbol, count in _TOKEN.findall(formula):
        atomic_number(symbol)  # raises for unknown symbols
        moles[symbol] = moles.get(symbol, 0.0) + (float(count) if count else 1.0)
    grams = {s: n * atomic_mass(s) for s, n in moles.items()}
    total = sum(grams.values())
    return {s: g / total for s, g in grams.items()}


def _blend(parts: list[tuple[str | dict[str, float], float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    total = sum(w for _, w in parts)
    for comp, w in parts:
        fr = mass_fractions(comp) if isinstance(comp, str) else comp
        for s, f in fr.items():
            out[s] = out.get(s, 0.0) + f * w / total
    return out


_LANTHANIDES = {"La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu"}


@dataclass(frozen=True)
class Material:
    """A material: composition and the densities it occurs at.

    composition : elemental mass fractions (sum to 1).
    density_g_cm3 : nominal (full) density; density_range_g_cm3 : (low, high) to randomise over.
    """

    name: str
    composition: dict[str, float] = field(hash=False, compare=False)
    density_g_cm3: float
    density_range_g_cm3: tuple[float, float]

    def __post_init__(self) -> None:
        total = sum(self.composition.values())
        if not np.isclose(total, 1.0, atol=1e-6) or min(self.composition.values()) < 0:
            raise ValueError(f"material {self.name!r}: mass fractions must be >= 0 and sum to 1, sum={total}")
        lo, hi = self.density_range_g_cm3
        if not 0 < lo <= self.density_g_cm3 <= hi:
            raise ValueError(
                f"material {self.name!r}: need 0 < low <= density <= high, got {lo}, "
                f"{self.density_g_cm3}, {hi}"
            )

    def mu_rho(self, energies_kev: np.ndarray | float) -> np.ndarray:
        """Mass-attenuation coefficient mu/rho (cm^2/g) at the given energies (keV)."""
        e = np.asarray(energies_kev, dtype=np.float64)
        return sum(w * element_mu_rho(s, e) for s, w in self.composition.items())

    @cached_property
    def mu_rho_grid(self) -> np.ndarray:
        """mu/rho (cm^2/g) on the table's 1 keV grid, :data:`ENERGIES_KEV`."""
        return self.mu_rho(ENERGIES_KEV)

    @cached_property
    def z_eff(self) -> float:
        """Power-law (m = 2.94) effective atomic number, by electron fraction."""
        electrons = {s: w * atomic_number(s) / atomic_mass(s) for s, w in self.composition.items()}
        total = sum(electrons.values())
        return float(sum(f / total * atomic_number(s) ** 2.94 for s, f in electrons.items()) ** (1 / 2.94))

    @cached_property
    def material_class(self) -> MaterialClass:
        """Ground-truth class: lanthanide-bearing, metal, light inorganic or organic."""
        if sum(w for s, w in self.composition.items() if s in _LANTHANIDES) >= 0.02:
            return MaterialClass.LANTHANIDE
        if self.z_eff >= 18:
            return MaterialClass.METAL
        return MaterialClass.INORGANIC if self.z_eff >= 10 else MaterialClass.ORGANIC


def _m(name: str, comp, density: float, lo: float | None = None, hi: float | None = None) -> Material:
    fractions = mass_fractions(comp) if isinstance(comp, str) else _blend(comp)
    return Material(name, fractions, density, (lo or density, hi or density))


def mixture(name: str, parts: list[tuple[Material, float]], density_g_cm3: float) -> Material:
    """A new material from weight fractions of others, e.g. porcelain blended with 10 wt % Dy2O3."""
    if not parts or any(w < 0 for _, w in parts) or sum(w for _, w in parts) <= 0:
        raise ValueError(f"mixture {name!r}: need at least one part with a positive weight")
    comp = _blend([(m.composition, w) for m, w in parts])
    return Material(name, comp, density_g_cm3, (density_g_cm3, density_g_cm3))


_PORCELAIN = [
    ("SiO2", 68),
    ("Al2O3", 21),
    ("K2O", 3.5),
    ("Na2O", 2.5),
    ("CaO", 2),
    ("MgO", 1),
    ("Fe2O3", 1),
    ("TiO2", 1),
]
_E_GLASS = [("SiO2", 54), ("CaO", 22), ("Al2O3", 14), ("B2O3", 7), ("MgO", 1.5), ("Na2O", 1), ("Fe2O3", 0.5)]
_EPOXY = "C18H20O3"  # cured bisphenol-A epoxy

_CATALOGUE_LIST = [
    # rare earths (powder bulk density 1.5-4 g/cm3 up to sintered)
    _m("Dy2O3", "Dy2O3", 7.80, 1.5, 7.80),
    _m("Tb4O7", "Tb4O7", 7.30, 1.5, 7.30),
    _m("Nd2O3", "Nd2O3", 7.24, 1.5, 7.24),
    _m("NdFeB", "Nd2Fe14B", 7.50, 3.0, 7.50),
    _m("CeO2", "CeO2", 7.20, 1.0, 7.20),
    _m("La2O3", "La2O3", 6.51, 1.2, 6.51),
    # metals
    _m("Ni", "Ni", 8.90, 1.5, 8.90),
    _m("steel", [("Fe", 98.5), ("Mn", 1.0), ("C", 0.5)], 7.87, 7.7, 7.9),
    _m("Fe", "Fe", 7.87, 1.5, 7.87),
    _m("stainless_steel", [("Fe", 72), ("Cr", 18), ("Ni", 8), ("Mn", 2)], 7.9),
    _m("Cu", "Cu", 8.96, 1.5, 8.96),
    _m("brass", [("Cu", 63), ("Zn", 37)], 8.5),
    _m("Al", "Al", 2.70, 2.6, 2.70),
    _m("Zn", "Zn", 7.14),
    _m("W", "W", 19.3, 15.0, 19.3),
    _m("WC", "WC", 15.6, 14.5, 15.6),
    _m("Pb", "Pb", 11.35),
    _m("solder", [("Sn", 63), ("Pb", 37)], 8.4),
    # ceramics and minerals
    _m("porcelain", _PORCELAIN, 2.40, 2.2, 2.45),
    _m(
        "zircon_glaze", [("SiO2", 63), ("ZrSiO4", 13), ("Al2O3", 9), ("CaO", 8), ("K2O", 4), ("Na2O", 3)], 2.6
    ),
    _m("lead_glaze", [("PbO", 40), ("SiO2", 45), ("Al2O3", 8), ("B2O3", 7)], 3.8),
    _m("glass", [("SiO2", 73), ("Na2O", 14), ("CaO", 9), ("MgO", 4)], 2.50, 2.4, 2.6),
    _m("ferrite", "SrFe12O19", 4.9, 3.0, 5.1),
    _m("BaSO4", "BaSO4", 4.50, 1.5, 4.50),
    _m("GFRP", [(_blend(_E_GLASS), 60), (_EPOXY, 40)], 1.90, 1.7, 2.0),
    _m("CsI", "CsI", 4.51),
    _m("GOS", "Gd2O2S", 7.34),
    # organics
    _m("polyethylene", "C2H4", 0.94, 0.90, 0.97),
    _m("cellulose", "C6H10O5", 1.50, 0.3, 1.50),
    _m("PVC", "C2H3Cl", 1.38, 1.3, 1.45),
    _m("water", "H2O", 1.00),
    _m("epoxy", _EPOXY, 1.2),
    _m("ABS", "C15H17N", 1.05, 1.0, 1.1),
    _m("polyester", "C10H8O4", 1.38),
    _m("nylon", "C6H11NO", 1.14),
    _m("rubber", [("C5H8", 80), ("ZnO", 3), ("SiO2", 17)], 1.1, 0.9, 1.3),
    _m("wood", [("C6H10O5", 70), ("C10H12O3", 30)], 0.6, 0.35, 0.9),
    _m("cardboard", [("C6H10O5", 92), ("CaCO3", 8)], 0.7, 0.6, 0.8),
    _m("paper", [("C6H10O5", 85), ("CaCO3", 15)], 0.9, 0.7, 1.2),
    _m("sugar", "C12H22O11", 1.59, 0.8, 1.59),
    _m("cosmetic", [("H2O", 70), ("C3H8O3", 20), ("TiO2", 5), ("C16H32O2", 5)], 1.05),
    _m("silicone", "C2H6OSi", 1.1),
    # packing: foam and crumpled paper at their (very low) effective densities
    _m("foam", "C2H4", 0.05, 0.015, 0.2),
    _m("corrugated_board", [("C6H10O5", 92), ("CaCO3", 8)], 0.15, 0.08, 0.25),
    _m("packing_paper", "C6H10O5", 0.06, 0.02, 0.2),
    # composite parts of electronics and batteries
    _m("li_ion_cell", [("LiCoO2", 30), ("C", 20), ("Cu", 15), ("Al", 8), ("C3H4O3", 17), ("C3H6", 10)], 2.6),
    _m("alkaline_cell", [("Zn", 20), ("MnO2", 35), ("KOH", 10), ("Fe", 25), ("C", 5), ("H2O", 5)], 3.2),
    _m("pcb", [("SiO2", 40), (_EPOXY, 35), ("Cu", 20), ("Sn", 3), ("Pb", 2)], 1.9),
]

CATALOGUE: dict[str, Material] = {m.name: m for m in _CATALOGUE_LIST}


def get_material(name: str) -> Material:
    """Look a material up in :data:`CATALOGUE` by name."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise ValueError(f"unknown material {name!r}; known: {', '.join(sorted(CATALOGUE))}") from None
