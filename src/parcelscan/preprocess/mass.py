"""Areal density and mass of a region, with a rare-earth-aware material hypothesis.

A region's mass follows from how much it adds to the attenuation of the rays it covers. The
background those rays would have without it is estimated by inpainting the region from its
surroundings, per channel. Each pixel's background is expressed as an equivalent areal density
of a reference material (porcelain: mid-Z, so it hardens the beam as typical clutter does), and
for every candidate material M the forward model gives a_c(background + x M) on a grid of x, so
the high channel fixes x (g/cm^2 of M, beam hardening included) and the low channel tests the
hypothesis. Lanthanide oxides have their K-edge between the two channels: per gram they raise
a_L relative to a_H far more than nickel or steel do (physics.md), which is what the low-channel
residual sees. Opaque pixels (a_H beyond ``opaque_attenuation``) only give a lower bound.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from ..physics.materials import get_material
from ..physics.observer import SpectralModel

__all__ = [
    "DEFAULT_CANDIDATES",
    "MassEstimate",
    "areal_density",
    "areal_density_over",
    "estimate_mass",
    "grow_mask",
    "inpaint_background",
    "scanner_model",
]

DEFAULT_CANDIDATES = (
    "Dy2O3",
    "Tb4O7",
    "Nd2O3",
    "NdFeB",
    "Ni",
    "steel",
    "Cu",
    "W",
    "Pb",
    "porcelain",
    "polyethylene",
)
_BACKGROUND = "porcelain"
_BG_GRID = np.concatenate([[0.0], np.geomspace(0.05, 120.0, 47)])  # g/cm^2 of background reference
_X_POINTS = 96


def scanner_model(scan) -> SpectralModel:
    """Spectral model of the scanner that made ``scan``: its own if the metadata describes it
    (simulated scans do), else a nominal sandwich detector at the scan's tube voltage.

    Scans from the same scanner get the same model object, so the caches keyed on it (the mass
    tables here, the R-curves of :func:`parcelscan.viz.scan_curves`) are built once per scanner.
    """
    scanner = scan.metadata.get("scanner") if isinstance(scan.metadata, dict) else None
    return _model_for(float(scan.kvp), json.dumps(scanner, sort_keys=True) if scanner else None)


@lru_cache(maxsize=32)
def _model_for(kvp: float, scanner_json: str | None) -> SpectralModel:
    from ..sim.scanner import ScannerConfig

    if scanner_json is not None:
        return ScannerConfig.from_dict(json.loads(scanner_json)).model
    return ScannerConfig(kvp=kvp, ma=1.0).model


@lru_cache(maxsize=128)
def _table(
    model: SpectralModel, material: str, x_points: int = _X_POINTS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """a_c(background b, x of material) on (bg grid, x grid): (C, B, X) table and the x grid."""
    m = get_material(material)
    x_max = 60.0 / float(np.min(m.mu_rho(model.energies_kev)))  # far beyond opacity
    x_grid = np.concatenate([[0.0], np.geomspace(1e-4, x_max, x_points - 1)])
    bg, x = np.meshgrid(_BG_GRID, x_grid, indexing="ij")
    mu = np.stack([get_material(_BACKGROUND).mu_rho(model.energies_kev), m.mu_rho(model.energies_kev)])
    a, _ = model.attenuation(np.stack([bg.ravel(), x.ravel()]), mu)
    return a.reshape(a.shape[0], *bg.shape), x_grid, _BG_GRID


def _background_position(
    bg_column: np.ndarray, bg_grid: np.ndarray, a_bg_high: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's background as a position on ``bg_grid``: index i (N,) and weight f (N,) between
    rows i and i + 1. bg_column : a_H of the background alone, ``table[-1, :, 0]``, the same for
    every material's table (its x = 0 column)."""
    b = np.interp(np.clip(a_bg_high, 0, None), bg_column, bg_grid)  # background equivalent
    i = np.clip(np.searchsorted(bg_grid, b) - 1, 0, len(bg_grid) - 2)
    return i, (b - bg_grid[i]) / (bg_grid[i + 1] - bg_grid[i])


def areal_density_over(
    a_high: np.ndarray, a_bg_high: np.ndarray, model: SpectralModel, material: str, x_points: int = _X_POINTS
) -> np.ndarray:
    """Areal density (g/cm^2) of ``material`` that raises the high-channel attenuation of each pixel
    from ``a_bg_high`` to ``a_high`` (both (N,)), beam hardening by the background included.
    x_points : resolution of the material's thickness grid."""
    table, x_grid, bg_grid = _table(model, material, x_points)
    i, f = _background_position(table[-1, :, 0], bg_grid, a_bg_high)
    return _invert_rows(table[-1], i, f, np.asarray(a_high, np.float64), x_grid)


def grow_mask(mask: np.ndarray, px: int) -> np.ndarray:
    """(L, P) bool ``mask`` grown by ``px`` pixels in every direction (a square dilation)."""
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * px + 1,) * 2, np.uint8)).astype(bool)


def _blend(table_c: np.ndarray, i: np.ndarray, f: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Column ``k`` of the table row between background rows ``i`` and ``i + 1`` at weight ``f``,
    per pixel (all (N,)): table_c[i, k] (1 - f) + table_c[i + 1, k] f."""
    return table_c[i, k] * (1 - f) + table_c[i + 1, k] * f


def _invert_rows(
    table_c: np.ndarray, i: np.ndarray, f: np.ndarray, values: np.ndarray, grid: np.ndarray
) -> np.ndarray:
    """For each pixel, the ``grid`` position where its blended row (see :func:`_blend`), increasing
    along the grid, reaches ``values`` (N,), linear between grid points.

    A binary search reads about log2(K) columns per pixel instead of blending all K of them: a
    region of 10^5 pixels would otherwise build an (N, K) array per candidate material.
    """
    n_cols = table_c.shape[1]
    lo, hi = np.zeros(len(values), np.intp), np.full(len(values), n_cols, np.intp)
    while np.any(lo < hi):  # lo ends as the number of columns below the value
        mid = (lo + hi) // 2
        below = _blend(table_c, i, f, np.minimum(mid, n_cols - 1)) < values
        open_ = lo < hi
        lo = np.where(open_ & below, mid + 1, lo)
        hi = np.where(open_ & ~below, mid, hi)
    k = np.clip(lo - 1, 0, n_cols - 2)
    c0, c1 = _blend(table_c, i, f, k), _blend(table_c, i, f, k + 1)
    t = np.clip((values - c0) / np.where(c1 > c0, c1 - c0, 1.0), 0.0, 1.0)
    return np.where(lo == 0, grid[0], grid[k] + t * (grid[k + 1] - grid[k]))


def areal_density(a_high: np.ndarray, model: SpectralModel, material: str = "Fe") -> np.ndarray:
    """Areal density (g/cm^2) of ``material`` alone that gives high-channel attenuation ``a_high``."""
    a_high = np.asarray(a_high, dtype=np.float64)
    table, x_grid, _ = _table(model, material)
    curve = table[-1, 0]  # no background
    return np.interp(a_high, curve, x_grid).reshape(a_high.shape)


@dataclass(frozen=True)
class MassEstimate:
    """Mass of a region under the best-fitting material hypothesis.

    mass_g : estimate for ``material``; lower_bound : True if opaque pixels make it a lower bound;
    by_material : {name: (mass_g, rms low-channel residual)} for every candidate (dual-energy only).
    """

    mass_g: float
    material: str
    lower_bound: bool
    opaque_fraction: float
    n_pixels: int
    by_material: dict[str, tuple[float, float]] = field(default_factory=dict)


def inpaint_background(a: np.ndarray, region: np.ndarray, ring_px: int) -> np.ndarray:
    """Per-channel attenuation the region's rays would have without it (inpainted from around it).

    a : (C, L, P) float attenuation; region : (L, P) bool, not empty. Returns (C, N) float32 for
    the N region pixels in row-major order (the order of ``a[:, region]``).

    Navier-Stokes inpainting: OpenCV's Telea method returns garbage on float32 images holding
    small non-zero values (seen with opencv-python-headless 4.x), NS does not.
    """
    ys, xs = np.nonzero(region)
    pad = ring_px + 2
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, region.shape[0])
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, region.shape[1])
    mask = region[y0:y1, x0:x1].astype(np.uint8)
    out = np.empty((a.shape[0], *mask.shape), np.float32)
    for c in range(a.shape[0]):
        out[c] = cv2.inpaint(
            np.ascontiguousarray(a[c, y0:y1, x0:x1], np.float32), mask, ring_px, cv2.INPAINT_NS
        )
    return out[:, mask.astype(bool)]


def estimate_mass(
    attenuation: np.ndarray,
    region: np.ndarray,
    pixel_area_cm2: float,
    model: SpectralModel,
    candidates: tuple[str, ...] = DEFAULT_CANDIDATES,
    material: str | None = None,
    opaque_attenuation: float = 6.0,
    ring_px: int = 4,
    spill_px: int = 2,
    height_cm: float = 10.0,
    source_below_belt_cm: float = 50.0,
) -> MassEstimate:
    """Mass (g) of what ``region`` adds to the scan.

    attenuation : (C, L, P) a = -ln T per channel at scan resolution (C = 2 low/high, or 1).
    region : (L, P) bool pixels of the mass. pixel_area_cm2 : footprint of one pixel at the belt.
    height_cm, source_below_belt_cm : the fan beam magnifies across the belt only, so a pixel's
        footprint at the mass's height is (d_s + h) / d_s times its footprint on the belt. A single
        view cannot tell the height: the default (10 cm) is a guess that errs by -15 % to +30 %
        for masses between the belt and 30 cm up (d_s = 50 cm); pass the height when it is known.
    material : force a hypothesis; else the candidate whose low-channel prediction fits best.
    spill_px : the region is grown by this much first, because detector crosstalk, afterglow and
        the layer offset spread a mass's signal a pixel or two beyond its true footprint.
    """
    a = np.asarray(attenuation, dtype=np.float32)
    region = np.asarray(region, dtype=bool)
    if a.ndim != 3 or a.shape[1:] != region.shape:
        raise ValueError(
            f"attenuation (C, L, P) and region (L, P) must agree, got {a.shape} and {region.shape}"
        )
    if not np.all(np.isfinite(a)):
        raise ValueError("attenuation contains NaN or Inf")
    if not region.any():
        raise ValueError("region is empty")
    if not np.isfinite(pixel_area_cm2) or pixel_area_cm2 <= 0:
        raise ValueError(f"pixel_area_cm2 must be positive, got {pixel_area_cm2}")
    if not 0 <= height_cm < 300 or not 10 <= source_below_belt_cm <= 300:
        raise ValueError(
            f"height_cm must be in [0, 300) and source_below_belt_cm in [10, 300], "
            f"got {height_cm} and {source_below_belt_cm}"
        )
    footprint_cm2 = pixel_area_cm2 * (source_below_belt_cm + height_cm) / source_below_belt_cm
    if spill_px > 0:
        region = grow_mask(region, spill_px)
    bg = inpaint_background(a, region, ring_px)
    obs = a[:, region]
    opaque = obs[-1] >= opaque_attenuation
    obs = np.minimum(obs, opaque_attenuation)
    names = (material,) if material else candidates
    table, _, bg_grid = _table(model, names[0])
    i, f = _background_position(table[-1, :, 0], bg_grid, bg[-1])  # shared by every hypothesis
    a_high = obs[-1].astype(np.float64)
    results: dict[str, tuple[float, float]] = {}
    for name in names:
        table, x_grid, _ = _table(model, name)
        x = _invert_rows(table[-1], i, f, a_high, x_grid)
        residual = 0.0
        if a.shape[0] == 2:
            k = np.clip(np.searchsorted(x_grid, x) - 1, 0, len(x_grid) - 2)
            g = (x - x_grid[k]) / (x_grid[k + 1] - x_grid[k])
            pred_low = _blend(table[0], i, f, k) * (1 - g) + _blend(table[0], i, f, k + 1) * g
            low_bg = _blend(table[0], i, f, np.zeros_like(k))  # the low channel without the mass
            # Compare what the mass adds to the low channel, integrated over its unsaturated pixels
            # (sums average the noise away; per-pixel differences would drown in it).
            seen = ~opaque
            if seen.any():
                d_obs = float(np.sum(obs[0][seen] - bg[0][seen]))
                d_pred = float(np.sum(pred_low[seen] - low_bg[seen]))
                residual = abs(d_obs - d_pred) / max(abs(d_obs), 1e-3)
        results[name] = (float(np.sum(x) * footprint_cm2), residual)
    best = min(results, key=lambda k: results[k][1]) if not material else material
    return MassEstimate(
        results[best][0],
        best,
        bool(opaque.any()),
        float(opaque.mean()),
        int(region.sum()),
        results if a.shape[0] == 2 else {},
    )
