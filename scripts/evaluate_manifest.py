"""Evaluate the declared-contents check on a simulated dataset: how often false declarations are
caught and honest ones pass, by category.

    python scripts/evaluate_manifest.py out/manifest_eval --out out/manifest_eval/manifest_eval.json
    python scripts/evaluate_manifest.py out/manifest_eval --with-detector   # detector regions too
    python scripts/evaluate_manifest.py out/manifest_target --make-targeted 300 --seed 43 --workers 2

``--make-targeted N`` first simulates N parcels into DATASET with a scene configuration aimed at the
targets: half the parcels hide Dy/Tb/Nd oxide in a jar or bag declared as nickel powder, the other
half are innocent with a look-alike main item (a fifth of them genuine nickel powder, and nickel jars
among the clutter), and no innocent parcel carries a false declaration.

The dataset is a ``parcelscan simulate`` directory (datasets/README.md); every label carries the
declaration the sender made and whether it is honest. "Flagged" means the verdict "inconsistent";
"cannot_tell" is counted apart (the check could not confirm the declaration, e.g. an opaque jar).
Targets (issue #6): Dy/Tb oxide declared as nickel powder flagged >= 95 %; genuine nickel powder
declared as such passes (not flagged) >= 99 %; honest manifests overall flagged <= 2 %.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from parcelscan.manifest import check_manifest, manifest_from_label
from parcelscan.sim.dataset import load_example

VERDICTS = ("consistent", "inconsistent", "cannot_tell")
TARGETS = {"dy_tb_as_nickel_flagged": 0.95, "genuine_nickel_passes": 0.99, "honest_flagged_max": 0.02}
_DETECTOR = None


def _check_one(args: tuple[str, str, bool]) -> dict:
    global _DETECTOR
    root, pid, with_detector = args
    scan, label, _, _ = load_example(root, pid)
    detection = None
    if with_detector:
        if _DETECTOR is None:
            from parcelscan.detector import Detector

            _DETECTOR = Detector.from_pretrained(threads=1)
        detection = _DETECTOR.detect(scan)
    t0 = time.perf_counter()
    check = check_manifest(scan, detection, manifest_from_label(label))
    ms = 1e3 * (time.perf_counter() - t0)
    masses = label["masses"]
    return {
        "id": pid,
        "category": label["category"],
        "honest": bool(label["manifest"]["honest"]),
        "concealed": [m["material"] for m in masses],
        "declares_nickel": any(it["description"] == "nickel powder" for it in label["manifest"]["items"]),
        "verdict": check.verdict,
        "kinds": sorted({r.kind for r in check.reasons}),
        "nickel_items": [it.status for it in check.items if it.category == "nickel_powder"],
        "check_ms": round(ms, 1),
    }


def _rates(rows: list[dict]) -> dict:
    n = len(rows)
    counts = Counter(r["verdict"] for r in rows)
    out = {"n": n}
    for v in VERDICTS:
        out[v] = round(counts[v] / n, 4) if n else None
    return out


def summarise(rows: list[dict]) -> dict:
    """Rates by group: the issue's targets first, then every label category."""
    dy_tb = [
        r for r in rows if r["category"] == "misdeclared_powder" and set(r["concealed"]) <= {"Dy2O3", "Tb4O7"}
    ]
    genuine_ni = [r for r in rows if r["honest"] and r["declares_nickel"]]
    honest = [r for r in rows if r["honest"]]
    false_benign = [r for r in rows if not r["honest"] and not r["concealed"]]
    items = [s for r in genuine_ni for s in r["nickel_items"]]
    # An item "opaque": the object that fits the declaration is opaque, so nickel fits it as well as a
    # lanthanide oxide does. No per-gram reading separates those; genuine nickel reads so just as often
    # at such masses, so flagging them would fail genuine nickel. This bounds what can be flagged.
    dy_opaque = [r for r in dy_tb if "opaque" in r["nickel_items"] and "mismatch" not in r["nickel_items"]]
    by_cat = defaultdict(list)
    for r in rows:
        by_cat[r["category"] + ("" if r["honest"] or r["concealed"] else " (false manifest)")].append(r)
    reasons = Counter(k for r in rows for k in r["kinds"])
    summary = {
        "targets": TARGETS,
        "measured": {
            "dy_tb_as_nickel_flagged": _rates(dy_tb)["inconsistent"] if dy_tb else None,
            "dy_tb_as_nickel_flagged_or_cannot_tell": (
                round(1 - _rates(dy_tb)["consistent"], 4) if dy_tb else None
            ),
            "dy_tb_as_nickel_opaque_fit": round(len(dy_opaque) / len(dy_tb), 4) if dy_tb else None,
            "dy_tb_as_nickel_flagged_ceiling": round(1 - len(dy_opaque) / len(dy_tb), 4) if dy_tb else None,
            "genuine_nickel_opaque_fit": (
                round(sum("opaque" in r["nickel_items"] for r in genuine_ni) / len(genuine_ni), 4)
                if genuine_ni
                else None
            ),
            "genuine_nickel_passes": round(1 - _rates(genuine_ni)["inconsistent"], 4) if genuine_ni else None,
            "genuine_nickel_consistent": _rates(genuine_ni)["consistent"] if genuine_ni else None,
            "genuine_nickel_items_not_mismatch": (
                round(sum(s != "mismatch" for s in items) / len(items), 4) if items else None
            ),
            "honest_flagged": _rates(honest)["inconsistent"] if honest else None,
            "honest_cannot_tell": _rates(honest)["cannot_tell"] if honest else None,
            "false_manifest_on_innocent_parcel_flagged": (
                _rates(false_benign)["inconsistent"] if false_benign else None
            ),
        },
        "groups": {
            "dy_tb_declared_as_nickel": _rates(dy_tb),
            "honest_with_genuine_nickel": _rates(genuine_ni),
            "honest_all": _rates(honest),
            "false_manifest_innocent_parcel": _rates(false_benign),
        },
        "by_category": {k: _rates(v) for k, v in sorted(by_cat.items())},
        "reason_kinds": dict(reasons.most_common()),
        "check_ms_mean": round(sum(r["check_ms"] for r in rows) / max(len(rows), 1), 1),
    }
    return summary


def _table(summary: dict) -> str:
    lines = [f"{'group':46s} {'n':>5s} {'consistent':>11s} {'inconsistent':>13s} {'cannot_tell':>12s}"]
    for block in (summary["groups"], summary["by_category"]):
        for name, r in block.items():
            if r["n"]:
                rates = " ".join(f"{r[v]:{w}.1%}" for v, w in zip(VERDICTS, (11, 13, 12), strict=True))
                lines.append(f"{name:46s} {r['n']:5d} {rates}")
        lines.append("")
    m, t = summary["measured"], summary["targets"]
    for text, got, want in (
        (
            "Dy/Tb oxide declared as nickel flagged",
            m["dy_tb_as_nickel_flagged"],
            f">= {t['dy_tb_as_nickel_flagged']}",
        ),
        ("  ... flagged or cannot tell", m["dy_tb_as_nickel_flagged_or_cannot_tell"], ""),
        ("  ... fitting only as an opaque object", m["dy_tb_as_nickel_opaque_fit"], ""),
        ("  ... ceiling of flagged (1 - opaque fits)", m["dy_tb_as_nickel_flagged_ceiling"], ""),
        ("genuine nickel fitting as an opaque object", m["genuine_nickel_opaque_fit"], ""),
        (
            "genuine nickel passes (not flagged)",
            m["genuine_nickel_passes"],
            f">= {t['genuine_nickel_passes']}",
        ),
        ("  ... consistent", m["genuine_nickel_consistent"], ""),
        ("honest manifests flagged", m["honest_flagged"], f"<= {t['honest_flagged_max']}"),
        (
            "false declarations on innocent parcels flagged",
            m["false_manifest_on_innocent_parcel_flagged"],
            "",
        ),
    ):
        lines.append(f"{text:48s} {got if got is not None else '-':>8}  {('target ' + want) if want else ''}")
    return "\n".join(lines)


def make_targeted(root: Path, count: int, seed: int, workers: int) -> None:
    """Simulate the targeted set (see the module docstring) into ``root``."""
    from parcelscan.sim.catalogue import SceneConfig
    from parcelscan.sim.dataset import generate_dataset
    from parcelscan.sim.scene import CONCEALMENT_TYPES

    weights = {c: float(c == "misdeclared_powder") for c in CONCEALMENT_TYPES}
    config = SceneConfig(
        positive_fraction=0.5, concealment_weights=weights, lookalike_share=1.0, false_manifest_rate=0.0
    )
    generate_dataset(root, count, seed, workers=workers, config=config, skip_existing=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dataset", help="dataset directory written by `parcelscan simulate`")
    p.add_argument("--out", default=None, help="JSON output (default: DATASET/manifest_eval.json)")
    p.add_argument(
        "--with-detector", action="store_true", help="pass the shipped detector's result to the check"
    )
    p.add_argument("--limit", type=int, default=None, help="only the first N parcels")
    p.add_argument("--workers", type=int, default=1, help="worker processes")
    p.add_argument(
        "--make-targeted", type=int, default=None, metavar="N", help="first simulate N targeted parcels"
    )
    p.add_argument("--seed", type=int, default=43, help="seed of the targeted set")
    args = p.parse_args(argv)
    root = Path(args.dataset)
    if args.make_targeted:
        make_targeted(root, args.make_targeted, args.seed, args.workers)
    index = json.loads((root / "index.json").read_text())
    ids = [e["id"] for e in index["parcels"]][: args.limit]
    if args.with_detector:
        try:
            import parcelscan.detector  # noqa: F401
        except ImportError:
            print("parcelscan.detector is not available: running without the detector", file=sys.stderr)
            args.with_detector = False
    jobs = [(str(root), pid, args.with_detector) for pid in ids]
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            rows = list(pool.map(_check_one, jobs, chunksize=4))
    else:
        rows = [_check_one(j) for j in jobs]
    summary = summarise(rows)
    summary["dataset"] = {"path": str(root), "seed": index.get("seed"), "count": len(rows)}
    summary["with_detector"] = args.with_detector
    out = Path(args.out) if args.out else root / "manifest_eval.json"
    out.write_text(json.dumps({"summary": summary, "parcels": rows}, indent=1))
    print(_table(summary))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
