"""Training smoke test: a few steps on the committed sample set, export, parity ORT vs PyTorch."""

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import train as train_script
from parcelscan.training.export import OUTPUT_NAMES, sha256
from parcelscan.training.network import DetectorNet, NetOutput

SAMPLE = Path(__file__).resolve().parents[1] / "datasets" / "sample"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    work = tmp_path_factory.mktemp("work")
    code = train_script.main(
        [
            "--data",
            str(SAMPLE),
            "--val",
            str(SAMPLE),
            "--val-single",  # the mechanism, not the modality: the sample's scans are dual-energy
            str(SAMPLE),
            "--out",
            str(out),
            "--epochs",
            "2",
            "--tiles-per-epoch",
            "16",
            "--batch-size",
            "8",
            "--work",
            str(work),
            "--seed",
            "3",
        ]
    )
    assert code == 0
    return out, work


def test_smoke_training_exports_models_and_card(trained):
    out, work = trained
    card = json.loads((out / "parcelscan.json").read_text())
    assert set(card["files"]) == {"fp32", "int8", "fp16"}
    for entry in card["files"].values():
        assert sha256(out / entry["file"]) == entry["sha256"]
    assert card["outputs"] == list(OUTPUT_NAMES) and 0 <= card["threshold"] <= 1
    assert card["training"]["seed"] == 3 and "--epochs 2" in card["training"]["command"]
    assert len(card["training"]["history"]) == 2
    model = onnx.load(str(out / "parcelscan.onnx"))
    onnx.checker.check_model(model)
    assert model.opset_import[0].version >= 17
    meta = {p.key: p.value for p in model.metadata_props}
    embedded = json.loads(meta["parcelscan"])
    assert embedded["preprocess"] == card["preprocess"] and embedded["threshold"] == card["threshold"]
    assert (work / "last.pt").is_file() and (work / "best.pt").is_file()
    # each file carries the threshold chosen for it on the validation set, through ONNX Runtime
    for kind, entry in card["files"].items():
        meta = {p.key: p.value for p in onnx.load(str(out / entry["file"])).metadata_props}
        assert json.loads(meta["parcelscan"])["threshold"] == entry["threshold"]
        assert card["training"]["validation"][kind]["threshold"] == entry["threshold"]
        # and the single-energy threshold chosen on --val-single, here the same scans
        assert json.loads(meta["parcelscan"])["single_energy_threshold"] == entry["single_energy_threshold"]
        assert entry["single_energy_threshold"] == pytest.approx(entry["threshold"])
    assert card["single_energy_threshold"] == card["files"]["fp32"]["single_energy_threshold"]


def test_onnx_matches_pytorch_on_other_batch_and_image_sizes(trained):
    out, work = trained
    net = DetectorNet()
    net.load_state_dict(torch.load(work / "best.pt", weights_only=True))
    net.eval()
    x = torch.from_numpy(np.random.default_rng(0).uniform(0, 1.5, (3, 3, 96, 160)).astype(np.float32))
    with torch.no_grad():
        ref = net(x)
    assert isinstance(ref, NetOutput) and ref._fields == OUTPUT_NAMES
    for precision, atol in (("parcelscan.onnx", 1e-4), ("parcelscan.fp16.onnx", 2e-2)):
        sess = ort.InferenceSession(str(out / precision), providers=["CPUExecutionProvider"])
        assert [o.name for o in sess.get_outputs()] == list(OUTPUT_NAMES)
        heat, score = sess.run(None, {"image": x.numpy()})
        assert heat.shape == (3, 1, 96, 160) and score.shape == (3,)
        np.testing.assert_allclose(heat, ref.heatmap.numpy(), atol=atol)
        np.testing.assert_allclose(score, ref.score.numpy(), atol=atol)
    sess = ort.InferenceSession(str(out / "parcelscan.int8.onnx"), providers=["CPUExecutionProvider"])
    heat8, _ = sess.run(None, {"image": x.numpy()})
    assert heat8.shape == (3, 1, 96, 160) and np.all((heat8 >= 0) & (heat8 <= 1))


def test_training_resumes_from_a_weights_only_checkpoint(trained, tmp_path):
    _, work = trained
    state = torch.load(work / "last.pt", weights_only=True)
    assert state["epoch"] == 1 and "optimizer" in state
    code = train_script.main(
        [
            "--data",
            str(SAMPLE),
            "--val",
            str(SAMPLE),
            "--out",
            str(tmp_path),
            "--epochs",
            "3",
            "--tiles-per-epoch",
            "16",
            "--batch-size",
            "8",
            "--work",
            str(work),
            "--seed",
            "3",
            "--resume",
            str(work / "last.pt"),
            "--no-int8",
            "--no-fp16",
        ]
    )
    assert code == 0
    history = json.loads((tmp_path / "parcelscan.json").read_text())["training"]["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]


def test_evaluate_script_writes_metrics_roc_and_card(trained):
    import evaluate as evaluate_script

    out, _ = trained
    models = [str(out / f) for f in ("parcelscan.onnx", "parcelscan.int8.onnx", "parcelscan.fp16.onnx")]
    assert evaluate_script.main(["--model", *models, "--data", str(SAMPLE)]) == 0
    result = json.loads((out / "parcelscan.eval.json").read_text())
    s = result["parcelscan.onnx"]["summary"]
    assert s["n_parcels"] == 4 and s["n_positive"] == 3 and 0 <= s["auroc"] <= 1
    assert set(result["parcelscan.onnx"]["strata"]) == {
        "category",
        "concealment",
        "material",
        "mass_g",
        "dprime",
    }
    assert "benign" in result["parcelscan.onnx"]["strata"]["category"]  # the sample's one negative
    card = json.loads((out / "parcelscan.json").read_text())
    assert set(card["evaluation"]["auroc_delta_vs_fp32"]) == {Path(m).name for m in models}
    assert (out / "parcelscan.roc.png").read_bytes()[:4] == b"\x89PNG"
    # tampering is refused: the card's sha256 no longer matches
    tampered = out / "parcelscan.int8.onnx"
    data = tampered.read_bytes()
    tampered.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(SystemExit, match="sha256"):
        evaluate_script.main(["--model", str(tampered), "--data", str(SAMPLE)])
    tampered.write_bytes(data)


def test_log_features_make_the_dual_energy_ratio_a_channel_difference():
    from parcelscan.training.network import LOG_FLOOR, LogAttenuation

    a_low, a_high = 1.6, 0.8  # scaled attenuations of a dense material (R = 2)
    x = torch.tensor([[[[a_low]], [[a_high]], [[1.0]]]], dtype=torch.float32)
    f = LogAttenuation()(x)
    assert f.shape == (1, 5, 1, 1)
    np.testing.assert_allclose(f[0, :3].flatten(), x.flatten())
    ratio = np.exp(float(f[0, 3] - f[0, 4]))
    assert ratio == pytest.approx((a_low + LOG_FLOOR) / (a_high + LOG_FLOOR), rel=1e-5)
    # negative attenuation (noise on air) is floored, never a NaN
    assert torch.isfinite(LogAttenuation()(-x)).all()
    with pytest.raises(ValueError, match="in_channels"):
        DetectorNet(in_channels=1)


def test_tile_sampler_centres_masses_dense_matter_and_random_tiles():
    from parcelscan.training.data import DENSE_SCALED, Example, TileSampler, _dense_pixels

    image = np.zeros((3, 120, 120), np.float32)
    target = np.zeros((120, 120), np.float32)
    image[1, 20:30, 20:30] = 1.0  # dense innocent block
    image[1, 90:96, 90:96] = 1.0
    target[90:96, 90:96] = 1.0  # the concealed mass
    dense = _dense_pixels(image, target, seed=0)
    assert len(dense) == 100 and np.all((dense >= 20) & (dense < 30))
    assert np.all(image[1][dense[:, 0], dense[:, 1]] > DENSE_SCALED)
    pos = Example(image, target, True, [(93, 93)], {}, dense)
    sampler = TileSampler([pos], size=32, length=400, seed=1, augment=False)
    on_mass = on_dense = 0
    for i in range(len(sampler)):
        x, y = sampler[i]
        on_mass += bool(y.max() > 0.5)
        on_dense += bool(y.max() < 0.5 and x[1].max() > DENSE_SCALED)
    # 40 % centred on the mass (it stays in the 32-px tile despite jitter), 25 % on dense matter
    assert 0.33 < on_mass / 400 < 0.5 and 0.18 < on_dense / 400 < 0.4


def test_false_alarms_by_content_ranks_the_goods_that_alarm():
    import evaluate as evaluate_script

    def rec(score, positive, contents):
        return {"score": score, "positive": positive, "contents": contents}

    records = [rec(0.9, False, ["motor", "book"]) for _ in range(3)]
    records += [rec(0.1, False, ["motor", "book"]) for _ in range(2)]
    records += [rec(0.1, False, ["book"]) for _ in range(5)]
    records += [rec(0.95, True, ["motor"]) for _ in range(9)]  # positives are not false alarms
    records += [rec(0.99, False, ["rare"])]  # under min_count
    rows = evaluate_script.false_alarms_by_content(records, threshold=0.5)
    assert list(rows) == ["motor", "book"]
    assert rows["motor"] == {"n_negative": 5, "fpr": 0.6}
    assert rows["book"] == {"n_negative": 10, "fpr": 0.3}
