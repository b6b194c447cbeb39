"""Dual-energy material analysis: R-curves, apparent atomic number and operator classes.

Scanners calibrate R = a_L / a_H against a_H with step wedges of known Z and colour each pixel
by the Z whose curve passes closest. Here the curves are computed from the physics module for
a given scanner (tube, filtration, detector stack), for the pure elements Z = 5..30, so the
apparent Z of a pixel is what a standard scanner with that configuration would show, including
its failure on lanthanides whose K-edges fall between the two channels (physics.md, "the trap").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from ..physics.attenuation import element_mu_rho
from ..physics.observer import SpectralModel

__all__ = ["OperatorClass", "RCurves", "apparent_z", "operator_class", "r_curves"]

Z_MIN, Z_MAX = 5, 30
_SYMBOLS = (
    "B",
    "C",
    "N",
    "O",
    "F",
    "Ne",
    "Na",
    "Mg",
    "Al",
    "Si",
    "P",
    "S",
    "Cl",
    "Ar",
    "K",
    "Ca",
    "Sc",
    "Ti",
    "V",
    "Cr",
    "Mn",
    "Fe",
    "Co",
    "Ni",
    "Cu",
    "Zn",
)


class OperatorClass(IntEnum):
    """Operator colour classes: orange organic, green inorganic, blue metal, black impenetrable."""

    BACKGROUND = 0
    ORGANIC = 1  # apparent Z < 10
    INORGANIC = 2  # 10 <= Z < 18
    METAL = 3  # Z >= 18
    IMPENETRABLE = 4


@dataclass(frozen=True)
class RCurves:
    """R = a_L / a_H tabulated on an a_H grid for Z = 5..30.

    a_high : (K,) grid of high-channel attenuation; r : (Z, K) R values; z : (Z,) atomic numbers.
    """

    a_high: np.ndarray
    r: np.ndarray
    z: np.ndarray


def r_curves(model: SpectralModel, a_high_max: float = 8.0, n: int = 96) -> RCurves:
    """Step-wedge R-curves of the pure elements Z = 5..30 for one scanner (noise-free)."""
    if model.n0_w.shape[0] != 2:
        raise ValueError("R-curves need a dual-energy scanner (two channels)")
    grid = np.linspace(0.02, a_high_max, n)
    areal = np.geomspace(1e-3, 400.0, 400)  # g/cm^2 of each element
    r = np.empty((len(_SYMBOLS), n))
    for i, sym in enumerate(_SYMBOLS):
        mu = element_mu_rho(sym, model.energies_kev)[None]
        a, _ = model.attenuation(areal[None], mu)
        a_low, a_high = a
        r[i] = np.interp(grid, a_high, a_low / a_high, left=np.nan, right=np.nan)
    # Light elements never reach a_H of 8 within the wedge: extend their curves flat.
    r = np.where(np.isnan(r), np.nan_to_num(r, nan=0.0) + _last_valid(r), r)
    return RCurves(grid, r, np.arange(Z_MIN, Z_MAX + 1, dtype=np.float64))


def _last_valid(r: np.ndarray) -> np.ndarray:
    out = np.empty_like(r)
    for i, row in enumerate(r):
        ok = np.flatnonzero(np.isfinite(row))
        out[i] = np.where(np.isfinite(row), 0.0, row[ok[-1]] if ok.size else 1.0)
    return out


def apparent_z(a_low: np.ndarray, a_high: np.ndarray, curves: RCurves) -> np.ndarray:
    """Apparent atomic number per pixel (float, clipped to 5..30), as a standard scanner reads it.

    a_low, a_high : same-shape arrays of log attenuation. Pixels with a_high <= 0 give NaN.
    """
    a_low = np.asarray(a_low, dtype=np.float64)
    a_high = np.asarray(a_high, dtype=np.float64)
    if a_low.shape != a_high.shape:
        raise ValueError(f"a_low and a_high must have the same shape, got {a_low.shape} and {a_high.shape}")
    flat_h = np.clip(a_high.ravel(), curves.a_high[0], curves.a_high[-1])
    # R of every reference Z at each pixel's a_H: (Z, N)
    idx = np.clip(np.searchsorted(curves.a_high, flat_h) - 1, 0, len(curves.a_high) - 2)
    f = (flat_h - curves.a_high[idx]) / (curves.a_high[idx + 1] - curves.a_high[idx])
    r_ref = curves.r[:, idx] * (1 - f) + curves.r[:, idx + 1] * f
    with np.errstate(divide="ignore", invalid="ignore"):
        r_pix = a_low.ravel() / a_high.ravel()
    # R rises with Z: count the curves below the pixel, interpolate between neighbours.
    below = np.sum(r_ref <= r_pix, axis=0)
    k = np.clip(below - 1, 0, len(curves.z) - 2)
    cols = np.arange(r_pix.size)
    r0, r1 = r_ref[k, cols], r_ref[k + 1, cols]
    frac = np.clip((r_pix - r0) / np.where(r1 > r0, r1 - r0, 1.0), 0, 1)
    z = curves.z[k] + frac
    z = np.where(below == 0, curves.z[0], np.where(below >= len(curves.z), curves.z[-1], z))
    z = np.where(a_high.ravel() > 0, z, np.nan)
    return z.reshape(a_high.shape)


def operator_class(
    z: np.ndarray, a_high: np.ndarray, background: float = 0.03, impenetrable: float = 6.0
) -> np.ndarray:
    """Operator colour class per pixel from apparent Z and high-channel attenuation."""
    out = np.full(np.shape(z), OperatorClass.METAL, dtype=np.uint8)
    out[z < 18] = OperatorClass.INORGANIC
    out[z < 10] = OperatorClass.ORGANIC
    out[np.asarray(a_high) >= impenetrable] = OperatorClass.IMPENETRABLE
    out[~(np.asarray(a_high) > background)] = OperatorClass.BACKGROUND
    return out
