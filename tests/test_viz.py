"""Operator images and overlays."""

import cv2
import numpy as np
import pytest

from parcelscan.scan import Scan
from parcelscan.viz import draw_regions, heatmap_overlay, pseudo_colour, write_png


def _scan(t_low: np.ndarray, t_high: np.ndarray, kvp: float = 140.0) -> Scan:
    air = np.full((2, t_low.shape[1]), 50000.0, np.float32)
    dark = np.full((2, t_low.shape[1]), 1000.0, np.float32)
    sig = np.stack([1000 + 49000 * t_low, 1000 + 49000 * t_high]).round().astype(np.uint16)
    return Scan(sig, air, dark, ("low", "high"), 0.8, 0.8, kvp)


def test_pseudo_colour_follows_the_operator_convention():
    from parcelscan.physics.materials import get_material
    from parcelscan.sim.scanner import ScannerConfig

    model = ScannerConfig(kvp=140.0, ma=1.0).model
    cols = []
    for name, areal in (("polyethylene", 3.0), ("porcelain", 3.0), ("steel", 3.0)):
        a, _ = model.attenuation(np.array([[areal]]), get_material(name).mu_rho(model.energies_kev)[None])
        cols.append(np.exp(-a[:, 0]))
    t = np.array(cols, np.float32)  # (3 materials, 2 channels)
    # three 10-pixel-wide bands, one per material (the display smooths over a pixel or two)
    t_low = np.repeat(np.repeat(t[:, 0], 10)[None], 9, axis=0)
    t_high = np.repeat(np.repeat(t[:, 1], 10)[None], 9, axis=0)
    rgb = pseudo_colour(_scan(t_low, t_high))
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV_FULL)[4, [5, 15, 25]]  # hue 0-255 over 360 degrees
    hue = hsv[:, 0].astype(float) * 360 / 256
    assert 10 <= hue[0] <= 50  # orange organic
    assert 70 <= hue[1] <= 160  # green inorganic
    assert 180 <= hue[2] <= 260  # blue metal
    # Thicker is darker: air (T = 1) is near white
    air = pseudo_colour(_scan(np.ones((3, 4), np.float32), np.ones((3, 4), np.float32)))
    assert air.min() > 230


def test_draw_regions_and_heatmap_overlay(tmp_path):
    rgb = np.full((40, 60, 3), 255, np.uint8)
    out = draw_regions(rgb, [[10, 12, 30, 25]], ["Dy2O3 120 g"])
    assert tuple(out[12, 20]) == (220, 0, 0)  # top edge of the box
    assert tuple(out[18, 20]) == (255, 255, 255)  # inside untouched
    assert rgb.min() == 255  # input not modified
    heat = np.zeros((40, 60), np.float32)
    heat[5:10, 5:10] = 1.0
    blended = heatmap_overlay(rgb, heat)
    assert blended[7, 7].sum() < 3 * 255 and tuple(blended[30, 50]) == (255, 255, 255)
    write_png(tmp_path / "o.png", blended)
    assert (tmp_path / "o.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="x1 > x0"):
        draw_regions(rgb, [[10, 10, 5, 20]])
    with pytest.raises(ValueError, match="heatmap shape"):
        heatmap_overlay(rgb, heat[:10])
