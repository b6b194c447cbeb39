"""Error distribution of the region mass estimate on simulated concealed masses.

For every positive parcel of a freshly simulated set, the mass of each concealed mass is estimated
from the scan alone inside its true mask (the detector's region would stand there), once with the
true material and the true height (what the physics allows), and once as a station would run it:
material chosen by the low-channel fit, default height. Masses are split into "unobstructed"
(nothing but packaging on their rays) and "concealed". Usage::

    python scripts/mass_error_report.py --count 60 --seed 11 [--mass-range 5 2000]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from parcelscan.preprocess.mass import estimate_mass, scanner_model
from parcelscan.sim.catalogue import SceneConfig, random_parcel
from parcelscan.sim.render import render_scene

_PACKAGING = {"parcel box", "packing fill"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--mass-range", type=float, nargs=2, default=(5.0, 2000.0))
    args = parser.parse_args()
    config = SceneConfig(
        positive_fraction=1.0,
        clutter=(0, 4),
        max_parcel_cm=(60.0, 45.0, 35.0),
        mass_range_g=tuple(args.mass_range),
    )
    rows = []
    for i in range(args.count):
        rng = np.random.default_rng([args.seed, i])
        scene, scanner = random_parcel(rng, config)
        r = render_scene(scene, scanner, rng)
        if not r.scan.dual_energy:
            continue
        a = -np.log(r.scan.transmission())
        model = scanner_model(r.scan)
        for k, (mass, truth) in enumerate(zip(scene.masses, r.masses, strict=True), start=1):
            region = r.mask == k
            if not region.any():
                continue
            lo, hi = scene.items[mass.items[0]].shape.bounds()
            area = scanner.pixel_mm * scanner.line_mm / 100
            ideal = estimate_mass(
                a,
                region,
                area,
                model,
                material=truth.material,
                height_cm=float((lo[2] + hi[2]) / 2),
                source_below_belt_cm=scanner.source_below_belt_cm,
            )
            station = estimate_mass(a, region, area, model, source_below_belt_cm=scanner.source_below_belt_cm)
            others = _others_on_rays(scene, mass, r, k)
            rows.append(
                {
                    "concealment": truth.concealment,
                    "material": truth.material,
                    "true_g": truth.mass_g,
                    "ideal_g": ideal.mass_g,
                    "station_g": station.mass_g,
                    "station_material": station.material,
                    "opaque": ideal.lower_bound,
                    "unobstructed": not others,
                }
            )
    _report(rows)


def _others_on_rays(scene, mass, rendered, k) -> bool:
    """Whether anything but packaging shares the mass's rays (approximated by bounding boxes)."""
    from parcelscan.sim.geometry import chord_map
    from parcelscan.sim.render import scan_geometry

    geom = scan_geometry(_scanner_of(rendered), scene.length_cm)
    region = rendered.mask == k
    for i, item in enumerate(scene.items):
        if i in mass.items or item.group in _PACKAGING:
            continue
        cm = chord_map(item.shape, geom)
        if cm.chords.size and np.any((cm.chords > 0) & region[cm.lines, cm.pixels]):
            return True
    return False


def _scanner_of(rendered):
    from parcelscan.sim.scanner import ScannerConfig

    return ScannerConfig.from_dict(rendered.scan.metadata["scanner"])


def _report(rows: list[dict]) -> None:
    def stats(sel: list[dict], key: str) -> str:
        if not sel:
            return "n=0"
        err = np.array([r[key] / r["true_g"] - 1 for r in sel])
        return (
            f"n={len(sel)} median {np.median(err):+.1%} p10 {np.percentile(err, 10):+.1%} "
            f"p90 {np.percentile(err, 90):+.1%} within15% {np.mean(np.abs(err) <= 0.15):.0%}"
        )

    groups = {
        "unobstructed, not opaque": [r for r in rows if r["unobstructed"] and not r["opaque"]],
        "concealed, not opaque": [r for r in rows if not r["unobstructed"] and not r["opaque"]],
        "opaque (lower bounds)": [r for r in rows if r["opaque"]],
    }
    for name, sel in groups.items():
        print(f"{name:28s} ideal   {stats(sel, 'ideal_g')}")
        print(f"{'':28s} station {stats(sel, 'station_g')}")
    by_type = {}
    for r in rows:
        by_type.setdefault(r["concealment"], []).append(r)
    for name, sel in sorted(by_type.items()):
        print(f"{name:28s} ideal   {stats(sel, 'ideal_g')}")
    print(json.dumps({"rows": len(rows)}))


if __name__ == "__main__":
    main()
