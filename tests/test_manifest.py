"""Declared-contents check: manifest parsing, goods catalogue, and each reason on simulated scans."""

import json
from dataclasses import replace

import numpy as np
import pytest

from parcelscan import check_manifest
from parcelscan.goods import CATEGORIES, categorise, per_gram_attenuation
from parcelscan.manifest import REASON_KINDS, Manifest, load_manifest, manifest_from_label
from parcelscan.physics.materials import get_material
from parcelscan.result import Detection, Region
from parcelscan.sim.catalogue import SceneConfig
from parcelscan.sim.dataset import simulate_parcel
from parcelscan.sim.geometry import Box, Cylinder, Ellipsoid, Shell
from parcelscan.sim.render import render_scene
from parcelscan.sim.scanner import ScannerConfig
from parcelscan.sim.scene import CONCEALMENT_TYPES, Item, Scene


def _manifest(*items):
    return {"items": [{"description": d, "net_mass": m, "unit": "g"} for d, m in items]}


# ------------------------------------------------------------------------------------ parsing
def test_manifest_parses_units_and_both_mass_forms():
    m = Manifest.from_dict(
        {
            "format": "parcelscan-manifest",
            "format_version": 1,
            "reference": "RR123456785CN",
            "items": [
                {"description": "nickel powder", "hs_code": "7504.00", "net_mass": 2.0, "unit": "kg"},
                {"description": "clothing", "net_mass": 1.5, "unit": "lb"},
                {"description": "books", "declared_mass_g": 400},
            ],
        }
    )
    assert [it.net_mass_g for it in m.items] == pytest.approx([2000.0, 680.388555, 400.0])
    assert m.items[0].hs_code == "7504.00" and m.reference == "RR123456785CN"
    assert m.total_mass_g == pytest.approx(3080.388555)
    assert Manifest.from_dict(m.to_dict()) == m


@pytest.mark.parametrize(
    "data, message",
    [
        ({"items": [{"description": "toys", "net_mass": 1, "unit": "kg", "colour": "red"}]}, "unknown field"),
        ({"items": [], "sender": "x"}, "unknown field"),
        ({"items": [{"description": "toys", "net_mass": -2, "unit": "kg"}]}, "must not be negative"),
        ({"items": [{"description": "toys", "declared_mass_g": -5}]}, "must not be negative"),
        ({"items": [{"description": "toys", "net_mass": 0, "unit": "kg"}]}, "must be positive"),
        ({"items": [{"description": "toys", "net_mass": 2, "unit": "l"}]}, "is a volume, not a mass"),
        ({"items": [{"description": "toys", "net_mass": 2, "unit": "kgs"}]}, "unknown unit 'kgs'"),
        ({"items": [{"description": "toys", "net_mass": 2, "unit": 1000}]}, "unit must be a string"),
        ({"items": [{"description": "toys", "net_mass": 2}]}, "missing field 'unit'"),
        ({"items": [{"description": "toys", "unit": "g"}]}, "missing field 'net_mass'"),
        ({"items": [{"net_mass": 2, "unit": "g"}]}, "missing or empty field 'description'"),
        ({"items": [{"description": "toys", "net_mass": True, "unit": "g"}]}, "must be a number"),
        ({"items": [{"description": "toys", "net_mass": float("nan"), "unit": "g"}]}, "must be finite"),
        ({"items": [{"description": "toys", "net_mass": 2, "unit": "g", "declared_mass_g": 2}]}, "not both"),
        ({"items": [{"description": "toys", "net_mass": 2, "unit": "t"}]}, "unknown unit"),
        ({"items": [{"description": "toys", "net_mass": 2000, "unit": "kg"}]}, "not a parcel item"),
        ({"items": [{"description": "toys", "net_mass": 2, "unit": "g", "hs_code": "95-03"}]}, "hs_code"),
        ({"items": []}, "non-empty list"),
        ({"reference": "x"}, "missing field 'items'"),
        (
            {"format": "cn23", "items": [{"description": "toys", "net_mass": 2, "unit": "g"}]},
            "format must be",
        ),
        ([{"description": "toys"}], "JSON object"),
    ],
)
def test_bad_manifests_get_clear_errors(data, message):
    with pytest.raises(ValueError, match=message):
        Manifest.from_dict(data)


def test_errors_name_the_item(tmp_path):
    with pytest.raises(ValueError, match=r"item 1 \('tools'\): net_mass must not be negative"):
        Manifest.from_dict(_manifest(("toys", 5), ("tools", -1)))
    path = tmp_path / "m.json"
    path.write_text(json.dumps(_manifest(("nickel powder", 250))))
    assert load_manifest(path).items[0].net_mass_g == 250
    assert load_manifest(str(path)) == load_manifest(_manifest(("nickel powder", 250)))
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_manifest(path)
    with pytest.raises(ValueError, match="does not exist"):
        load_manifest(tmp_path / "missing.json")
    path.write_text(json.dumps({"items": [{"description": "toys", "net_mass": 1, "unit": "bag"}]}))
    with pytest.raises(ValueError, match=r"m\.json: manifest item 0 \('toys'\): unknown unit"):
        load_manifest(path)
    with pytest.raises(ValueError, match="must be a Manifest"):
        load_manifest(42)


# ------------------------------------------------------------------------------------ catalogue
def test_descriptions_map_to_categories_and_unknown_ones_are_not_guessed():
    assert categorise("Nickel Powder 99.8%")[0].key == "nickel_powder"
    assert categorise("Ceramic floor tiles")[0].key == "ceramic_tiles"
    assert categorise("cerium oxide polishing powder")[0].key == "cerium_oxide_powder"
    assert categorise("unobtainium", "7504.00")[0].key == "nickel_powder"  # the HS code decides
    cat, why = categorise("toys", "7504")
    assert cat.key == "toys" and "HS code 7504 points to nickel powder" in why
    for vague in ("gift", "Goods", "spare parts"):
        cat, why = categorise(vague)
        assert cat is None and "too vague" in why
    cat, why = categorise("flux capacitor")
    assert cat is None and "not in the goods catalogue" in why
    cat, why = categorise("books tools")  # two categories, equally long phrases
    assert cat is None and "ambiguous" in why


def test_every_description_the_simulator_writes_is_in_the_catalogue():
    written = (
        "nickel powder", "cerium oxide polishing powder", "barium sulfate powder", "lanthanum oxide powder",
        "ceramic tiles", "ceramic tableware", "mannequin", "clothing", "shoes", "towels", "books",
        "magazines", "toys", "plastic goods", "laptop computer", "mobile phone", "power bank",
        "phone charger", "laptop power adapter", "transformer", "headphones", "batteries", "electronics",
        "tools", "cutlery", "bolts and nuts", "solder wire", "drill bits", "door lock", "cordless drill",
        "loudspeaker", "electric motor", "ferrite magnets", "cosmetics", "canned food", "soft drinks",
        "mineral water", "wine", "beer", "spirits",
    )  # fmt: skip
    for d in written:
        assert categorise(d)[0] is not None, d
    groups = {c.group for c in CATEGORIES}
    for g in ("metal powders", "ceramics", "mannequins", "clothing", "books", "electronics", "toys", "tools",
              "magnets/loudspeakers", "cosmetics", "food"):  # fmt: skip
        assert g in groups


@pytest.fixture(scope="module")
def scanner():
    return ScannerConfig(pixel_mm=1.2, line_mm=1.2, tunnel_width_cm=40.0, tunnel_height_cm=30.0).calibrated()


def test_per_gram_attenuation_follows_the_physics(scanner):
    model = scanner.model
    dy, ni = per_gram_attenuation("Dy2O3", model), per_gram_attenuation("Ni", model)
    low, high = 0, 1
    # Dy's K-edge lies between the channels: per gram it attenuates several times more than nickel.
    assert dy[low] / ni[low] > 2.5 and dy[high] / ni[high] > 5
    # Thin-limit per-gram values bound what a thick layer gives per gram (beam hardening).
    mu = get_material("Ni").mu_rho(model.energies_kev)[None]
    a, _ = model.attenuation(np.array([[10.0]]), mu)
    assert np.all(a[:, 0] / 10.0 < ni)
    tiles = per_gram_attenuation(categorise("ceramic tiles")[0], model)
    assert 0.8 < tiles[high] / per_gram_attenuation("porcelain", model)[high] < 1.2


# ------------------------------------------------------------------------------------ simulated scans
def _box(length=36.0, half=(14.0, 14.0, 8.0)):
    center = np.array([0.0, length / 2, half[2] + 0.5])
    half = np.array(half)
    board = get_material("corrugated_board")
    return Item(Shell(Box(center, half), Box(center, half - 0.4)), board, 0.15, "parcel box"), center


def _scan(scanner, *items, seed=0, length=36.0):
    box, _ = _box(length)
    return render_scene(
        Scene(items=[box, *items], length_cm=length), scanner, np.random.default_rng(seed)
    ).scan


def _bag(material, rho, semi=(5.0, 4.0, 0.6), at=(0.0, 18.0, 2.0)):
    shape = Ellipsoid(np.array(at), np.array(semi))
    return Item(shape, get_material(material), rho, "powder bag", texture=(0.1, 2.5))


def _kinds(check):
    return {r.kind for r in check.reasons}


def test_genuine_nickel_powder_passes(scanner):
    bag = _bag("Ni", 3.0)
    check = check_manifest(_scan(scanner, bag), None, _manifest(("nickel powder", round(bag.mass_g, -1))))
    assert check.verdict == "consistent", check.reasons
    assert _kinds(check) == {"match"} and check.items[0].status == "match"
    x0, y0, x1, y1 = check.reasons[0].box_px[0]
    assert x0 < 170 < x1 and y0 < 150 < y1  # the bag's centre: pixel 166 (x = 0), line 150 (y = 18 cm)


@pytest.mark.parametrize("oxide", ["Dy2O3", "Tb4O7"])
def test_rare_earth_oxide_declared_as_nickel_is_flagged(scanner, oxide):
    bag = _bag(oxide, 3.0)
    check = check_manifest(_scan(scanner, bag), None, _manifest(("nickel powder", round(bag.mass_g, -1))))
    assert check.verdict == "inconsistent"
    (reason,) = [r for r in check.reasons if r.kind == "material_mismatch"]
    assert reason.item == 0 and "nickel powder" in reason.text and "lanthanide oxide" in reason.text
    ratio = float(reason.text.split("per gram at least ")[1].split("x")[0])
    assert ratio > 2.0
    assert check.items[0].status == "mismatch"


def test_thick_jar_of_oxide_is_opaque_and_cannot_tell(scanner):
    # 630 g at 4 g/cm^3, 8 cm deep: 32 g/cm^2, opaque whether nickel or Dy2O3 (physics.md).
    jar = Item(Cylinder(np.array([0.0, 18.0, 5.0]), 2.5, 4.0), get_material("Dy2O3"), 4.0, "jar")
    check = check_manifest(_scan(scanner, jar), None, _manifest(("nickel powder", round(jar.mass_g, -1))))
    assert check.verdict == "cannot_tell" and _kinds(check) == {"opaque"}
    assert "cannot tell" in check.reasons[0].text


def test_opaque_mass_among_light_goods_is_undeclared(scanner):
    block = Item(Box(np.array([3.0, 18.0, 2.0]), np.array([1.5, 1.5, 1.5])), get_material("W"), 19.3, "block")
    shirts = Item(
        Box(np.array([0.0, 18.0, 6.0]), np.array([10.0, 10.0, 2.0])), get_material("cellulose"), 0.3
    )
    check = check_manifest(_scan(scanner, shirts, block), None, _manifest(("clothing", 500)))
    assert check.verdict == "inconsistent"
    (reason,) = [r for r in check.reasons if r.kind == "undeclared_mass"]
    assert "none of the declared goods (clothing)" in reason.text and reason.box_px


def test_metal_beyond_the_declared_goods_is_undeclared(scanner):
    plate = Item(Box(np.array([0.0, 18.0, 2.0]), np.array([5.0, 5.0, 0.5])), get_material("steel"), 7.87)
    check = check_manifest(_scan(scanner, plate), None, _manifest(("books", 300)))
    assert check.verdict == "inconsistent"
    assert any(r.kind == "undeclared_mass" and "metal-reading" in r.text for r in check.reasons)
    # Declared as tools, the same plate is explained.
    assert check_manifest(_scan(scanner, plate), None, _manifest(("tools", 800))).verdict == "consistent"


def test_total_mass_far_above_the_declared_is_a_mismatch(scanner):
    books = Item(Box(np.array([0.0, 18.0, 7.0]), np.array([8.0, 10.0, 6.0])), get_material("paper"), 0.9)
    assert books.mass_g > 3000
    check = check_manifest(_scan(scanner, books), None, _manifest(("books", 200)))
    assert check.verdict == "inconsistent" and "total_mass_mismatch" in _kinds(check)
    honest = check_manifest(_scan(scanner, books), None, _manifest(("books", round(books.mass_g, -2))))
    assert honest.verdict == "consistent"


def test_unknown_descriptions_cannot_tell(scanner):
    check = check_manifest(_scan(scanner), None, _manifest(("gift", 300)))
    assert check.verdict == "cannot_tell" and _kinds(check) == {"unknown_description"}
    assert check.items[0].category is None and check.items[0].status == "unknown"


def _detection(scan, regions, threshold=0.5):
    return Detection(
        source=None, score=max([r.score for r in regions], default=0.0), alarm=True, threshold=threshold,
        regions=tuple(regions), impenetrable=(), heatmap=np.zeros((4, 4), np.float32),
        heatmap_scales=(1.0, 1.0), scan_shape=scan.shape[1:], line_mm=scan.line_mm,
        pixel_mm=scan.pixel_mm, timings_ms={}, model={},
    )  # fmt: skip


def _region(score, carrier, mass_g=400.0):
    return Region(
        box_px=(150, 130, 180, 160), box_mm=(180.0, 156.0, 216.0, 192.0), centroid_px=(165.0, 145.0),
        score=score, area_cm2=9.0, mass_g=mass_g, mass_lower_bound=False, mass_material="Dy2O3",
        apparent_z=17.0, material_class="inorganic", carrier=carrier,
    )  # fmt: skip


def test_detector_alarm_inside_a_declared_mannequin_is_undeclared_mass(scanner):
    scan = _scan(scanner)
    manifest = _manifest(("clothing", 200), ("mannequin", 2500))
    det = _detection(scan, [_region(0.93, "organic bulk"), _region(0.2, None, 50.0)])
    check = check_manifest(scan, det, manifest)
    assert check.verdict == "inconsistent"
    (reason,) = [r for r in check.reasons if r.kind == "undeclared_mass"]
    assert reason.text.startswith("undeclared dense mass of about 400 g inside the declared clothing")
    assert reason.box_px == ((150, 130, 180, 160),) and reason.item == 0
    # Without the detection (or below its threshold) the empty scan shows nothing undeclared.
    assert check_manifest(scan, None, manifest).verdict == "consistent"
    assert (
        check_manifest(scan, _detection(scan, [_region(0.4, "organic bulk")]), manifest).verdict
        == "consistent"
    )
    with pytest.raises(ValueError, match="detection must be a Detection"):
        check_manifest(scan, {"regions": []}, manifest)


def test_single_energy_scans_still_weigh_powders(scanner):
    # The per-gram bound needs one channel only; every pixel reads organic for the parcel totals.
    single = replace(scanner, detector=replace(scanner.detector, kind="single"))
    scan = _scan(single, _bag("Dy2O3", 3.0))
    assert scan.channels == ("single",)
    check = check_manifest(scan, None, _manifest(("nickel powder", 150)))
    assert check.verdict == "inconsistent" and _kinds(check) == {"material_mismatch"}


def test_result_is_json_ready(scanner):
    bag = _bag("Dy2O3", 3.0)
    check = check_manifest(_scan(scanner, bag), None, _manifest(("nickel powder", 150), ("clothing", 300)))
    d = json.loads(json.dumps(check.to_dict()))
    assert d["verdict"] == "inconsistent" and d["declared_mass_g"] == 450.0
    assert {r["kind"] for r in d["reasons"]} <= set(REASON_KINDS)
    assert all(len(b) == 4 for r in d["reasons"] for b in r["box_px"])
    assert [i["category"] for i in d["items"]] == ["nickel_powder", "clothing"]


def test_simulated_misdeclared_powder_is_flagged_from_its_label():
    weights = {c: float(c == "misdeclared_powder") for c in CONCEALMENT_TYPES}
    config = SceneConfig(
        positive_fraction=1.0, concealment_weights=weights, mass_range_g=(20.0, 80.0),
        clutter=(0, 1), max_parcel_cm=(40.0, 30.0, 25.0),
    )  # fmt: skip
    rendered, label = simulate_parcel(7, 6, config)  # 45 g of Dy2O3 in a jar
    assert label["category"] == "misdeclared_powder" and not label["manifest"]["honest"]
    check = check_manifest(rendered.scan, None, manifest_from_label(label))
    assert check.verdict == "inconsistent" and "material_mismatch" in _kinds(check)
    (x0, y0, x1, y1) = label["masses"][0]["bbox_px"]
    (bx0, by0, bx1, by1) = next(r for r in check.reasons if r.kind == "material_mismatch").box_px[0]
    assert bx0 < x1 and x0 < bx1 and by0 < y1 and y0 < by1  # the flagged object is the concealed powder


def test_manifest_evaluation_reports_rates_and_the_opaque_ceiling():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import evaluate_manifest

    def row(category, honest, concealed, verdict, nickel_items):
        return {
            "category": category,
            "honest": honest,
            "concealed": concealed,
            "declares_nickel": bool(nickel_items),
            "verdict": verdict,
            "kinds": [],
            "nickel_items": nickel_items,
            "check_ms": 1.0,
        }

    rows = [
        row("misdeclared_powder", False, ["Dy2O3"], "inconsistent", ["mismatch"]),
        row("misdeclared_powder", False, ["Tb4O7"], "cannot_tell", ["opaque"]),
        row("misdeclared_powder", False, ["Dy2O3"], "cannot_tell", ["opaque", "mismatch"]),  # still decidable
        row("misdeclared_powder", False, ["Dy2O3"], "consistent", ["match"]),
        row("benign_nickel", True, [], "consistent", ["match"]),
        row("benign_nickel", True, [], "cannot_tell", ["opaque"]),
        row("benign", True, [], "consistent", []),
        row("benign", True, [], "inconsistent", []),
    ]
    m = evaluate_manifest.summarise(rows)["measured"]
    assert m["dy_tb_as_nickel_flagged"] == 0.25 and m["dy_tb_as_nickel_flagged_or_cannot_tell"] == 0.75
    assert m["dy_tb_as_nickel_opaque_fit"] == 0.25 and m["dy_tb_as_nickel_flagged_ceiling"] == 0.75
    assert m["genuine_nickel_opaque_fit"] == 0.5 and m["genuine_nickel_passes"] == 1.0
    assert m["honest_flagged"] == 0.25
    assert "ceiling of flagged" in evaluate_manifest._table(evaluate_manifest.summarise(rows))
