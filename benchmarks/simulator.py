"""Simulator throughput: render 1,000-line x 1,024-pixel dual-energy scans of random parcels.

Reports medians over parcels, split into the stages of :func:`render_scene` so a regression
points at its cause: chord maps (geometry), polychromatic signals (Beer-Lambert over the
spectrum) and the detector model (noise, artefacts, ADC). Thread counts are pinned to one so
the figure is "one core" as the simulator issue asks.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from ._timing import timed

N_LINES, N_PIXELS, PIXEL_MM = 1000, 1024, 0.8


def _stage_timer():
    """Wrap the render stages to accumulate their wall time."""
    import parcelscan.sim.render as render

    totals = {"chords": 0.0, "signals": 0.0, "detector": 0.0}
    originals = {"chord_map": render.chord_map, "digitise": render.digitise}

    render.chord_map = timed(totals, "chords", originals["chord_map"])
    render.digitise = timed(totals, "detector", originals["digitise"])
    return totals, originals


def run(parcels: int = 5, seed: int = 0, progress=None) -> dict:
    import parcelscan.sim.render as render
    from parcelscan.sim.catalogue import build_scene
    from parcelscan.sim.render import render_scene

    from ._inputs import _scene, benchmark_scanner

    scanner = benchmark_scanner(N_PIXELS)
    scanner.model  # noqa: B018 - build the spectral model outside the timing
    config = _scene()
    totals, originals = _stage_timer()
    per_scan, stages = [], []
    try:
        for i in range(parcels):
            rng = np.random.default_rng([seed, i])
            scene = build_scene(rng, config, scanner)
            scene = replace(scene, length_cm=N_LINES * PIXEL_MM / 10)
            before = dict(totals)
            t = time.perf_counter()
            r = render_scene(scene, scanner, rng)
            dt = time.perf_counter() - t
            assert r.scan.shape == (2, N_LINES, N_PIXELS), r.scan.shape
            per_scan.append(dt)
            stages.append({k: totals[k] - before[k] for k in totals})
            if progress:
                progress(i + 1, parcels)
    finally:
        render.chord_map, render.digitise = originals["chord_map"], originals["digitise"]
    median = float(np.median(per_scan))
    stage_median = {k: float(np.median([s[k] for s in stages])) for k in totals}
    stage_median["signals_and_labels"] = median - stage_median["chords"] - stage_median["detector"]
    del stage_median["signals"]
    return {
        "name": "simulator",
        "scan": f"2 x {N_LINES} x {N_PIXELS}",
        "parcels": parcels,
        "median_s_per_scan": median,
        "scans_per_s": 1 / median,
        "median_stage_s": stage_median,
        "all_s": per_scan,
    }
