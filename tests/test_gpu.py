"""CUDA / TensorRT paths: run only where onnxruntime-gpu sees a GPU (``pytest -m gpu``); skipped here.

They check what cannot be checked on a CPU: the GPU provider really active, IOBinding with device
buffers and batch buckets, and fp16 on the GPU agreeing with fp32 on the CPU.
"""

import numpy as np
import onnxruntime as ort
import pytest

from parcelscan import Detector
from parcelscan.sim.catalogue import SceneConfig, random_parcel
from parcelscan.sim.render import render_scene

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        "CUDAExecutionProvider" not in ort.get_available_providers(),
        reason="needs onnxruntime-gpu with the CUDA execution provider",
    ),
]


@pytest.fixture(scope="module")
def scans():
    out = []
    for seed in range(3):
        rng = np.random.default_rng([seed, 5])
        scene, scanner = random_parcel(
            rng, SceneConfig(max_parcel_cm=(60.0, 40.0, 30.0), positive_fraction=1.0)
        )
        out.append(render_scene(scene, scanner, rng).scan)
    return out


@pytest.mark.parametrize("precision, atol", [("fp32", 1e-3), ("fp16", 2e-2)])
def test_cuda_matches_cpu(scans, precision, atol):
    cpu = Detector.from_pretrained(threads=2)
    gpu = Detector.from_pretrained(precision=precision, providers="cuda")
    assert gpu.info["providers"][0] == "CUDAExecutionProvider"
    assert gpu.model.io_binding and gpu.model.device == "cuda" and gpu.model.buckets
    for a, b in zip(cpu.detect(scans), gpu.detect(scans), strict=True):
        assert abs(a.score - b.score) < atol
        np.testing.assert_allclose(a.heatmap, b.heatmap, atol=atol)


def test_tensorrt_when_installed(scans):
    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        pytest.skip("TensorRT execution provider not installed")
    det = Detector.from_pretrained(precision="fp32", providers="tensorrt")
    assert det.info["providers"][0] == "TensorrtExecutionProvider"
    assert det.detect(scans[0]).heatmap.ndim == 2
