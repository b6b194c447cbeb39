"""Run the benchmarks: ``python -m benchmarks [--suite simulator] [--parcels N]``.

Results are appended as JSON to ``benchmarks/results/`` together with the environment, and
printed as a Markdown table. Figures are medians; on shared machines compare ratios measured
in one run, never absolute times across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def environment() -> dict:
    import numpy as np

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in ("cv2", "onnxruntime", "torch"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "versions": versions,
        "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
    }


def _pin_one_core() -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    import cv2

    cv2.setNumThreads(1)


def _rows(result: dict) -> list[str]:
    if result["name"] == "simulator":
        st = result["median_stage_s"]
        return [
            f"| simulator, 1 core | {result['scan']} | {1e3 * result['median_s_per_scan']:.0f} ms/scan "
            f"({result['scans_per_s']:.2f} scans/s; chords {1e3 * st['chords']:.0f}, signals+labels "
            f"{1e3 * st['signals_and_labels']:.0f}, detector {1e3 * st['detector']:.0f} ms) |"
        ]
    if result["name"] == "preprocess":
        st = result["median_stage_ms"]
        parts = ", ".join(f"{k} {v:.1f}" for k, v in st.items() if v > 0)
        return [
            f"| preprocessing, 1 thread | {result['scan']} -> {result['model_input']} | "
            f"{result['median_total_ms']:.1f} ms ({parts} ms) |"
        ]
    return [
        f"| preprocessing vs model ({result['model']}, 1 thread each) "
        f"| 2 x 1024 x 1024, {result['tiles']} tiles | "
        f"model {result['model_ms']:.1f} ms / preprocessing {result['preprocess_ms']:.1f} ms = "
        f"{result['model_over_preprocess']:.1f}x |"
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=["all", "simulator", "preprocess"], default="all")
    parser.add_argument("--parcels", type=int, default=7, help="parcels for the simulator benchmark")
    parser.add_argument("--repeats", type=int, default=15, help="repeats for the preprocessing benchmarks")
    parser.add_argument("--no-save", action="store_true", help="do not append to benchmarks/results/")
    args = parser.parse_args(argv)
    _pin_one_core()  # before numpy's BLAS starts its threads
    from tqdm import tqdm

    from . import model_ratio, preprocess, simulator

    results = []
    if args.suite in ("all", "simulator"):
        bar = tqdm(total=args.parcels, desc="simulator", unit="scan")
        results.append(simulator.run(parcels=args.parcels, progress=lambda i, n: bar.update(1)))
        bar.close()
    if args.suite in ("all", "preprocess"):
        results.append(preprocess.run(repeats=args.repeats))
        results.append(model_ratio.run(repeats=args.repeats))
    command = " ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])])
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command,
        "environment": environment(),
        "results": results,
    }
    print("| benchmark | input | median |")
    print("|---|---|---|")
    for r in results:
        for row in _rows(r):
            print(row)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"{time.strftime('%Y%m%dT%H%M%S')}_{args.suite}.json"
        out.write_text(json.dumps(record, indent=1))
        print(f"saved {out.relative_to(RESULTS.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
