"""The machine's ceiling: float32 matrix-multiply GFLOP/s, and on a GPU the device copy bandwidth.

Model efficiency is quoted against a peak measured in the same run (performance.md), never against a
datasheet. On the CPU: NumPy (its BLAS) and PyTorch at 1 thread and at ``threads``. NumPy's BLAS pool is
fixed when NumPy is imported, and the suite pins it to one thread for the one-core figures, so the
multi-thread NumPy figure runs in a child process with the thread variables set. On a CUDA GPU (only
when PyTorch sees one, or ONNX Runtime offers CUDA): host-to-device, device-to-host and
device-to-device copy bandwidth in GB/s, and PyTorch float32 (TF32 off) and float16 matmul.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

_NUMPY_CHILD = """
import json, sys, time, numpy as np
n, seconds = int(sys.argv[1]), float(sys.argv[2])
a = np.random.default_rng(0).random((n, n), dtype=np.float32); b = a.T.copy(); a @ b
ts, end = [], time.perf_counter() + seconds
while time.perf_counter() < end or len(ts) < 3:
    t = time.perf_counter(); a @ b; ts.append(time.perf_counter() - t)
print(json.dumps(2 * n**3 / float(np.median(ts)) / 1e9))
"""


def _repeat(fn: Callable[[], object], seconds: float, sync: Callable[[], object] = lambda: None) -> float:
    """Median wall time (s) of ``fn`` over ``seconds`` (at least 3 calls), after one warm-up."""
    fn()
    sync()
    ts, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end or len(ts) < 3:
        t = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def numpy_matmul_gflops(n: int, threads: int, seconds: float) -> float:
    """float32 (n, n) @ (n, n) GFLOP/s with NumPy's BLAS on ``threads`` threads (in a child process)."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    out = subprocess.run(
        [sys.executable, "-c", _NUMPY_CHILD, str(n), str(seconds)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120 + 10 * seconds,
    )
    return float(json.loads(out.stdout))


def torch_matmul(n: int, threads: int | None = None, device: str = "cpu", dtype: str = "float32"):
    """A zero-argument callable doing one (n, n) matmul in PyTorch, and its synchronise function.

    ``threads`` sets PyTorch's intra-op pool (CPU) before the call; None leaves it as it is.
    """
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = False  # a float32 ceiling, not TF32
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.rand((n, n), generator=g, device=device, dtype=getattr(torch, dtype))
    b = torch.rand((n, n), generator=g, device=device, dtype=getattr(torch, dtype))
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def call():
        if threads is not None and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        return a @ b

    return call, sync


def _gpu(n: int, seconds: float, copy_mb: int) -> dict | None:
    """GPU copy bandwidth (GB/s) and matmul TFLOP/s; None without a CUDA device."""
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    if cuda:
        nbytes = copy_mb << 20
        host = torch.empty(nbytes, dtype=torch.uint8).pin_memory()
        dev, dev2 = (
            torch.empty(nbytes, dtype=torch.uint8, device="cuda"),
            torch.empty_like(host, device="cuda"),
        )
        sync = torch.cuda.synchronize
        out = {
            "device": torch.cuda.get_device_name(0),
            "copy_mb": copy_mb,
            "h2d_pinned_gb_s": nbytes
            / _repeat(lambda: dev.copy_(host, non_blocking=True), seconds, sync)
            / 1e9,
            "d2h_pinned_gb_s": nbytes
            / _repeat(lambda: host.copy_(dev, non_blocking=True), seconds, sync)
            / 1e9,
            # a device-to-device copy reads and writes every byte
            "d2d_gb_s": 2 * nbytes / _repeat(lambda: dev2.copy_(dev), seconds, sync) / 1e9,
        }
        m = 4 * n
        for dtype in ("float32", "float16"):
            call, sync = torch_matmul(m, device="cuda", dtype=dtype)
            out[f"matmul_{dtype}_tflops"] = 2 * m**3 / _repeat(call, seconds, sync) / 1e12
        return out
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return None
    host = np.ones(copy_mb << 18, np.float32)  # copy_mb MiB; pageable memory, as ORT copies it
    value = ort.OrtValue.ortvalue_from_numpy(host, "cuda", 0)
    return {
        "device": "cuda:0 (via onnxruntime; PyTorch without CUDA)",
        "copy_mb": copy_mb,
        "h2d_pageable_gb_s": host.nbytes
        / _repeat(lambda: ort.OrtValue.ortvalue_from_numpy(host, "cuda", 0), seconds)
        / 1e9,
        "d2h_pageable_gb_s": host.nbytes / _repeat(value.numpy, seconds) / 1e9,
    }


def run(threads: int, n: int = 1024, seconds: float = 1.0, gpu: bool = False, progress=None) -> dict:
    """Matmul GFLOP/s per library and thread count; ``peak_gflops`` is the best of them.

    The peak is taken over every thread count up to ``threads``: on a machine shared with a busy
    process one thread can beat two, and the model could have run on one.

    gpu : also measure the CUDA device (copy bandwidth, matmul) when there is one.
    """
    counts = sorted({1, threads})
    gflops: dict[str, dict[str, float]] = {"numpy": {}, "torch": {}}
    steps, done = 2 * len(counts) + gpu, 0
    for t in counts:
        gflops["numpy"][str(t)] = numpy_matmul_gflops(n, t, seconds)
        done += 1
        if progress:
            progress(done, steps)
    try:
        import torch
    except ImportError:
        del gflops["torch"]
    else:
        before = torch.get_num_threads()
        for t in counts:
            call, sync = torch_matmul(n, t)
            gflops["torch"][str(t)] = 2 * n**3 / _repeat(call, seconds, sync) / 1e9
            done += 1
            if progress:
                progress(done, steps)
        torch.set_num_threads(before)
    gpu_result = _gpu(n, seconds, copy_mb=256) if gpu else None
    if progress and gpu:
        progress(steps, steps)
    peak = max(g for per in gflops.values() for g in per.values())
    return {
        "name": "ceiling",
        "matmul_n": n,
        "threads": threads,
        "gflops": gflops,
        "peak_gflops": peak,
        "gpu": gpu_result,
    }
