"""Inputs shared by the benchmarks: realistic simulated scans (rendered once per run) and the shipped models.

Scans are square, ``size`` lines x ``size`` pixels at 0.8 mm, dual-energy, of full-size cluttered
parcels. Sizes under 1,024 are the centre of a 1,024 x 1,024 scan (a crop of a real parcel, not a
shrunken one, so the preprocessing and model see realistic content); larger sizes widen the tunnel.
"""

from __future__ import annotations

import functools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

MODELS = Path(__file__).resolve().parents[1] / "models"
CARD = MODELS / "parcelscan.json"
PIXEL_MM = 0.8
FULL = 1024
PRECISIONS = ("fp32", "int8", "fp16")


def simulated_scan(seed: int = 0, size: int = FULL):
    """A realistic (2, size, size) uint16 scan: 0.8 mm pixels and lines, a cluttered parcel."""
    from parcelscan.sim.catalogue import build_scene
    from parcelscan.sim.render import render_scene

    if not isinstance(size, int) or size < 16:
        raise ValueError(f"scan size must be an integer >= 16 pixels, got {size!r}")
    full = max(size, FULL)
    scanner = benchmark_scanner(full)
    rng = np.random.default_rng(seed)
    scene = build_scene(rng, _scene(), scanner)
    scan = render_scene(replace(scene, length_cm=full * PIXEL_MM / 10), scanner, rng).scan
    assert scan.shape == (2, full, full), scan.shape
    if size == full:
        return scan
    y0 = x0 = (full - size) // 2
    return replace(
        scan,
        signals=np.ascontiguousarray(scan.signals[:, y0 : y0 + size, x0 : x0 + size]),
        air=scan.air[:, x0 : x0 + size].copy(),
        dark=scan.dark[:, x0 : x0 + size].copy(),
    )


def benchmark_scanner(pixels: int):
    """The benchmark scanner: 0.8 mm square pixels, a tunnel exactly ``pixels`` wide, calibrated."""
    from parcelscan.sim.scanner import ScannerConfig

    return ScannerConfig(
        pixel_mm=PIXEL_MM,
        line_mm=PIXEL_MM,
        tunnel_width_cm=pixels * PIXEL_MM / 10 - 1e-3,
        tunnel_height_cm=60.0,
    ).calibrated()


def _scene():
    from parcelscan.sim.catalogue import SceneConfig

    return SceneConfig(max_parcel_cm=(75.0, 60.0, 50.0), clutter=(4, 10))


@functools.lru_cache(maxsize=16)
def _cached_scan(seed: int, size: int):
    return simulated_scan(seed, size)


def simulated_scans(count: int, size: int = FULL, seed: int = 0) -> tuple:
    """``count`` different scans (seeds ``seed`` ... ``seed + count - 1``), each rendered once per process."""
    return tuple(_cached_scan(seed + i, size) for i in range(count))


def card() -> dict:
    """The shipped model card (``models/parcelscan.json``)."""
    return json.loads(CARD.read_text())


def model_path(precision: str) -> Path:
    """The shipped ONNX file of ``precision``, named by the card rather than retyped here."""
    files = card()["files"]
    if precision not in files:
        raise ValueError(f"precision must be one of {sorted(files)}, got {precision!r}")
    return MODELS / files[precision]["file"]


def tiles_of(scans, preprocessor) -> np.ndarray:
    """Model-input tiles (N, 3, tile, tile) float32 of all ``scans``, in order."""
    return np.concatenate([preprocessor.tiles(preprocessor(s))[0] for s in scans])


def providers(name: str, precision: str = "fp32") -> list:
    """ONNX Runtime providers, with options, for ``--provider`` cpu, cuda or tensorrt.

    The names and CUDA options are the detector's (:data:`parcelscan.detector.PROVIDERS`); TensorRT
    builds fp16 engines only for the fp16 model, so the fp32 and int8 figures stay what they say.
    """
    from parcelscan.detector import CUDA_OPTIONS, PROVIDERS

    if name not in PROVIDERS:
        raise ValueError(f"provider must be one of {sorted(PROVIDERS)}, got {name!r}")
    cuda = (PROVIDERS["cuda"], dict(CUDA_OPTIONS))
    if name == "cpu":
        return [PROVIDERS["cpu"]]
    if name == "cuda":
        return [cuda, PROVIDERS["cpu"]]
    cache = str(Path.home() / ".cache" / "parcelscan" / "trt")
    trt = {
        "trt_fp16_enable": "1" if precision == "fp16" else "0",
        "trt_engine_cache_enable": "1",
        "trt_engine_cache_path": cache,
        "trt_timing_cache_enable": "1",
    }
    return [(PROVIDERS["tensorrt"], trt), cuda, PROVIDERS["cpu"]]
