"""``parcelscan demo``: parcels with known contents through the shipped model, truth against verdict.

Each demo parcel is simulated from a fixed seed with one kind of concealment (mannequin, tile stack,
tile blend, a powder declared as nickel, another carrier) or none (benign look-alikes: magnets,
tools, ceramics), scanned by :class:`~parcelscan.Detector` with the declared manifest, and drawn
with its detections (red/amber) and the true masses (green).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .detector import Detector
from .sim.catalogue import CONCEALMENT_TYPES, SceneConfig, random_parcel
from .sim.render import render_scene
from .viz import detection_overlay, draw_regions, write_png

__all__ = ["DEMO_CASES", "run_demo"]

DEMO_CASES = (
    ("mannequin", "mannequin"),
    ("tile_stack_layer", "tile stack"),
    ("tile_blend", "tile blend"),
    ("misdeclared_powder", "powder declared as nickel"),
    ("other_carrier", "other carrier"),
    (None, "benign look-alikes"),
    (None, "benign look-alikes"),
)


def _config(concealment: str | None) -> SceneConfig:
    if concealment is None:
        return SceneConfig(
            positive_fraction=0.0, lookalike_share=1.0, clutter=(2, 5), max_parcel_cm=(70.0, 50.0, 40.0)
        )
    weights = {c: float(c == concealment) for c in CONCEALMENT_TYPES}
    return SceneConfig(
        positive_fraction=1.0,
        concealment_weights=weights,
        clutter=(1, 4),
        max_parcel_cm=(70.0, 50.0, 40.0),
        mass_range_g=(20.0, 600.0),
    )


def run_demo(detector: Detector, out: Path, seed: int = 7, manifests: bool = True, echo=print) -> list:
    """Simulate, detect and draw the :data:`DEMO_CASES`; returns ``[(truth, Detection)]``."""
    out.mkdir(parents=True, exist_ok=True)
    echo(f"{'parcel':8s} {'truth':46s} {'score':>6s}  {'verdict':7s} {'regions':28s} manifest")
    rows = []
    for i, (concealment, title) in enumerate(DEMO_CASES):
        rng = np.random.default_rng([seed, i])
        scene, scanner = random_parcel(rng, _config(concealment))
        rendered = render_scene(scene, scanner, rng)
        manifest = {"items": [m.to_dict() for m in scene.manifest]} if manifests and scene.manifest else None
        detection = detector.detect(rendered.scan, manifest=manifest)
        truth = ", ".join(f"{m.material} {m.mass_g:.0f} g in {m.carrier}" for m in rendered.masses)
        truth = (
            truth or f"benign ({scene.category.removeprefix('benign_').removeprefix('benign') or 'clutter'})"
        )
        regions = ", ".join(
            f"{r.material_class}{f' {r.mass_g:.0f} g' if r.mass_g else ''}" for r in detection.regions[:2]
        )
        verdict = detection.manifest.verdict if detection.manifest is not None else "-"
        echo(
            f"{i:06d}   {truth[:46]:46s} {detection.score:6.3f}  "
            f"{'ALARM' if detection.alarm else 'clear':7s} "
            f"{regions[:28]:28s} {verdict}"
        )
        rgb = detection_overlay(rendered.scan, detection)
        truth_boxes = [m.bbox_px for m in rendered.masses if m.n_pixels]
        if truth_boxes:
            rgb = draw_regions(rgb, truth_boxes, ["truth"] * len(truth_boxes), colour=(0, 160, 0))
        write_png(out / f"{i:06d}_{title.replace(' ', '_')}.png", rgb)
        rows.append((truth, detection))
    echo(f"overlays (red/amber: detections, grey: opaque areas, green: truth) in {out}")
    return rows
