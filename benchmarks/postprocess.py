"""Postprocessing speed: stitching tile heatmaps and finding regions, per scan.

The heatmaps are the shipped fp32 model's output on realistic simulated scans (so region counts and
sizes are those of real use, not of a synthetic map), computed once outside the timing. Stitching is
:meth:`Preprocessor.stitch` (windowed blending of overlapping tiles); regions are
:func:`parcelscan.postprocess.alarm_regions` at the card's region thresholds (seed and grow levels), as the
Detector finds them (an alarmed scan always yields one). The detector's
region description (mass, apparent Z) is part of its ``postprocess_ms``, measured end to end.
One OpenCV thread; medians over ``repeats`` passes over the scans.
"""

from __future__ import annotations

import time

import numpy as np

from ._inputs import FULL, model_path, simulated_scans


def run(repeats: int = 15, size: int = FULL, scans: int = 4) -> dict:
    import cv2

    from parcelscan.engine import OnnxModel
    from parcelscan.postprocess import alarm_regions

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    model = OnnxModel(model_path("fp32"), threads=1, allow_spinning=False)
    work = []
    for scan in simulated_scans(scans, size):
        pre = model.preprocessor(scan)
        batch, origins = model.preprocessor.tiles(pre)
        work.append((pre, origins, model.run(batch)[0]))
    threshold, grow = model.region_threshold, model.region_grow_threshold
    t_stitch, t_regions, counts = [], [], []
    try:
        for i in range(repeats + 1):
            for pre, origins, maps in work:
                t0 = time.perf_counter()
                heatmap = model.preprocessor.stitch(maps, origins, pre)[0]
                t1 = time.perf_counter()
                regions, _ = alarm_regions(heatmap, float(heatmap.max()), model.threshold, threshold, grow)
                t2 = time.perf_counter()
                if i:  # the first pass warms caches and allocators
                    t_stitch.append(t1 - t0)
                    t_regions.append(t2 - t1)
                    counts.append(len(regions))
    finally:
        cv2.setNumThreads(threads)
    stitch_ms, regions_ms = 1e3 * float(np.median(t_stitch)), 1e3 * float(np.median(t_regions))
    return {
        "name": "postprocess",
        "scan": f"2 x {size} x {size}",
        "heatmap": " x ".join(map(str, work[0][0].image.shape[1:])),
        "tiles": len(work[0][1]),
        "threads": 1,
        "repeats": repeats,
        "region_threshold": threshold,
        "region_grow_threshold": grow,
        "regions_per_scan": float(np.mean(counts)),
        "stitch_ms": stitch_ms,
        "regions_ms": regions_ms,
        "scans_per_s": 1e3 / (stitch_ms + regions_ms),
    }
