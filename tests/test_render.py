"""Rendering: analytic slabs, photon statistics, artefacts, the K-edge trap and scanner calibration."""

from dataclasses import replace

import numpy as np
import pytest

from parcelscan.physics.detector import DetectorConfig
from parcelscan.physics.materials import get_material
from parcelscan.preprocess.material import apparent_z, r_curves
from parcelscan.sim.geometry import Box
from parcelscan.sim.render import render_scene
from parcelscan.sim.scanner import (
    PENETRATION_DPRIME,
    ScannerConfig,
    calibrate_ma,
    random_scanner,
    wire_dprime,
)
from parcelscan.sim.scene import Item, Scene

# A detector with every artefact switched off, so a slab has an exact answer.
CLEAN = DetectorConfig(
    electronic_noise_photons=0.0,
    pixel_gain_rms=0.0,
    flat_field_residual=0.0,
    crosstalk_px=0.0,
    afterglow=0.0,
    layer_offset_px=0.0,
    scatter_fraction=0.0,
)


def _scanner(**kw) -> ScannerConfig:
    base = dict(
        kvp=140.0,
        ma=1.0,
        pixel_mm=1.6,
        line_mm=1.6,
        tunnel_width_cm=30.0,
        tunnel_height_cm=40.0,
        detector=CLEAN,
    )
    return ScannerConfig(**{**base, **kw})


def _slab_scene(
    material: str, thickness_cm: float, density: float | None = None, length_cm: float = 20.0
) -> Scene:
    m = get_material(material)
    scene = Scene(length_cm=length_cm)
    # A slab much wider than the scan, so every ray crosses exactly thickness_cm
    scene.add(
        Item(
            Box(np.array([0.0, 10.0, 2.0 + thickness_cm / 2]), np.array([100.0, 100.0, thickness_cm / 2])),
            m,
            density or m.density_g_cm3,
        )
    )
    return scene


def _central(t: np.ndarray, half_width: int = 3) -> np.ndarray:
    """The pixels next to the central ray, where the fan beam crosses a slab at right angles."""
    mid = t.shape[-1] // 2
    return t[..., mid - half_width : mid + half_width]


def _analytic_transmission(scanner: ScannerConfig, material: str, areal: float) -> np.ndarray:
    model = scanner.model
    mu = get_material(material).mu_rho(model.energies_kev)
    return (model.n0_w * np.exp(-mu * areal)).sum(1) / model.n0_w.sum(1)


@pytest.mark.parametrize(("material", "cm"), [("steel", 0.5), ("porcelain", 3.0), ("Dy2O3", 0.05)])
def test_uniform_slab_gives_polychromatic_beer_lambert(material, cm):
    scanner = _scanner()
    r = render_scene(_slab_scene(material, cm), scanner, np.random.default_rng(0), noise=False)
    t = _central(r.scan.transmission())
    expected = _analytic_transmission(scanner, material, cm * get_material(material).density_g_cm3)
    for c in range(2):
        np.testing.assert_allclose(t[c], expected[c], rtol=2e-3)
    # Off-centre rays cross the slab obliquely (fan beam): longer paths, less transmission
    full = r.scan.transmission()
    assert np.all(full[:, :, 0].mean() < t.mean()) and np.all(full[:, :, -1].mean() < t.mean())
    # Beam hardening: the effective attenuation is below the mean-energy one, and differs by channel
    assert expected[0] < expected[1]


def test_noise_variance_follows_photon_statistics():
    scanner = _scanner(pixel_mm=0.8, line_mm=0.8, ma=0.05, tunnel_width_cm=20.0)
    r = render_scene(_slab_scene("Al", 2.0, length_cm=80.0), scanner, np.random.default_rng(1))
    t = _central(r.scan.transmission().astype(np.float64), 10)
    model = scanner.model
    mu = get_material("Al").mu_rho(model.energies_kev) * 2.0 * 2.7
    s = (model.n0_w * np.exp(-mu)).sum(1)
    v = (model.n0_w2 * np.exp(-mu)).sum(1)
    expected_var = v / model.air_signal**2
    measured = t.reshape(2, -1).var(axis=1)
    np.testing.assert_allclose(measured, expected_var, rtol=0.06)
    np.testing.assert_allclose(t.reshape(2, -1).mean(1), s / model.air_signal, rtol=2e-3)
    # Electronic noise adds its own variance on top
    noisy = _scanner(
        pixel_mm=0.8,
        line_mm=0.8,
        ma=0.05,
        tunnel_width_cm=20.0,
        detector=replace(CLEAN, electronic_noise_photons=20.0),
    )
    t2 = _central(
        render_scene(
            _slab_scene("Al", 2.0, length_cm=80.0), noisy, np.random.default_rng(1)
        ).scan.transmission()
    )
    assert np.all(t2.reshape(2, -1).var(axis=1) > 1.1 * measured)


def test_artefacts_change_the_image_but_not_the_mean():
    scanner = _scanner(detector=DetectorConfig())
    clean = _scanner()
    scene = _slab_scene("porcelain", 2.0)
    t_art = render_scene(scene, scanner, np.random.default_rng(2), noise=False).scan.transmission()
    t_clean = render_scene(scene, clean, np.random.default_rng(2), noise=False).scan.transmission()
    assert not np.allclose(t_art, t_clean, rtol=1e-4)
    # Flat-field residual and scatter are small: a few per cent at most on a uniform slab
    np.testing.assert_allclose(t_art.mean(axis=(1, 2)), t_clean.mean(axis=(1, 2)), rtol=0.03)


def test_raw_data_are_clipped_16_bit_with_dark_offset():
    scanner = _scanner(detector=replace(CLEAN, adc_bits=14, adc_offset=500.0))
    r = render_scene(_slab_scene("W", 3.0), scanner, np.random.default_rng(3))
    assert r.scan.signals.dtype == np.uint16
    assert r.scan.signals.max() <= 2**14 - 1
    assert np.all(np.abs(r.scan.dark - 500) < 30)
    # 3 cm of tungsten is opaque: the raw values sit at the dark level
    assert np.median(r.scan.signals) < 520


def test_rendering_is_deterministic_by_seed():
    scanner = _scanner(detector=DetectorConfig())
    scene = _slab_scene("steel", 0.3)
    a = render_scene(scene, scanner, np.random.default_rng(7)).scan
    b = render_scene(scene, scanner, np.random.default_rng(7)).scan
    c = render_scene(scene, scanner, np.random.default_rng(8)).scan
    np.testing.assert_array_equal(a.signals, b.signals)
    assert not np.array_equal(a.signals, c.signals)


def _thin_layer_z(kvp: float, cu_mm: float, material: str, areal: float) -> float:
    scanner = _scanner(kvp=kvp, detector=replace(CLEAN, filter_cu_mm=cu_mm))
    curves = r_curves(scanner.model)
    r = render_scene(
        _slab_scene(material, areal / get_material(material).density_g_cm3),
        scanner,
        np.random.default_rng(0),
        noise=False,
    )
    a = -np.log(r.scan.transmission().mean(axis=(1, 2)))
    return float(apparent_z(a[0], a[1], curves))


def test_k_edge_trap_is_reproduced():
    """physics.md: at 140 kVp a thin Dy2O3 layer reads between porcelain and nickel; at 100 kVp organic."""
    z_dy = _thin_layer_z(140, 0.5, "Dy2O3", 0.25)
    z_porcelain = _thin_layer_z(140, 0.5, "porcelain", 5.0)
    z_ni = _thin_layer_z(140, 0.5, "Ni", 1.0)
    assert z_porcelain < z_dy < z_ni
    assert 11 <= z_porcelain <= 14 and 26 <= z_ni <= 30
    assert _thin_layer_z(100, 0.5, "Dy2O3", 0.25) < 10  # reads organic
    assert _thin_layer_z(160, 1.0, "Dy2O3", 0.25) > z_dy  # a harder split reads more metallic


def test_flux_calibration_puts_the_test_wire_at_the_rated_penetration():
    scanner = ScannerConfig(kvp=140.0, steel_penetration_mm=32.0)
    ma = calibrate_ma(scanner)
    assert wire_dprime(scanner, 32.0, ma) == pytest.approx(PENETRATION_DPRIME, rel=1e-3)
    assert wire_dprime(scanner, 25.0, ma) > PENETRATION_DPRIME > wire_dprime(scanner, 40.0, ma)
    assert 0.1 < ma < 10  # a plausible tube current
    assert calibrate_ma(replace(scanner, steel_penetration_mm=36.0)) > ma


def test_random_scanners_stay_in_the_documented_ranges():
    rng = np.random.default_rng(11)
    for _ in range(10):
        s = random_scanner(rng)
        assert 100 <= s.kvp <= 160 and 24 <= s.steel_penetration_mm <= 37 and 0.8 <= s.pixel_mm <= 1.6
        assert 0.2 <= s.detector.filter_cu_mm <= 1.0
    assert random_scanner(rng, single_energy=True).detector.channels == ("single",)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kvp", 40.0),
        ("pixel_mm", 0.0),
        ("steel_penetration_mm", np.inf),
        ("belt_speed_m_s", -1.0),
        ("ma", 1e6),
    ],
)
def test_bad_scanner_values_raise(field, value):
    with pytest.raises(ValueError, match=field):
        _scanner(**{field: value})


def test_single_energy_scan_renders_one_channel():
    scanner = _scanner(detector=replace(CLEAN, kind="single"))
    r = render_scene(_slab_scene("steel", 0.5), scanner, np.random.default_rng(0), noise=False)
    assert r.scan.channels == ("single",) and r.scan.signals.shape[0] == 1
