"""Command-line interface: ``parcelscan <command> ...``."""

from __future__ import annotations

import argparse
import sys

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
