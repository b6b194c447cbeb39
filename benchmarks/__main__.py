"""Run the benchmarks: ``python -m benchmarks [--suite all] [--provider cpu] [--duration 20]``.

In one run: the machine's ceiling (float32 matmul; GPU copy bandwidth), the simulator, preprocessing
and postprocessing, the model in ONNX Runtime (fp32 / int8 / fp16, several batch sizes) against the
same network in PyTorch eager, ``Detector.detect`` end to end, streaming latency at a fixed arrival
rate, and training steps in float32 and bfloat16 (``train.py --precision``). Results are appended as
JSON to ``benchmarks/results/`` with the environment, and rendered as Markdown (printed, and saved
beside the JSON) with the issue's targets met or not.
Figures are medians; on shared machines compare the ratios measured in one run (paired by round),
never absolute times across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SUITES = ("ceiling", "simulator", "preprocess", "postprocess", "model", "e2e", "stream", "training")


def _pin_one_core() -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    import cv2

    cv2.setNumThreads(1)


def _csv(kind, choices=None):
    def parse(text: str) -> list:
        items = [kind(x) for x in text.split(",") if x.strip()]
        bad = [
            x
            for x in items
            if (choices is not None and x not in choices) or (kind in (int, float) and x <= 0)
        ]
        if not items or bad:
            raise argparse.ArgumentTypeError(
                f"expected a comma list of {choices or 'positive integers'}, got {text!r}"
            )
        return items

    return parse


def _positive(kind):
    def parse(text: str):
        v = kind(text)
        if not v > 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return v

    return parse


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument(
        "--suite",
        type=_csv(str, ("all", *SUITES)),
        default=["all"],
        help=f"comma list of: all, {', '.join(SUITES)} (default all)",
    )
    p.add_argument("--provider", choices=["cpu", "cuda", "tensorrt"], default="cpu")
    p.add_argument(
        "--precision",
        type=_csv(str, ("fp32", "int8", "fp16")),
        default=["fp32", "int8", "fp16"],
        help="comma list; the first is also the streaming one (default fp32,int8,fp16)",
    )
    p.add_argument(
        "--batch-sizes", type=_csv(int), default=[1, 4, 8], help="tiles per model call (default 1,4,8)"
    )
    p.add_argument(
        "--scan-size", type=_positive(int), default=1024, help="lines = pixels of the scans (default 1024)"
    )
    p.add_argument(
        "--duration",
        type=_positive(float),
        default=20.0,
        help="seconds of each interleaved section: model, e2e, stream (default 20)",
    )
    p.add_argument(
        "--threads",
        type=_positive(int),
        default=os.cpu_count() or 1,
        help="ONNX Runtime and PyTorch intra-op threads (default: all cores)",
    )
    p.add_argument(
        "--rate",
        type=_csv(float),
        default=[20.0, 5.0],
        help="comma list of streaming arrival rates per second (default 20,5: the target's rate and one "
        "a 2-core box can sustain)",
    )
    p.add_argument(
        "--scans", type=_positive(int), default=8, help="scans per Detector.detect call (default 8)"
    )
    p.add_argument(
        "--distinct", type=_positive(int), default=4, help="distinct simulated scans, reused (default 4)"
    )
    p.add_argument("--parcels", type=_positive(int), default=7, help="parcels for the simulator benchmark")
    p.add_argument(
        "--repeats", type=_positive(int), default=15, help="repeats for the pre/postprocessing benchmarks"
    )
    p.add_argument("--no-save", action="store_true", help="do not append to benchmarks/results/")
    return p


def _bar(desc: str, unit: str):
    """A tqdm progress callback ``(done, total)``, and the bar to close."""
    from tqdm import tqdm

    bar = tqdm(
        desc=desc,
        unit=unit,
        total=1,
        file=sys.stderr,
        bar_format="{desc:<11} {percentage:3.0f}%|{bar:24}| {n:.0f}/{total:.0f} {unit} [{elapsed}]",
    )

    def update(done: float, total: float) -> None:
        bar.total, bar.n = total, done
        bar.refresh()

    return update, bar


def _sections(args) -> list[tuple[str, str, object]]:
    """(name, progress unit, function of a progress callback) for each selected section, in order."""
    from . import ceiling, e2e, model, model_ratio, postprocess, preprocess, simulator, training

    size, dur, peak = args.scan_size, args.duration, {}

    def run_ceiling(cb):
        seconds = min(1.0, dur / 10)  # per library and thread count
        result = ceiling.run(args.threads, seconds=seconds, gpu=args.provider != "cpu", progress=cb)
        peak["gflops"] = result["peak_gflops"]
        return result

    def run_model(cb):
        return model.run(
            args.precision,
            args.batch_sizes,
            args.provider,
            args.threads,
            dur,
            size,
            scans=args.distinct,
            peak_gflops=peak.get("gflops"),
            progress=cb,
        )

    sections = {
        "ceiling": ("steps", run_ceiling),
        "simulator": ("scans", lambda cb: simulator.run(parcels=args.parcels, progress=cb)),
        "preprocess": (
            "",
            lambda cb: [
                preprocess.run(repeats=args.repeats, size=size),
                model_ratio.run(repeats=args.repeats, size=size),
            ],
        ),
        "postprocess": ("", lambda cb: postprocess.run(args.repeats, size, args.distinct)),
        "model": ("s", run_model),
        "e2e": (
            "s",
            lambda cb: e2e.detect_throughput(
                args.precision, args.provider, args.threads, dur, size, args.scans, args.distinct, progress=cb
            ),
        ),
        "stream": (
            "scans",
            lambda cb: [
                e2e.stream_latency(
                    args.precision[0],
                    args.provider,
                    args.threads,
                    rate,
                    dur,
                    size,
                    args.distinct,
                    progress=cb,
                )
                for rate in args.rate
            ],
        ),
        "training": (
            "s",
            lambda cb: training.run(
                "cpu" if args.provider == "cpu" else "cuda", args.threads, dur, progress=cb
            ),
        ),
    }
    chosen = SUITES if "all" in args.suite else [s for s in SUITES if s in args.suite]
    return [(name, *sections[name]) for name in chosen]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _pin_one_core()  # before numpy's BLAS starts its threads: the one-core figures need it
    from ._report import environment, markdown, targets

    results, failed = [], []
    for name, unit, fn in _sections(args):
        update, bar = _bar(name, unit)
        try:
            out = fn(update)
            update(bar.total, bar.total)
        except Exception as e:  # a section that cannot run (no CUDA provider, say) is reported, not hidden
            traceback.print_exc()
            out = {"name": name, "error": f"{type(e).__name__}: {e}"}
            failed.append(name)
        finally:
            bar.close()
        results += out if isinstance(out, list) else [out]
    command = " ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])])
    env = environment()
    env["providers_active"] = sorted({p for r in results for ps in _active(r) for p in ps})
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command,
        "options": {k: v for k, v in vars(args).items() if k != "no_save"},
        "environment": env,
        "results": results,
        "targets": targets(results, args.provider, args.scan_size, args.rate),
    }
    table = markdown(record)
    print(table)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        stem = f"{time.strftime('%Y%m%dT%H%M%S')}_{'+'.join(args.suite)}"
        (RESULTS / f"{stem}.json").write_text(json.dumps(record, indent=1))
        (RESULTS / f"{stem}.md").write_text(table)
        print(f"saved benchmarks/results/{stem}.json and .md")
    if failed:
        print(f"sections that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _active(result: dict) -> list[list[str]]:
    if "error" in result:
        return []
    if result["name"] == "model":
        return list(result["providers_active"].values())
    if result["name"] == "e2e":
        return [v["providers_active"] for v in result["variants"]]
    return []


if __name__ == "__main__":
    sys.exit(main())
