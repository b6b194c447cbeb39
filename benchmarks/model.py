"""Model throughput: ONNX Runtime fp32 / int8 / fp16 across batch sizes against PyTorch eager, side by side.

Every candidate runs once per round in :func:`~benchmarks._timing.interleave` (medians over rounds;
ratios paired by round), on real tiles of simulated scans:

- ``onnxruntime <precision>`` at each batch size, through the shipped model files opened by
  :class:`~parcelscan.engine.OnnxModel` with the requested providers. Spinning is off so that idle
  ORT threads do not steal the cores from the next candidate. On a GPU the input stays on the device
  (IOBinding), as for the torch baseline;
- ``torch eager`` and ``torch channels_last``: :class:`DetectorNet` with the shipped weights
  (:mod:`benchmarks.torch_baseline`), at the largest batch size, ``threads`` intra-op threads;
- ``matmul``: a float32 matrix multiply at 1 thread and at ``threads`` (or on the device), the ceiling
  measured in the same rounds (the better of the two).

Throughput is in tiles/s, scans/s (tiles per scan of the chosen scan size) and scan megapixels/s
(detector pixels x lines); achieved GFLOP/s counts the convolutions of DetectorNet per tile
(:func:`parcelscan.training.network.gflops`, else the card's figure) and is quoted as a fraction of
the float32 matmul ceiling. An int8 model's "GFLOP/s" counts the same operations, so its fraction can
pass 1: it is the equivalent float32 rate; so can an fp16 model's on a GPU, whose ceiling here is
float32 with TF32 off.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._inputs import FULL, card, model_path, providers, simulated_scans, tiles_of
from ._timing import interleave, median, speedup

OUTPUTS = ["heatmap", "score"]
MATMUL_N = 1024


def _ort_call(session, batch: np.ndarray, device: str) -> Callable[[], object]:
    if device == "cpu":
        feed = {"image": batch}
        return lambda: session.run(OUTPUTS, feed)
    import onnxruntime as ort

    value = ort.OrtValue.ortvalue_from_numpy(batch, device, 0)
    binding = session.io_binding()
    binding.bind_ortvalue_input("image", value)
    for name in OUTPUTS:
        binding.bind_output(name, device, 0)
    return lambda: session.run_with_iobinding(binding)


def _gflop_per_tile(tile: int) -> tuple[float, str]:
    try:
        from parcelscan.training.network import DetectorNet, gflops
    except ImportError:
        return float(card()["network"]["gflop_per_256_tile"]) * (tile / 256) ** 2, "card"
    return gflops(DetectorNet.from_card(card()), tile), "DetectorNet"


def _batch(tiles: np.ndarray, n: int) -> np.ndarray:
    return np.ascontiguousarray(tiles[np.arange(n) % len(tiles)])


def _torch_candidates(batch: np.ndarray, threads: int, device: str, fp16: bool, errors: dict) -> dict:
    try:
        import onnx  # noqa: F401 - shipped_net reads the initialisers with it
        import torch

        from .ceiling import torch_matmul
        from .torch_baseline import runner, shipped_net
    except ImportError as e:  # a runtime-only install (no .[test]): say so in the record
        errors["torch"] = f"PyTorch baseline not run: {e}"
        return {}
    if device != "cpu" and not torch.cuda.is_available():
        errors["torch"] = "PyTorch baseline not run: this PyTorch has no CUDA (a CPU one would not compare)"
        return {}
    torch.set_num_threads(threads)
    net = shipped_net(model_path("fp32"))
    out = {
        "torch eager": runner(net, batch, device=device, threads=threads),
        "torch channels_last": runner(shipped_net(model_path("fp32")), batch, True, device, threads=threads),
    }
    if fp16 and device != "cpu":
        half = shipped_net(model_path("fp32"))
        out["torch channels_last fp16"] = runner(half, batch, True, device, half=True, threads=threads)
    # The ceiling at every thread count up to ``threads``: on a shared machine one thread can beat two.
    for t in sorted({1, threads}) if device == "cpu" else [None]:
        # a GPU needs a bigger product than launch overhead
        call, sync = torch_matmul(MATMUL_N if device == "cpu" else 4 * MATMUL_N, t, device)
        out[f"matmul {t} threads" if t else "matmul"] = lambda call=call, sync=sync: (call(), sync())
    return out


def run(
    precisions=("fp32", "int8", "fp16"),
    batch_sizes=(1, 4, 8),
    provider: str = "cpu",
    threads: int = 2,
    duration_s: float = 30.0,
    size: int = FULL,
    scans: int = 4,
    peak_gflops: float | None = None,
    progress=None,
) -> dict:
    """Interleaved throughput of every candidate; ``peak_gflops`` is the ceiling section's figure, if run.

    The fraction of peak uses the larger of ``peak_gflops`` and the matmul measured in these rounds.
    """
    from parcelscan.engine import OnnxModel

    device = "cpu" if provider == "cpu" else "cuda"
    errors: dict[str, str] = {}
    sessions = {}
    for p in precisions:
        try:
            model = OnnxModel(
                model_path(p),
                providers(provider, p),
                threads=threads,
                max_batch=max(batch_sizes),
                allow_spinning=False,
            )
        except (RuntimeError, ValueError, OSError) as e:
            errors[p] = str(e)
            continue
        sessions[p] = model
    if not sessions:
        raise RuntimeError(f"no ONNX model could be loaded: {errors}")
    first = next(iter(sessions.values()))
    sample = simulated_scans(scans, size)
    tiles = tiles_of(sample, first.preprocessor)
    tiles_per_scan = len(tiles) / len(sample)
    tile = first.preprocess_config.tile
    gflop, gflop_source = _gflop_per_tile(tile)

    candidates, work = {}, {}
    for p, model in sessions.items():
        for b in batch_sizes:
            candidates[f"onnxruntime {p} b{b}"] = _ort_call(model.session, _batch(tiles, b), device)
            work[f"onnxruntime {p} b{b}"] = b
    big = _batch(tiles, max(batch_sizes))
    for name, call in _torch_candidates(big, threads, device, "fp16" in precisions, errors).items():
        candidates[name], work[name] = call, max(batch_sizes)
    agreement = None
    if "fp32" in sessions and "torch eager" in candidates:
        from .torch_baseline import agreement as _agree
        from .torch_baseline import shipped_net

        heatmap = sessions["fp32"].session.run(["heatmap"], {"image": big})[0]
        agreement = _agree(shipped_net(model_path("fp32")), big, heatmap)

    # two warm-up calls: oneDNN and ORT plan per shape on the first
    times = interleave(candidates, duration_s, warmup=2, progress=progress)
    n = MATMUL_N if device == "cpu" else 4 * MATMUL_N
    matmuls = [2 * n**3 / median(times.pop(k)) / 1e9 for k in list(times) if k.startswith("matmul")]
    matmul_gflops = max(matmuls, default=None)
    known = [v for v in (peak_gflops, matmul_gflops) if v]
    peak = max(known) if known else None
    megapixels = size * size / 1e6
    variants = []
    for name, ts in times.items():
        tiles_s = work[name] / median(ts)
        variants.append(
            {
                "name": name,
                "batch": work[name],
                "median_ms": 1e3 * median(ts),
                "tiles_per_s": tiles_s,
                "scans_per_s": tiles_s / tiles_per_scan,
                "megapixels_per_s": tiles_s / tiles_per_scan * megapixels,
                "gflops": tiles_s * gflop,
                "fraction_of_peak": tiles_s * gflop / peak if peak else None,
            }
        )
    return {
        "name": "model",
        "provider": provider,
        "providers_active": {p: m.session.get_providers() for p, m in sessions.items()},
        "io": "device-resident input (IOBinding)" if device != "cpu" else "host arrays (session.run)",
        "threads": threads,
        "tile": tile,
        "tiles_per_scan": tiles_per_scan,
        "scan": f"2 x {size} x {size}",
        "gflop_per_tile": gflop,
        "gflop_source": gflop_source,
        "rounds": len(next(iter(times.values()))),
        "matmul_gflops": matmul_gflops,
        "peak_gflops": peak,
        "torch_weights": "shipped (ONNX initialisers mapped into DetectorNet)",
        "torch_vs_onnx_max_abs_diff": agreement,
        "variants": variants,
        "ratios": _ratios(times, work, sessions, max(batch_sizes), min(batch_sizes)),
        "errors": errors,
    }


def _ratios(times: dict, work: dict, sessions: dict, big: int, small: int) -> dict[str, float]:
    """Paired per-tile speed-ups (median over rounds) at the largest batch size."""

    def ratio(fast: str, slow: str) -> float | None:
        if fast not in times or slow not in times:
            return None
        return speedup(times[fast], times[slow], work[fast], work[slow])

    out = {}
    for p in sessions:
        out[f"ort_{p}_over_torch_eager"] = ratio(f"onnxruntime {p} b{big}", "torch eager")
        out[f"ort_{p}_over_torch_channels_last"] = ratio(f"onnxruntime {p} b{big}", "torch channels_last")
    out["int8_over_fp32"] = ratio(f"onnxruntime int8 b{big}", f"onnxruntime fp32 b{big}")
    out["fp16_over_fp32"] = ratio(f"onnxruntime fp16 b{big}", f"onnxruntime fp32 b{big}")
    out["ort_fp16_over_torch_channels_last_fp16"] = ratio(
        f"onnxruntime fp16 b{big}", "torch channels_last fp16"
    )
    out["torch_channels_last_over_eager"] = ratio("torch channels_last", "torch eager")
    if big != small:
        out[f"fp32_b{big}_over_b{small}"] = ratio(f"onnxruntime fp32 b{big}", f"onnxruntime fp32 b{small}")
    return {k: v for k, v in out.items() if v is not None}
