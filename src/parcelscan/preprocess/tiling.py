"""Resolution and tiling geometry: resample to the model's pixel size, cut tiles, stitch, map back.

Conventions: images are (C, H, W) float32, rows = lines along the belt, columns = detector pixels
across it. Scale factors are model pixels per scan pixel, ``scale_lines = H / L`` and
``scale_pixels = W / P``, both exact ratios of the integer sizes. Pixel centres are aligned the way
OpenCV aligns them: scan coordinate ``(y + 0.5) / scale - 0.5`` for model row ``y``. Boxes are
``(x0, y0, x1, y1)`` as in the simulator's ``bbox_px`` labels: x across the belt (columns), y along
it (rows), pixel-edge coordinates, half-open, so a box maps between grids by a plain division by
the scale factors.

OpenCV's own thread pool is left alone: callers choose it with ``cv2.setNumThreads``.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = [
    "box_to_mm",
    "box_to_model",
    "box_to_scan",
    "resample",
    "stitch",
    "tile_starts",
    "tiles",
    "to_scan_coords",
]


def _check_array(name: str, x: object, ndim: int, shape_doc: str, finite: bool = True) -> np.ndarray:
    """Check type, ndim, dtype and finiteness once at a public entry point."""
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{name} must be a numpy array of shape {shape_doc}, got {type(x).__name__}")
    if x.ndim != ndim:
        raise ValueError(f"{name} must have shape {shape_doc} ({ndim} dims), got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"{name} must be numeric, got dtype {x.dtype}")
    if finite and np.issubdtype(x.dtype, np.floating):
        # min/max propagate NaN and are about twice as fast as np.isfinite(x).all()
        lo, hi = float(x.min()), float(x.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(f"{name} must be finite, but it contains NaN or Inf")
    return x


def _check_positive(name: str, v: object) -> float:
    ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
    if not ok or not np.isfinite(float(v)) or float(v) <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {v!r}")
    return float(v)


def _check_int(name: str, v: object, lo: int) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, (bool, np.bool_)) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


def _resize(img: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Resize one (H, W) float32 plane, anti-aliased per axis: area when shrinking, linear when enlarging."""
    (h, w), (oh, ow) = img.shape, size_hw
    if (oh, ow) == (h, w):
        return img.copy()
    # OpenCV averages by whole-number factors ten times faster than by fractional ones (0.15 against
    # 3.8 ms a megapixel). So box-average by the whole part k of each shrink factor first, then map the
    # output pixel centres onto that grid with linear interpolation: the remaining factor is below 2,
    # where a 2-tap filter aliases little. Rows or columns beyond a multiple of k are left out of the
    # box pass and reached by edge replication, an error confined to the last output row/column.
    kh = int(h // oh) if oh < h else 1
    kw = int(w // ow) if ow < w else 1
    if kh > 1 or kw > 1:
        ch, cw = (h // kh) * kh, (w // kw) * kw
        mid = cv2.resize(img[:ch, :cw], (cw // kw, ch // kh), interpolation=cv2.INTER_AREA)
        sy, sx = h / oh / kh, w / ow / kw
        m = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]], np.float64)
        return cv2.warpAffine(
            mid, m, (ow, oh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
        )
    shrink_h, shrink_w = oh <= h, ow <= w
    if shrink_h and shrink_w:
        return cv2.resize(img, (ow, oh), interpolation=cv2.INTER_AREA)
    if not shrink_h and not shrink_w:
        return cv2.resize(img, (ow, oh), interpolation=cv2.INTER_LINEAR)
    # One axis shrinks and the other grows: OpenCV's INTER_AREA is documented only for shrinking
    # both ways, so do the axes separately (the filters are separable, this is not an approximation).
    tmp = cv2.resize(img, (w, oh), interpolation=cv2.INTER_AREA if shrink_h else cv2.INTER_LINEAR)
    return cv2.resize(tmp, (ow, oh), interpolation=cv2.INTER_AREA if shrink_w else cv2.INTER_LINEAR)


def resample(
    image: np.ndarray, line_mm: float, pixel_mm: float, target_mm: float
) -> tuple[np.ndarray, float, float]:
    """Resample a scan-resolution image to square ``target_mm`` pixels.

    image : (C, L, P) ndarray, lines x pixels at ``line_mm`` x ``pixel_mm``.
    Returns ``(out, scale_lines, scale_pixels)``: out (C, L', P') float32 with
    ``L' = round(L * line_mm / target_mm)`` (at least 1), likewise P', and the exact factors L'/L, P'/P
    (model pixels per scan pixel) that map coordinates back.

    Shrinking averages over each output pixel's footprint (cv2.INTER_AREA), the anti-aliasing a
    coarser detector performs; enlarging interpolates linearly. Lines and pixels have separate factors.
    Call it on TRANSMISSION, the linear signal domain: a coarser detector would integrate photons, i.e.
    average T, whereas averaging attenuation -ln T would give the geometric mean of T and make a
    half-covered edge pixel look more opaque than it is (partial-volume bias).
    """
    _check_array("image", image, 3, "(C, L, P)")
    line_mm = _check_positive("line_mm", line_mm)
    pixel_mm = _check_positive("pixel_mm", pixel_mm)
    return _resample(image, line_mm, pixel_mm, _check_positive("target_mm", target_mm))


def _resample(
    image: np.ndarray, line_mm: float, pixel_mm: float, target_mm: float
) -> tuple[np.ndarray, float, float]:
    """:func:`resample` without the checks, for callers that made them (they cost 0.4 ms a megapixel)."""
    _, n_lines, n_pix = image.shape
    out_h = max(1, int(np.floor(n_lines * line_mm / target_mm + 0.5)))
    out_w = max(1, int(np.floor(n_pix * pixel_mm / target_mm + 0.5)))
    src = image.astype(np.float32, copy=False)
    out = np.stack([_resize(np.ascontiguousarray(ch), (out_h, out_w)) for ch in src])
    return out, out_h / n_lines, out_w / n_pix


def to_scan_coords(maps: np.ndarray, scales: tuple[float, float], scan_shape: tuple[int, int]) -> np.ndarray:
    """Bring model-resolution maps back onto the scan's pixel grid.

    maps : (K, H, W) ndarray at model resolution; scales : (scale_lines, scale_pixels) from
    :func:`resample`; scan_shape : (L, P). Returns (K, L, P) float32, linearly interpolated
    (pixel centres aligned as in :func:`resample`).
    """
    _check_array("maps", maps, 3, "(K, H, W)")
    sl, sp = (_check_positive(f"scales[{i}]", s) for i, s in enumerate(scales))
    if len(scan_shape) != 2:
        raise ValueError(f"scan_shape must be (L, P), got {scan_shape!r}")
    n_lines, n_pix = (_check_int(f"scan_shape[{i}]", n, 1) for i, n in enumerate(scan_shape))
    _, h, w = maps.shape
    expect = (max(1, int(np.floor(n_lines * sl + 0.5))), max(1, int(np.floor(n_pix * sp + 0.5))))
    if (h, w) != expect:
        raise ValueError(
            f"maps must be (K, H, W) with (H, W) = scan_shape * scales = {expect}, got shape {maps.shape}"
        )
    src = maps.astype(np.float32, copy=False)
    return np.stack([_resize(np.ascontiguousarray(m), (n_lines, n_pix)) for m in src])


def _boxes(box: np.ndarray | Sequence[float]) -> np.ndarray:
    b = np.asarray(box, dtype=np.float64)
    if b.shape[-1:] != (4,) or b.ndim > 2:
        raise ValueError(f"box must have shape (4,) or (N, 4) = (x0, y0, x1, y1), got {b.shape}")
    if not np.all(np.isfinite(b)):
        raise ValueError("box must be finite, but it contains NaN or Inf")
    return b


def box_to_scan(box: np.ndarray | Sequence[float], scales: tuple[float, float]) -> np.ndarray:
    """Model-pixel box(es) (4,) or (N, 4) ``(x0, y0, x1, y1)`` -> scan-pixel box(es), float64.

    x runs across the belt (detector pixels, columns), y along it (lines, rows); x1, y1 are exclusive
    edges, as in the simulator's ``bbox_px`` labels.
    """
    sl, sp = (_check_positive(f"scales[{i}]", s) for i, s in enumerate(scales))
    return _boxes(box) / np.array([sp, sl, sp, sl])


def box_to_model(box: np.ndarray | Sequence[float], scales: tuple[float, float]) -> np.ndarray:
    """Scan-pixel box(es) (4,) or (N, 4) -> model-pixel box(es), float64 (inverse of :func:`box_to_scan`)."""
    sl, sp = (_check_positive(f"scales[{i}]", s) for i, s in enumerate(scales))
    return _boxes(box) * np.array([sp, sl, sp, sl])


def box_to_mm(box: np.ndarray | Sequence[float], line_mm: float, pixel_mm: float) -> np.ndarray:
    """Scan-pixel box(es) (4,) or (N, 4) ``(x0, y0, x1, y1)`` -> mm: x across the belt, y along it."""
    lm, pm = _check_positive("line_mm", line_mm), _check_positive("pixel_mm", pixel_mm)
    return _boxes(box) * np.array([pm, lm, pm, lm])


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Origins of tiles of size ``tile`` covering ``length`` pixels, overlapping by at least ``overlap``.

    The first tile starts at 0 and the last ends flush with the edge (so the last overlap may be
    larger); a length shorter than a tile gives one tile at 0, to be padded.
    """
    length, tile = _check_int("length", length, 1), _check_int("tile", tile, 1)
    overlap = _check_int("overlap", overlap, 0)
    if overlap >= tile:
        raise ValueError(f"overlap must be smaller than tile={tile}, got {overlap}")
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, tile - overlap))
    return [*starts, length - tile]


def tiles(
    image: np.ndarray, tile: int, overlap: int, pad_value: float | Sequence[float] = 0.0
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Cut (C, H, W) ``image`` into a batch (N, C, tile, tile) float32 and its (y, x) origins.

    Images smaller than a tile along an axis are padded at the bottom/right with ``pad_value``
    (a scalar or one value per channel; for the model input, 0 is air). Rows of tiles come first.
    """
    _check_array("image", image, 3, "(C, H, W)")
    tile = _check_int("tile", tile, 1)
    c, h, w = image.shape
    try:
        pads = np.broadcast_to(np.asarray(pad_value, np.float32), (c,))
    except ValueError:
        pads = None
    if pads is None or not np.all(np.isfinite(pads)):
        raise ValueError(f"pad_value must be a finite scalar or {c} finite values, got {pad_value!r}")
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    canvas = image.astype(np.float32, copy=False)
    if h < tile or w < tile:
        canvas = np.empty((c, max(h, tile), max(w, tile)), np.float32)
        canvas[:] = pads[:, None, None]
        canvas[:, :h, :w] = image
    origins = [(y, x) for y in ys for x in xs]
    batch = np.empty((len(origins), c, tile, tile), np.float32)
    for n, (y, x) in enumerate(origins):
        batch[n] = canvas[:, y : y + tile, x : x + tile]
    return batch, origins


def _window(tile: int, overlap: int) -> np.ndarray:
    """1-D blending weights: raised-cosine ramps over ``overlap`` px at each end, 1 between.

    Adjacent ramps sum to 1 where two tiles overlap by exactly ``overlap``; every weight is > 0, so
    pixels covered by one tile only (image borders) keep that tile's value after normalisation.
    """
    w = np.ones(tile, np.float64)
    if overlap > 0:
        ramp = np.sin(0.5 * np.pi * (np.arange(overlap) + 0.5) / overlap) ** 2
        w[:overlap] = ramp
        w[tile - overlap :] = np.minimum(w[tile - overlap :], ramp[::-1])
    return w


def stitch(
    tile_maps: np.ndarray, origins: Sequence[tuple[int, int]], out_shape: tuple[int, int], overlap: int
) -> np.ndarray:
    """Blend per-tile maps (N, K, tile, tile) at ``origins`` into one (K, H, W) float32 map.

    Overlaps are weighted by a smooth window (see :func:`_window`) and normalised, so stitching the
    tiles of an image returns the image (up to float rounding) and seams are invisible.
    Padding beyond ``out_shape`` = (H, W) is cropped.
    """
    _check_array("tile_maps", tile_maps, 4, "(N, K, tile, tile)")
    n, k, th, tw = tile_maps.shape
    if th != tw:
        raise ValueError(f"tile_maps must hold square tiles (N, K, tile, tile), got shape {tile_maps.shape}")
    if len(origins) != n:
        raise ValueError(f"origins must have one (y, x) per tile: expected {n}, got {len(origins)}")
    if len(out_shape) != 2:
        raise ValueError(f"out_shape must be (H, W), got {out_shape!r}")
    h, w = (_check_int(f"out_shape[{i}]", s, 1) for i, s in enumerate(out_shape))
    overlap = _check_int("overlap", overlap, 0)
    if 2 * overlap > th:
        raise ValueError(f"overlap must be at most half the tile size {th}, got {overlap}")
    ch, cw = max(h, th), max(w, tw)
    acc = np.zeros((k, ch, cw), np.float64)
    wsum = np.zeros((ch, cw), np.float64)
    win1 = _window(th, overlap)
    win = np.outer(win1, win1)
    for i, (y, x) in enumerate(origins):
        if not (0 <= y <= ch - th and 0 <= x <= cw - tw):
            raise ValueError(f"origins[{i}] = {(y, x)} puts a {th}-px tile outside the {(h, w)} map")
        acc[:, y : y + th, x : x + tw] += tile_maps[i] * win
        wsum[y : y + th, x : x + tw] += win
    if np.any(wsum[:h, :w] == 0):
        raise ValueError(f"origins leave parts of the {(h, w)} map uncovered by any tile")
    return (acc[:, :h, :w] / wsum[:h, :w]).astype(np.float32)
