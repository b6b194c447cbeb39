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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=["simulator"], default="simulator")
    parser.add_argument("--parcels", type=int, default=7, help="parcels for the simulator benchmark")
    parser.add_argument("--no-save", action="store_true", help="do not append to benchmarks/results/")
    args = parser.parse_args(argv)
    _pin_one_core()  # before numpy's BLAS starts its threads
    from tqdm import tqdm

    from . import simulator

    bar = tqdm(total=args.parcels, desc="simulator", unit="scan")
    result = simulator.run(parcels=args.parcels, progress=lambda i, n: bar.update(1))
    bar.close()
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(["python -m benchmarks", *(argv or sys.argv[1:])]),
        "environment": environment(),
        "results": [result],
    }
    print("| benchmark | scan | median s/scan | scans/s | chords s | signals+labels s | detector s |")
    print("|---|---|---|---|---|---|---|")
    st = result["median_stage_s"]
    print(
        f"| simulator (1 core) | {result['scan']} | {result['median_s_per_scan']:.3f} "
        f"| {result['scans_per_s']:.2f} "
        f"| {st['chords']:.3f} | {st['signals_and_labels']:.3f} | {st['detector']:.3f} |"
    )
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"{time.strftime('%Y%m%dT%H%M%S')}_{args.suite}.json"
        out.write_text(json.dumps(record, indent=1))
        print(f"saved {out.relative_to(RESULTS.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
