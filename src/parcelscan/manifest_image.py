"""What a scan measures for the declared-contents check: compact dense objects and their masses.

Pure functions on attenuation arrays a = -ln T of shape (C, L, P) (C = 2 low/high, or 1 single),
and :func:`read_scan`, which applies them to a :class:`~parcelscan.scan.Scan`.

- :func:`saturated` marks pixels where the detector has given up: the high channel at its opaque
  plateau (scatter and noise), or both channels reading the same, R = a_L / a_H ~ 1, which no
  material gives at a_H > 3. Their attenuation is only a lower bound of the truth.
- :func:`dense_objects` finds compact dense objects (jars, bags, lumps: convex, neither slabs nor
  rods) at rising attenuation levels, so that an object touching another separates at some level.
- :func:`read_object` gives the least mass of each material that explains what an object adds to
  the high channel: background as high as its surroundings allow, saturated pixels at their
  (lower-bound) reading, footprint at belt level (the smallest a pixel covers). Whatever the
  object's height it is a lower bound: physics.md's "M grams of nickel can give at most ..."
  turned round, with beam hardening included.
- :func:`read_parcel` weighs the whole parcel by operator class, packing taken off.

Why no material reading of the objects themselves: a jar of powder is a few g/cm^2 thick or more,
so its low channel is saturated wherever its high channel is not; what stays readable is its rim,
where pixels mix open and opaque parts and read R ~ 1 whatever the material (tried: genuine nickel
jars read apparent Z 13 there, like rare-earth jars). The mass bound needs only the high channel.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .physics.observer import SpectralModel
from .preprocess.mass import areal_density_over, grow_mask, inpaint_background

__all__ = [
    "LANTHANIDE",
    "DenseObject",
    "ParcelReading",
    "ScanReading",
    "dense_objects",
    "plateau",
    "read_object",
    "read_parcel",
    "read_scan",
    "saturated",
]

LANTHANIDE = "Dy2O3"  # every object is also weighed as this (Tb4O7 reads within 5 % of it)
LEVELS = (0.5, 1.0, 2.0, 3.0, 4.5)  # high-channel attenuation thresholds of the object search
# Reference material per operator class for the whole-parcel mass (physics.md's class bounds).
CLASS_REFERENCE = {"organic": "cellulose", "inorganic": "porcelain", "metal": "steel"}
_X_POINTS = 120  # thickness grid of the weighing (preprocess.mass uses 96 for its mass estimates)


def plateau(a: np.ndarray) -> np.ndarray:
    """(C,) attenuation at which each channel gives up: the 99th percentile of its readings above
    4 (the opaque plateau set by scatter and noise); infinite where fewer than 20 pixels are that dark."""
    out = np.full(a.shape[0], np.inf)
    for c in range(a.shape[0]):
        high = a[c][a[c] > 4.0]
        if high.size >= 20:
            out[c] = float(np.percentile(high, 99))
    return out


def saturated(a: np.ndarray, floor_margin: float = 0.2) -> np.ndarray:
    """(L, P) bool: pixels whose high-channel attenuation is only a lower bound.

    a : (C, L, P) attenuation (3x3 medians are taken inside). A pixel is saturated within
    ``floor_margin`` of the high channel's :func:`plateau`, or (dual-energy) where a_H > 3 and
    a_L < 1.03 a_H: real materials give R >= 1.14 at a_H = 4 (physics.md) and thick organics about
    1.1 on hard-filtered scanners, while at the floor both channels read alike (R 0.96-1.01).
    """
    a_h = cv2.medianBlur(np.ascontiguousarray(a[-1], np.float32), 3)
    out = a_h >= plateau(a[-1:])[0] - floor_margin
    if a.shape[0] == 2:
        a_l = cv2.medianBlur(np.ascontiguousarray(a[0], np.float32), 3)
        out |= (a_h > 3.0) & (a_l < 1.03 * a_h)
    return out


@dataclass(frozen=True)
class DenseObject:
    """A compact dense object. box_px : (x0, y0, x1, y1) on the scan grid; mask : (y1-y0, x1-x0)
    bool inside the box; level : the a_H threshold it was found at; area_cm2 : footprint at the
    belt; saturated_fraction : share of its pixels that are only lower bounds."""

    box_px: tuple[int, int, int, int]
    mask: np.ndarray
    level: float
    area_cm2: float
    saturated_fraction: float


def _compact(mask: np.ndarray) -> bool:
    """Convex, neither a rectangle nor a rod: a jar, a bag or a lump seen from below."""
    ys, xs = np.nonzero(mask)
    if xs.size < 6:
        return False
    pts = np.stack([xs, ys], 1).astype(np.float32)
    hull = cv2.convexHull(pts)
    solidity = xs.size / (cv2.contourArea(hull) + 0.5 * cv2.arcLength(hull, True))
    _, (w, h), _ = cv2.minAreaRect(pts)
    w, h = w + 1, h + 1
    return solidity >= 0.9 and xs.size / (w * h) <= 0.92 and max(w, h) / min(w, h) <= 3.0


def dense_objects(
    a: np.ndarray, sat: np.ndarray, pixel_area_cm2: float, min_area_cm2: float = 0.3
) -> list[DenseObject]:
    """The outermost compact dense objects found at the levels of :data:`LEVELS`.

    a : (C, L, P) attenuation; sat : (L, P) from :func:`saturated`; pixel_area_cm2 : one pixel's
    footprint at the belt. A region that is compact at a low level is one object; only where it is
    not (two objects touching) do the higher levels look inside it. An object inside one already
    found is the same object's denser core and is dropped: weighing a core alone would let part of
    a rare-earth jar pass for a lighter nickel one.
    """
    a_h = cv2.medianBlur(np.ascontiguousarray(a[-1], np.float32), 3)
    taken = np.zeros(a_h.shape, bool)
    out = []
    for level in LEVELS:
        binary = ((a_h > level) | sat).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        for k in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[k])
            if area * pixel_area_cm2 < min_area_cm2:
                continue
            m = labels[y : y + h, x : x + w] == k
            if taken[y : y + h, x : x + w][m].mean() > 0.5 or not _compact(m):
                continue
            taken[y : y + h, x : x + w] |= m
            frac = float(sat[y : y + h, x : x + w][m].mean())
            out.append(DenseObject((x, y, x + w, y + h), m, level, area * pixel_area_cm2, frac))
    return out


def _areal(a_obs: np.ndarray, a_bg: np.ndarray, model: SpectralModel, material: str) -> np.ndarray:
    """Areal density (g/cm^2) of ``material`` that raises a_H from a_bg to a_obs, per pixel (N,)."""
    return areal_density_over(a_obs, a_bg, model, material, x_points=_X_POINTS)


def read_object(
    a: np.ndarray,
    sat: np.ndarray,
    obj: DenseObject,
    pixel_area_cm2: float,
    model: SpectralModel,
    materials: tuple[str, ...],
    ring_px: int = 4,
    spill_px: int = 2,
) -> dict[str, float]:
    """{material: least mass in g} that explains what ``obj`` adds to the high channel.

    a : (C, L, P) attenuation; sat : (L, P) saturated pixels. The object is grown by ``spill_px``
    (crosstalk and afterglow spread its signal); its background is the larger of the inpainted one
    and the 80th percentile of the surrounding ring (a jar lying on a striped object must not be
    charged with the stripes); saturated pixels count at the 10th percentile of their reading.
    """
    x0, y0, x1, y1 = obj.box_px
    pad = ring_px + spill_px + 8
    ys = slice(max(y0 - pad, 0), min(y1 + pad, a.shape[1]))
    xs = slice(max(x0 - pad, 0), min(x1 + pad, a.shape[2]))
    sub = np.ascontiguousarray(a[:, ys, xs], np.float32)
    region = np.zeros(sub.shape[1:], bool)
    region[y0 - ys.start : y1 - ys.start, x0 - xs.start : x1 - xs.start] = obj.mask
    region = grow_mask(region, spill_px)
    ring = grow_mask(region, ring_px) & ~region
    bg = inpaint_background(sub, region, ring_px)[-1].astype(np.float64)
    if ring.any():
        bg = np.maximum(bg, float(np.percentile(sub[-1][ring], 80)))
    obs = sub[-1][region].astype(np.float64)
    low = sat[ys, xs][region]
    if low.any():
        obs[low] = np.minimum(obs[low], float(np.percentile(obs[low], 10)))
    return {m: float(_areal(obs, bg, model, m).sum() * pixel_area_cm2) for m in materials}


@dataclass(frozen=True)
class ParcelReading:
    """The parcel weighed by operator class with the packing taken off (:func:`read_parcel`).

    mass_g : {"organic", "inorganic", "metal"} readable mass in g; saturated_min_g : least mass
    behind the saturated pixels (read as :data:`LANTHANIDE`, the densest per gram); saturated_cm2 :
    their footprint; metal_boxes_px, saturated_boxes_px : boxes (x0, y0, x1, y1) on the scan grid
    of the metal-reading and the saturated areas of at least ``min_box_cm2``, largest first.
    """

    mass_g: dict[str, float]
    saturated_min_g: float
    saturated_cm2: float
    metal_boxes_px: tuple[tuple[int, int, int, int], ...]
    saturated_boxes_px: tuple[tuple[int, int, int, int], ...]

    @property
    def total_min_g(self) -> float:
        return float(sum(self.mass_g.values()) + self.saturated_min_g)


def read_parcel(
    a: np.ndarray,
    sat: np.ndarray,
    pixel_area_cm2: float,
    model: SpectralModel,
    curves=None,
    air: float = 0.03,
    min_box_cm2: float = 1.0,
) -> ParcelReading:
    """Weigh the parcel pixel by pixel on a 2x2-binned grid.

    Each pixel's apparent Z (``curves``: the scanner's R-curves; None for single-energy scans, then
    every pixel counts as organic, the lightest reading) picks its class and reference material
    (:data:`CLASS_REFERENCE`), whose areal density a_H then gives. The packing (box walls and loose
    fill, spread over the whole box) is taken off as the median areal density over the bounding box
    of the parcel (empty pixels count as zero): where the goods cover more than half of the box this
    takes some of them off too, so the total is a lower bound. Pixels below ``air`` are empty.
    """
    from .preprocess.material import apparent_z

    h, w = a.shape[1] // 2 * 2, a.shape[2] // 2 * 2
    binned = a[:, :h, :w].reshape(a.shape[0], h // 2, 2, w // 2, 2).mean(axis=(2, 4))
    sat_b = sat[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)) >= 0.5
    a_h = binned[-1].astype(np.float64)
    seen = (a_h > air) & ~sat_b
    area = 4 * pixel_area_cm2
    cls = np.full(a_h.shape, -1)
    if curves is not None and a.shape[0] == 2:
        z = apparent_z(binned[0][seen], a_h[seen], curves)
        cls[seen] = np.where(z < 10, 0, np.where(z < 18, 1, 2))
    else:
        cls[seen] = 0
    sigma = np.zeros(a_h.shape)
    for k, ref in enumerate(CLASS_REFERENCE.values()):
        sel = cls == k
        sigma[sel] = _areal(a_h[sel], np.zeros(int(sel.sum())), model, ref)
    packing = 0.0
    if seen.any():  # median over the parcel's bounding box: the fill where goods cover under half of it
        ys, xs = np.nonzero(seen | sat_b)
        packing = float(np.median(sigma[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]))
    goods = np.clip(sigma - packing, 0, None)
    mass = {name: float(goods[cls == k].sum() * area) for k, name in enumerate(CLASS_REFERENCE)}
    n_sat = int(sat_b.sum())
    sat_min = float(_areal(a_h[sat_b], np.zeros(n_sat), model, LANTHANIDE).sum() * area)
    min_px = min_box_cm2 / area
    return ParcelReading(mass, sat_min, n_sat * area, _boxes(cls == 2, 2, min_px), _boxes(sat_b, 2, min_px))


def _boxes(mask: np.ndarray, scale: int, min_px: float) -> tuple[tuple[int, int, int, int], ...]:
    """Boxes (x0, y0, x1, y1) of the 8-connected parts of ``mask`` of at least ``min_px`` pixels,
    largest first, scaled by ``scale`` to the scan grid."""
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    parts = [s for s in stats[1:] if s[4] >= min_px]
    parts.sort(key=lambda s: -int(s[4]))
    return tuple(tuple(int(v) * scale for v in (s[0], s[1], s[0] + s[2], s[1] + s[3])) for s in parts)


@dataclass(frozen=True)
class ScanReading:
    """Everything the declared-contents check reads off one scan.

    objects : compact dense objects (:func:`dense_objects`); masses : for each, {material: least
    mass in g} (:func:`read_object`, for :data:`LANTHANIDE`, steel and the requested materials);
    parcel : the whole-parcel reading; dual_energy : whether materials can be told apart;
    shape : (L, P) of the scan.
    """

    objects: tuple[DenseObject, ...]
    masses: tuple[dict[str, float], ...]
    parcel: ParcelReading
    dual_energy: bool
    shape: tuple[int, int]


def read_scan(scan, materials: tuple[str, ...] = ()) -> ScanReading:
    """Read a :class:`~parcelscan.scan.Scan` for the declared-contents check (about half a second
    for 1,000 x 1,000 pixels). materials : catalogue names to weigh every dense object as, besides
    :data:`LANTHANIDE` and steel."""
    from .preprocess.mass import scanner_model
    from .preprocess.pipeline import log_attenuation, transmission
    from .viz import scan_curves

    a = log_attenuation(transmission(scan.signals, scan.air, scan.dark))
    model = scanner_model(scan)
    pixel_area = scan.pixel_mm * scan.line_mm / 100.0
    sat = saturated(a)
    names = tuple(dict.fromkeys((*materials, LANTHANIDE, "steel")))
    objects, masses = [], []
    for obj in dense_objects(a, sat, pixel_area):
        try:
            masses.append(read_object(a, sat, obj, pixel_area, model, names))
        except cv2.error:  # an object cut by the scan edge can leave nothing to inpaint from
            continue
        objects.append(obj)
    curves = scan_curves(scan) if scan.dual_energy else None
    parcel = read_parcel(a, sat, pixel_area, model, curves)
    return ScanReading(tuple(objects), tuple(masses), parcel, scan.dual_energy, tuple(a.shape[1:]))
