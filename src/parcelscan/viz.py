"""Operator-style pseudo-colour images of scans (and, later, detection overlays).

Colour follows the convention of baggage and parcel scanners: orange for organic (apparent Z < 10),
green for light inorganic (10-18), blue for metal (> 18), brightness by thickness (a_H), black where
impenetrable. Single-energy scans are shown in grey.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from .physics.observer import SpectralModel
from .preprocess.mass import scanner_model
from .preprocess.material import RCurves, apparent_z, r_curves
from .scan import Scan

__all__ = [
    "detection_overlay",
    "draw_regions",
    "heatmap_overlay",
    "pseudo_colour",
    "scan_curves",
    "write_png",
]

# Hue (OpenCV degrees 0-180) at apparent Z: orange -> yellow-green -> green -> cyan -> blue.
_Z_KNOTS = np.array([5.0, 9.0, 10.5, 14.0, 17.0, 19.0, 26.0])
_HUE_KNOTS = np.array([14.0, 20.0, 35.0, 60.0, 75.0, 100.0, 115.0])


@lru_cache(maxsize=32)
def _curves_for(model: SpectralModel) -> RCurves:
    return r_curves(model)


def scan_curves(scan: Scan) -> RCurves:
    """R-curves for a scan: its own scanner's if the metadata describes it, else a nominal one
    (the model of :func:`~parcelscan.preprocess.mass.scanner_model`, built once per scanner)."""
    return _curves_for(scanner_model(scan))


def pseudo_colour(scan: Scan, curves: RCurves | None = None) -> np.ndarray:
    """(L, P, 3) uint8 RGB operator view of a scan (lines downward, pixels across)."""
    t = scan.transmission()
    a = -np.log(np.clip(t, 1e-6, 1.0))
    a_high = a[-1]
    value = np.clip(1.04 * np.exp(-0.42 * a_high), 0, 1)
    if not scan.dual_energy:
        grey = (255 * value).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    smooth = [cv2.GaussianBlur(ch, (0, 0), 1.0) for ch in a]
    z = apparent_z(smooth[0], smooth[1], curves or scan_curves(scan))
    hue = np.interp(np.nan_to_num(z, nan=5.0), _Z_KNOTS, _HUE_KNOTS)
    sat = np.clip(1.3 * (1 - np.exp(-1.8 * a_high)), 0, 0.95)
    hsv = np.stack([hue, sat, value], axis=-1).astype(np.float32)
    hsv[..., 0] *= 2  # OpenCV float HSV takes hue in degrees 0-360
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return (255 * np.clip(rgb, 0, 1)).astype(np.uint8)


def write_png(path, rgb: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 RGB image as PNG."""
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write PNG to {path}")


def heatmap_overlay(
    rgb: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45, threshold: float = 0.05
) -> np.ndarray:
    """Blend a (H, W) probability map in [0, 1] over an (H, W, 3) uint8 image (red = likely)."""
    rgb = np.asarray(rgb)
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
    if heatmap.shape != rgb.shape[:2]:
        raise ValueError(f"heatmap shape {heatmap.shape} does not match the image {rgb.shape[:2]}")
    if not np.all(np.isfinite(heatmap)):
        raise ValueError("heatmap contains NaN or Inf")
    h = np.clip(heatmap, 0, 1)
    colour = cv2.applyColorMap((255 * h).astype(np.uint8), cv2.COLORMAP_INFERNO)[..., ::-1]
    weight = (alpha * (h > threshold) * h)[..., None]
    return (rgb * (1 - weight) + colour * weight).astype(np.uint8)


def draw_regions(rgb: np.ndarray, boxes, labels=None, colour=(220, 0, 0)) -> np.ndarray:
    """Draw boxes ``[x0, y0, x1, y1]`` (pixels; x1, y1 exclusive) with optional text labels.

    Returns a new (H, W, 3) uint8 image; labels sit above each box (below it at the top edge).
    """
    out = np.ascontiguousarray(np.array(rgb, dtype=np.uint8, copy=True))
    labels = list(labels) if labels is not None else [None] * len(boxes)
    if len(labels) != len(boxes):
        raise ValueError(f"{len(boxes)} boxes but {len(labels)} labels")
    scale = max(out.shape[1] / 1400, 0.4)
    thick = max(round(2 * scale), 1)
    for box, text in zip(boxes, labels, strict=True):
        x0, y0, x1, y1 = (round(float(v)) for v in box)
        if not (x1 > x0 and y1 > y0):
            raise ValueError(f"box {box} must satisfy x1 > x0 and y1 > y0")
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), colour, thick)
        if text:
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, thick)
            ty = y0 - 4 if y0 - th - base - 4 >= 0 else y1 + th + 4
            cv2.rectangle(out, (x0, ty - th - base), (x0 + tw + 4, ty + base), colour, -1)
            cv2.putText(
                out,
                text,
                (x0 + 2, ty),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.6 * scale,
                (255, 255, 255),
                thick,
                cv2.LINE_AA,
            )
    return out


def detection_overlay(scan: Scan, detection) -> np.ndarray:
    """(L, P, 3) uint8 operator view of ``scan`` with a :class:`~parcelscan.result.Detection` drawn on
    it: heatmap blended in, regions boxed in red with score and mass (when the parcel alarms) or in
    amber (below the alarm threshold), opaque areas that could hide a mass boxed in grey."""
    from .preprocess.tiling import to_scan_coords

    rgb = pseudo_colour(scan)
    heat = to_scan_coords(detection.heatmap[None], detection.heatmap_scales, scan.shape[1:])[0]
    rgb = heatmap_overlay(rgb, np.clip(heat, 0, 1))
    if detection.impenetrable:
        rgb = draw_regions(
            rgb,
            [a.box_px for a in detection.impenetrable],
            ["opaque"] * len(detection.impenetrable),
            (90, 90, 90),
        )
    if detection.regions:
        labels = [
            f"{r.score:.2f}" + (f" {'>' if r.mass_lower_bound else '~'}{r.mass_g:.0f} g" if r.mass_g else "")
            for r in detection.regions
        ]
        colour = (220, 0, 0) if detection.alarm else (230, 150, 0)
        rgb = draw_regions(rgb, [r.box_px for r in detection.regions], labels, colour)
    return rgb
