"""Heatmap -> parcel score and regions: pure functions on arrays (numpy and OpenCV, no model, no I/O).

Conventions (those of :mod:`parcelscan.preprocess.tiling`): a heatmap is (H, W) with rows = lines
along the belt (y) and columns = detector pixels across it (x). Boxes are ``(x0, y0, x1, y1)`` in
pixel-edge coordinates, half-open: pixel (row i, column j) covers ``[j, j + 1) x [i, i + 1)``, so a box
maps to the scan grid by :func:`~parcelscan.preprocess.tiling.box_to_scan` (a division by the scale
factors) and a point ``(x, y)`` lies in a box when ``x0 <= x < x1`` and ``y0 <= y < y1``. Centroids are
given in the same edge coordinates (the centre of pixel (i, j) is ``(j + 0.5, i + 0.5)``).

Thresholds: a pixel belongs to a region when its probability is ``>= threshold`` (so a threshold of
exactly a pixel's value keeps it). The parcel alarm, decided on :func:`parcel_score`, uses
``score > threshold`` (see :mod:`parcelscan.evaluation`, where that threshold is chosen).

Regions grow by hysteresis, as edges do in Canny's detector: the confident pixels (``>= threshold``,
the card's ``region_threshold``) say *where* there is something, and the region is the whole connected
area around them where the pixel probability is at least ``grow_threshold`` (the card's
``region_grow_threshold``, 0.5: the level at which the network calls a pixel part of a mass). A large
opaque block or a blend spread through a tile lights up as a whole at 0.6-0.9 while only a few of
its pixels pass the parcel threshold (0.95 for model 0.4.0); without growing, its region was that
small peak, often off the object's centre.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["DEFAULT_REGION_GROW", "RegionPx", "alarm_regions", "parcel_score", "regions_from_heatmap"]

#: Pixel probability down to which regions grow around their confident pixels (``region_grow_threshold``).
DEFAULT_REGION_GROW = 0.5


@dataclass(frozen=True)
class RegionPx:
    """One connected region of a heatmap, in heatmap pixels.

    box : (x0, y0, x1, y1) int, half-open pixel-edge box (x across the belt, y along it).
    score : highest probability inside the region, in [0, 1].
    mean_prob : mean probability over the region's pixels, in [0, 1].
    area_px : number of pixels in the region.
    centroid : (x, y) float, unweighted mean of the region's pixel centres, in edge coordinates.
    """

    box: tuple[int, int, int, int]
    score: float
    mean_prob: float
    area_px: int
    centroid: tuple[float, float]


def _check_heatmap(heatmap: object, name: str = "heatmap") -> np.ndarray:
    """(H, W) real array, finite, values in [0, 1]; returns it (not copied)."""
    if not isinstance(heatmap, np.ndarray):
        raise ValueError(f"{name} must be a numpy array of shape (H, W), got {type(heatmap).__name__}")
    if heatmap.ndim != 2:
        raise ValueError(f"{name} must have shape (H, W), got shape {heatmap.shape}")
    if heatmap.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {heatmap.shape}")
    if not (np.issubdtype(heatmap.dtype, np.floating) or np.issubdtype(heatmap.dtype, np.integer)):
        raise ValueError(f"{name} must hold real probabilities, got dtype {heatmap.dtype}")
    lo, hi = float(heatmap.min()), float(heatmap.max())  # min/max propagate NaN
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{name} must be finite, but it contains NaN or Inf")
    if lo < 0 or hi > 1:
        raise ValueError(f"{name} must hold probabilities in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")
    return heatmap


def _check_int(name: str, v: object, lo: int) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, (bool, np.bool_)) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


def parcel_score(heatmap: np.ndarray) -> float:
    """Parcel score: the highest probability anywhere in the (H, W) heatmap, in [0, 1].

    The maximum, because one concealed mass anywhere makes the whole parcel positive, and it is
    what the network's ``score`` output gives per tile. On a stitched heatmap it can lie slightly
    below the largest tile score: where tiles overlap, their probabilities are blended.
    """
    return float(_check_heatmap(heatmap).max())


def _check_level(name: str, v: object) -> float:
    ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
    if not ok or not np.isfinite(float(v)) or not 0 < float(v) <= 1:
        raise ValueError(f"{name} must be a number in (0, 1], got {v!r}")
    return float(v)


def regions_from_heatmap(
    heatmap: np.ndarray,
    threshold: float,
    min_area_px: int = 1,
    max_regions: int = 20,
    grow_threshold: float | None = None,
) -> list[RegionPx]:
    """Connected regions (8-connectivity) of ``heatmap >= threshold``, highest score first.

    heatmap : (H, W) probabilities in [0, 1].
    threshold : pixel probability threshold in (0, 1] (0 would make the whole map one region).
    min_area_px : regions with fewer pixels are dropped (before ``max_regions`` applies).
    max_regions : at most this many regions are returned, the highest-scoring ones.
    grow_threshold : if given, each region is instead a connected area of ``heatmap >= grow_threshold``
        that holds at least one pixel ``>= threshold`` (hysteresis; see the module docstring). Levels
        above ``threshold`` are lowered to it, so growing never shrinks a region.
    Ties in score are broken by larger area, then by position (y0, x0), so the order is deterministic.
    """
    _check_heatmap(heatmap)
    threshold = _check_level("threshold", threshold)
    low = threshold
    if grow_threshold is not None:
        low = min(_check_level("grow_threshold", grow_threshold), threshold)
    min_area_px = _check_int("min_area_px", min_area_px, 1)
    max_regions = _check_int("max_regions", max_regions, 1)

    mask = (heatmap >= low).view(np.uint8)
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=cv2.CV_32S)
    if n <= 1:  # label 0 is the background
        return []
    inside = labels > 0
    idx = labels[inside]
    vals = heatmap[inside].astype(np.float64)
    peak = np.zeros(n, np.float64)
    np.maximum.at(peak, idx, vals)
    total = np.bincount(idx, weights=vals, minlength=n)
    # components holding a pixel >= threshold (all of them without growing), compared as the mask was
    confident = np.bincount(labels[heatmap >= threshold], minlength=n) > 0

    regions = []
    for k in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[k])
        if area < min_area_px or not confident[k]:
            continue
        cx, cy = centroids[k]
        regions.append(
            RegionPx(
                box=(x, y, x + w, y + h),
                score=float(peak[k]),
                mean_prob=float(total[k] / area),
                area_px=area,
                centroid=(float(cx) + 0.5, float(cy) + 0.5),
            )
        )
    regions.sort(key=lambda r: (-r.score, -r.area_px, r.box[1], r.box[0]))
    return regions[:max_regions]


def alarm_regions(
    heatmap: np.ndarray,
    score: float,
    threshold: float,
    region_threshold: float,
    grow_threshold: float | None = None,
    max_regions: int = 10,
) -> tuple[list[RegionPx], float]:
    """The regions a detection reports, and the heatmap level their pixels were cut at.

    Regions are :func:`regions_from_heatmap` at ``region_threshold`` grown to ``grow_threshold``, of
    at least 2 pixels (one pixel is noise). An alarmed heatmap (``score > threshold``) with none
    reports its peak area instead, at ``min(region_threshold, score)``: an alarm always points
    somewhere. The level returned is the lowest probability a region's pixels may have (the grow
    level, or the region threshold), for measuring them again inside each region's box.
    """
    found = regions_from_heatmap(heatmap, region_threshold, 2, max_regions, grow_threshold)
    if not found and score > threshold:
        region_threshold = min(region_threshold, score)
        found = regions_from_heatmap(heatmap, region_threshold, 1, 1, grow_threshold)
    level = region_threshold if grow_threshold is None else min(grow_threshold, region_threshold)
    return found, level
