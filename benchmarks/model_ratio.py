"""Preprocessing against model inference on the same dual-energy scan (1,024 x 1,024 default), side by side.

Interleaves the two in one run (medians, one OpenCV thread for preprocessing, one ORT intra-op
thread for the model) and reports the ratio, which is what survives a noisy shared machine. The
model is the shipped ``models/parcelscan.onnx`` when present, else the same network exported with
random weights (speed does not depend on the weights).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from ._inputs import FULL, MODELS, simulated_scans


def _model_path(tmp: Path) -> Path:
    shipped = MODELS / "parcelscan.onnx"
    if shipped.is_file():
        return shipped
    import torch

    from parcelscan.preprocess import PreprocessConfig
    from parcelscan.training.export import export_onnx
    from parcelscan.training.network import DetectorNet

    torch.manual_seed(0)
    path = tmp / "random.onnx"
    card = {
        "preprocess": PreprocessConfig().to_dict(),
        "outputs": ["heatmap", "score"],
        "threshold": 0.5,
        "region_threshold": 0.5,
        "version": "random",
    }
    export_onnx(DetectorNet(), path, card)
    return path


def run(repeats: int = 15, size: int = FULL) -> dict:
    import cv2

    from parcelscan.engine import OnnxModel

    cv2.setNumThreads(1)
    scan = simulated_scans(1, size)[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = _model_path(Path(tmp))
        model = OnnxModel(path, threads=1, allow_spinning=False)
        pre = model.preprocessor(scan)
        batch, _ = model.preprocessor.tiles(pre)
        model.run(batch)  # warm-up
        t_pre, t_model = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            model.preprocessor(scan)
            t_pre.append(time.perf_counter() - t)
            t = time.perf_counter()
            model.run(batch)
            t_model.append(time.perf_counter() - t)
    pre_ms, model_ms = 1e3 * float(np.median(t_pre)), 1e3 * float(np.median(t_model))
    return {
        "name": "preprocess_vs_model",
        "model": path.name,
        "scan": " x ".join(map(str, scan.shape)),
        "tiles": len(batch),
        "preprocess_ms": pre_ms,
        "model_ms": model_ms,
        "model_over_preprocess": model_ms / pre_ms,
    }
