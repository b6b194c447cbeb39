"""The station API on the shipped model: loading and integrity, errors, batching, regions, JSON schema."""

import json
import shutil
from pathlib import Path

import jsonschema
import numpy as np
import onnxruntime as ort
import pytest

import parcelscan
from parcelscan import Detection, Detector, FailedScan, ModelIntegrityError, Scan, ScanError, save_scan
from parcelscan.sim.catalogue import CONCEALMENT_TYPES, SceneConfig, random_parcel
from parcelscan.sim.render import render_scene

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "docs" / "result.schema.json").read_text())
SMALL = SceneConfig(max_parcel_cm=(45.0, 35.0, 30.0), clutter=(1, 3), mass_range_g=(30.0, 300.0))


def _parcel(seed: int, concealment: str | None = None):
    if concealment is None:
        config = SceneConfig(**{**SMALL.__dict__, "positive_fraction": 0.0})
    else:
        weights = {c: float(c == concealment) for c in CONCEALMENT_TYPES}
        config = SceneConfig(**{**SMALL.__dict__, "positive_fraction": 1.0, "concealment_weights": weights})
    rng = np.random.default_rng([seed, 99])
    scene, scanner = random_parcel(rng, config)
    return render_scene(scene, scanner, rng)


@pytest.fixture(scope="module")
def detector():
    return Detector.from_pretrained(threads=1)


@pytest.fixture(scope="module")
def parcels():
    return [_parcel(1, "mannequin"), _parcel(2), _parcel(3, "tile_stack_layer")]


def _same(a: Detection, b: Detection) -> None:
    assert a.score == pytest.approx(b.score, abs=1e-5)
    assert a.alarm == b.alarm
    np.testing.assert_allclose(a.heatmap, b.heatmap, atol=1e-5)
    assert [r.box_px for r in a.regions] == [r.box_px for r in b.regions]


# ---------------------------------------------------------------- loading and integrity
def test_default_model_loads_with_its_card_and_verified_sha(detector):
    card = json.loads((ROOT / "models" / "parcelscan.json").read_text())
    assert detector.info["sha256"] == card["files"]["fp32"]["sha256"]
    assert detector.info["providers"] == ["CPUExecutionProvider"]
    assert detector.threshold == pytest.approx(card["files"]["fp32"]["threshold"])
    assert detector.info["precision"] == "fp32"


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_other_precisions_load_their_own_file_and_threshold(precision):
    det = Detector.from_pretrained(precision=precision, threads=1)
    card = json.loads((ROOT / "models" / "parcelscan.json").read_text())
    assert Path(det.info["file"]).name == card["files"][precision]["file"]
    assert det.threshold == pytest.approx(card["files"][precision]["threshold"])
    assert det.info["precision"] == precision


def test_tampered_model_is_refused(tmp_path):
    for f in ("parcelscan.onnx", "parcelscan.json"):
        shutil.copy(ROOT / "models" / f, tmp_path / f)
    data = bytearray((tmp_path / "parcelscan.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (tmp_path / "parcelscan.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        Detector.from_pretrained(tmp_path)


def test_model_without_card_needs_verify_false(tmp_path):
    shutil.copy(ROOT / "models" / "parcelscan.onnx", tmp_path / "mine.onnx")
    with pytest.raises(ModelIntegrityError, match="no model card"):
        Detector.from_pretrained(tmp_path / "mine.onnx")
    det = Detector.from_pretrained(tmp_path / "mine.onnx", verify=False, threads=1)
    assert det.info["sha256"] is None and det.threshold > 0


def test_missing_provider_is_a_clear_error_not_a_silent_cpu_fallback():
    with pytest.raises(RuntimeError, match="NoSuchExecutionProvider"):
        Detector.from_pretrained(providers=["NoSuchExecutionProvider"])
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(RuntimeError, match="onnxruntime-gpu"):
            Detector.from_pretrained(providers="cuda")


def test_bad_arguments_name_themselves(tmp_path):
    with pytest.raises(ValueError, match="precision"):
        Detector.from_pretrained(precision="int4")
    with pytest.raises(FileNotFoundError, match="no model file"):
        Detector.from_pretrained(tmp_path / "nothing.onnx")


# ---------------------------------------------------------------- detection
def test_single_scan_path_and_scan_give_the_same_detection(detector, parcels, tmp_path):
    scan = parcels[0].scan
    path = save_scan(scan, tmp_path / "p.npz")
    a, b = detector.detect(scan), detector.detect(path)
    assert isinstance(a, Detection) and b.source == str(path)
    _same(a, b)
    assert a.heatmap.shape == detector.model.preprocessor(scan).image.shape[1:]
    assert a.alarm == (a.score > detector.threshold)
    assert set(a.timings_ms) >= {"preprocess_ms", "inference_ms", "postprocess_ms", "total_ms"}


def test_scan_alone_equals_scan_inside_a_mixed_batch(detector, parcels):
    alone = [detector.detect(p.scan) for p in parcels]
    together = detector.detect([p.scan for p in parcels[::-1]])[::-1]
    for a, b in zip(alone, together, strict=True):
        _same(a, b)


def test_threshold_override_flips_the_alarm(detector, parcels):
    d = detector.detect(parcels[0].scan)
    assert detector.detect(parcels[0].scan, threshold=d.score * 0.5).alarm
    assert not detector.detect(parcels[0].scan, threshold=min(1.0, d.score + 1e-3)).alarm
    with pytest.raises(ValueError, match="threshold"):
        detector.detect(parcels[0].scan, threshold=1.5)


def test_an_alarm_always_has_a_region_at_least_at_its_peak(detector, parcels):
    found = detector.detect([p.scan for p in parcels])
    scan, d = next(
        (p.scan, d) for p, d in zip(parcels, found, strict=True) if d.score < detector.region_threshold
    )
    assert not d.regions  # nothing reaches the card's region threshold
    low = detector.detect(scan, threshold=d.score * 0.5)
    assert low.alarm and len(low.regions) == 1 and low.regions[0].score == pytest.approx(d.score)


def test_grown_regions_cover_the_lit_object_around_their_confident_pixels(detector, parcels):
    scan = parcels[0].scan  # a mass in a mannequin
    saved = detector.region_grow_threshold
    try:
        detector.region_grow_threshold = None
        d = detector.detect(scan, threshold=0.2)
        thr = detector.region_threshold
        detector.region_grow_threshold = 0.3
        grown = detector.detect(scan, threshold=0.2)
    finally:
        detector.region_grow_threshold = saved
    assert d.alarm and d.regions and grown.regions
    # every grown region holds a pixel at the seed level, and every ungrown region lies inside one
    assert all(g.score >= min(thr, d.score) - 1e-6 for g in grown.regions)
    for r in d.regions:
        assert any(
            g.box_px[0] <= r.box_px[0]
            and g.box_px[1] <= r.box_px[1]
            and r.box_px[2] <= g.box_px[2]
            and r.box_px[3] <= g.box_px[3]
            for g in grown.regions
        )
    assert sum(r.area_cm2 for r in grown.regions) > sum(r.area_cm2 for r in d.regions)


def _bad_scans(good: Scan, tmp_path: Path) -> dict:
    nan_air = good.air.copy()
    nan_air[0, 3] = np.nan
    path = save_scan(good, tmp_path / "ok.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return {
        "float signals": lambda: Scan(
            good.signals.astype(np.float32), good.air, good.dark, good.channels, 1, 1, 140
        ),
        "NaN calibration": lambda: Scan(good.signals, nan_air, good.dark, good.channels, 1, 1, 140),
        "shape": lambda: Scan(good.signals[0], good.air, good.dark, good.channels, 1, 1, 140),
        "missing calibration": lambda: Scan(good.signals, good.dark, good.dark, good.channels, 1, 1, 140),
        "truncated": lambda: truncated,
        "absent": lambda: tmp_path / "absent.npz",
        "not a scan": lambda: 42,
    }


def test_each_bad_scan_fails_alone_with_a_clear_message(detector, parcels, tmp_path):
    good = parcels[1].scan
    items, names = [good], ["good"]
    for name, make in _bad_scans(good, tmp_path).items():
        try:
            items.append(make())
        except ScanError as e:  # the Scan constructor already refuses some: check its message
            assert str(e)
            continue
        names.append(name)
    items.append(good)
    results = detector.detect(items)
    assert results[0].ok and results[-1].ok
    _same(results[0], results[-1])
    failed = dict(zip(names[1:], results[1:-1], strict=True))
    assert all(isinstance(f, FailedScan) and not f.ok for f in failed.values())
    assert "truncated" in failed["truncated"].error.lower() or "corrupt" in failed["truncated"].error.lower()
    assert "absent.npz" in failed["absent"].error
    assert "int" in failed["not a scan"].error
    for f in failed.values():
        jsonschema.validate(f.to_dict(), SCHEMA)
    with pytest.raises((ScanError, FileNotFoundError)):
        detector.detect(tmp_path / "absent.npz")  # alone, it raises


def test_result_json_follows_the_schema(detector, parcels):
    for p in parcels:
        d = detector.detect(p.scan, threshold=0.0)
        doc = json.loads(json.dumps(d.to_dict()))
        jsonschema.validate(doc, SCHEMA)
        assert doc["alarm"] is True and doc["model"]["precision"] == "fp32"


def test_impenetrable_area_warns_with_its_size(detector, parcels):
    good = parcels[1].scan
    signals = good.signals.copy()
    y0, x0 = 100, 150  # 40 x 50 scan pixels of dark current: opaque in both channels
    signals[:, y0 : y0 + 40, x0 : x0 + 50] = np.rint(good.dark[:, None, x0 : x0 + 50]).astype(np.uint16)
    scan = Scan(signals, good.air, good.dark, good.channels, good.pixel_mm, good.line_mm, good.kvp)
    d = detector.detect(scan)
    assert d.impenetrable_warning
    before = {a.box_px for a in detector.detect(good).impenetrable}
    new = [a for a in d.impenetrable if a.box_px not in before]
    assert len(new) == 1, (before, d.impenetrable)
    big = new[0]
    expected = 40 * 50 * good.pixel_mm * good.line_mm / 100
    assert big.area_cm2 == pytest.approx(expected, rel=0.25)
    bx0, by0, bx1, by1 = big.box_px
    assert bx0 <= x0 + 3 and by0 <= y0 + 3 and bx1 >= x0 + 47 and by1 >= y0 + 37


def test_regions_carry_box_mass_material_and_carrier(detector, parcels):
    truth = parcels[0].masses[0]
    d = detector.detect(parcels[0].scan, threshold=0.0)
    # a region threshold low enough to report something around the mass whatever the model's skill
    detector.region_threshold, saved = 0.05, detector.region_threshold
    try:
        d = detector.detect(parcels[0].scan)
    finally:
        detector.region_threshold = saved
    assert d.regions, "a 0.05 region threshold must give regions"
    tx0, ty0, tx1, ty1 = truth.bbox_px
    hit = [
        r
        for r in d.regions
        if r.box_px[0] < tx1 and r.box_px[2] > tx0 and r.box_px[1] < ty1 and r.box_px[3] > ty0
    ]
    assert hit, f"no region over the mass at {truth.bbox_px}: {[r.box_px for r in d.regions]}"
    r = hit[0]
    assert r.area_cm2 > 0 and r.mass_g is not None and r.mass_g > 0
    assert r.material_class in ("organic", "inorganic", "metal", "impenetrable", "unknown")
    x0, y0, x1, y1 = r.box_px
    assert r.box_mm == pytest.approx(
        (x0 * d.pixel_mm, y0 * d.line_mm, x1 * d.pixel_mm, y1 * d.line_mm), rel=1e-6, abs=1e-6
    )


def test_public_surface_is_small():
    assert {"Detector", "Detection", "Region", "FailedScan", "Scan", "load_scan"} <= set(parcelscan.__all__)


def test_single_energy_scan_gets_regions_without_material(detector):
    rng = np.random.default_rng(11)
    config = SceneConfig(**{**SMALL.__dict__, "positive_fraction": 1.0, "single_energy_share": 1.0})
    scene, scanner = random_parcel(rng, config)
    scan = render_scene(scene, scanner, rng).scan
    assert scan.channels == ("single",)
    # single-energy scans are judged (parcel and regions) at the card's single-energy threshold
    detector.single_energy_threshold, saved = 0.05, detector.single_energy_threshold
    try:
        d = detector.detect(scan)
    finally:
        detector.single_energy_threshold = saved
    assert d.regions and d.threshold == 0.05 and d.alarm == (d.score > 0.05)
    for r in d.regions:
        assert r.apparent_z is None and r.carrier is None
        assert r.material_class in ("unknown", "impenetrable")
    jsonschema.validate(d.to_dict(), SCHEMA)


def test_each_kind_of_scanner_gets_its_own_threshold(detector, parcels):
    dual = parcels[0].scan
    rng = np.random.default_rng(12)
    config = SceneConfig(**{**SMALL.__dict__, "single_energy_share": 1.0})
    single = render_scene(*random_parcel(rng, config), rng).scan
    saved = detector.threshold, detector.single_energy_threshold
    try:
        detector.threshold, detector.single_energy_threshold = 0.25, 0.75
        d, s = detector.detect([dual, single])
        assert (d.threshold, s.threshold) == (0.25, 0.75)
        assert d.alarm == (d.score > 0.25) and s.alarm == (s.score > 0.75)
        d, s = detector.detect([dual, single], threshold=0.5)  # an explicit threshold is for every scan
        assert d.threshold == s.threshold == 0.5
        with detector.stream() as stream:
            assert stream.submit(single).result(timeout=60).threshold == 0.75
    finally:
        detector.threshold, detector.single_energy_threshold = saved
