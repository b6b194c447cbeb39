"""Scene catalogue, ground truth and the dataset generator."""

import json
from dataclasses import replace

import numpy as np
import pytest

from parcelscan.cli import main as cli_main
from parcelscan.physics.materials import get_material
from parcelscan.sim.catalogue import SceneConfig, build_scene, random_parcel
from parcelscan.sim.dataset import generate_dataset, load_example, simulate_parcel
from parcelscan.sim.geometry import Box, chord_map
from parcelscan.sim.render import render_scene, scan_geometry
from parcelscan.sim.scanner import ScannerConfig
from parcelscan.sim.scene import CONCEALMENT_TYPES, ConcealedMass, Item, Scene

SMALL = SceneConfig(max_parcel_cm=(50.0, 40.0, 30.0), clutter=(1, 3))


def _only(concealment: str, **kw) -> SceneConfig:
    weights = {c: float(c == concealment) for c in CONCEALMENT_TYPES}
    return replace(SMALL, positive_fraction=1.0, concealment_weights=weights, **kw)


# What each concealment's carrier could innocently hold where the mass is (None: it is hollow).
INNOCENT = {
    "mannequin": {None},
    "tile_stack_layer": {"porcelain"},
    "tile_blend": {"porcelain"},
    "misdeclared_powder": {"Ni"},
    "other_carrier": {None, "paper", "water"},  # a housing or toy; a book; a can of food
}


@pytest.mark.parametrize("concealment", CONCEALMENT_TYPES)
def test_every_concealment_type_appears_and_its_mask_lies_where_the_label_says(concealment):
    rng = np.random.default_rng(abs(hash(concealment)) % 2**32)
    scene, scanner = random_parcel(rng, _only(concealment, mass_range_g=(50.0, 500.0)))
    assert scene.masses and all(m.concealment == concealment for m in scene.masses)
    r = render_scene(scene, scanner, rng)
    geom = scan_geometry(scanner, scene.length_cm)
    for k, (mass, truth) in enumerate(zip(scene.masses, r.masses, strict=True), start=1):
        assert truth.concealment == concealment and truth.n_pixels > 0
        # The mask is exactly where the mass's own solids project
        footprint = np.zeros(r.mask.shape, bool)
        for i in mass.items:
            cm = chord_map(scene.items[i].shape, geom)
            footprint[cm.lines, cm.pixels] |= cm.chords > 0
        np.testing.assert_array_equal(r.mask == k, footprint)
        x0, y0, x1, y1 = truth.bbox_px
        lines, pixels = np.nonzero(r.mask == k)
        assert (x0, y0, x1, y1) == (pixels.min(), lines.min(), pixels.max() + 1, lines.max() + 1)
        assert truth.mass_g > 0 and truth.dprime > 0
        # the discrimination observer's innocent alternative: what the carrier could hold there
        assert truth.innocent_material in INNOCENT[concealment]
        if truth.innocent_material is None:  # a hollow carrier: any mass there is the anomaly
            assert truth.dprime_discrimination == truth.dprime
        else:  # telling it from more of the innocent filling is harder than finding it
            assert 0 <= truth.dprime_discrimination < truth.dprime
        assert truth.to_dict()["dprime_discrimination"] == round(truth.dprime_discrimination, 2)
    assert not scene.manifest_honest


def test_negatives_have_no_mask_and_an_honest_manifest():
    config = replace(SMALL, positive_fraction=0.0, false_manifest_rate=0.0)
    for i in range(3):
        rng = np.random.default_rng([3, i])
        scene, scanner = random_parcel(rng, config)
        r = render_scene(scene, scanner, rng)
        assert not r.masses and not r.mask.any()
        assert scene.manifest_honest
        assert all(m.declared_mass_g > 0 for m in scene.manifest)


def test_false_manifests_of_innocent_parcels_are_labelled():
    config = replace(SMALL, positive_fraction=0.0, false_manifest_rate=1.0, clutter=(2, 3))
    scene, _ = random_parcel(np.random.default_rng(4), config)
    assert scene.manifest and not scene.manifest_honest


def test_misdeclared_powder_is_declared_as_nickel():
    scene, _ = random_parcel(np.random.default_rng(5), _only("misdeclared_powder"))
    assert any(m.description == "nickel powder" for m in scene.manifest)
    assert scene.masses[0].material in ("Dy2O3", "Tb4O7", "Nd2O3")


def test_simulation_is_deterministic_by_seed():
    a, label_a = simulate_parcel(9, 2, SMALL)
    b, label_b = simulate_parcel(9, 2, SMALL)
    c, _ = simulate_parcel(9, 3, SMALL)
    np.testing.assert_array_equal(a.scan.signals, b.scan.signals)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert label_a == label_b
    assert a.scan.signals.shape != c.scan.signals.shape or not np.array_equal(a.scan.signals, c.scan.signals)


def _dy_in_porcelain(mass_g: float, porcelain_cm: float) -> float:
    """d' of a Dy2O3 block of ``mass_g`` under ``porcelain_cm`` of porcelain, on a fixed scanner."""
    scanner = ScannerConfig(kvp=140.0, ma=1.0, pixel_mm=1.6, line_mm=1.6, tunnel_width_cm=40.0)
    dy = get_material("Dy2O3")
    side = (mass_g / dy.density_g_cm3) ** (1 / 3)
    scene = Scene(length_cm=30.0)
    k = scene.add(
        Item(Box(np.array([0.0, 15.0, 1.0 + side / 2]), np.full(3, side / 2)), dy, dy.density_g_cm3)
    )
    scene.masses.append(ConcealedMass([k], "Dy2O3", mass_g, "tile_stack_layer", "tile stack"))
    if porcelain_cm > 0:
        scene.add(
            Item(
                Box(np.array([0.0, 15.0, 12.0 + porcelain_cm / 2]), np.array([15.0, 10.0, porcelain_cm / 2])),
                get_material("porcelain"),
                2.4,
            )
        )
    return render_scene(scene, scanner, np.random.default_rng(0), noise=False).masses[0].dprime


def test_dprime_in_scenes_grows_with_mass_and_falls_with_background_thickness():
    by_mass = [_dy_in_porcelain(g, 4.0) for g in (1.0, 5.0, 20.0)]
    assert by_mass[0] < by_mass[1] < by_mass[2]
    by_depth = [_dy_in_porcelain(2.0, cm) for cm in (0.0, 4.0, 8.0, 12.0)]
    assert by_depth[0] > by_depth[1] > by_depth[2] > by_depth[3]


def test_parcels_fit_the_tunnel_and_have_realistic_sizes():
    for i in range(4):
        rng = np.random.default_rng([12, i])
        scene, scanner = random_parcel(rng, SceneConfig())
        box = scene.items[0]
        assert box.group == "parcel box"
        lo, hi = box.shape.bounds()
        size = hi - lo
        assert (
            15 <= size[1] <= 104 and size[0] <= scanner.tunnel_width_cm and hi[2] < scanner.tunnel_height_cm
        )
        assert size[0] <= 64 and size[2] <= 54  # within 100 x 60 x 50 cm (plus walls)


@pytest.mark.parametrize(
    ("field", "kw"),
    [
        ("positive_fraction", {"positive_fraction": 1.5}),
        ("mass_range_g", {"mass_range_g": (100.0, 10.0)}),
        ("concealment_weights", {"concealment_weights": {"suitcase": 1.0}}),
        ("clutter", {"clutter": (5, 2)}),
        ("max_parcel_cm", {"max_parcel_cm": (10.0, 10.0, 10.0)}),
    ],
)
def test_bad_scene_configuration_raises(field, kw):
    with pytest.raises(ValueError, match=field):
        SceneConfig(**kw)


def test_dataset_is_independent_of_worker_count(tmp_path):
    one = generate_dataset(tmp_path / "one", 3, seed=21, workers=1, config=SMALL, progress=False)
    two = generate_dataset(tmp_path / "two", 3, seed=21, workers=2, config=SMALL, progress=False)
    assert one["parcels"] == two["parcels"]
    for entry in one["parcels"]:
        s1, l1, m1, c1 = load_example(tmp_path / "one", entry["id"])
        s2, l2, m2, _ = load_example(tmp_path / "two", entry["id"])
        np.testing.assert_array_equal(s1.signals, s2.signals)
        np.testing.assert_array_equal(m1, m2)
        assert l1 == l2
        assert m1.shape == c1.shape == s1.signals.shape[1:]
        assert l1["positive"] == bool(l1["masses"]) == bool(m1.any())


def _thread_counts() -> list[int]:
    from threadpoolctl import threadpool_info

    return [p["num_threads"] for p in threadpool_info()]


def test_pool_workers_run_one_blas_thread_each():
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from threadpoolctl import threadpool_limits

    from parcelscan._workers import one_thread_each

    fork = multiprocessing.get_context("fork")  # as generate_dataset's pool on Linux (the default < 3.14)
    with threadpool_limits(limits=2):  # a parent with several threads (CI machines may have one core)
        with ProcessPoolExecutor(1, mp_context=fork) as pool:
            assert max(pool.submit(_thread_counts).result()) > 1  # the contrast: inherited
        with ProcessPoolExecutor(1, mp_context=fork, initializer=one_thread_each) as pool:
            blas = pool.submit(_thread_counts).result()
    assert blas and set(blas) == {1}


def test_cli_simulate_writes_scans_labels_index_and_previews(tmp_path, capsys):
    out = tmp_path / "ds"
    code = cli_main(
        [
            "simulate",
            "--count",
            "2",
            "--seed",
            "3",
            "--out",
            str(out),
            "--preview",
            "--quiet",
            "--max-parcel-cm",
            "50",
            "40",
            "30",
        ]
    )
    assert code == 0
    index = json.loads((out / "index.json").read_text())
    assert index["count"] == 2 and len(index["parcels"]) == 2
    for entry in index["parcels"]:
        assert (out / entry["scan"]).stat().st_size > 1000
        assert (out / entry["preview"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        label = json.loads((out / entry["label"]).read_text())
        assert label["format"] == "parcelscan-label" and "manifest" in label and "scanner" in label
    assert "wrote 2 parcels" in capsys.readouterr().out


def test_cli_skip_existing_keeps_written_parcels(tmp_path):
    args = [
        "simulate",
        "--count",
        "1",
        "--seed",
        "4",
        "--out",
        str(tmp_path),
        "--quiet",
        "--max-parcel-cm",
        "40",
        "30",
        "25",
    ]
    assert cli_main(args) == 0
    before = (tmp_path / "scans" / "000000.npz").stat().st_mtime_ns
    assert cli_main([*args[:2], "2", *args[3:], "--skip-existing"]) == 0
    assert (tmp_path / "scans" / "000000.npz").stat().st_mtime_ns == before
    assert json.loads((tmp_path / "index.json").read_text())["count"] == 2


def test_cli_reports_bad_values_clearly(tmp_path, capsys):
    code = cli_main(
        ["simulate", "--count", "1", "--seed", "0", "--out", str(tmp_path), "--positive-fraction", "3"]
    )
    assert code == 2
    assert "positive_fraction" in capsys.readouterr().err


def test_scene_uses_an_explicit_scanner():
    scanner = ScannerConfig(kvp=120.0, ma=2.0, tunnel_width_cm=60.0, tunnel_height_cm=45.0)
    scene = build_scene(np.random.default_rng(1), SMALL, scanner)
    assert scene.items and scene.length_cm > 15


def test_interrupted_generation_resumes_to_the_same_dataset(tmp_path):
    fresh = generate_dataset(tmp_path / "fresh", 3, seed=5, config=SMALL, progress=False)
    generate_dataset(tmp_path / "resumed", 2, seed=5, config=SMALL, progress=False)
    first = (tmp_path / "resumed" / "scans" / "000000.npz").stat().st_mtime_ns
    resumed = generate_dataset(
        tmp_path / "resumed", 3, seed=5, config=SMALL, progress=False, skip_existing=True
    )
    assert resumed["parcels"] == fresh["parcels"]
    assert (tmp_path / "resumed" / "scans" / "000000.npz").stat().st_mtime_ns == first  # not re-rendered
    s1, *_ = load_example(tmp_path / "fresh", "000002")
    s2, *_ = load_example(tmp_path / "resumed", "000002")
    np.testing.assert_array_equal(s1.signals, s2.signals)
