"""Evaluate a shipped model on a held-out simulated set, against the ideal observer.

Runs the exported ONNX model(s) through ONNX Runtime exactly as a station would (preprocess, tile,
batch, stitch), then reports parcel AUROC, TPR at 1 % and 0.1 % FPR, the TPR at the card's operating
threshold, localisation hit rate and false regions per parcel, overall and stratified by parcel
category, concealment, material, mass, ideal-observer d' and the share of the mass that is opaque
(high-energy attenuation at or above the model's impenetrable threshold: there the image holds the
mass's outline and context, not its material). Each stratum's TPR is set beside the ideal observer's (a mass
of d' is found among M = 1000 locations at the per-location false-alarm rate alpha / M with
probability Phi(d' - z(1 - alpha / M))): a model above it would be leaking labels. Beside it stands the
discrimination observer (``ideal_discrimination_tpr``, and strata by its d'), which must also tell the
mass from more of what its carrier innocently holds (declared nickel, porcelain, paper, food) in any
amount: the tighter bound where look-alikes, not photons, limit detection. Each quality
target (AUROC, TPR at 1 % FPR overall and per concealment among detectable masses, hit rate, the
quantised models' AUROC, no stratum above the ideal observer) is printed and recorded as met or not,
each TPR target beside the discrimination observer's TPR on the same masses
(:func:`parcelscan.evaluation.quality_targets`; give the fp32 model first). Every model's AUROC, TPRs
and hit rate also get 95 % bootstrap intervals, and every later model the paired interval of its
difference from the first (:func:`parcelscan.evaluation.metric_intervals`, ``paired_intervals``). Writes
``<name>.eval.json`` and ``<name>.roc.png`` beside the model and records the results in the card::

    parcelscan simulate --count 2000 --seed 3 --out out/heldout
    python scripts/evaluate.py --model models/parcelscan.onnx --data out/heldout
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from parcelscan.engine import OnnxModel, operating_thresholds
from parcelscan.evaluation import (
    FPR_TARGETS,
    VARIANT_AUROC_TOLERANCE,
    expected_tpr,
    metric_intervals,
    paired_intervals,
    quality_targets,
    roc_curve,
    stratify,
    summary,
    write_roc_png,
)
from parcelscan.io.npz import read_npz
from parcelscan.physics.observer import detection_probability
from parcelscan.postprocess import alarm_regions
from parcelscan.sim.dataset import dataset_problem
from parcelscan.training.export import sha256

MASS_BINS = [5, 20, 50, 200, 500, 2000]
DPRIME_BINS = [0, 5.55, 20, 100, 1000, 1e9]
OPAQUE_BINS = [0, 0.1, 0.5, 0.9]
LOCATIONS, ALPHA = 1000, 0.01


def opaque_share(
    a_high: np.ndarray | None, mask: np.ndarray | None, bbox: list[int], threshold: float
) -> float | None:
    """Share of a mass's pixels (ground-truth ``mask`` inside its ``bbox_px`` x0, y0, x1, y1) whose
    high-energy attenuation is at least ``threshold``; None without a mask or mask pixels there."""
    if mask is None:
        return None
    x0, y0, x1, y1 = bbox
    inside = mask[y0:y1, x0:x1] > 0
    if not inside.any():
        return None
    return float(np.mean(a_high[y0:y1, x0:x1][inside] >= threshold))


def _records(model: OnnxModel, root: Path, entries: list[dict], batch: int) -> list[dict]:
    out = []
    for i in tqdm(range(0, len(entries), batch), desc=Path(model.path).name, unit="batch"):
        chunk = entries[i : i + batch]
        scans, masks, labels = [], [], []
        for e in chunk:
            scan, extras = read_npz(root / e["scan"], with_extras=True)
            scans.append(scan)
            masks.append(extras.get("mask"))
            labels.append(json.loads((root / e["label"]).read_text()))
        opaque_at = model.preprocess_config.impenetrable_attenuation
        for scan, mask, pred, label in zip(scans, masks, model.predict(scans), labels, strict=True):
            sl, sp = pred.preprocessed.scales
            # the opaque share of each mass needs the native high-energy attenuation: positives only
            a_high = -np.log(scan.transmission()[-1]) if label["masses"] and mask is not None else None
            thr, region_thr = operating_thresholds(model, scan.dual_energy)
            alarm = pred.score > thr
            # the regions a Detector reports (grown, at least 2 pixels, the peak when none), alarms only
            regions = (
                alarm_regions(pred.heatmap, pred.score, thr, region_thr, model.region_grow_threshold)[0]
                if alarm
                else []
            )
            masses = []
            for m in label["masses"]:
                x0, y0, x1, y1 = m["bbox_px"]
                masses.append(
                    {
                        "centre": ((x0 + x1) / 2 * sp, (y0 + y1) / 2 * sl),
                        "concealment": m["concealment"],
                        "material": m["material"],
                        "mass_g": m["mass_g"],
                        "dprime": m["dprime"],
                        "ideal": detection_probability(m["dprime"], LOCATIONS, ALPHA),
                    }
                )
                # labels written before the discrimination d' was added lack it
                if m.get("dprime_discrimination") is not None:
                    masses[-1]["dprime_discrimination"] = m["dprime_discrimination"]
                    masses[-1]["ideal_discrimination"] = detection_probability(
                        m["dprime_discrimination"], LOCATIONS, ALPHA
                    )
                share = opaque_share(a_high, mask, m["bbox_px"], opaque_at)
                if share is not None:  # a mass without mask pixels is left out of that stratification
                    masses[-1]["opaque_share"] = share
            out.append(
                {
                    "id": label["id"],
                    "score": pred.score,
                    "positive": bool(label["positive"]),
                    "masses": masses,
                    "regions": [r.box for r in regions],
                    "category": label["category"],
                    "single_energy": not scan.dual_energy,
                    "contents": sorted(set(label.get("contents", []))),
                }
            )
    return out


def _ideal_columns(records: list[dict], strata: dict, key: str, bins) -> None:
    """Add each stratum's ideal-observer TPR and whether the model exceeds it beyond sampling noise,
    and, where every mass in it has one, the discrimination observer's TPR (``ideal_discrimination_tpr``:
    finding the mass and telling it from the carrier's innocent filling, a tighter bound)."""
    for name, row in strata.items():
        groups = []
        for r in records:
            if not r["positive"]:
                continue
            ms = r["masses"]
            if key in ("concealment", "material"):
                ms = [m for m in ms if str(m[key]) == str(name)]
            elif bins is not None:
                ms = [m for m in ms if m.get(key) is not None and _label(m[key], bins) == name]
            if ms:
                groups.append(ms)
        if not groups:
            continue
        ideal = expected_tpr([[m["ideal"] for m in ms] for ms in groups])
        n = len(groups)
        row["ideal_tpr"] = ideal
        tpr = row.get("tpr_at_1pct", float("nan"))
        slack = 2 * np.sqrt(max(ideal * (1 - ideal), 1 / n) / n)
        row["beats_ideal"] = bool(np.isfinite(tpr) and tpr > ideal + slack)
        if all("ideal_discrimination" in m for ms in groups for m in ms):
            row["ideal_discrimination_tpr"] = expected_tpr(
                [[m["ideal_discrimination"] for m in ms] for ms in groups]
            )


def false_alarms_by_content(records: list[dict], threshold: float, min_count: int = 5) -> dict:
    """For each kind of item found in at least ``min_count`` negative parcels: how many negatives
    hold it and what share of them alarm (score > threshold), worst first. Names the innocent goods
    the model mistakes for a concealed mass (lanthanum oxide powder, motors, tile stacks...)."""
    negatives = [r for r in records if not r["positive"]]
    by_item: dict[str, list[bool]] = {}
    for r in negatives:
        for item in r.get("contents", []):
            by_item.setdefault(item, []).append(r["score"] > threshold)
    rows = {
        k: {"n_negative": len(v), "fpr": float(np.mean(v))} for k, v in by_item.items() if len(v) >= min_count
    }
    return dict(sorted(rows.items(), key=lambda kv: (-kv[1]["fpr"], kv[0])))


def _label(v: float, bins) -> str:
    edges = np.asarray(bins, float)
    if v < edges[0]:
        return f"< {edges[0]:g}"
    if v >= edges[-1]:
        return f">= {edges[-1]:g}"
    k = int(np.searchsorted(edges, v, side="right")) - 1
    return f"[{edges[k]:g}, {edges[k + 1]:g})"


def evaluate(
    model_path: Path,
    data: Path | list[Path],
    limit: int | None,
    batch: int,
    threads: int | None,
    region_grow: float | None = None,
) -> tuple[dict, list[dict]]:
    """The model's results and its per-parcel records, on the parcels of one dataset folder or of
    several pooled (at most ``limit`` from each). ``region_grow`` overrides the card's
    ``region_grow_threshold`` (1 turns growing off)."""
    roots = [data] if isinstance(data, Path) else list(data)
    card_path = model_path.parent / (model_path.name.split(".")[0] + ".json")
    card = json.loads(card_path.read_text()) if card_path.is_file() else None
    if card is not None:
        known = {v["file"]: v["sha256"] for v in card.get("files", {}).values()}
        if model_path.name in known and sha256(model_path) != known[model_path.name]:
            raise SystemExit(f"{model_path}: sha256 does not match {card_path}")
    model = OnnxModel(model_path, threads=threads, allow_spinning=False)
    if region_grow is not None:
        model.region_grow_threshold = region_grow
    records, seeds = [], []
    for root in roots:
        index = json.loads((root / "index.json").read_text())
        records += _records(model, root, index["parcels"][:limit], batch)
        seeds.append(index.get("seed"))
    if len(roots) == 1:
        described = {"dir": str(roots[0]), "seed": seeds[0], "count": len(records)}
    else:
        described = {"dirs": [str(r) for r in roots], "seeds": seeds, "count": len(records)}
    result = {
        "model": model_path.name,
        "precision": model.card.get("precision"),  # as exported into the file: fp32, int8 or fp16
        "data": described,
        "region_grow_threshold": model.region_grow_threshold,
        # the operating threshold: the single-energy one for a set of single-energy scans only
        "summary": summary(
            records, operating_thresholds(model, not all(r["single_energy"] for r in records))[0]
        ),
        "strata": {},
    }
    thresholds = {f: result["summary"][f"threshold_at_{100 * f:g}pct"] for f in FPR_TARGETS}
    thresholds_all = dict(thresholds)
    # strata are judged at the card's operating threshold chosen on validation data
    thresholds[0.01] = result["summary"]["threshold"]
    for key, bins in (
        ("category", None),
        ("concealment", None),
        ("material", None),
        ("mass_g", MASS_BINS),
        ("dprime", DPRIME_BINS),
        ("dprime_discrimination", DPRIME_BINS),
        ("opaque_share", OPAQUE_BINS),
    ):
        if key == "dprime_discrimination" and not any(key in m for r in records for m in r["masses"]):
            continue  # a dataset simulated before the discrimination d' was labelled
        strata = stratify(records, key, thresholds=thresholds, bins=bins)
        strata = {str(k): v for k, v in strata.items()}
        _ideal_columns(records, strata, key, bins)
        result["strata"][key] = strata
    # at the 1 % FPR threshold of these negatives: the card's threshold alarms too rarely to rank them
    result["false_alarms_by_content"] = false_alarms_by_content(records, thresholds_all[0.01])
    above = sum(row.get("beats_ideal", False) for s in result["strata"].values() for row in s.values())
    result["strata_above_ideal"] = above
    result["any_stratum_beats_ideal"] = above > 0
    scores = np.array([r["score"] for r in records])
    labels = np.array([r["positive"] for r in records])
    fpr, tpr, _ = roc_curve(scores, labels)
    result["roc"] = {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
    return result, records


def _finite(obj):
    """NaN and infinities (empty strata) become null: the JSON stays standard."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def _intervals_text(intervals: dict) -> str:
    return "  ".join(f"{k} [{lo:.4f}, {hi:.4f}]" for k, (lo, hi) in intervals.items())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, nargs="+", required=True, help="ONNX model file(s), fp32 first")
    p.add_argument(
        "--data",
        type=Path,
        nargs="+",
        required=True,
        help="held-out dataset directory (several: their parcels pooled, for steadier figures)",
    )
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--batch", type=int, default=8, help="scans per inference call")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-card", action="store_true", help="do not record the results in the model card")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="write <name>.eval.json and <name>.roc.png here, not beside the first model "
        "(comparing a candidate with the shipped model: --out out/compare --no-card)",
    )
    p.add_argument(
        "--region-grow",
        type=float,
        default=None,
        metavar="LEVEL",
        help="grow regions to this heatmap level, not the card's region_grow_threshold (1: no growing)",
    )
    args = p.parse_args(argv)
    if args.region_grow is not None and not 0 < args.region_grow <= 1:
        p.error(f"--region-grow must be in (0, 1], got {args.region_grow}")
    if args.out is not None and not args.no_card:
        p.error("--out: the card names the evaluation files beside it; add --no-card to write them elsewhere")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        p.error(f"--out {args.out}: exists and is not a folder")
    for folder in args.data:
        if (problem := dataset_problem(folder)) is not None:
            p.error(f"--data {problem}")
    for path in args.model:
        if not path.is_file():
            p.error(f"--model {path}: no such model file")
    # Results are keyed by file name, or by path where names repeat (a candidate's parcelscan.onnx
    # against the shipped one): one model's figures must never overwrite another's.
    labels = [path.name for path in args.model]
    if len(set(labels)) < len(labels):
        labels = [str(path) for path in args.model]
    if len(set(labels)) < len(labels):
        p.error("--model: the same file given twice")
    command = "python scripts/evaluate.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    results, curves, first_records = {}, {}, None
    for path, label in zip(args.model, labels, strict=True):
        r, records = evaluate(path, args.data, args.limit, args.batch, args.threads, args.region_grow)
        # 95 % bootstrap intervals; later models also paired against the first on the same parcels
        r["intervals"] = metric_intervals(records)
        if first_records is None:  # the fp32 model's: the targets are judged on it
            first_records = records
        else:
            r["paired_vs_first"] = paired_intervals(first_records, records)
        r["command"] = command
        results[label] = r
        curves[f"{label} (AUROC {r['summary']['auroc']:.4f})"] = (r["roc"]["fpr"], r["roc"]["tpr"])
        s = r["summary"]
        print(
            f"{label}: AUROC {s['auroc']:.4f}  TPR@1%FPR {s['tpr_at_1pct']:.3f}  TPR@0.1%FPR "
            f"{s['tpr_at_0.1pct']:.3f}  TPR/FPR at card threshold {s['tpr_at_threshold']:.3f}/"
            f"{s['fpr_at_threshold']:.3f}  hit rate {s['hit_rate']:.3f}  false regions/parcel "
            f"{s['false_regions_per_parcel']:.3f}  beats ideal: {r['any_stratum_beats_ideal']}"
        )
        print("  95 % intervals: " + _intervals_text(r["intervals"]))
        if "paired_vs_first" in r:
            print(f"  minus {labels[0]}, paired: " + _intervals_text(r["paired_vs_first"]))
    first, head = args.model[0], labels[0]
    stem = first.name.split(".")[0]
    base = results[head]["summary"]["auroc"]
    later = [results[label] for label in labels[1:]]
    drops = {
        r["precision"]: base - r["summary"]["auroc"]
        for r in later
        if r["precision"] in VARIANT_AUROC_TOLERANCE
    }
    above = results[head]["strata_above_ideal"]
    targets = quality_targets(first_records, auroc_drop=drops, strata_above_ideal=above)
    results[head]["targets"] = targets
    print(f"targets ({head}):")
    for t in targets:
        verdict = "met" if t["met"] else "NOT met"
        limit = t["discrimination_bound"]
        physics = "" if limit is None else f"; the discrimination observer reaches {limit:.4g}"
        print(f"  {t['target']}: {t['measured']:.4g} ({t['rule']} {t['required']:g}): {verdict}{physics}")
    out_dir = first.parent if args.out is None else args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    out_json, out_png = out_dir / f"{stem}.eval.json", out_dir / f"{stem}.roc.png"
    out_json.write_text(json.dumps(_finite(results), indent=1, default=float))
    write_roc_png(out_png, curves, log_fpr=True, title="held-out parcels")
    card_path = first.parent / f"{stem}.json"
    if not args.no_card and card_path.is_file():
        card = json.loads(card_path.read_text())
        card["evaluation"] = {
            "command": command,
            "data": results[head]["data"],
            "summary": {k: {kk: vv for kk, vv in v["summary"].items()} for k, v in results.items()},
            "strata": results[head]["strata"],
            "false_alarms_by_content": results[head]["false_alarms_by_content"],
            "auroc_delta_vs_fp32": {k: v["summary"]["auroc"] - base for k, v in results.items()},
            "intervals": {k: v["intervals"] for k, v in results.items()},
            "paired_vs_fp32": {k: v["paired_vs_first"] for k, v in results.items() if "paired_vs_first" in v},
            "any_stratum_beats_ideal": results[head]["any_stratum_beats_ideal"],
            "targets": targets,
            "files": [out_json.name, f"{stem}.roc.png"],
        }
        card_path.write_text(json.dumps(_finite(card), indent=1, default=float))
    print(f"wrote {out_json} and {out_png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
