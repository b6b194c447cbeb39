"""The record around the figures: the environment, the issue's targets, and the Markdown tables."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

# (key, description, goal, ">=" or "<="): the targets of the throughput issue, 2-core CPU unless noted
TARGETS = (
    ("e2e_scans_per_s", "end to end, 1,024 x 1,024 dual-energy scans/s", 50.0, ">="),
    ("ort_fp32_over_torch_eager", "ONNX Runtime fp32 / PyTorch eager (same network)", 3.0, ">="),
    ("int8_over_fp32", "ONNX Runtime int8 / fp32", 1.5, ">="),
    ("fraction_of_peak", "model GFLOP/s / float32 matmul ceiling (fp32)", 0.5, ">="),
    ("stream_p99_ms", "streaming p99 latency at 20 scans/s, ms", 150.0, "<="),
    ("gpu_e2e_scans_per_s", "GPU end to end scans/s (fp16, IOBinding)", 3000.0, ">="),
)


def _gpu_name() -> str | None:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except ImportError:
        pass
    if shutil.which("nvidia-smi"):
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True
        )
        return out.stdout.strip() or None
    return None


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
    for mod in ("cv2", "onnxruntime", "torch", "onnx"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            pass
    import cv2
    import onnxruntime as ort

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "gpu": _gpu_name(),
        "platform": platform.platform(),
        "versions": versions,
        "onnxruntime_available_providers": ort.get_available_providers(),
        "threads": {
            **{k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
            "opencv": cv2.getNumThreads(),
        },
    }


def _by_name(results: list[dict]) -> dict[str, dict]:
    return {r["name"]: r for r in results if "error" not in r}


def targets(results: list[dict], provider: str, size: int, rate: float) -> list[dict]:
    """Each target with its measured value and whether it is met (None: not measured in this run)."""
    r = _by_name(results)
    value: dict[str, tuple[float, str] | None] = dict.fromkeys(k for k, *_ in TARGETS)
    e2e = r.get("e2e")
    if e2e and e2e["variants"] and size == 1024:
        best = max(e2e["variants"], key=lambda v: v["scans_per_s"])
        key = "e2e_scans_per_s" if provider == "cpu" else "gpu_e2e_scans_per_s"
        value[key] = (best["scans_per_s"], best["precision"])
    model = r.get("model")
    if model:
        for k in ("ort_fp32_over_torch_eager", "int8_over_fp32"):
            if k in model["ratios"]:
                value[k] = (model["ratios"][k], f"batch {max(v['batch'] for v in model['variants'])}")
        fp32 = [v for v in model["variants"] if v["name"].startswith("onnxruntime fp32")]
        if fp32 and fp32[0]["fraction_of_peak"] is not None:
            best = max(fp32, key=lambda v: v["fraction_of_peak"])
            value["fraction_of_peak"] = (best["fraction_of_peak"], f"batch {best['batch']}")
    at_rate = [x for x in results if x.get("name") == "stream" and x.get("rate_per_s") == 20]
    stream = at_rate[0] if at_rate else None
    if stream and size == 1024:
        value["stream_p99_ms"] = (stream["p99_ms"], stream["precision"])
    out = []
    for key, text, goal, op in TARGETS:
        v = value[key]
        met = None if v is None else (v[0] >= goal if op == ">=" else v[0] <= goal)
        out.append(
            {"key": key, "target": f"{text} {op} {goal:g}", "value": v and v[0], "at": v and v[1], "met": met}
        )
    return out


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"


def _not_run(result: dict) -> list[str]:
    return [f"| {result['name']} {what} | - | not run: {why} |" for what, why in result["errors"].items()]


def rows(result: dict) -> list[str]:
    """Markdown rows ``| benchmark | input | median |`` for one result."""
    name = result["name"]
    if "error" in result:
        return [f"| {name} | - | failed: {result['error']} |"]
    if name == "simulator":
        st = result["median_stage_s"]
        return [
            f"| simulator, 1 core | {result['scan']} | {1e3 * result['median_s_per_scan']:.0f} ms/scan "
            f"({result['scans_per_s']:.2f} scans/s; chords {1e3 * st['chords']:.0f}, signals+labels "
            f"{1e3 * st['signals_and_labels']:.0f}, detector {1e3 * st['detector']:.0f} ms) |"
        ]
    if name == "preprocess":
        st = result["median_stage_ms"]
        parts = ", ".join(f"{k} {v:.1f}" for k, v in st.items() if v > 0)
        return [
            f"| preprocessing, 1 thread | {result['scan']} -> {result['model_input']} | "
            f"{result['median_total_ms']:.1f} ms ({parts} ms) |"
        ]
    if name == "preprocess_vs_model":
        return [
            f"| preprocessing vs model ({result['model']}, 1 thread each) "
            f"| {result.get('scan', '2 x 1024 x 1024')}, {result['tiles']} tiles | "
            f"model {result['model_ms']:.1f} ms / preprocessing {result['preprocess_ms']:.1f} ms = "
            f"{result['model_over_preprocess']:.1f}x |"
        ]
    if name == "postprocess":
        return [
            f"| postprocessing, 1 thread | heatmap {result['heatmap']} from {result['tiles']} tiles | "
            f"stitch {result['stitch_ms']:.2f} ms + regions {result['regions_ms']:.2f} ms "
            f"({result['regions_per_scan']:.1f} regions/scan) = {result['scans_per_s']:.0f} scans/s |"
        ]
    if name == "ceiling":
        parts = "; ".join(
            f"{lib} " + ", ".join(f"{_fmt(g)} ({t} thr)" for t, g in per.items())
            for lib, per in result["gflops"].items()
        )
        out = [f"| float32 matmul ceiling | {result['matmul_n']}^2 | {parts} GFLOP/s |"]
        gpu = result.get("gpu")
        if gpu:
            parts = ", ".join(f"{k} {_fmt(v)}" for k, v in gpu.items() if isinstance(v, float))
            out.append(f"| GPU ceiling | {gpu['device']} | {parts} |")
        return out
    if name == "model":
        where = f"{result['threads']} threads" if result["provider"] == "cpu" else result["provider"]
        tile = f"{result['tile']}^2 tiles, {result['tiles_per_scan']:g}/scan"
        out = []
        for v in result["variants"]:
            frac = "" if v["fraction_of_peak"] is None else f" = {100 * v['fraction_of_peak']:.0f} % of peak"
            out.append(
                f"| {v['name']} ({where}) | {tile} | {_fmt(v['tiles_per_s'])} tiles/s, "
                f"{_fmt(v['scans_per_s'])} scans/s, {_fmt(v['megapixels_per_s'])} MP/s, "
                f"{_fmt(v['gflops'])} GFLOP/s{frac} |"
            )
        ratios = ", ".join(f"{k} {v:.2f}x" for k, v in result["ratios"].items())
        out.append(f"| model ratios (paired by round, {result['rounds']} rounds) | {tile} | {ratios} |")
        return out + _not_run(result)
    if name == "training_step":
        where = f"{result['threads']} threads" if result["device"] == "cpu" else result["device"]
        tiles = f"{result['batch']} x {result['tile']}^2 tiles, native bf16: {result['native_bf16']}"
        rates = ", ".join(f"{k} {_fmt(v)}" for k, v in result["tiles_per_s"].items())
        ratios = ", ".join(f"{k} {v:.2f}x" for k, v in result["ratios"].items())
        return [
            f"| training steps ({where}) | {tiles} | {rates} tiles/s |",
            f"| training ratios (paired by round, {result['rounds']} rounds) | {tiles} | {ratios} |",
        ]
    if name == "e2e":
        out = []
        for v in result["variants"]:
            st = ", ".join(f"{k[:-3]} {x:.1f}" for k, x in v["median_stage_ms"].items())
            alarms = f"; {v['alarm_share']:.0%} of the scans alarm"
            if v.get("scans_per_s_at_station_alarm_share"):
                alarms += (
                    f" (post-processing {v['postprocess_ms_alarm']:.0f} ms with an alarm, "
                    f"{v['postprocess_ms_clear']:.0f} without; with 1 % alarming: "
                    f"{_fmt(v['scans_per_s_at_station_alarm_share'])} scans/s)"
                )
            out.append(
                f"| Detector.detect {v['precision']} ({result['provider']}, {result['threads']} threads) | "
                f"{result['scans_per_call']} x {result['scan']} | {_fmt(v['scans_per_s'])} scans/s, "
                f"{_fmt(v['megapixels_per_s'])} MP/s (per scan: {st} ms{alarms}) |"
            )
        if result["ratios"]:
            ratios = ", ".join(f"{k} {v:.2f}x" for k, v in result["ratios"].items())
            out.append(
                f"| Detector.detect ratios ({result['rounds']} rounds) | {result['scan']} | {ratios} |"
            )
        return out + _not_run(result)
    if name == "stream":
        notes = [f"{result['completed_per_s']:.1f} scans/s done", f"mean batch {result['mean_batch']:.1f}"]
        notes.append(f"{result['failed']} failed")
        if result["saturated"]:
            notes.append("saturated: arrivals outpace the detector")
        if result["not_submitted"]:
            notes.append(f"{result['not_submitted']} not submitted (fell behind)")
        return [
            f"| detector.stream {result['precision']} at {result['rate_per_s']:g} scans/s | "
            f"{result['submitted']} x {result['scan']} | p50 {result['p50_ms']:.0f}, "
            f"p90 {result['p90_ms']:.0f}, p99 {result['p99_ms']:.0f}, max {result['max_ms']:.0f} ms; "
            f"{', '.join(notes)} |"
        ]
    return [f"| {name} | - | {result} |"]


def markdown(record: dict) -> str:
    lines = [
        f"`{record['command']}` ({record['time']}, {record['environment']['cpu']}, "
        f"{record['environment']['cores']} cores, GPU: {record['environment']['gpu'] or 'none'})",
        "",
        "| benchmark | input | median |",
        "|---|---|---|",
    ]
    for r in record["results"]:
        lines += rows(r)
    lines += ["", "| target | measured | met |", "|---|---|---|"]
    for t in record["targets"]:
        measured = "not measured" if t["value"] is None else f"{_fmt(t['value'])} ({t['at']})"
        met = {True: "met", False: "not met", None: "-"}[t["met"]]
        lines.append(f"| {t['target']} | {measured} | {met} |")
    return "\n".join(lines) + "\n"
