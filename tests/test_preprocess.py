"""Preprocessing: exact answers on hand-made scans, resampling, tiling, the config card, bad inputs."""

import json
from dataclasses import replace

import numpy as np
import pytest

from parcelscan.preprocess.pipeline import (
    INPUT_CHANNELS,
    PreprocessConfig,
    Preprocessor,
    denoise,
    impenetrable_mask,
    log_attenuation,
    model_input,
    transmission,
)
from parcelscan.preprocess.tiling import (
    box_to_mm,
    box_to_model,
    box_to_scan,
    resample,
    stitch,
    tile_starts,
    tiles,
    to_scan_coords,
)
from parcelscan.scan import Scan

C, L, P = 2, 37, 53  # odd and unequal, so a lines/pixels mix-up changes shapes


def _refs(c=C, p=P):
    dark = (1000.0 + 3.0 * np.arange(p, dtype=np.float32))[None].repeat(c, 0)
    return dark + 40000.0, dark  # air, dark: a 40000-ADU span in every pixel


def _scan(t, channels=("low", "high"), line_mm=0.8, pixel_mm=1.2):
    """A scan whose raw signals encode transmission ``t`` (C, L, P) exactly (up to ADU rounding)."""
    air, dark = _refs(t.shape[0], t.shape[2])
    raw = np.rint(dark[:, None, :] + t * (air - dark)[:, None, :]).astype(np.uint16)
    return Scan(raw, air, dark, channels, pixel_mm, line_mm, 140.0)


def test_uniform_scan_gives_exact_transmission_and_log_attenuation():
    t = np.empty((C, L, P), np.float32)
    t[0], t[1] = 0.25, 0.5
    scan = _scan(t)
    tr = transmission(scan.signals, scan.air, scan.dark)
    assert tr.dtype == np.float32 and tr.shape == (C, L, P)
    np.testing.assert_allclose(tr[0], 0.25, rtol=1e-6)
    np.testing.assert_allclose(tr[1], 0.5, rtol=1e-6)
    a = log_attenuation(tr)
    assert a.dtype == np.float32 and a.shape == (C, L, P)
    np.testing.assert_allclose(a[0], np.log(4.0), rtol=1e-5)
    np.testing.assert_allclose(a[1], np.log(2.0), rtol=1e-5)
    # Through the pipeline (resampled to 2 mm): the same values, divided by the fixed scale in the image
    pre = Preprocessor()(scan)
    np.testing.assert_allclose(pre.attenuation[0], np.log(4.0), rtol=1e-5)
    expected = np.broadcast_to(np.log([4.0, 2.0])[:, None, None] / 4.0, pre.image[:2].shape)
    np.testing.assert_allclose(pre.image[:2], expected, rtol=1e-5)
    assert not pre.impenetrable.any() and not pre.image[2].any()


def test_transmission_is_clipped_to_floor_and_ceiling():
    air, dark = _refs()
    raw = np.empty((C, L, P), np.uint16)
    raw[:] = dark.astype(np.uint16)[:, None, :]
    raw[:, :10] = 0  # below dark: noise in an opaque region
    raw[:, 10:20] = 65535  # far above air: a broken pixel
    tr = transmission(raw, air, dark, floor=1e-3)
    assert np.all(tr[:, :10] == np.float32(1e-3))
    assert np.all(tr[:, 10:20] == np.float32(1.5))
    assert np.all(tr[:, 20:] == np.float32(1e-3))  # exactly dark: T = 0, raised to the floor


def test_impenetrable_mask_marks_exactly_the_opaque_region_of_the_high_channel():
    t = np.full((C, L, P), 0.6, np.float32)
    t[0, 3:9, 20:40] = 1e-3  # opaque in the low channel only: still readable
    t[1, 12:30, 5:17] = 2e-3  # a = 6.2 > 5 in the high channel
    t[1, 30:33, 40:50] = 0.01  # a = 4.6: dark but readable
    pre = Preprocessor(PreprocessConfig(target_mm=2.0))(_scan(t, line_mm=2.0, pixel_mm=2.0))
    assert pre.scales == (1.0, 1.0)
    expected = np.zeros((L, P), bool)
    expected[12:30, 5:17] = True
    np.testing.assert_array_equal(pre.impenetrable, expected)
    np.testing.assert_array_equal(pre.image[2], expected.astype(np.float32))
    a = np.zeros((L, P), np.float32)
    a[4:6, 7:11] = 5.5
    np.testing.assert_array_equal(impenetrable_mask(a, 5.0), a > 0)
    assert not impenetrable_mask(a, 6.0).any()


def test_resample_constant_stays_constant_with_separate_line_and_pixel_factors():
    img = np.full((C, L, P), 0.37, np.float32)
    out, sl, sp = resample(img, line_mm=0.8, pixel_mm=1.2, target_mm=2.0)
    assert out.shape == (C, 15, 32)  # round(37 * 0.4), round(53 * 0.6)
    assert (sl, sp) == (15 / 37, 32 / 53)
    np.testing.assert_allclose(out, 0.37, rtol=1e-6)


@pytest.mark.parametrize(("line_mm", "pixel_mm", "block"), [(1.0, 1.0, (2, 2)), (0.5, 1.0, (4, 2))])
def test_resample_downsampling_averages_blocks(line_mm, pixel_mm, block):
    rng = np.random.default_rng(0)
    means = rng.uniform(0, 1, (C, 11, 17)).astype(np.float32)
    img = means.repeat(block[0], 1).repeat(block[1], 2)
    img += rng.normal(0, 0.1, img.shape).astype(np.float32)  # per-pixel detail that must be averaged out
    expected = img.reshape(C, 11, block[0], 17, block[1]).mean(axis=(2, 4))
    out, sl, sp = resample(img, line_mm, pixel_mm, 2.0)
    assert (sl, sp) == (1 / block[0], 1 / block[1])
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_resample_shrinking_lines_while_enlarging_pixels_follows_a_ramp():
    # 0.5 mm lines shrink 4x, 4 mm pixels grow 2x: area average along lines, linear across.
    y, x = np.mgrid[0:44, 0:13].astype(np.float32)
    img = np.stack([0.3 * y + 0.7 * x, -y + 2 * x])
    out, sl, sp = resample(img, line_mm=0.5, pixel_mm=4.0, target_mm=2.0)
    assert out.shape == (2, 11, 26) and (sl, sp) == (0.25, 2.0)
    yy = (np.arange(11) + 0.5) / sl - 0.5  # scan coordinate of each model pixel centre
    xx = (np.arange(26) + 0.5) / sp - 0.5
    expected = np.stack([0.3 * yy[:, None] + 0.7 * xx, -yy[:, None] + 2 * xx])
    inner = (slice(None), slice(None), slice(1, -1))  # linear interpolation clamps at the borders
    np.testing.assert_allclose(out[inner], expected[inner], atol=1e-4)


def test_to_scan_coords_and_boxes_map_back_to_the_scan_grid():
    y, x = np.mgrid[0:L, 0:P].astype(np.float32)
    ramp = np.stack([y + 2 * x, 3 * y - x])
    small, sl, sp = resample(ramp, 0.8, 1.2, 2.0)
    back = to_scan_coords(small, (sl, sp), (L, P))
    assert back.shape == (2, L, P) and back.dtype == np.float32
    # The ramp survives area-averaging and linear interpolation away from the clamped borders, up to the
    # staircase error of averaging pixels over footprints that cut them (2.47 x 1.67 px here):
    # at most ~0.05 px, times the steepest slope (3).
    np.testing.assert_allclose(back[:, 4:-4, 3:-3], ramp[:, 4:-4, 3:-3], atol=0.06 * 3)
    with pytest.raises(ValueError, match="scan_shape"):
        to_scan_coords(small, (sl, sp), (P, L))
    h, w = small.shape[1:]
    # boxes are (x0, y0, x1, y1): x across the belt (pixels), y along it (lines)
    np.testing.assert_allclose(box_to_scan([0, 0, w, h], (sl, sp)), [0, 0, P, L])
    boxes = np.array([[1.0, 2.0, 5.0, 9.0], [3.0, 0.5, 4.0, 7.5]])
    np.testing.assert_allclose(box_to_model(box_to_scan(boxes, (sl, sp)), (sl, sp)), boxes)
    np.testing.assert_allclose(box_to_mm([0, 0, P, L], 0.8, 1.2), [0, 0, P * 1.2, L * 0.8])


@pytest.mark.parametrize(
    ("length", "expected"), [(50, [0]), (64, [0]), (65, [0, 1]), (112, [0, 48]), (150, [0, 48, 86])]
)
def test_tile_starts_cover_the_length_and_end_flush(length, expected):
    assert tile_starts(length, 64, 16) == expected


@pytest.mark.parametrize("hw", [(37, 53), (64, 64), (150, 97), (64, 200), (129, 30)])
def test_tile_then_stitch_returns_the_image(hw):
    rng = np.random.default_rng(hw[0] * 1000 + hw[1])
    img = rng.normal(0, 1, (3, *hw)).astype(np.float32)
    batch, origins = tiles(img, 64, 16, pad_value=[7.0, 8.0, 9.0])
    assert batch.shape == (len(origins), 3, 64, 64) and batch.dtype == np.float32
    for b, (y, x) in zip(batch, origins, strict=True):
        h, w = min(64, hw[0] - y), min(64, hw[1] - x)
        np.testing.assert_array_equal(b[:, :h, :w], img[:, y : y + h, x : x + w])
        assert np.all(b[0, h:] == 7.0) and np.all(b[2, :, w:] == 9.0)  # pads beyond a small image
    out = stitch(batch, origins, hw, 16)
    assert out.shape == (3, *hw)
    np.testing.assert_allclose(out, img, atol=1e-5)


def test_stitch_blends_overlaps_smoothly():
    _, origins = tiles(np.zeros((1, 64, 112), np.float32), 64, 16)
    assert origins == [(0, 0), (0, 48)]
    maps = np.stack([np.full((2, 64, 64), k, np.float32) for k in (1.0, 3.0)])
    out = stitch(maps, origins, (64, 112), 16)
    assert np.all(out[:, :, :48] == 1.0) and np.all(out[:, :, 64:] == 3.0)
    seam = out[0, 10, 48:64]
    assert np.all((seam > 1.0) & (seam < 3.0)) and np.all(np.diff(seam) > 0)
    np.testing.assert_allclose(seam + seam[::-1], 4.0, rtol=1e-6)  # symmetric ramps: neither tile favoured


def test_denoise_median_removes_a_spike_and_bilateral_keeps_an_edge():
    rng = np.random.default_rng(1)
    a = np.zeros((2, 21, 31), np.float32)
    a[:, :, 15:] = 3.0
    a[0, 10, 5] = 9.0
    med = denoise(a, "median", size=3)
    assert med[0, 10, 5] == 0.0 and np.array_equal(med[1], a[1])
    noisy = a[1:] + rng.normal(0, 0.02, a[1:].shape).astype(np.float32)
    bil = denoise(noisy, "bilateral", size=5, sigma_attenuation=0.1, sigma_px=1.5)
    assert np.abs(bil[0, :, 14]).max() < 0.1 and np.abs(bil[0, :, 15] - 3).max() < 0.1
    assert bil[0, 2:-2, 2:12].std() < 0.6 * noisy[0, 2:-2, 2:12].std()
    np.testing.assert_array_equal(denoise(a, "none"), a)


def test_config_round_trips_through_dict_and_json():
    cfg = PreprocessConfig(target_mm=1.6, tile=128, overlap=16, denoise="median", denoise_size=3)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert PreprocessConfig.from_dict(d) == cfg
    assert PreprocessConfig.from_dict(PreprocessConfig().to_dict()) == PreprocessConfig()
    assert d["channels"] == list(INPUT_CHANNELS)


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("colour_jitter", 0.1, "colour_jitter"),
        ("tile", 256.0, "tile must be int"),
        ("tile", "256", "tile must be int"),
        ("target_mm", True, "target_mm must be float"),
        ("attenuation_scale", [4.0], r"attenuation_scale must be a list of 2"),
        ("attenuation_scale", [4.0, "4"], r"attenuation_scale\[1\] must be float"),
        ("channels", ["a_high", "a_low", "impenetrable"], "channels must be"),
        ("denoise", "gaussian", "denoise must be one of"),
    ],
)
def test_from_dict_rejects_unknown_keys_and_wrong_types(key, value, match):
    d = {**PreprocessConfig().to_dict(), key: value}
    with pytest.raises(ValueError, match=match):
        PreprocessConfig.from_dict(d)


def test_from_dict_rejects_missing_keys():
    d = PreprocessConfig().to_dict()
    del d["overlap"]
    with pytest.raises(ValueError, match=r"missing .*overlap"):
        PreprocessConfig.from_dict(d)


def test_bad_inputs_raise_clear_errors():
    a = np.ones((C, L, P), np.float32)
    a[1, 5, 7] = np.nan
    with pytest.raises(ValueError, match="a must be finite"):
        denoise(a, "bilateral")
    with pytest.raises(ValueError, match="attenuation must be finite"):
        model_input(a, np.zeros((L, P), bool), (4.0, 4.0), 10.0)
    with pytest.raises(ValueError, match="a_high must be finite"):
        impenetrable_mask(a[1], 5.0)
    with pytest.raises(
        ValueError, match=r"image must have shape \(C, L, P\) \(3 dims\), got shape \(37, 53\)"
    ):
        resample(np.ones((L, P), np.float32), 0.8, 1.2, 2.0)
    with pytest.raises(ValueError, match=r"target_mm must be a positive finite number, got -2\.0"):
        resample(np.ones((C, L, P), np.float32), 0.8, 1.2, -2.0)
    with pytest.raises(ValueError, match=r"PreprocessConfig\.target_mm"):
        PreprocessConfig(target_mm=-2.0)
    with pytest.raises(ValueError, match="t must be a transmission > 0"):
        log_attenuation(np.zeros((C, L, P), np.float32))
    air, dark = _refs()
    with pytest.raises(ValueError, match=r"dark must have shape \(C, P\) = \(2, 53\), got \(2, 37\)"):
        transmission(np.zeros((C, L, P), np.uint16), air, dark[:, :L])
    with pytest.raises(ValueError, match="scan must be a parcelscan Scan, got ndarray"):
        Preprocessor()(np.zeros((C, L, P), np.uint16))
    with pytest.raises(ValueError, match="overlap"):
        PreprocessConfig(tile=64, overlap=40)
    scan = _scan(np.full((C, L, P), 0.5, np.float32))
    scan.air[1, 7] = np.nan  # arrays stay mutable after the Scan checked them
    with pytest.raises(ValueError, match="air reference contains NaN"):
        Preprocessor()(scan)


def test_single_energy_scan_duplicates_its_channel():
    t = np.full((1, L, P), 0.5, np.float32)
    t[0, 10:20, 30:45] = 1e-3
    pre = Preprocessor(PreprocessConfig(attenuation_scale=(2.0, 4.0)))(_scan(t, channels=("single",)))
    h, w = round(L * 0.8 / 2.0), round(P * 1.2 / 2.0)
    assert pre.attenuation.shape == (1, h, w) and pre.image.shape == (3, h, w)
    np.testing.assert_allclose(pre.image[0] * 2.0, pre.attenuation[0], rtol=1e-6)
    np.testing.assert_allclose(pre.image[1] * 4.0, pre.attenuation[0], rtol=1e-6)
    assert pre.impenetrable.any() and np.array_equal(pre.image[2], pre.impenetrable)
    assert pre.impenetrable[6, 22] and not pre.impenetrable[0, 0]  # rows 10:20 -> 4:8, cols 30:45 -> 18:27


def test_simulated_parcel_goes_through_the_preprocessor():
    from parcelscan.sim.catalogue import SceneConfig, random_parcel
    from parcelscan.sim.render import render_scene

    rng = np.random.default_rng(3)
    scene, scanner = random_parcel(rng, SceneConfig(max_parcel_cm=(40.0, 30.0, 25.0), clutter=(1, 2)))
    scan = render_scene(scene, scanner, rng).scan
    config = PreprocessConfig(tile=128, overlap=16)
    pre = Preprocessor(config)(scan)
    _, n_lines, n_pix = scan.shape
    h, w = pre.image.shape[1:]
    assert pre.image.shape[0] == 3 and pre.image.dtype == np.float32 and pre.impenetrable.dtype == bool
    assert abs(h - n_lines * scan.line_mm / config.target_mm) <= 0.5
    assert abs(w - n_pix * scan.pixel_mm / config.target_mm) <= 0.5
    assert pre.scan_shape == (n_lines, n_pix) and np.isclose(pre.scale_lines, h / n_lines)
    assert np.isfinite(pre.image).all() and pre.attenuation.max() > 0.5  # something is in the parcel
    # A model that returns its input, tiled and stitched, reproduces the image
    batch, origins = Preprocessor(config).tiles(pre)
    assert batch.shape[1:] == (3, 128, 128)
    np.testing.assert_allclose(Preprocessor(config).stitch(batch, origins, pre), pre.image, atol=1e-5)
    heat = to_scan_coords(pre.image[2:], pre.scales, pre.scan_shape)
    assert heat.shape == (1, n_lines, n_pix)


def test_denoise_in_the_config_changes_the_pipeline_output():
    rng = np.random.default_rng(2)
    t = np.clip(rng.normal(0.5, 0.05, (C, L, P)), 0.01, 1).astype(np.float32)
    scan = _scan(t, line_mm=2.0, pixel_mm=2.0)
    plain = Preprocessor()(scan)
    smooth = Preprocessor(replace(PreprocessConfig(), denoise="median", denoise_size=3))(scan)
    assert smooth.attenuation.std() < 0.8 * plain.attenuation.std()


def test_pipeline_averages_transmission_not_attenuation():
    # Half of each 2x2 block is air, half nearly opaque: a coarser detector sees T = (1 + 0.01) / 2.
    t = np.ones((C, 22, 34), np.float32)
    t[:, :, 1::2] = 0.01
    pre = Preprocessor(PreprocessConfig(target_mm=2.0))(_scan(t, line_mm=1.0, pixel_mm=1.0))
    assert pre.attenuation.shape == (C, 11, 17)
    np.testing.assert_allclose(pre.attenuation, -np.log(0.505), rtol=1e-3)  # not -ln(0.1) = 2.3
