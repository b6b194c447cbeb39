"""Operator-style pseudo-colour images of scans (and, later, detection overlays).

Colour follows the convention of baggage and parcel scanners: orange for organic (apparent Z < 10),
green for light inorganic (10-18), blue for metal (> 18), brightness by thickness (a_H), black where
impenetrable. Single-energy scans are shown in grey.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from .preprocess.material import RCurves, apparent_z, r_curves
from .scan import Scan

__all__ = ["pseudo_colour", "scan_curves", "write_png"]

# Hue (OpenCV degrees 0-180) at apparent Z: orange -> yellow-green -> green -> cyan -> blue.
_Z_KNOTS = np.array([5.0, 9.0, 10.5, 14.0, 17.0, 19.0, 26.0])
_HUE_KNOTS = np.array([14.0, 20.0, 35.0, 60.0, 75.0, 100.0, 115.0])


@lru_cache(maxsize=32)
def _curves_for(kvp: float, scanner_json: str | None) -> RCurves:
    import json

    from .sim.scanner import ScannerConfig

    if scanner_json is not None:
        config = ScannerConfig.from_dict(json.loads(scanner_json))
    else:  # a nominal sandwich detector at the scan's tube voltage
        config = ScannerConfig(kvp=float(kvp), ma=1.0)
    return r_curves(config.model)


def scan_curves(scan: Scan) -> RCurves:
    """R-curves for a scan: its own scanner's if the metadata describes it, else a nominal one."""
    import json

    scanner = scan.metadata.get("scanner") if isinstance(scan.metadata, dict) else None
    return _curves_for(float(scan.kvp), json.dumps(scanner, sort_keys=True) if scanner else None)


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
