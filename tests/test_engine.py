"""The ONNX inference session on tiny hand-built models: contract, providers, batching, exact heatmaps."""

import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from parcelscan.engine import OnnxModel, Prediction
from parcelscan.preprocess.pipeline import PreprocessConfig, Preprocessor
from parcelscan.scan import Scan

CFG = PreprocessConfig(target_mm=2.0, tile=64, overlap=16)
WEIGHTS = np.array([1.5, -0.7, 2.0], np.float32)  # 1x1 conv over (a_low, a_high, impenetrable)
BIAS = -0.3


def _card(**changes):
    card = {
        "preprocess": CFG.to_dict(),
        "outputs": ["heatmap", "score"],
        "threshold": 0.6,
        "region_threshold": 0.5,
        "version": "test-1",
    }
    return {**card, **changes}


def _model(path, card=None, heatmap_name="heatmap", metadata=True):
    """heatmap = Sigmoid(Conv1x1(image)), score = ReduceMax over (C, H, W); opset 17 (axes attribute)."""
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])
    heat = helper.make_tensor_value_info(heatmap_name, TensorProto.FLOAT, ["N", 1, "H", "W"])
    score = helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"])
    w = helper.make_tensor("w", TensorProto.FLOAT, [1, 3, 1, 1], WEIGHTS.tolist())
    b = helper.make_tensor("b", TensorProto.FLOAT, [1], [BIAS])
    nodes = [
        helper.make_node("Conv", ["image", "w", "b"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], [heatmap_name]),
        helper.make_node("ReduceMax", [heatmap_name], ["score"], axes=[1, 2, 3], keepdims=0),
    ]
    graph = helper.make_graph(nodes, "tiny", [image], [heat, score], initializer=[w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if metadata:
        meta = card if isinstance(card, str) else json.dumps(_card() if card is None else card)
        helper.set_model_props(model, {"parcelscan": meta})
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return path


def _expected_heatmap(image):
    """What the tiny model computes per pixel, in float64."""
    logit = np.tensordot(WEIGHTS.astype(np.float64), image.astype(np.float64), axes=1) + BIAS
    return 1 / (1 + np.exp(-logit))


def _scan(lines, pixels, seed, pitch_mm=1.0):
    """A dual-energy scan with random smooth-ish transmission and an opaque block (impenetrable)."""
    rng = np.random.default_rng(seed)
    t_high = rng.uniform(0.05, 1.0, (lines, pixels))
    t_high[lines // 3 : lines // 2, pixels // 4 : pixels // 3] = 1e-3
    t = np.stack([t_high**1.4, t_high])
    dark = (900.0 + 2.0 * np.arange(pixels, dtype=np.float32))[None].repeat(2, 0)
    air = dark + 40000.0
    raw = np.rint(dark[:, None, :] + t * (air - dark)[:, None, :]).astype(np.uint16)
    return Scan(raw, air, dark, ("low", "high"), pitch_mm, pitch_mm, 140.0)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return _model(tmp_path_factory.mktemp("models") / "tiny.onnx")


@pytest.fixture(scope="module")
def scans():
    # Model grids (151, 86), (45, 75), (10, 15): 6, 2 and 1 tiles of 64 px, padded where smaller.
    return [_scan(301, 171, 0), _scan(90, 150, 1), _scan(20, 30, 2)]


def test_metadata_is_parsed_into_the_card_and_config(model_path):
    m = OnnxModel(model_path, threads=1)
    assert m.card == _card()
    assert m.preprocess_config == CFG
    assert (m.threshold, m.region_threshold, m.version) == (0.6, 0.5, "test-1")
    assert m.single_energy_threshold == 0.6  # a card without one: the dual-energy threshold
    assert m.region_grow_threshold is None  # nor a grow level: regions do not grow
    assert m.session.get_providers() == ["CPUExecutionProvider"]
    assert "test-1" in repr(m)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"metadata": False}, "no 'parcelscan' entry"),
        ({"card": "{not json"}, "not valid JSON"),
        ({"card": _card(outputs=["score", "heatmap"])}, "outputs must be"),
        ({"card": {k: v for k, v in _card().items() if k != "threshold"}}, r"lacks key\(s\) \['threshold'\]"),
        ({"card": _card(threshold=1.5)}, "threshold must be a number in"),
        ({"card": _card(single_energy_threshold=0)}, "single_energy_threshold must be a number in"),
        ({"card": _card(single_energy_threshold="0.9")}, "single_energy_threshold must be a number in"),
        ({"card": _card(region_grow_threshold=0)}, "region_grow_threshold must be a number in"),
        ({"card": _card(region_grow_threshold=1.5)}, "region_grow_threshold must be a number in"),
        ({"card": _card(preprocess={**CFG.to_dict(), "tile": "64"})}, "invalid preprocess card"),
        ({"heatmap_name": "heat"}, r"lacks output\(s\) \['heatmap'\]"),
    ],
)
def test_bad_metadata_or_signature_raises_naming_the_file(tmp_path, kwargs, match):
    path = _model(tmp_path / "bad.onnx", **kwargs)
    with pytest.raises(ValueError, match=match) as err:
        OnnxModel(path)
    assert "bad.onnx" in str(err.value)


def test_cuda_is_loaded_or_refused_never_silently_replaced(model_path):
    if "CUDAExecutionProvider" in ort.get_available_providers():
        m = OnnxModel(model_path, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
        assert m.session.get_providers()[0] == "CUDAExecutionProvider"
    else:
        with pytest.raises(RuntimeError, match="CUDAExecutionProvider"):
            OnnxModel(model_path, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])


@pytest.mark.filterwarnings("ignore:Specified provider")
def test_a_provider_that_fails_to_load_raises(model_path, monkeypatch):
    # A provider the build claims but cannot create: ORT retries on the CPU with only a warning (as it
    # does for CUDA without cuDNN). The check of session.get_providers() must turn that into an error.
    real = ort.get_available_providers()
    monkeypatch.setattr(ort, "get_available_providers", lambda: [*real, "NoSuchExecutionProvider"])
    with pytest.raises(RuntimeError, match=r"\['NoSuchExecutionProvider'\] failed to load"):
        OnnxModel(model_path, providers=["NoSuchExecutionProvider", "CPUExecutionProvider"])


def test_bad_arguments_raise(model_path, tmp_path):
    with pytest.raises(ValueError, match="providers"):
        OnnxModel(model_path, providers="CPUExecutionProvider")
    with pytest.raises(ValueError, match="threads"):
        OnnxModel(model_path, threads=0)
    with pytest.raises(ValueError, match="max_batch"):
        OnnxModel(model_path, max_batch=0)
    with pytest.raises(FileNotFoundError, match=r"missing\.onnx"):
        OnnxModel(tmp_path / "missing.onnx")


def test_run_matches_the_model_and_chunking_does_not_matter(model_path):
    rng = np.random.default_rng(5)
    batch = rng.normal(0, 1, (9, 3, 11, 7)).astype(np.float32)  # batch and size unlike any tile
    heat4, score4 = OnnxModel(model_path, max_batch=4).run(batch)
    heat9, score9 = OnnxModel(model_path, max_batch=9).run(batch)
    assert heat4.shape == (9, 1, 11, 7) and score4.shape == (9,)
    assert heat4.dtype == np.float32 and score4.dtype == np.float32
    np.testing.assert_allclose(heat4, heat9, rtol=1e-6)
    np.testing.assert_allclose(score4, score9, rtol=1e-6)
    # ORT's vectorised float32 sigmoid is accurate to ~1e-7 absolute, not relative, near 0.
    np.testing.assert_allclose(heat4[:, 0], [_expected_heatmap(x) for x in batch], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(score4, heat4.max(axis=(1, 2, 3)))


@pytest.mark.parametrize(
    ("batch", "match"),
    [
        (np.zeros((2, 3, 8, 8), np.float64), "float32"),
        (np.zeros((2, 2, 8, 8), np.float32), r"\(N, 3, H, W\)"),
        (np.zeros((3, 8, 8), np.float32), r"\(N, 3, H, W\)"),
        (np.zeros((0, 3, 8, 8), np.float32), r"\(N, 3, H, W\)"),
        (np.full((1, 3, 8, 8), np.nan, np.float32), "finite"),
        ([[[[0.0]]]], "numpy array"),
    ],
)
def test_run_rejects_bad_batches(model_path, batch, match):
    with pytest.raises(ValueError, match=match):
        OnnxModel(model_path).run(batch)


def test_predict_gives_the_exact_stitched_heatmap_and_its_max(model_path, scans):
    preds = OnnxModel(model_path, max_batch=4).predict(scans)
    assert len(preds) == 3 and all(isinstance(p, Prediction) for p in preds)
    for scan, p in zip(scans, preds, strict=True):
        pre = Preprocessor(CFG)(scan)
        assert p.heatmap.shape == pre.image.shape[1:] == p.preprocessed.image.shape[1:]
        # A per-pixel model: tiling, packing and stitching must give back its value at every pixel.
        np.testing.assert_allclose(p.heatmap, _expected_heatmap(pre.image), rtol=1e-5, atol=1e-6)
        assert p.score == float(p.heatmap.max())
        assert set(p.timings) == {"preprocess_ms", "inference_ms", "stitch_ms"}
        assert all(v >= 0 for v in p.timings.values())
    assert [p.heatmap.shape for p in preds] == [(151, 86), (45, 75), (10, 15)]


def test_predicting_scans_together_equals_one_by_one(model_path, scans):
    model = OnnxModel(model_path, max_batch=4)  # 9 tiles: chunks of 4 straddle the scans
    together = model.predict(scans)
    alone = [model.predict([s])[0] for s in scans]
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_allclose(a.heatmap, b.heatmap, rtol=1e-5)
        assert a.score == pytest.approx(b.score, rel=1e-5)
    assert model.predict([]) == []
    with pytest.raises(ValueError, match="list of Scan"):
        model.predict(scans[0])
    with pytest.raises(ValueError, match=r"scans\[1\]"):
        model.predict([scans[0], "scan.npz"])


def test_inference_modules_never_import_torch():
    code = (
        "import sys\n"
        "import parcelscan.engine, parcelscan.postprocess, parcelscan.evaluation\n"
        "print('TORCH' if any(m == 'torch' or m.startswith('torch.') for m in sys.modules) else 'CLEAN')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "CLEAN"


def test_io_binding_and_batch_buckets_give_the_plain_results(model_path):
    rng = np.random.default_rng(4)
    batch = rng.normal(0, 1, (7, 3, 24, 40)).astype(np.float32)
    heat, score = OnnxModel(model_path, max_batch=4).run(batch)
    bucketed = OnnxModel(model_path, batch_buckets=(5, 2), io_binding=True)
    assert bucketed.buckets == (2, 5) and bucketed.max_batch == 5 and bucketed.device == "cpu"
    calls = []
    bucketed.session = _Spy(bucketed.session, calls)
    heat_b, score_b = bucketed.run(batch)  # 5 + 2 tiles: both buckets, no padding needed
    heat_c, _ = bucketed.run(batch[:3])  # 3 tiles padded to the 5 bucket
    assert calls == [5, 2, 5]
    np.testing.assert_allclose(heat_b, heat, atol=1e-6)
    np.testing.assert_allclose(score_b, score, atol=1e-6)
    np.testing.assert_allclose(heat_c, heat[:3], atol=1e-6)
    with pytest.raises(ValueError, match="batch_buckets"):
        OnnxModel(model_path, batch_buckets=[0, 4])


class _Spy:
    """Wraps an InferenceSession and records the batch size of every IOBinding run."""

    def __init__(self, session, calls):
        self._s, self._calls = session, calls

    def __getattr__(self, name):
        return getattr(self._s, name)

    def run_with_iobinding(self, binding):
        self._calls.append(self._last)
        return self._s.run_with_iobinding(binding)

    def io_binding(self):
        spy = self

        class _B:
            def __init__(self):
                self._b = spy._s.io_binding()

            def __getattr__(self, name):
                return getattr(self._b, name)

            def bind_ortvalue_input(self, name, value):
                spy._last = value.shape()[0]
                return self._b.bind_ortvalue_input(name, value)

        return _B()


def test_single_energy_threshold_is_read_from_the_card(tmp_path):
    card = _card(single_energy_threshold=0.8, region_grow_threshold=0.4)
    m = OnnxModel(_model(tmp_path / "m.onnx", card=card), threads=1)
    assert (m.threshold, m.single_energy_threshold, m.region_grow_threshold) == (0.6, 0.8, 0.4)
