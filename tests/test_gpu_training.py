"""Training on a CUDA device (``pytest -m gpu``): skipped where torch sees no GPU."""

from pathlib import Path

import numpy as np
import pytest
import torch

from parcelscan.preprocess import PreprocessConfig
from parcelscan.preprocess.tiling import tiles
from parcelscan.training.data import load_dataset
from parcelscan.training.loop import TrainConfig, train

SAMPLE = Path(__file__).resolve().parents[1] / "datasets" / "sample"

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs torch with a CUDA device"),
]


def test_training_on_cuda_with_loader_workers_gives_a_model_the_cpu_agrees_with(tmp_path):
    pre = PreprocessConfig()
    examples = load_dataset(SAMPLE, pre, limit=6, progress=False, workers=2)
    cfg = TrainConfig(epochs=2, tiles_per_epoch=64, batch_size=16, tile=128, device="cuda", loader_workers=2)
    model, history = train(examples, examples, pre, cfg, tmp_path, log=lambda *_: None)
    assert next(model.parameters()).is_cuda and torch.backends.cudnn.benchmark
    assert len(history) == 2 and all(np.isfinite(h["loss"]) for h in history)
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "last.pt").is_file()
    batch, _ = tiles(examples[0].image.astype(np.float32), pre.tile, pre.overlap)
    x = torch.from_numpy(batch[:4])
    with torch.no_grad():
        on_gpu = model.eval()(x.cuda()).heatmap.cpu()
        on_cpu = model.cpu()(x).heatmap
    # TF32 convolutions on the GPU: agreement to about 1e-3, not bit for bit
    torch.testing.assert_close(on_gpu, on_cpu, atol=1e-2, rtol=0)


def test_bf16_training_on_cuda_runs_the_convolutions_in_bfloat16(tmp_path):
    from parcelscan.training.loop import forward_train

    pre = PreprocessConfig()
    examples = load_dataset(SAMPLE, pre, limit=3, progress=False)
    cfg = TrainConfig(epochs=2, tiles_per_epoch=32, batch_size=8, tile=128, device="cuda", precision="bf16")
    model, history = train(examples, examples, pre, cfg, tmp_path, log=lambda *_: None)
    assert all(np.isfinite(h["loss"]) for h in history)
    assert all(p.dtype == torch.float32 and p.is_cuda for p in model.parameters())
    seen = []
    model.enc3[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    out = forward_train(model.train(), torch.rand(2, 3, 64, 64, device="cuda"), "bf16")
    assert seen == [torch.bfloat16] and out.heatmap.dtype == torch.float32


def test_train_script_on_cuda_writes_weights_card_and_onnx_from_the_cpu(tmp_path):
    import json
    import sys

    sys.path.insert(0, str(SAMPLE.parents[1] / "scripts"))
    import train as train_script

    out = tmp_path / "models"
    argv = ["--data", str(SAMPLE), "--val", str(SAMPLE), "--out", str(out), "--work", str(tmp_path / "w")]
    argv += ["--device", "cuda", "--epochs", "1", "--tiles-per-epoch", "16", "--batch-size", "8", "--no-int8"]
    assert train_script.main([*argv, "--no-fp16", "--workers", "2", "--loader-workers", "2"]) == 0
    card = json.loads((out / "parcelscan.json").read_text())
    assert card["training"]["config"]["device"] == "cuda" and card["training"]["gpu"]
    assert set(card["files"]) == {"fp32"} and (out / "parcelscan.onnx").is_file()
    state = torch.load(out / "parcelscan.pt", weights_only=True)
    assert all(t.device.type == "cpu" for t in state.values())
