"""Heatmap regions -> :class:`~parcelscan.result.Region`: mass, apparent Z, carrier; opaque areas.

Pure functions on the preprocessed arrays, at the model's resolution (``target_mm`` square pixels):
the heatmap, the regions and the attenuation the mass estimate reads share one grid, and 2 mm pixels
are fine enough for masses of a few grams (a 5 g dysprosium oxide cube is 8.7 mm across). Boxes are
mapped back to the scan grid only for the report.

What each field means and how far to trust it:
- mass: :func:`~parcelscan.preprocess.mass.estimate_mass` under the best-fitting candidate material,
  a lower bound where the region is partly opaque;
- apparent Z: of what the region *adds* (its attenuation minus the inpainted background, summed
  over its unsaturated pixels), read on the scanner's R-curves, so a mass inside a mannequin is not
  averaged with the mannequin;
- carrier: the material around the region when there is material all around it (the ring's median
  high-channel attenuation >= ``carrier_attenuation``): organic all around reads as a mannequin,
  clothing, books or food ("organic bulk"), mid-Z as a ceramic stack, high-Z as metal. Near opacity
  (a_H >= ``stack_attenuation``, e.g. a tile stack seen end-on) R-curves converge and apparent Z
  reads low whatever the material, so such surroundings are a "dense stack". It describes the
  surroundings; it is not an object recogniser.
"""

from __future__ import annotations

import cv2
import numpy as np

from .physics.observer import SpectralModel
from .postprocess import RegionPx
from .preprocess.mass import estimate_mass, grow_mask, inpaint_background
from .preprocess.material import RCurves, apparent_z
from .preprocess.pipeline import Preprocessed
from .preprocess.tiling import box_to_mm, box_to_scan
from .result import ImpenetrableArea, Region

__all__ = ["carrier_of", "describe_region", "impenetrable_areas"]

CARRIERS = {"organic": "organic bulk", "inorganic": "ceramic stack", "metal": "metal"}
DENSE_STACK = "dense stack"


def _class_of(z: float) -> str:
    if not np.isfinite(z):
        return "unknown"
    return "organic" if z < 10 else "inorganic" if z < 18 else "metal"


def _scan_box(box, pre: Preprocessed) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Model-pixel box -> (scan-pixel box clipped to the scan, the same box in mm)."""
    b = box_to_scan(np.asarray(box, np.float64), pre.scales)
    x0, y0 = np.floor(b[:2]).astype(int)
    x1, y1 = np.ceil(b[2:]).astype(int)
    lines, pixels = pre.scan_shape
    px = (max(x0, 0), max(y0, 0), min(x1, pixels), min(y1, lines))
    mm = tuple(float(v) for v in box_to_mm(np.asarray(px, np.float64), pre.line_mm, pre.pixel_mm))
    return tuple(int(v) for v in px), mm


def _model_pixel_cm2(pre: Preprocessed) -> float:
    """Footprint at the belt of one model pixel, in cm^2."""
    return (pre.pixel_mm / pre.scale_pixels / 10.0) * (pre.line_mm / pre.scale_lines / 10.0)


def _ring(mask: np.ndarray, inner_px: int, outer_px: int) -> np.ndarray:
    return grow_mask(mask, outer_px) & ~grow_mask(mask, inner_px)


def carrier_of(
    attenuation: np.ndarray,
    mask: np.ndarray,
    curves: RCurves | None,
    carrier_attenuation: float = 0.12,
    stack_attenuation: float = 2.5,
    inner_px: int = 2,
    outer_px: int = 6,
) -> str | None:
    """What surrounds ``mask``: "organic bulk", "ceramic stack", "metal", "dense stack" or None.

    attenuation : (C, H, W) a = -ln T; mask : (H, W) bool region. The ring between ``inner_px``
    and ``outer_px`` model pixels around the region must have a median high-channel attenuation of
    at least ``carrier_attenuation`` to count as a carrier (a_H 0.12 is about 7 mm of water at
    140 kVp: a plastic mannequin shell reads 0.15-0.45, an empty cardboard box below 0.1).
    Single-energy scans (``curves`` None) cannot tell materials apart and return None.
    """
    ring = _ring(mask, inner_px, outer_px)
    if curves is None or attenuation.shape[0] < 2 or ring.sum() < 8:
        return None
    a_low, a_high = attenuation[0][ring], attenuation[-1][ring]
    level = float(np.median(a_high))
    if level < carrier_attenuation:
        return None
    thick = a_high >= carrier_attenuation
    kind = _class_of(float(np.nanmedian(apparent_z(a_low[thick], a_high[thick], curves))))
    if level >= stack_attenuation and kind != "metal":
        return DENSE_STACK
    return CARRIERS.get(kind)


def _added_z(
    attenuation: np.ndarray, mask: np.ndarray, curves: RCurves, opaque_attenuation: float
) -> tuple[float | None, float]:
    """Apparent Z of what the region adds over its inpainted background, and its opaque fraction."""
    obs = attenuation[:, mask]
    opaque = obs[-1] >= opaque_attenuation
    seen = ~opaque
    if seen.sum() == 0:
        return None, 1.0
    bg = inpaint_background(attenuation, mask, ring_px=4)
    added = (obs[:, seen] - bg[:, seen]).sum(axis=1) / seen.sum()
    if added[-1] < 0.02:  # adds too little to read a ratio from
        return None, float(opaque.mean())
    z = float(apparent_z(np.array([added[0]]), np.array([added[-1]]), curves)[0])
    return (z if np.isfinite(z) else None), float(opaque.mean())


def describe_region(
    region: RegionPx,
    heatmap: np.ndarray,
    level: float,
    pre: Preprocessed,
    model: SpectralModel,
    curves: RCurves | None,
    height_cm: float = 10.0,
    opaque_attenuation: float = 6.0,
) -> Region:
    """Measure one heatmap region (model pixels) on the preprocessed attenuation.

    heatmap : (H, W) the stitched heatmap the region came from, thresholded again at ``level`` (the
    lowest probability of the region's pixels: its grow level, see
    :func:`~parcelscan.postprocess.alarm_regions`) inside the region's box to recover its pixels.
    model, curves : the scanner's spectral model (for the mass) and R-curves (for apparent Z;
    None for single-energy scans). height_cm : assumed height of the mass above the belt.
    """
    x0, y0, x1, y1 = region.box
    mask = np.zeros(heatmap.shape, bool)
    mask[y0:y1, x0:x1] = heatmap[y0:y1, x0:x1] >= level
    box_px, box_mm = _scan_box(region.box, pre)
    px_cm2 = _model_pixel_cm2(pre)
    area_cm2 = float(mask.sum()) * px_cm2
    cx, cy = region.centroid
    centroid = (cx / pre.scale_pixels, cy / pre.scale_lines)

    z, opaque_fraction = (None, 0.0)
    if curves is not None and pre.attenuation.shape[0] == 2:
        z, opaque_fraction = _added_z(pre.attenuation, mask, curves, opaque_attenuation)
    if opaque_fraction > 0.5:  # what little is seen around an opaque mass says nothing of it
        z, material_class = None, "impenetrable"
    else:
        material_class = _class_of(z if z is not None else np.nan)

    mass_g, lower, material = None, False, None
    try:
        est = estimate_mass(
            pre.attenuation,
            mask,
            px_cm2,
            model,
            opaque_attenuation=opaque_attenuation,
            spill_px=1,
            height_cm=height_cm,
        )
        mass_g, lower, material = est.mass_g, est.lower_bound, est.material
    except (ValueError, cv2.error):  # a region cut by the image edge can leave nothing to inpaint from
        pass
    return Region(
        box_px=box_px,
        box_mm=box_mm,
        centroid_px=centroid,
        score=float(region.score),
        area_cm2=area_cm2,
        mass_g=mass_g,
        mass_lower_bound=bool(lower),
        mass_material=material,
        apparent_z=z,
        material_class=material_class,
        carrier=carrier_of(pre.attenuation, mask, curves),
    )


def impenetrable_areas(pre: Preprocessed, min_area_cm2: float = 2.0) -> list[ImpenetrableArea]:
    """Connected opaque areas of ``pre.impenetrable`` of at least ``min_area_cm2``, largest first.

    The default, 2 cm^2, is the footprint of a 20 g cube of dysprosium oxide: anything opaque and
    larger could hide a mass the scanner cannot see.
    """
    mask = pre.impenetrable.astype(np.uint8)
    if not mask.any():
        return []
    px_cm2 = _model_pixel_cm2(pre)
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    out = []
    for k in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[k])
        if area * px_cm2 < min_area_cm2:
            continue
        box_px, box_mm = _scan_box((x, y, x + w, y + h), pre)
        out.append(ImpenetrableArea(box_px, box_mm, area * px_cm2))
    out.sort(key=lambda a: -a.area_cm2)
    return out
