"""Command-line interface: ``parcelscan <command> ...``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["main"]


def _simulate(args: argparse.Namespace) -> int:
    from .sim.catalogue import SceneConfig
    from .sim.dataset import generate_dataset

    config = SceneConfig(
        positive_fraction=args.positive_fraction,
        mass_range_g=tuple(args.mass_range),
        clutter=tuple(args.clutter),
        max_parcel_cm=tuple(args.max_parcel_cm),
        single_energy_share=args.single_energy_share,
    )
    index = generate_dataset(
        args.out,
        args.count,
        args.seed,
        workers=args.workers,
        preview=args.preview,
        config=config,
        start=args.start,
        progress=not args.quiet,
        skip_existing=args.skip_existing,
    )
    print(f"wrote {index['count']} parcels ({index['positives']} with concealed masses) to {args.out}")
    return 0


_DEMO_CASES = (
    ("mannequin", "mannequin"),
    ("tile_stack_layer", "tile stack"),
    ("tile_blend", "tile blend"),
    ("misdeclared_powder", "powder declared as nickel"),
    ("other_carrier", "other carrier"),
    (None, "benign look-alikes"),
    (None, "benign look-alikes"),
)


def default_model_path() -> Path:
    """The shipped model: $PARCELSCAN_MODEL, else models/parcelscan.onnx of the source checkout."""
    env = os.environ.get("PARCELSCAN_MODEL")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "models" / "parcelscan.onnx"


def _demo(args: argparse.Namespace) -> int:
    import numpy as np

    from .engine import OnnxModel
    from .postprocess import regions_from_heatmap
    from .preprocess import box_to_scan
    from .sim.catalogue import CONCEALMENT_TYPES, SceneConfig, random_parcel
    from .sim.render import render_scene
    from .viz import draw_regions, heatmap_overlay, pseudo_colour, write_png

    model_path = Path(args.model) if args.model else default_model_path()
    if not model_path.is_file():
        raise ValueError(f"model file {model_path} not found (set --model or PARCELSCAN_MODEL)")
    model = OnnxModel(model_path, threads=args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"model {model_path.name} (version {model.version}), alarm when score > {model.threshold:.4f}")
    print(f"{'parcel':8s} {'truth':48s} {'score':>6s}  verdict")
    for i, (concealment, title) in enumerate(_DEMO_CASES):
        rng = np.random.default_rng([args.seed, i])
        if concealment is None:
            config = SceneConfig(
                positive_fraction=0.0, lookalike_share=1.0, clutter=(2, 5), max_parcel_cm=(70.0, 50.0, 40.0)
            )
        else:
            weights = {c: float(c == concealment) for c in CONCEALMENT_TYPES}
            config = SceneConfig(
                positive_fraction=1.0,
                concealment_weights=weights,
                clutter=(1, 4),
                max_parcel_cm=(70.0, 50.0, 40.0),
                mass_range_g=(20.0, 600.0),
            )
        scene, scanner = random_parcel(rng, config)
        rendered = render_scene(scene, scanner, rng)
        pred = model.predict([rendered.scan])[0]
        alarm = pred.score > model.threshold
        truth = ", ".join(f"{m.material} {m.mass_g:.0f} g in {m.carrier}" for m in rendered.masses)
        truth = (
            truth or f"benign ({scene.category.removeprefix('benign_').removeprefix('benign') or 'clutter'})"
        )
        print(f"{i:06d}   {truth[:48]:48s} {pred.score:6.3f}  {'ALARM' if alarm else 'clear'}")
        rgb = pseudo_colour(rendered.scan)
        scales = pred.preprocessed.scales
        heat = np.clip(_to_scan(pred.heatmap, scales, rendered.scan.shape[1:]), 0, 1)
        rgb = heatmap_overlay(rgb, heat)
        boxes = [
            box_to_scan(r.box, scales) for r in regions_from_heatmap(pred.heatmap, model.region_threshold)
        ]
        if alarm and boxes:
            rgb = draw_regions(rgb, boxes, [f"{r:.2f}" for r in [pred.score] * len(boxes)])
        truth_boxes = [m.bbox_px for m in rendered.masses if m.n_pixels]
        if truth_boxes:
            rgb = draw_regions(rgb, truth_boxes, ["truth"] * len(truth_boxes), colour=(0, 160, 0))
        write_png(out / f"{i:06d}_{title.replace(' ', '_')}.png", rgb)
    print(f"overlays (red: detections, green: truth) in {out}")
    return 0


def _to_scan(heatmap, scales, shape):
    from .preprocess import to_scan_coords

    return to_scan_coords(heatmap[None], scales, shape)[0]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parcelscan", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("simulate", help="generate a labelled dataset of simulated parcel scans")
    p.add_argument("--count", type=int, required=True, help="number of parcels")
    p.add_argument("--seed", type=int, required=True, help="dataset seed (parcel i uses [seed, i])")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--workers", type=int, default=1, help="worker processes (output does not depend on it)")
    p.add_argument("--preview", action="store_true", help="also write operator-style pseudo-colour PNGs")
    p.add_argument("--start", type=int, default=0, help="index of the first parcel (to extend a dataset)")
    p.add_argument(
        "--positive-fraction", type=float, default=0.5, help="share of parcels with a concealed mass"
    )
    p.add_argument(
        "--mass-range",
        type=float,
        nargs=2,
        default=(5.0, 2000.0),
        metavar=("LOW_G", "HIGH_G"),
        help="concealed mass range in grams (log-uniform)",
    )
    p.add_argument(
        "--clutter",
        type=int,
        nargs=2,
        default=(1, 8),
        metavar=("MIN", "MAX"),
        help="number of other items per parcel",
    )
    p.add_argument(
        "--max-parcel-cm",
        type=float,
        nargs=3,
        default=(100.0, 60.0, 50.0),
        metavar=("LENGTH", "WIDTH", "HEIGHT"),
        help="largest parcel",
    )
    p.add_argument("--single-energy-share", type=float, default=0.0, help="share of single-energy scanners")
    p.add_argument(
        "--skip-existing",
        action="store_true",
        help="keep parcels an interrupted run already wrote (same seed): resume generation",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_simulate)
    d = sub.add_parser(
        "demo", help="simulate parcels with known contents and scan them with the shipped model"
    )
    d.add_argument("--out", default="out/demo", help="where the overlay PNGs go")
    d.add_argument("--model", default=None, help="ONNX model (default: the shipped models/parcelscan.onnx)")
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    d.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:  # bad configuration values: a clear message, no traceback
        print(f"parcelscan {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
