"""Training smoke test: a few steps on the committed sample set, export, parity ORT vs PyTorch."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import train as train_script
from parcelscan.postprocess import DEFAULT_REGION_GROW
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
    assert card["region_grow_threshold"] == embedded["region_grow_threshold"] == DEFAULT_REGION_GROW


def test_no_export_stops_after_the_weights_and_the_training_card(tmp_path):
    out = tmp_path / "m"
    argv = ["--data", str(SAMPLE), "--val", str(SAMPLE), "--out", str(out), "--work", str(tmp_path / "w")]
    argv += ["--epochs", "1", "--tiles-per-epoch", "8", "--batch-size", "8", "--limit", "3", "--no-export"]
    assert train_script.main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["parcelscan.json", "parcelscan.pt"]
    card = json.loads((out / "parcelscan.json").read_text())
    assert "files" not in card and card["training"]["weights"]["sha256"] == sha256(out / "parcelscan.pt")
    assert card["training"]["history"][0]["lr"] > 0


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
    # regions grown to another level (1: not grown) for comparison, not recorded in the card
    fp32 = ["--model", models[0], "--data", str(SAMPLE)]
    assert evaluate_script.main([*fp32, "--region-grow", "1", "--no-card"]) == 0
    ungrown = json.loads((out / "parcelscan.eval.json").read_text())["parcelscan.onnx"]
    assert ungrown["region_grow_threshold"] == 1
    # a comparison written elsewhere leaves the model's own evaluation files alone
    before = (out / "parcelscan.eval.json").read_bytes()
    assert evaluate_script.main([*fp32, "--out", str(out / "compare"), "--no-card"]) == 0
    assert (out / "parcelscan.eval.json").read_bytes() == before
    elsewhere = json.loads((out / "compare" / "parcelscan.eval.json").read_text())["parcelscan.onnx"]
    assert elsewhere["region_grow_threshold"] == DEFAULT_REGION_GROW
    assert (out / "compare" / "parcelscan.roc.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit):
        evaluate_script.main([*fp32, "--region-grow", "0"])
    # a candidate named like the shipped file (here the same model, copied): keyed by path, both kept
    twin = out / "candidate" / "parcelscan.onnx"
    twin.parent.mkdir()
    for name in ("parcelscan.onnx", "parcelscan.json"):
        shutil.copy(out / name, twin.parent / name)
    compare = ["--data", str(SAMPLE), "--out", str(out / "twins"), "--no-card"]
    assert evaluate_script.main(["--model", models[0], str(twin), *compare]) == 0
    both = json.loads((out / "twins" / "parcelscan.eval.json").read_text())
    assert set(both) == {models[0], str(twin)} and both[models[0]]["summary"] == both[str(twin)]["summary"]
    assert "targets" in both[models[0]] and "targets" not in both[str(twin)]
    assert both[str(twin)]["paired_vs_first"]["hit_rate"] == [0.0, 0.0]  # the same parcels, same model
    with pytest.raises(SystemExit):
        evaluate_script.main(["--model", models[0], models[0], *compare])
    assert evaluate_script.main(["--model", *models, "--data", str(SAMPLE)]) == 0
    result = json.loads((out / "parcelscan.eval.json").read_text())
    assert result["parcelscan.onnx"]["region_grow_threshold"] == DEFAULT_REGION_GROW  # the card's
    s = result["parcelscan.onnx"]["summary"]
    assert s["n_parcels"] == 4 and s["n_positive"] == 3 and 0 <= s["auroc"] <= 1
    assert set(result["parcelscan.onnx"]["strata"]) == {
        "category",
        "concealment",
        "material",
        "mass_g",
        "dprime",
        "dprime_discrimination",
        "opaque_share",
    }
    assert "benign" in result["parcelscan.onnx"]["strata"]["category"]  # the sample's one negative
    # beside each stratum of positives: the ideal observer, and the tighter discrimination observer
    for row in result["parcelscan.onnx"]["strata"]["concealment"].values():
        assert 0 <= row["ideal_discrimination_tpr"] <= row["ideal_tpr"] <= 1
    card = json.loads((out / "parcelscan.json").read_text())
    assert set(card["evaluation"]["auroc_delta_vs_fp32"]) == {Path(m).name for m in models}
    targets = {t["target"]: t for t in card["evaluation"]["targets"]}  # each judged met or not
    assert {"parcel AUROC", "int8 AUROC within fp32's", "fp16 AUROC within fp32's"} <= set(targets)
    assert targets["parcel AUROC"]["measured"] == s["auroc"] and targets["parcel AUROC"]["required"] == 0.99
    assert 0 <= targets["TPR at 1 % FPR"]["discrimination_bound"] <= 1
    assert [result[Path(m).name]["precision"] for m in models] == ["fp32", "int8", "fp16"]  # the files' own
    int8_drop = s["auroc"] - result["parcelscan.int8.onnx"]["summary"]["auroc"]
    # 95 % bootstrap intervals; each later file paired against the first on the same parcels
    low, high = result["parcelscan.onnx"]["intervals"]["auroc"]
    assert 0 <= low <= high <= 1
    paired_low, paired_high = result["parcelscan.int8.onnx"]["paired_vs_first"]["auroc"]
    assert -1 <= paired_low <= paired_high <= 1
    assert set(card["evaluation"]["paired_vs_fp32"]) == {"parcelscan.int8.onnx", "parcelscan.fp16.onnx"}
    assert card["evaluation"]["intervals"] == {
        Path(m).name: result[Path(m).name]["intervals"] for m in models
    }
    assert targets["int8 AUROC within fp32's"]["measured"] == pytest.approx(int8_drop, abs=1e-12)
    assert result["parcelscan.onnx"]["targets"] == card["evaluation"]["targets"]
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


def _trained_looking(net: DetectorNet, seed: int) -> DetectorNet:
    """``net`` in eval mode with random batch-norm scales, shifts and statistics outside the context
    blocks (a fresh net has unit ones, which would hide a mix-up of tensors)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if name.startswith("context.") or not t.is_floating_point():
                continue
            if name.endswith(("running_var", "bn.weight")) or (t.dim() == 1 and name.endswith("weight")):
                t.copy_(0.8 + 0.4 * torch.rand(t.shape, generator=g))
            elif name.endswith(("running_mean", "bias")):
                t.copy_(0.2 * torch.rand(t.shape, generator=g) - 0.1)
    return net.eval()


def test_context_blocks_start_as_the_identity_so_a_network_grows_from_smaller_weights():
    from parcelscan.training.network import gflops, load_grown

    small = _trained_looking(DetectorNet(context=0), 1)
    grown = DetectorNet(context=3).eval()
    missing = load_grown(grown, small.state_dict())
    assert missing and all(k.startswith("context.") for k in missing)
    x = torch.from_numpy(np.random.default_rng(0).uniform(0, 1.5, (2, 3, 64, 96)).astype(np.float32))
    with torch.no_grad():
        np.testing.assert_array_equal(grown(x).heatmap.numpy(), small(x).heatmap.numpy())
        features = torch.rand(1, 64, 6, 6)  # a ReLU output at 1/16
        np.testing.assert_array_equal(grown.context(features).numpy(), features.numpy())
        # once trained, a block changes its features: the grown capacity is used, not dead
        torch.nn.init.normal_(grown.context[1].body[4].weight, std=1.0)
        assert float((grown.context(features) - features).abs().max()) > 0.1
    assert sum(p.numel() for p in grown.parameters()) > 2 * sum(p.numel() for p in small.parameters())
    assert gflops(small) < gflops(grown) < 1.4 * gflops(small)  # the blocks run at 1/16: cheap

    with pytest.raises(ValueError, match="unexpected keys"):  # fewer blocks than the weights
        load_grown(DetectorNet(context=1), grown.state_dict())
    with pytest.raises(ValueError, match="narrower widths"):
        load_grown(DetectorNet(context=0, widths=(24, 32, 48, 32)), small.state_dict())
    with pytest.raises(ValueError, match="input channels do not fit"):  # more input channels than the model
        load_grown(DetectorNet(context=0), DetectorNet(in_channels=4, context=0).state_dict())
    half = {k: v for k, v in grown.state_dict().items() if not k.startswith("context.2.body.4")}
    with pytest.raises(ValueError, match="part of a context block"):
        load_grown(DetectorNet(context=3), half)


@pytest.mark.parametrize("widths", [(24, 32, 64, 96), (32, 40, 56, 80)])
def test_a_wider_network_starts_computing_what_the_narrow_weights_computed_and_trains_new_channels(widths):
    from parcelscan.training.network import gflops, load_grown, widths_of

    with pytest.raises(ValueError, match=r"no stem\.0\.weight"):  # not a DetectorNet state
        widths_of({"conv.weight": torch.zeros(1)})
    narrow = _trained_looking(DetectorNet(context=2), 3)
    wide = DetectorNet(context=3, widths=widths)
    grown = load_grown(wide, narrow.state_dict())
    assert "enc4.0.weight" in grown and "dec3.0.weight" in grown and "context.2.body.0.weight" in grown
    assert "head.weight" in grown if widths[1] > 32 else "head.weight" not in grown
    assert gflops(wide) > 1.2 * gflops(narrow)
    x = torch.from_numpy(np.random.default_rng(1).uniform(0, 1.5, (2, 3, 64, 96)).astype(np.float32))
    with torch.no_grad():
        for training in (False, True):  # running statistics, and batch statistics: old channels keep theirs
            narrow.train(training), wide.train(training)
            np.testing.assert_allclose(wide.logits(x).numpy(), narrow.logits(x).numpy(), rtol=0, atol=1e-5)
    # the new channels are alive and the old outputs learn to read them: nonzero gradients there
    wide.train()
    wide.logits(x).sum().backward()
    w3, w4 = 48, 64
    reading_new = wide.dec3[0].weight.grad[:w3, w4 : widths[3]]  # old outputs x new 1/16 channels
    assert float(reading_new.abs().max()) > 0
    assert torch.equal(wide.dec3[0].weight[:w3, w4 : widths[3]], torch.zeros_like(reading_new))
    # the skip connection's old channels sit after all 1/16 channels in the wider concatenation
    torch.testing.assert_close(
        wide.dec3[0].weight.detach()[:w3, widths[3] : widths[3] + w3],
        narrow.dec3[0].weight[:, w4:],
        rtol=0,
        atol=0,
    )


def test_network_config_round_trips_and_old_cards_mean_no_context_blocks():
    net = DetectorNet(context=2, widths=(8, 16, 24, 32))
    again = DetectorNet.from_config(json.loads(json.dumps(net.config())))
    assert again.config() == net.config() == {"in_channels": 3, "widths": [8, 16, 24, 32], "context": 2}
    assert again.state_dict().keys() == net.state_dict().keys()
    assert DetectorNet.from_config(None).context_blocks == 0  # cards before 0.6.0 have no config
    assert DetectorNet.from_card({"version": "0.5.0", "network": {}}).context_blocks == 0
    with pytest.raises(ValueError, match="unknown keys"):
        DetectorNet.from_config({"context": 1, "depth": 3})
    with pytest.raises(ValueError, match="context must be 0 to 4"):
        DetectorNet(context=5)
    with pytest.raises(ValueError, match="widths"):
        DetectorNet(widths=(8, 16, 24))


def test_training_grows_context_blocks_onto_smaller_init_weights(tmp_path, capsys):
    from parcelscan.evaluation import auroc
    from parcelscan.preprocess import PreprocessConfig
    from parcelscan.training.data import load_dataset
    from parcelscan.training.loop import predict_examples

    small = _trained_looking(DetectorNet(context=0), 2)
    torch.save(small.state_dict(), tmp_path / "small.pt")
    args = ["--data", str(SAMPLE), "--val", str(SAMPLE), "--epochs", "1", "--tiles-per-epoch", "8"]
    args += ["--batch-size", "8", "--seed", "3", "--no-int8", "--no-fp16", "--work", str(tmp_path / "w")]
    args += ["--out", str(tmp_path / "m"), "--init", str(tmp_path / "small.pt")]
    with pytest.raises(SystemExit):
        train_script.main([*args, "--context-blocks", "5"])
    assert "--context-blocks must be 0 to 4" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_script.main([*args, "--widths", "24", "32", "0", "64"])
    assert "--widths must be positive" in capsys.readouterr().err
    assert train_script.main([*args, "--context-blocks", "2", "--widths", "24", "32", "48", "80"]) == 0
    assert "grown from" in capsys.readouterr().out
    card = json.loads((tmp_path / "m" / "parcelscan.json").read_text())
    assert card["network"]["config"] == {"in_channels": 3, "widths": [24, 32, 48, 80], "context": 2}
    # the grown network starts exactly where the smaller one was: epoch 0 is its validation AUROC
    examples = load_dataset(SAMPLE, PreprocessConfig(), progress=False)
    scores = [s for s, _ in predict_examples(small, examples, PreprocessConfig(), "cpu")]
    start = auroc(np.array(scores), np.array([ex.positive for ex in examples]))
    assert card["training"]["history"][0]["val_auroc"] == pytest.approx(start, abs=1e-9)
    grown = DetectorNet.from_card(card)
    grown.load_state_dict(torch.load(tmp_path / "m" / "parcelscan.pt", weights_only=True))  # strict
    # fine-tuning a widened model needs no --widths: the init weights' widths are the default
    args[args.index("--init") + 1] = str(tmp_path / "m" / "parcelscan.pt")
    assert train_script.main([*args, "--context-blocks", "2"]) == 0
    card = json.loads((tmp_path / "m" / "parcelscan.json").read_text())
    assert card["network"]["config"]["widths"] == [24, 32, 48, 80]


def test_predictions_batched_across_parcels_equal_one_parcel_at_a_time():
    from parcelscan.preprocess import PreprocessConfig
    from parcelscan.preprocess.tiling import stitch, tiles
    from parcelscan.training.data import load_dataset
    from parcelscan.training.loop import predict_examples

    pre = PreprocessConfig()
    examples = load_dataset(SAMPLE, pre, progress=False)
    model = _trained_looking(DetectorNet(context=1), 6).eval()
    counts = [len(tiles(ex.image.astype(np.float32), pre.tile, pre.overlap)[0]) for ex in examples]
    assert max(counts) > 2 and len(examples) == 4  # so batch 3 both splits a parcel and joins parcels
    reference = []
    with torch.no_grad():  # each parcel alone, tile by tile
        for ex in examples:
            batch, origins = tiles(ex.image.astype(np.float32), pre.tile, pre.overlap)
            maps = np.concatenate([model(torch.from_numpy(t[None])).heatmap.numpy() for t in batch])
            reference.append(stitch(maps, origins, ex.image.shape[1:], pre.overlap)[0])
    for size, join in ((3, True), (1000, True), (3, False), (None, None)):
        out = predict_examples(model, examples, pre, "cpu", batch_size=size, join=join)
        assert len(out) == len(examples)
        for (score, heat), ref in zip(out, reference, strict=True):
            np.testing.assert_allclose(heat, ref, atol=1e-5)
            assert score == pytest.approx(float(ref.max()), abs=1e-5)


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


def test_tile_sampler_category_weights_draw_parcels_in_proportion():
    from parcelscan.training.data import Example, TileSampler

    def parcel(category, marker, positive=True):
        image = np.zeros((3, 64, 64), np.float32)
        image[0] = marker  # tells the tiles apart
        target = np.zeros((64, 64), np.float32)
        if positive:
            target[30:34, 30:34] = 1.0
        return Example(image, target, positive, [(32, 32)] if positive else [], {"category": category})

    examples = [parcel("powder", 1.0), parcel("blend", 2.0), parcel("benign", 3.0, positive=False)]

    def shares(**weights):
        sampler = TileSampler(examples, size=32, length=2000, seed=4, augment=False, category_weights=weights)
        markers = np.array([float(sampler[i][0][0].max()) for i in range(len(sampler))])
        return {m: float(np.mean(markers == m)) for m in (1.0, 2.0, 3.0)}

    plain, powder3 = shares(), shares(powder=3.0)
    assert abs(plain[1.0] - plain[2.0]) < 0.06  # uniform: the two positives alike
    # 40 % of tiles centre on a mass: three quarters of those come from the weighted parcel now,
    # and the random share (one in three parcels before) draws it 3/5 of the time
    assert powder3[1.0] - powder3[2.0] > 0.25 and powder3[1.0] > plain[1.0] + 0.15
    without = shares(blend=0.0)
    assert without[2.0] == 0.0 and without[1.0] > plain[1.0]  # weight 0 leaves a category out
    with pytest.raises(ValueError, match=r"'powdr', which no training parcel has .*benign, blend, powder"):
        shares(powdr=2.0)
    with pytest.raises(ValueError, match="'blend' must be a finite number >= 0"):
        shares(blend=-1.0)
    with pytest.raises(ValueError, match="every weight is 0"):
        shares(powder=0.0, blend=0.0, benign=0.0)


def test_train_script_checks_category_weights_against_the_data(tmp_path, capsys):
    args = ["--data", str(SAMPLE), "--val", str(SAMPLE), "--out", str(tmp_path), "--work", str(tmp_path)]
    for bad, message in [
        ("tile_blend", "expected CATEGORY=W"),
        ("tile_blend=-2", "expected CATEGORY=W"),
        ("tile_blend=x", "expected CATEGORY=W"),
        ("misdeclared_powder=2", "no --data parcel has that category (they have benign, mannequin"),
    ]:
        with pytest.raises(SystemExit) as exc:
            train_script.main([*args, "--category-weight", bad])
        assert exc.value.code == 2 and message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_script.main([*args, "--category-weight", "tile_blend=2", "--category-weight", "tile_blend=3"])
    assert "names a category twice" in capsys.readouterr().err


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


def test_fine_tuning_from_shipped_weights_mines_hard_negatives_and_records_its_start(
    trained, tmp_path, capsys
):
    out, _ = trained
    weights = out / "parcelscan.pt"  # written beside the ONNX files, with a card entry
    card = json.loads((out / "parcelscan.json").read_text())
    assert card["training"]["weights"]["sha256"] == sha256(weights)
    args = ["--data", str(SAMPLE), "--val", str(SAMPLE), "--epochs", "1", "--tiles-per-epoch", "8"]
    args += ["--batch-size", "8", "--seed", "3", "--no-int8", "--no-fp16", "--work", str(tmp_path / "w")]
    with pytest.raises(SystemExit) as exc:
        train_script.main([*args, "--out", str(tmp_path / "m"), "--mine-hard"])
    assert exc.value.code == 2 and "--mine-hard needs --init" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_script.main([*args, "--out", str(tmp_path / "m"), "--init", str(tmp_path / "missing.pt")])
    assert "no such weights file" in capsys.readouterr().err

    twice = ["--threshold-data", str(SAMPLE), str(SAMPLE)]  # the threshold set may span several folders
    tuned_args = [*args, "--out", str(tmp_path / "m"), "--init", str(weights), "--mine-hard", *twice]
    tuned_args += ["--category-weight", "tile_blend=2.5"]
    assert train_script.main(tuned_args) == 0
    log = capsys.readouterr().out
    assert "hard negatives:" in log and "initialised from" in log
    tuned = json.loads((tmp_path / "m" / "parcelscan.json").read_text())
    init = tuned["training"]["init"]
    assert init["sha256"] == sha256(weights) and init["version"] == card["version"]
    assert init["command"] == card["training"]["command"]  # the earlier stage stays reproducible
    assert tuned["training"]["config"]["category_weights"] == {"tile_blend": 2.5}
    assert tuned["training"]["validation"]["fp32"]["parcels"] == 8
    assert tuned["training"]["validation"]["fp32"]["dirs"] == [str(SAMPLE)] * 2
    history = tuned["training"]["history"]
    # the starting point is validated first and is the one to beat
    assert history[0]["epoch"] == 0 and history[0]["loss"] is None and [h["epoch"] for h in history] == [0, 1]


def test_mining_keeps_false_alarm_pixels_outside_masses_and_the_sampler_cuts_tiles_there():
    from parcelscan.preprocess import PreprocessConfig
    from parcelscan.training.data import Example, TileSampler
    from parcelscan.training.loop import HARD_HEAT, HARD_KEEP, mine_hard_negatives

    class HighChannelIsHeat(torch.nn.Module):  # "alarms" wherever a_high is large
        def forward(self, x):
            heat = x[:, 1:2].clamp(0, 1)
            return NetOutput(heat, heat.amax(dim=(1, 2, 3)))

    image = np.zeros((3, 160, 160), np.float32)
    target = np.zeros((160, 160), np.float32)
    image[1, 10:30, 10:30] = 0.9  # innocent dense block: a false alarm
    image[1, 100:110, 100:110] = 0.9  # the concealed mass: a true alarm, not mined
    target[100:110, 100:110] = 1.0
    image[0, 10:30, 10:30] = 5.0  # marker to find the block's tiles again
    pos = Example(image.copy(), target, True, [(105, 105)], {})
    neg = Example(image * (target == 0), np.zeros_like(target), False, [], {})
    quiet = Example(np.zeros_like(image), np.zeros_like(target), False, [], {})
    counts = mine_hard_negatives(HighChannelIsHeat(), [pos, neg, quiet], PreprocessConfig(), "cpu")
    assert counts == {"parcels": 2, "pixels": 2 * HARD_KEEP, "negatives_alarmed": 1, "heat": HARD_HEAT}
    for ex in (pos, neg):
        ys, xs = ex.hard[:, 0], ex.hard[:, 1]
        assert len(ex.hard) == HARD_KEEP and np.all((ys >= 10) & (ys < 30) & (xs >= 10) & (xs < 30))
    assert quiet.hard is None
    sampler = TileSampler([pos, neg, quiet], size=32, length=600, seed=2, augment=False)
    on_block = sum(bool(sampler[i][0][0].max() > 4) for i in range(len(sampler)))
    # 15 % centred on mined pixels, plus random tiles that happen to reach the block
    assert 0.12 < on_block / 600 < 0.3
    pos.hard = neg.hard = None  # without mined pixels the block is only reached by chance
    plain = TileSampler([pos, neg, quiet], size=32, length=600, seed=2, augment=False)
    assert sum(bool(plain[i][0][0].max() > 4) for i in range(len(plain))) / 600 < on_block / 600


def test_export_script_reexports_the_same_weights_and_calibration(trained, tmp_path):
    import shutil

    from onnx import numpy_helper

    import export as export_script

    out, _ = trained
    for f in ("parcelscan.json", "parcelscan.pt"):
        shutil.copy(out / f, tmp_path / f)
    card_path = tmp_path / "parcelscan.json"
    args = ["--weights", str(out / "parcelscan.pt"), "--card", str(card_path), "--data", str(SAMPLE)]
    assert export_script.main([*args, "--val", str(SAMPLE)]) == 0
    card, before = json.loads(card_path.read_text()), json.loads((out / "parcelscan.json").read_text())
    assert card["training"]["command"] == before["training"]["command"]  # the training record is kept
    assert card["export"]["command"].startswith("python scripts/export.py --weights")
    assert "evaluation" not in card and "single_energy_threshold" not in card
    assert card["training"]["weights"]["sha256"] == sha256(tmp_path / "parcelscan.pt")
    for kind, entry in card["files"].items():
        assert sha256(tmp_path / entry["file"]) == entry["sha256"]
        assert entry["threshold"] == pytest.approx(before["files"][kind]["threshold"], abs=1e-5)

    # the int8 calibration draws the same training parcels: the same scales and quantised weights
    def initialisers(path):
        return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}

    new, old = initialisers(tmp_path / "parcelscan.int8.onnx"), initialisers(out / "parcelscan.int8.onnx")
    assert new.keys() == old.keys()
    for name in new:
        np.testing.assert_allclose(new[name], old[name], rtol=1e-6, err_msg=name)


def _sample_negatives(folder: Path) -> tuple[Path, dict]:
    """A copy of the sample whose index lists its negatives only, and that index."""
    shutil.copytree(SAMPLE, folder)
    index = json.loads((folder / "index.json").read_text())
    index["parcels"] = [e for e in index["parcels"] if not e["positive"]]
    assert index["parcels"]
    (folder / "index.json").write_text(json.dumps(index))
    return folder, index


def test_evaluate_pools_several_data_folders(trained, tmp_path, capsys):
    import evaluate as evaluate_script

    out, _ = trained
    negatives, index = _sample_negatives(tmp_path / "negatives")
    model = ["--model", str(out / "parcelscan.onnx"), "--no-card"]
    assert evaluate_script.main([*model, "--data", str(SAMPLE), "--out", str(tmp_path / "one")]) == 0
    pooled = [*model, "--data", str(SAMPLE), str(negatives), "--out", str(tmp_path / "two")]
    assert evaluate_script.main(pooled) == 0
    one = json.loads((tmp_path / "one" / "parcelscan.eval.json").read_text())["parcelscan.onnx"]
    two = json.loads((tmp_path / "two" / "parcelscan.eval.json").read_text())["parcelscan.onnx"]
    n_sample = one["summary"]["n_parcels"]
    assert one["data"]["dir"] == str(SAMPLE) and one["data"]["count"] == n_sample
    assert two["data"]["dirs"] == [str(SAMPLE), str(negatives)]
    assert two["data"]["count"] == two["summary"]["n_parcels"] == n_sample + len(index["parcels"])
    assert two["summary"]["n_positive"] == one["summary"]["n_positive"]
    assert two["summary"]["n_negative"] == one["summary"]["n_negative"] + len(index["parcels"])
    # --limit applies to each folder
    assert evaluate_script.main([*pooled, "--limit", "1"]) == 0
    limited = json.loads((tmp_path / "two" / "parcelscan.eval.json").read_text())["parcelscan.onnx"]
    assert limited["data"]["count"] == 2
    with pytest.raises(SystemExit) as exc:
        evaluate_script.main([*model, "--data", str(SAMPLE), str(tmp_path / "gone")])
    assert exc.value.code == 2 and f"--data {tmp_path / 'gone'}" in capsys.readouterr().err


def test_single_energy_threshold_is_chosen_on_every_val_single_folder(trained, tmp_path, capsys):
    import export as export_script

    out, _ = trained
    negatives, index = _sample_negatives(tmp_path / "negatives")  # a second folder
    models = tmp_path / "m"
    models.mkdir()
    for f in ("parcelscan.json", "parcelscan.pt"):
        shutil.copy(out / f, models / f)
    card_path = models / "parcelscan.json"
    args = ["--weights", str(out / "parcelscan.pt"), "--card", str(card_path), "--data", str(SAMPLE)]
    args += ["--val", str(SAMPLE), "--val-single", str(SAMPLE), str(negatives)]
    assert export_script.main(args) == 0
    card = json.loads(card_path.read_text())
    single = card["training"]["validation"]["fp32"]["single_energy"]
    assert single["dirs"] == [str(SAMPLE), str(negatives)]
    sample = json.loads((SAMPLE / "index.json").read_text())["parcels"]
    assert single["parcels"] == len(sample) + len(index["parcels"])
    assert single["positives"] == sum(e["positive"] for e in sample)
    fp32 = card["files"]["fp32"]
    assert card["single_energy_threshold"] == single["threshold"] == fp32["single_energy_threshold"]
    # a missing second folder is named
    with pytest.raises(SystemExit) as exc:
        export_script.main([*args[:-1], str(tmp_path / "gone")])
    assert exc.value.code == 2 and f"--val-single {tmp_path / 'gone'}" in capsys.readouterr().err


def test_opaque_share_counts_the_mass_pixels_at_or_above_the_impenetrable_threshold():
    import evaluate as evaluate_script

    a_high = np.zeros((20, 30))
    a_high[5:10, 5:15] = 6.0  # opaque half of the mass
    a_high[10:15, 5:15] = 3.0
    a_high[0:5, 5:15] = 9.0  # opaque, inside the box but outside the mask: not counted
    mask = np.zeros((20, 30), np.uint8)
    mask[5:15, 5:15] = 1
    box = [5, 0, 15, 15]  # x0, y0, x1, y1
    assert evaluate_script.opaque_share(a_high, mask, box, 5.0) == pytest.approx(0.5)
    assert evaluate_script.opaque_share(a_high, mask, box, 2.0) == pytest.approx(1.0)
    assert evaluate_script.opaque_share(a_high, None, box, 5.0) is None
    assert evaluate_script.opaque_share(a_high, mask, [20, 0, 30, 5], 5.0) is None  # no mask pixels there


def test_preprocessing_workers_give_the_same_examples_as_one_process():
    from parcelscan.preprocess import PreprocessConfig
    from parcelscan.training.data import load_dataset

    one = load_dataset(SAMPLE, PreprocessConfig(), limit=4, progress=False)
    two = load_dataset(SAMPLE, PreprocessConfig(), limit=4, progress=False, workers=2)
    assert len(one) == len(two) == 4
    for a, b in zip(one, two, strict=True):
        assert a.meta == b.meta and a.centres == b.centres
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.target, b.target)
        np.testing.assert_array_equal(a.dense, b.dense)
    with pytest.raises(ValueError, match="workers"):
        load_dataset(SAMPLE, PreprocessConfig(), limit=1, workers=0)


def test_tile_loader_workers_cut_the_same_batches_as_the_training_process():
    from parcelscan.preprocess import PreprocessConfig
    from parcelscan.training.data import EpochIndices, TileSampler, load_dataset

    examples = load_dataset(SAMPLE, PreprocessConfig(), limit=3, progress=False)
    sampler = TileSampler(examples, size=64, length=24, seed=2)

    def serial(epoch):  # the tiles of one epoch, cut in this process by index
        tiles = [sampler[epoch * 24 + i] for i in range(24)]
        return [
            (torch.stack([x for x, _ in tiles[i : i + 8]]), torch.stack([y for _, y in tiles[i : i + 8]]))
            for i in range(0, 24, 8)
        ]

    # As the training loop runs: workers started once, the epoch travelling in the indices only.
    indices = EpochIndices(24)
    loader = torch.utils.data.DataLoader(
        sampler, batch_size=8, sampler=indices, num_workers=2, persistent_workers=True
    )
    for epoch in (1, 2):
        indices.epoch = epoch
        parallel = [(x.clone(), y.clone()) for x, y in loader]
        reference = serial(epoch)
        assert len(parallel) == len(reference) == 3
        for (xa, ya), (xb, yb) in zip(reference, parallel, strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(serial(1)[0][0], serial(2)[0][0])  # another epoch, other tiles
    with pytest.raises(IndexError, match="< 0"):
        sampler[-1]


def test_fitted_schedule_shortens_to_the_budget_and_anneals_over_the_epochs_that_fit(tmp_path, monkeypatch):
    import shutil

    from parcelscan.preprocess import PreprocessConfig
    from parcelscan.training import loop
    from parcelscan.training.data import load_dataset
    from parcelscan.training.loop import TrainConfig, train

    class Clock:  # every reading of the loop's clock is 30 s after the one before
        def __init__(self):
            self.now = -30.0

        def time(self):
            self.now += 30.0
            return self.now

    pre = PreprocessConfig()
    examples = load_dataset(SAMPLE, pre, limit=3, progress=False)
    base = dict(epochs=20, tiles_per_epoch=16, batch_size=8, tile=64, seed=5, patience=99, lr=1e-3)
    quiet = lambda *_: None  # noqa: E731
    saved, save = [], loop._save

    def keep_epoch_3(path, model, optimizer, epoch, *rest):  # a copy of last.pt as after epoch 3
        save(path, model, optimizer, epoch, *rest)
        if epoch == 2 and not saved:
            saved.append(shutil.copy(path, tmp_path / "after3.pt"))

    def run(work, resume=None, **kw):
        monkeypatch.setattr(loop, "time", Clock())
        return train(examples, examples, pre, TrainConfig(**{**base, **kw}), work, resume=resume, log=quiet)

    monkeypatch.setattr(loop, "_save", keep_epoch_3)
    # Epoch 2 ends 1.5 min in and took 1 min: 0.95 x 3.5 min left holds 3 more, 5 epochs in all.
    model, history = run(tmp_path / "a", max_minutes=5, fit_epochs=True, average_epochs=2)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5, "average"]
    assert history[1]["epochs_fitted"] == 5 and all("epochs_fitted" not in h for h in history[2:])
    # two timing epochs at the cycle's starting rate, then one whole cycle down to its floor
    assert history[0]["lr"] == history[1]["lr"] == pytest.approx(1e-3 / 25)
    assert history[2]["lr"] > 1e-3 / 25 and history[4]["lr"] == pytest.approx(1e-3 / 25 / 1e4, rel=1e-3)
    assert history[-1]["epochs_averaged"] == 2  # epochs 4 and 5, both of the cycle
    last = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    assert (last["epochs_fitted"], last["cycle_from"]) == (5, 2)

    # Resumed after epoch 3, even without the flags: the same schedule, average and weights.
    monkeypatch.setattr(loop, "_save", save)
    resumed, again = run(tmp_path / "b", resume=tmp_path / "after3.pt", average_epochs=2)
    assert [h["epoch"] for h in again] == [1, 2, 3, 4, 5, "average"]
    assert [h["lr"] for h in again[3:5]] == [h["lr"] for h in history[3:5]]
    for name, w in resumed.state_dict().items():
        torch.testing.assert_close(w, model.state_dict()[name], rtol=0, atol=1e-6)

    _, unfitted = run(tmp_path / "c", max_minutes=5)
    assert len(unfitted) == 6  # the plain budget cuts the cycle short: 6.0 min > 5 after epoch 6
    assert unfitted[-1]["lr"] > 0.5e-3
    # A deadline 5 min after training starts (the clock's first reading is 0) fits the same 5 epochs,
    # and caps a looser max_minutes.
    _, by_deadline = run(tmp_path / "e", max_minutes=60, deadline=300.0, fit_epochs=True)
    assert by_deadline[1]["epochs_fitted"] == 5 and len(by_deadline) == 5
    with pytest.raises(ValueError, match="give max_minutes or deadline"):
        run(tmp_path / "d", fit_epochs=True)


def test_training_with_loader_workers_gives_the_same_model_as_without(tmp_path):
    from parcelscan.preprocess import PreprocessConfig
    from parcelscan.training.data import load_dataset
    from parcelscan.training.loop import TrainConfig, train

    pre = PreprocessConfig()
    examples = load_dataset(SAMPLE, pre, limit=3, progress=False)
    models = []
    for workers in (0, 2):  # persistent workers, and update_bn's epoch of tiles through them too
        cfg = TrainConfig(epochs=2, tiles_per_epoch=16, batch_size=8, tile=64, seed=2, average_epochs=1)
        cfg = TrainConfig(**{**cfg.__dict__, "loader_workers": workers})
        models.append(train(examples, examples, pre, cfg, tmp_path / str(workers), log=lambda *_: None)[0])
    for name, w in models[0].state_dict().items():
        torch.testing.assert_close(w, models[1].state_dict()[name], rtol=0, atol=0)


def test_bf16_steps_run_the_convolutions_in_bfloat16_and_the_outputs_in_float32():
    from parcelscan.training.loop import forward_train

    net = _trained_looking(DetectorNet(), seed=5).train()
    conv_dtypes = []
    net.enc3[0].register_forward_hook(lambda m, i, o: conv_dtypes.append(o.dtype))
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2
    outs = {}
    for precision in ("fp32", "bf16"):
        outs[precision] = forward_train(net, x, precision)
        assert outs[precision].heatmap.dtype == outs[precision].score.dtype == torch.float32
    assert conv_dtypes == [torch.float32, torch.bfloat16]
    diff = (outs["fp32"].heatmap - outs["bf16"].heatmap).detach().abs()
    # bfloat16 keeps 8 bits: the same map to about 1e-2, but not to float32's digits
    assert float(diff.max()) < 0.05 and float(diff.max()) > 1e-5
    with pytest.raises(ValueError, match="precision must be one of"):
        forward_train(net, x, "fp16")


def test_train_script_warns_where_bf16_would_be_emulated(tmp_path, monkeypatch, capsys):
    from parcelscan.training.loop import native_bf16

    assert native_bf16("cpu") == torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert native_bf16("cuda") == (torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    missing = ["--data", str(SAMPLE), "--val", str(tmp_path / "none"), "--out", str(tmp_path)]
    for native in (True, False):
        monkeypatch.setattr(train_script, "native_bf16", lambda device, native=native: native)
        with pytest.raises(SystemExit):  # stopped by the missing --val folder, after the warning
            train_script.main([*missing, "--precision", "bf16"])
        assert ("emulated there and slower than fp32" in capsys.readouterr().err) is not native


def test_bf16_training_returns_float32_weights_in_the_default_layout(tmp_path):
    from parcelscan.preprocess import PreprocessConfig
    from parcelscan.training.data import load_dataset
    from parcelscan.training.loop import TrainConfig, train

    pre = PreprocessConfig()
    examples = load_dataset(SAMPLE, pre, limit=3, progress=False)
    states, histories = {}, {}
    for precision in ("fp32", "bf16"):
        cfg = TrainConfig(epochs=2, tiles_per_epoch=16, batch_size=8, tile=64, seed=2, precision=precision)
        quiet = {"log": lambda *_: None}
        net, histories[precision] = train(examples, examples, pre, cfg, tmp_path / precision, **quiet)
        states[precision] = net.state_dict()
        for name, w in states[precision].items():
            assert w.is_contiguous(), name  # channels-last during training, the default layout after
        assert all(np.isfinite(h["loss"]) for h in histories[precision])
    assert all(w.dtype == torch.float32 for w in states["bf16"].values() if w.is_floating_point())
    # the precision reaches the steps: the same tiles and seed train different weights
    fp32, bf16 = states["fp32"], states["bf16"]
    assert any(not torch.equal(w, bf16[n]) for n, w in fp32.items() if w.is_floating_point())
    with pytest.raises(ValueError, match="precision must be one of"):
        train(examples, examples, pre, TrainConfig(epochs=1, precision="half"), tmp_path / "x", **quiet)


def test_weight_averaging_returns_the_mean_of_the_last_epochs_and_survives_a_resume(tmp_path):
    from parcelscan.preprocess import PreprocessConfig
    from parcelscan.training.data import load_dataset
    from parcelscan.training.loop import TrainConfig, train

    pre = PreprocessConfig()
    examples = load_dataset(SAMPLE, pre, limit=3, progress=False)
    base = dict(epochs=2, tiles_per_epoch=16, batch_size=8, tile=64, seed=5, patience=9)
    quiet = lambda *_: None  # noqa: E731

    def run(work, resume=None, **kw):
        return train(examples, examples, pre, TrainConfig(**{**base, **kw}), work, resume=resume, log=quiet)

    averaged, history = run(tmp_path / "a", average_epochs=2)
    assert history[-1]["epoch"] == "average" and history[-1]["epochs_averaged"] == 2
    assert 0 <= history[-1]["val_auroc"] <= 1
    run(tmp_path / "b", max_minutes=1e-9)  # the same trajectory, stopped after its first epoch
    first = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["model"]
    second = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["model"]
    saved = torch.load(tmp_path / "a" / "averaged.pt", weights_only=True)
    result = averaged.state_dict()
    for name, w in result.items():
        assert torch.equal(w, saved[name])
        if "running_" in name:  # measured again on training tiles, not the mean of two epochs'
            assert torch.isfinite(w).all() and not torch.allclose(w, (first[name] + second[name]) / 2)
        elif w.is_floating_point():
            torch.testing.assert_close(w, (first[name] + second[name]) / 2, rtol=0, atol=1e-6)
    assert not torch.allclose(first["head.weight"], second["head.weight"])  # two distinct points

    # Interrupted inside the window and resumed: the same average as the uninterrupted run.
    run(tmp_path / "c", average_epochs=2, max_minutes=1e-9)
    assert torch.load(tmp_path / "c" / "last.pt", weights_only=True)["averaged"] == 1
    resumed, history = run(tmp_path / "c", resume=tmp_path / "c" / "last.pt", average_epochs=2)
    assert [h["epoch"] for h in history] == [1, 2, "average"]
    for name, w in resumed.state_dict().items():
        torch.testing.assert_close(w, result[name], rtol=0, atol=1e-6)

    with pytest.raises(ValueError, match="average_epochs must be 0 to epochs"):
        run(tmp_path / "d", average_epochs=3)


def test_frozen_batch_norm_keeps_the_init_statistics_while_the_weights_train(tmp_path):
    from parcelscan.preprocess import PreprocessConfig
    from parcelscan.training.data import load_dataset
    from parcelscan.training.loop import TrainConfig, train

    pre = PreprocessConfig()
    examples = load_dataset(SAMPLE, pre, limit=3, progress=False)
    init = _trained_looking(DetectorNet(context=3), 4).state_dict()
    torch.save(init, tmp_path / "init.pt")
    base = dict(epochs=2, tiles_per_epoch=16, batch_size=8, tile=64, seed=5, patience=9)
    quiet = lambda *_: None  # noqa: E731

    def run(work, init=tmp_path / "init.pt", **kw):
        return train(examples, examples, pre, TrainConfig(**{**base, **kw}), work, log=quiet, init=init)

    for average in (0, 2):  # the best epoch, or the average, which must not measure them again
        model, _ = run(tmp_path / f"frozen{average}", freeze_bn=True, average_epochs=average)
        last = torch.load(tmp_path / f"frozen{average}" / "last.pt", weights_only=True)["model"]
        for state in (last, model.state_dict()) if average else (last,):  # best may be the init
            for name, w in state.items():
                if "running_" in name or "num_batches" in name:
                    assert torch.equal(w, init[name]), name
            assert not torch.equal(state["head.weight"], init["head.weight"])  # the weights trained
            bn_scale = "stem.1.weight"  # batch-norm scales and shifts train too
            assert not torch.equal(state[bn_scale], init[bn_scale])
    run(tmp_path / "free")  # the contrast: without freezing, training moves them
    free = torch.load(tmp_path / "free" / "last.pt", weights_only=True)["model"]
    assert not torch.equal(free["stem.1.running_mean"], init["stem.1.running_mean"])

    with pytest.raises(ValueError, match="freeze_bn needs trained weights"):
        train(examples, examples, pre, TrainConfig(**base, freeze_bn=True), tmp_path / "x", log=quiet)
    torch.save(_trained_looking(DetectorNet(context=0), 4).state_dict(), tmp_path / "small.pt")
    with pytest.raises(ValueError, match="lacks context blocks"):
        run(tmp_path / "y", freeze_bn=True, init=tmp_path / "small.pt")
    with pytest.raises(ValueError, match="lacks context blocks or channels"):  # new channels have none
        run(tmp_path / "z", freeze_bn=True, widths=(24, 32, 48, 80))


def test_scripts_name_a_folder_that_is_not_a_dataset_before_doing_any_work(tmp_path, capsys):
    import evaluate as evaluate_script
    import export as export_script
    from parcelscan.preprocess import PreprocessConfig
    from parcelscan.sim.dataset import dataset_problem
    from parcelscan.training.data import DatasetParcels

    empty, bad, listless = tmp_path / "empty", tmp_path / "bad", tmp_path / "listless"
    for d in (empty, bad, listless):
        d.mkdir()
    (bad / "index.json").write_text("{not json")
    (listless / "index.json").write_text('{"parcels": 3}')
    assert dataset_problem(SAMPLE) is None
    assert dataset_problem(tmp_path / "missing") == f"{tmp_path / 'missing'}: no such dataset folder"
    assert "no index.json" in dataset_problem(empty) and "JSONDecodeError" in dataset_problem(bad)
    assert "'parcels' must be a list, got int" in dataset_problem(listless)
    with pytest.raises(FileNotFoundError, match=r"no index\.json"):
        DatasetParcels([SAMPLE, empty], PreprocessConfig())
    with pytest.raises(ValueError, match="'parcels' must be a list"):
        DatasetParcels([listless], PreprocessConfig())

    model = Path(__file__).resolve().parents[1] / "models" / "parcelscan.onnx"
    train_args = ["--data", str(SAMPLE), "--val", str(SAMPLE), "--out", str(tmp_path / "m")]
    cases = [
        (train_script.main, ["--data", str(empty), "--val", str(SAMPLE)], f"--data {empty}: no index.json"),
        (
            train_script.main,
            [*train_args, "--threshold-data", str(SAMPLE), str(bad)],
            f"--threshold-data {bad}",
        ),
        (train_script.main, [*train_args, "--val-single", str(tmp_path / "x")], "no such dataset folder"),
        (train_script.main, [*train_args, "--resume", str(tmp_path / "last.pt")], "no such checkpoint"),
        (train_script.main, [*train_args, "--fit-epochs"], "--fit-epochs needs --max-minutes or --deadline"),
        (train_script.main, [*train_args, "--deadline", "1000"], "--deadline 1000 has passed"),
        (train_script.main, [*train_args, "--precision", "fp16"], "invalid choice: 'fp16'"),
        (
            evaluate_script.main,
            ["--model", str(model), "--data", str(listless)],
            f"--data {listless / 'index.json'}",
        ),
        (
            evaluate_script.main,
            ["--model", str(tmp_path / "m.onnx"), "--data", str(SAMPLE)],
            "no such model file",
        ),
        (
            evaluate_script.main,
            ["--model", str(model), "--data", str(SAMPLE), "--out", str(tmp_path / "elsewhere")],
            "add --no-card",
        ),
        (
            evaluate_script.main,
            ["--model", str(model), "--data", str(SAMPLE), "--out", str(bad / "index.json"), "--no-card"],
            "exists and is not a folder",
        ),
        (
            export_script.main,
            [
                "--weights",
                str(tmp_path / "w.pt"),
                "--card",
                str(model),
                "--data",
                str(SAMPLE),
                "--val",
                str(SAMPLE),
            ],
            "--weights",
        ),
        (
            export_script.main,
            ["--weights", str(model), "--card", str(model), "--data", str(SAMPLE), "--val", str(empty)],
            f"--val {empty}: no index.json",
        ),
    ]
    for main, args, message in cases:
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 2 and message in capsys.readouterr().err, args


@pytest.mark.slow
def test_gpu_stage_script_runs_every_step_on_the_cpu(tmp_path):
    """scripts/gpu_stage.sh, the recipe for a timed stage on a lent GPU, dry-run with tiny counts."""
    import os
    import subprocess

    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # python3 = this one
        **dict(DEV="cpu", N7="4", N8="2", NVAL="6", W="1", LW="0", EPOCHS="3", TILES="16", BS="8", AVG="1"),
        **dict(BUDGET="400", RESERVE="40", DATA=str(tmp_path / "data"), STAGE_OUT=str(tmp_path / "stage")),
        "WORK": str(tmp_path / "work"),
    }

    def run_stage(**kw):
        script = str(root / "scripts" / "gpu_stage.sh")
        run = subprocess.run(["bash", script], env={**env, **kw}, capture_output=True, text=True, timeout=600)
        return run

    run = run_stage()
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "training until" in run.stdout and "train.py rc=0" in run.stdout
    stage = tmp_path / "stage"
    written = {p.name for p in stage.iterdir()}
    assert {"parcelscan.pt", "parcelscan.json", "best.pt", "history.json"} <= written
    card = json.loads((stage / "parcelscan.json").read_text())
    assert "--fit-epochs" in card["training"]["command"] and "--deadline" in card["training"]["command"]
    assert card["training"]["init"]["version"]
    history = card["training"]["history"]
    assert history[0]["epoch"] == 0 and history[-1]["epoch"] == "average"
    assert history[2]["epochs_fitted"] == 3  # minutes to spare: the cap, --epochs 3
    assert history[1]["lr"] == history[2]["lr"] == pytest.approx(6e-4 / 25)  # the two timing epochs
    assert history[3]["lr"] == pytest.approx(6e-4 / 25 / 1e4, rel=1e-3)  # a one-epoch cycle, annealed
    assert [d["count"] for d in card["training"]["train_data"]] == [4, 2]
    # no time left after simulating (the folders are kept, so it is at once): no training at all
    late = run_stage(BUDGET="30", STAGE_OUT=str(tmp_path / "late"), WORK=str(tmp_path / "late_work"))
    assert late.returncode == 3 and "not starting it" in late.stdout
    assert not (tmp_path / "late" / "parcelscan.pt").exists()
