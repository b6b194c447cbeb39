"""Pseudo-colour RGB exports (SIXray, OPIXray, HiXray, PIDray style): an approximate scan.

These images are what a scanner shows an operator: hue encodes an apparent material class
(orange organic, green inorganic, blue metal, black impenetrable) and lightness encodes how
much passes (white = nothing in the beam). The raw dual-energy signals are gone, so the
reader recovers only

* an approximate transmission from the HSL lightness ``l = (max(R,G,B) + min(R,G,B)) / 2``:
  ``a ~ -ln(l) / k`` (``k = 1`` by default), ``T = exp(-a)``, clipped to ``l >= 1/255``; and
* a material-class image from the hue (see :func:`classify`).

Lightness rather than the HSV value: a fully saturated colour has value 1 whether it is pale
or deep, while lightness falls from 1 (white) through 0.5 (saturated) to 0 (black), so a deep
orange reads as thicker than a pale one. The result is not physics-grade: vendors' colour maps
and display curves differ, JPEG blurs hue at edges, and apparent Z is reduced to four classes.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..scan import Scan, ScanError
from ._calibration import Acquisition, build_scan, read_sidecar
from ._image import decode_image

__all__ = [
    "CLASS_NAMES",
    "approximate_transmission",
    "classify",
    "is_grey",
    "pseudocolour_scan",
    "read_pseudocolour",
]

CLASS_NAMES = ("background", "organic", "inorganic", "metal", "impenetrable")
BACKGROUND, ORGANIC, INORGANIC, METAL, IMPENETRABLE = range(5)
SOURCE = "pseudo-colour RGB"
FULL_SCALE = 65535.0
# Hue bands in degrees: red-orange-yellow | yellow-green to teal | cyan-blue-violet | magenta-red.
HUE_ORGANIC_MAX = 75.0
HUE_INORGANIC_MAX = 170.0
HUE_METAL_MAX = 330.0
MIN_SATURATION = 0.15  # below: grey or white, no material colour
IMPENETRABLE_VALUE = 0.15  # HSV value below: black
# An RGB file is grey if fewer than 0.5 % of its pixels have channels more than 12 levels apart
# (JPEG chroma noise on a grey image stays well below that).
_GREY_TOLERANCE = 12
_GREY_MAX_FRACTION = 0.005


def is_grey(rgb: np.ndarray) -> bool:
    """True if an (L, P, 3) uint8 image is grey stored as colour."""
    x = rgb.astype(np.int16)
    spread = np.max(x, axis=2) - np.min(x, axis=2)
    return bool(np.mean(spread > _GREY_TOLERANCE) < _GREY_MAX_FRACTION)


def classify(rgb: np.ndarray) -> np.ndarray:
    """Material class per pixel from an (L, P, 3) uint8 RGB image.

    Returns (L, P) uint8: 0 background or unclassified (saturation < 0.15: white or grey),
    1 organic (hue < 75 or >= 330 degrees), 2 inorganic (75-170), 3 metal (170-330),
    4 impenetrable (HSV value < 0.15, whatever the hue).
    """
    hsv = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)  # H in degrees, S, V in [0, 1]
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    out = np.full(hue.shape, METAL, np.uint8)
    out[(hue < HUE_ORGANIC_MAX) | (hue >= HUE_METAL_MAX)] = ORGANIC
    out[(hue >= HUE_ORGANIC_MAX) & (hue < HUE_INORGANIC_MAX)] = INORGANIC
    out[sat < MIN_SATURATION] = BACKGROUND
    out[val < IMPENETRABLE_VALUE] = IMPENETRABLE
    return out


def approximate_transmission(rgb: np.ndarray, k: float = 1.0) -> np.ndarray:
    """Approximate transmission (L, P) float32 in [(1/255)**(1/k), 1] from HSL lightness."""
    if not (isinstance(k, (int, float)) and np.isfinite(k) and k > 0):
        raise ScanError(f"k must be a positive finite number, got {k!r}")
    x = rgb.astype(np.float32)
    lightness = (np.max(x, axis=2) + np.min(x, axis=2)) / (2 * 255.0)
    attenuation = -np.log(np.clip(lightness, 1 / 255, 1.0)) / k
    return np.exp(-attenuation).astype(np.float32)


def pseudocolour_scan(path: Path, rgb: np.ndarray, k: float = 1.0) -> tuple[Scan, np.ndarray]:
    """An approximate single-energy Scan and the class image from a decoded (L, P, 3) uint8 image.

    Signals are ``round(65535 T)`` with air 65535 and dark 0, so ``Scan.transmission()`` gives
    ``T`` back. The sidecar ``<stem>.json`` may give ``pixel_mm``, ``line_mm``, ``kvp`` and
    ``metadata``, but no ``air``/``dark`` (there are no raw units to calibrate).
    """
    n_pix = rgb.shape[1]
    signals = np.round(approximate_transmission(rgb, k) * FULL_SCALE).astype(np.uint16)[None]
    acq = read_sidecar(path, path.with_suffix(".json"), ("single",), n_pix, 1.0, calibration=False)
    acq = acq or Acquisition()
    acq = Acquisition(
        air=np.full((1, n_pix), FULL_SCALE, np.float32),
        dark=np.zeros((1, n_pix), np.float32),
        pixel_mm=acq.pixel_mm,
        line_mm=acq.line_mm,
        kvp=acq.kvp,
        metadata=acq.metadata,
    )
    extra = {
        "source": SOURCE,
        "approximate": True,
        "calibration": "nominal (air 65535, dark 0): transmission approximated from lightness",
    }
    scan = build_scan(path, signals, ("single",), acq, SOURCE, extra)
    return scan, classify(rgb)


def read_pseudocolour(path: str | os.PathLike, *, k: float = 1.0) -> tuple[Scan, np.ndarray]:
    """Read a pseudo-colour RGB export (JPEG or 8-bit PNG/TIFF) with its material classes.

    Parameters
    ----------
    path : str or PathLike
        The image; rows are lines (along the belt), columns detector pixels.
    k : float
        Display exponent in ``a = -ln(lightness) / k``.

    Returns
    -------
    scan : Scan
        Single-energy, ``metadata["source"] = "pseudo-colour RGB"``, ``metadata["approximate"] = True``.
    class_map : (L, P) uint8 ndarray
        0 background/unclassified, 1 organic, 2 inorganic, 3 metal, 4 impenetrable.

    Raises
    ------
    ScanError
        The file is not an 8-bit colour image (grey, 16-bit raw, ...), or is malformed.
    """
    path = Path(path)
    image = decode_image(path)
    if image.dtype != np.uint8 or image.shape[2] not in (3, 4):
        raise ScanError(
            f"{path}: not a pseudo-colour image ({image.dtype} with {image.shape[2]} channels; "
            "expected 8-bit RGB); use load_scan"
        )
    rgb = image[:, :, :3]
    if is_grey(rgb):
        raise ScanError(f"{path}: a grey image stored as RGB, not a pseudo-colour export; use load_scan")
    return pseudocolour_scan(path, rgb, k)
