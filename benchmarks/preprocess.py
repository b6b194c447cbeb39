"""Preprocessing speed: one ``size`` x ``size`` dual-energy simulated scan through :class:`Preprocessor`.

Reports medians in ms per stage (transmission, resample, log, denoise, mask, normalise, tiling) and
in total, on one OpenCV thread. Stages are timed by wrapping the functions the pipeline calls, so
the figures are those of the real pipeline, not of a copy of it. Target (performance.md): a few ms
per megapixel of scan.
"""

from __future__ import annotations

import time

import numpy as np

from ._inputs import FULL, simulated_scans
from ._timing import timed

STAGES = {
    "transmission": "transmission",
    "resample": "_resample",
    "log": "log_attenuation",
    "denoise": "denoise",
    "mask": "impenetrable_mask",
    "normalise": "model_input",
}


def run(repeats: int = 20, size: int = FULL, config=None) -> dict:
    """Median ms per stage and in total over ``repeats`` runs (after one warm-up)."""
    import cv2

    import parcelscan.preprocess.pipeline as pipeline

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    scan = simulated_scans(1, size)[0]
    pre_proc = pipeline.Preprocessor(config)
    totals = dict.fromkeys([*STAGES, "tiling"], 0.0)
    originals = {name: getattr(pipeline, fn) for name, fn in STAGES.items()}

    for name, fn in STAGES.items():
        setattr(pipeline, fn, timed(totals, name, originals[name]))
    per_run, stages = [], []
    try:
        for i in range(repeats + 1):
            before = dict(totals)
            t0 = time.perf_counter()
            pre = pre_proc(scan)
            t1 = time.perf_counter()
            pre_proc.tiles(pre)
            t2 = time.perf_counter()
            totals["tiling"] += t2 - t1
            if i:  # the first run warms caches and allocators
                per_run.append(t2 - t0)
                stages.append({k: totals[k] - before[k] for k in totals})
    finally:
        for name, fn in STAGES.items():
            setattr(pipeline, fn, originals[name])
        cv2.setNumThreads(threads)
    total_ms = 1e3 * float(np.median(per_run))
    megapixels = scan.shape[1] * scan.shape[2] / 1e6
    return {
        "name": "preprocess",
        "scan": " x ".join(map(str, scan.shape)),
        "model_input": " x ".join(map(str, pre.image.shape)),
        "tiles": len(pre_proc.tiles(pre)[1]),
        "threads": 1,
        "repeats": repeats,
        "median_stage_ms": {k: 1e3 * float(np.median([s[k] for s in stages])) for k in totals},
        "median_total_ms": total_ms,
        "ms_per_megapixel": total_ms / megapixels,
        "config": pre_proc.config.to_dict(),
    }
