"""Command-line interface: ``parcelscan <command> ...``."""

from __future__ import annotations

import argparse
import json
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


def _detector(args: argparse.Namespace):
    from .detector import Detector

    return Detector.from_pretrained(
        args.model,
        precision=args.precision,
        providers=args.provider,
        threads=args.threads,
    )


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    detector = _detector(args)
    print(
        f"model {Path(detector.info['file']).name} (version {detector.info['version']}, "
        f"{detector.info['precision']}), alarm when score > {detector.threshold:.4f}"
    )
    run_demo(detector, Path(args.out), seed=args.seed)
    return 0


_SCAN_SUFFIXES = (".npz", ".png", ".tif", ".tiff", ".dcm", ".dicos", ".jpg", ".jpeg", ".bmp")


def scan_paths(paths: list[str]) -> list[Path]:
    """Files as given; folders searched recursively for scan files. Of a ``_low``/``_high`` pair only
    the ``_low`` file is kept (reading it reads both)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            out.append(p)
            continue
        if (p / "index.json").is_file():  # a dataset (parcelscan simulate): its scans, not its previews
            index = json.loads((p / "index.json").read_text())
            out.extend(p / e["scan"] for e in index.get("parcels", []) if "scan" in e)
            continue
        found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in _SCAN_SUFFIXES)
        names = {f.name for f in found}
        for f in found:
            stem = f.stem
            if stem.endswith("_high") and f"{stem[:-5]}_low{f.suffix}" in names:
                continue
            out.append(f)
    return out


def _scan(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .manifest import load_manifest
    from .result import FailedScan

    paths = scan_paths(args.paths)
    if not paths:
        raise ValueError(f"no scan files found in {args.paths}")
    shared = load_manifest(args.manifest) if args.manifest else None
    detector = _detector(args)
    overlays = Path(args.overlays) if args.overlays else None
    tdr = Path(args.tdr) if args.tdr else None
    for folder in (overlays, tdr):
        if folder:
            folder.mkdir(parents=True, exist_ok=True)
    sink = open(args.out, "w") if args.out else None
    failed = alarms = 0
    try:
        bar = tqdm(total=len(paths), unit="scan", disable=args.quiet, file=sys.stderr)
        for start in range(0, len(paths), args.batch_size):
            chunk = paths[start : start + args.batch_size]
            # Overlays draw the scan: read each once here; a file that does not load goes in as its
            # path, and the detector reports why it failed.
            inputs = [_try_load(p) for p in chunk] if overlays else chunk
            results = detector.detect(
                inputs,
                threshold=args.threshold,
                manifest=[shared or _sidecar_manifest(p) for p in chunk],
            )
            for path, scan, r in zip(chunk, inputs, results, strict=True):
                if sink:
                    sink.write(json.dumps(r.to_dict()) + "\n")
                if isinstance(r, FailedScan):
                    failed += 1
                    tqdm.write(f"{path}: FAILED ({r.error_type}: {r.error})", file=sys.stdout)
                    continue
                alarms += r.alarm
                extra = f", manifest {r.manifest.verdict}" if r.manifest is not None else ""
                warn = ", opaque areas" if r.impenetrable_warning else ""
                tqdm.write(
                    f"{path}: {'ALARM' if r.alarm else 'clear'} score {r.score:.3f}, "
                    f"{len(r.regions)} region(s){warn}{extra}",
                    file=sys.stdout,
                )
                stem = path.name.split(".")[0]
                if overlays:
                    from .viz import detection_overlay, write_png

                    write_png(overlays / f"{stem}.png", detection_overlay(scan, r))
                if tdr:
                    from .io import write_tdr

                    ref = path if path.suffix.lower() in (".dcm", ".dicos") else None
                    write_tdr(r, tdr / f"{stem}.tdr.dcm", referenced_scan=ref)
            bar.update(len(chunk))
        bar.close()
    finally:
        if sink:
            sink.close()
    print(
        f"{len(paths)} scans: {alarms} alarm(s), {failed} failed"
        + (f"; results in {args.out}" if args.out else "")
    )
    return 1 if failed else 0


def _try_load(path: Path):
    """The scan at ``path`` (its metadata naming the file, as results do for paths), or the path
    itself when it does not load: the detector then says why."""
    from .io import load_scan

    try:
        scan = load_scan(path)
    except (OSError, ValueError):
        return path
    scan.metadata["source"] = str(path)
    return scan


def _sidecar_manifest(scan_path: Path) -> Path | None:
    """``<name>.manifest.json`` beside a scan (``parcel.npz`` -> ``parcel.manifest.json``), if present."""
    side = scan_path.with_name(scan_path.name.split(".")[0] + ".manifest.json")
    return side if side.is_file() else None


def _info(args: argparse.Namespace) -> int:
    import platform

    import cv2
    import numpy as np
    import onnxruntime as ort
    import pydicom

    from . import __version__

    detector = _detector(args)
    card = detector.card
    info = {
        "model": detector.info,
        "threshold": detector.threshold,
        "region_threshold": detector.region_threshold,
        "region_grow_threshold": detector.region_grow_threshold,
        "single_energy_threshold": detector.single_energy_threshold,
        "training": {k: card.get("training", {}).get(k) for k in ("command", "seed", "minutes")},
        "evaluation": card.get("evaluation", {}).get("summary", {}).get(Path(detector.info["file"]).name),
        "preprocess": card.get("preprocess"),
        "available_providers": ort.get_available_providers(),
        "versions": {
            "parcelscan": __version__,
            "python": platform.python_version(),
            "onnxruntime": ort.__version__,
            "numpy": np.__version__,
            "opencv": cv2.__version__,
            "pydicom": pydicom.__version__,
        },
    }
    if args.json:
        print(json.dumps(info, indent=1, default=str))
        return 0
    m = detector.info
    print(f"model      {m['file']}")
    print(f"           version {m['version']}, {m['precision']}, sha256 {m['sha256']} (verified)")
    grow = detector.region_grow_threshold
    grown = "" if grow is None else f", grown to >= {grow:.2f}"
    print(
        f"alarm      score > {detector.threshold:.4f}; "
        f"regions where heatmap >= {detector.region_threshold:.4f}{grown}; "
        f"single-energy scans: both at {detector.single_energy_threshold:.4f}"
    )
    print(f"providers  active {m['providers']}; available {info['available_providers']}")
    print(f"training   {info['training']['command']} (seed {info['training']['seed']})")
    ev = info["evaluation"]
    if isinstance(ev, dict) and "auroc" in ev:
        print(
            f"held-out   AUROC {ev['auroc']:.3f}, TPR {ev.get('tpr_at_1pct', float('nan')):.3f} at 1 % FPR, "
            f"hit rate {ev.get('hit_rate', float('nan')):.3f} ({ev.get('n_parcels', '?')} parcels)"
        )
    print("versions   " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    return 0


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="ONNX model file or folder (default: the shipped model)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "int8", "fp16"])
    p.add_argument(
        "--provider", action="append", default=None, help="cpu (default), cuda or tensorrt; repeat for a list"
    )
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")


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
    d.add_argument("--seed", type=int, default=7)
    _model_args(d)
    d.set_defaults(func=_demo)

    s = sub.add_parser("scan", help="scan files or folders of scans for concealed dense masses")
    s.add_argument("paths", nargs="+", metavar="PATH", help="scan files, or folders searched for them")
    s.add_argument("--out", default=None, help="JSON Lines results (docs/result.schema.json), one per scan")
    s.add_argument("--overlays", default=None, metavar="DIR", help="write detection overlay PNGs here")
    s.add_argument(
        "--tdr", default=None, metavar="DIR", help="write a DICOS Threat Detection Report per scan"
    )
    s.add_argument(
        "--manifest",
        default=None,
        metavar="FILE",
        help="declared contents (JSON) for every scan; without it, each scan's <name>.manifest.json "
        "if present",
    )
    s.add_argument(
        "--batch-size", type=int, default=8, help="scans per detect call (their tiles share batches)"
    )
    s.add_argument(
        "--threshold", type=float, default=None, help="alarm threshold (default: the model card's)"
    )
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    _model_args(s)
    s.set_defaults(func=_scan)

    i = sub.add_parser("info", help="the model card, execution providers and library versions")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    _model_args(i)
    i.set_defaults(func=_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, so that a closed pipe is met below rather than at exit
        return code
    except BrokenPipeError:  # the reader went away (`parcelscan scan ... | head`): stop quietly
        _silence_stdout()
        return 1
    except (ValueError, FileNotFoundError, RuntimeError) as exc:  # a clear message, no traceback
        print(f"parcelscan {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's flush of it at exit does not meet the closed pipe
    again (the recipe of the Python docs' signal module notes on SIGPIPE)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by an object without a descriptor
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
