"""The Scan type and the native scan file: round trips, every refusal, and a byte-level fuzz."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

import parcelscan.io.npz as npz_module
from parcelscan.io import load_scan, save_scan
from parcelscan.io.npz import read_npz, write_npz
from parcelscan.scan import SCAN_FORMAT_VERSION, Scan, ScanError

DUAL = ("low", "high")
SINGLE = ("single",)


def make_scan(seed: int = 0, channels=DUAL, lines: int = 11, pixels: int = 7, metadata=None) -> Scan:
    rng = np.random.default_rng(seed)
    c = len(channels)
    dark = rng.uniform(50, 150, size=(c, pixels)).astype(np.float32)
    air = (dark + rng.uniform(20_000, 60_000, size=(c, pixels))).astype(np.float32)
    signals = rng.integers(0, 65_536, size=(c, lines, pixels), dtype=np.uint16)
    return Scan(signals, air, dark, channels, 0.8, 1.2, 160.0, metadata or {"scanner": "sim"})


def assert_same_scan(a: Scan, b: Scan) -> None:
    for name in ("signals", "air", "dark"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        assert x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert a.channels == b.channels
    assert (a.pixel_mm, a.line_mm, a.kvp) == (b.pixel_mm, b.line_mm, b.kvp)
    assert a.metadata == b.metadata


def header(**overrides) -> dict:
    h = {
        "format": "parcelscan-scan",
        "format_version": SCAN_FORMAT_VERSION,
        "channels": list(DUAL),
        "pixel_mm": 0.8,
        "line_mm": 1.2,
        "kvp": 160.0,
        "metadata": {},
    }
    h.update(overrides)
    return h


def write_raw(path: Path, head: dict | bytes | None, **arrays) -> Path:
    """Write an archive laid out like ours, bypassing every check of write_npz."""
    if head is not None:
        raw = head if isinstance(head, bytes) else json.dumps(head).encode()
        arrays["header"] = np.frombuffer(raw, dtype=np.uint8)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


def valid_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    s = make_scan(seed)
    return {"signals": s.signals, "air": s.air, "dark": s.dark}


def npy_bytes_declaring(shape: tuple[int, ...], dtype, payload: bytes = b"") -> bytes:
    """An .npy entry whose header declares ``shape`` but which holds only ``payload``."""
    buf = io.BytesIO()
    d = npy_format.header_data_from_array_1_0(np.zeros(1, dtype=dtype))
    d["shape"] = shape
    npy_format.write_array_header_1_0(buf, d)
    return buf.getvalue() + payload


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [DUAL, SINGLE])
@pytest.mark.parametrize("as_str", [False, True])
def test_round_trip_is_exact(tmp_path, channels, as_str):
    scan = make_scan(1, channels=channels)
    path = tmp_path / "parcel.npz"
    written = save_scan(scan, str(path) if as_str else path)
    assert written == path
    loaded = load_scan(str(path) if as_str else path)
    assert loaded.shape == (len(channels), 11, 7)
    assert_same_scan(scan, loaded)


def test_nested_metadata_round_trips(tmp_path):
    meta = {
        "scanner": {"model": "RS-2", "serial": 17, "geometry": {"sdd_mm": 1250.5, "fan": [1, 2, 3]}},
        "operator": None,
        "calibrated": True,
        "notes": "ümlaut ✓ 日本",
        "empty": {},
    }
    scan = make_scan(2, metadata=meta)
    loaded = load_scan(save_scan(scan, tmp_path / "m.npz"))
    assert loaded.metadata == meta
    assert loaded.metadata["scanner"]["geometry"]["fan"] == [1, 2, 3]


def test_tuples_in_metadata_read_back_as_lists(tmp_path):
    scan = make_scan(3, metadata={"roi": (1, 2)})
    assert load_scan(save_scan(scan, tmp_path / "t.npz")).metadata == {"roi": [1, 2]}


def test_name_is_used_exactly_and_no_temp_file_is_left(tmp_path):
    scan = make_scan(4)
    for name in ("parcel.bin", "no_extension"):
        save_scan(scan, tmp_path / name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["no_extension", "parcel.bin"]
    assert_same_scan(scan, load_scan(tmp_path / "no_extension"))


def test_new_file_gets_ordinary_permissions(tmp_path):
    reference = tmp_path / "reference"
    reference.write_bytes(b"")
    save_scan(make_scan(5), tmp_path / "s.npz")
    assert (tmp_path / "s.npz").stat().st_mode == reference.stat().st_mode


def test_overwrite_replaces_and_failed_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "s.npz"
    old, new = make_scan(6), make_scan(7)
    save_scan(old, path)
    save_scan(new, path)
    assert_same_scan(new, load_scan(path))

    def refuse(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(npz_module.os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        save_scan(old, path)
    monkeypatch.undo()
    assert_same_scan(new, load_scan(path))
    assert [p.name for p in tmp_path.iterdir()] == ["s.npz"]


def test_extras_round_trip_and_are_ignored_by_default(tmp_path):
    scan = make_scan(8)
    mask = np.arange(77, dtype=np.uint8).reshape(11, 7)
    path = write_npz(scan, tmp_path / "e.npz", extras={"mask": mask, "score_2": np.float64([0.5])})
    loaded, extras = read_npz(path, with_extras=True)
    assert_same_scan(scan, loaded)
    assert sorted(extras) == ["mask", "score_2"]
    np.testing.assert_array_equal(extras["mask"], mask)
    assert extras["score_2"].dtype == np.float64
    assert isinstance(load_scan(path), Scan)
    assert isinstance(read_npz(path), Scan)


@pytest.mark.parametrize(
    ("extras", "match"),
    [
        ({"bad name": np.zeros(2)}, "must match"),
        ({"": np.zeros(2)}, "must match"),
        ({"mask": [1, 2]}, "must be a numpy array"),
        ({"objs": np.array([{}, None], dtype=object)}, "object dtype"),
    ],
)
def test_bad_extras_are_refused(tmp_path, extras, match):
    with pytest.raises(ScanError, match=match):
        write_npz(make_scan(9), tmp_path / "x.npz", extras=extras)
    assert list(tmp_path.iterdir()) == []


# --- refusals on write -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "match"),
    [
        ({"gain": np.float32(1.5)}, r"metadata\['gain'\] is a float32.*\.item\(\)"),
        ({"a": {"b": [1, float("nan")]}}, r"metadata\['a'\]\['b'\]\[1\] = nan"),
        ({3: "x"}, "JSON keys are str"),
        ({"obj": object()}, "not JSON-serialisable"),
    ],
)
def test_metadata_that_is_not_json_is_refused_on_write(tmp_path, metadata, match):
    scan = make_scan(10, metadata=metadata)
    with pytest.raises(ScanError, match=match):
        save_scan(scan, tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


def test_mutated_scan_is_revalidated_on_write(tmp_path):
    scan = make_scan(11)
    scan.air[0, 3] = np.nan  # arrays inside the frozen dataclass stay writable
    with pytest.raises(ScanError, match="air reference contains NaN"):
        save_scan(scan, tmp_path / "n.npz")


def test_float64_reference_that_overflows_float32_is_refused(tmp_path):
    s = make_scan(12)
    air = s.air.astype(np.float64)
    air[1, 2] = 1e39
    scan = Scan(s.signals, air, s.dark, DUAL, 0.8, 1.2, 160.0)
    with pytest.raises(ScanError, match=r"cannot write .*after conversion to float32"):
        save_scan(scan, tmp_path / "o.npz")


# --- refusals on read --------------------------------------------------------------------------


def test_truncated_file(tmp_path):
    path = save_scan(make_scan(13), tmp_path / "s.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ScanError, match=r"s\.npz: damaged or truncated"):
        load_scan(path)


def test_garbage_bytes(tmp_path):
    path = tmp_path / "g.npz"
    path.write_bytes(np.random.default_rng(14).integers(0, 256, 300, dtype=np.uint8).tobytes())
    with pytest.raises(ScanError, match=r"g\.npz: unrecognised scan file format \(first bytes"):
        load_scan(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    with pytest.raises(ScanError, match="empty file"):
        load_scan(path)


def test_garbage_after_zip_magic(tmp_path):
    path = tmp_path / "pk.npz"
    path.write_bytes(b"PK\x03\x04" + bytes(range(200)))
    with pytest.raises(ScanError, match="damaged or truncated"):
        load_scan(path)


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_scan(tmp_path / "nope.npz")


def test_zip_that_is_not_a_scan(tmp_path):
    path = tmp_path / "doc.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ScanError, match="not a parcelscan scan file"):
        load_scan(path)


def test_foreign_npz_is_not_a_scan(tmp_path):
    path = write_raw(tmp_path / "foreign.npz", None, x=np.zeros(3), y=np.ones(2))
    with pytest.raises(ScanError, match="not a parcelscan scan file"):
        load_scan(path)


@pytest.mark.parametrize("missing", ["signals", "air", "dark"])
def test_missing_array(tmp_path, missing):
    arrays = valid_arrays()
    del arrays[missing]
    path = write_raw(tmp_path / "m.npz", header(), **arrays)
    with pytest.raises(ScanError, match=rf"m\.npz: missing '{missing}'"):
        load_scan(path)


def test_missing_air_names_calibration(tmp_path):
    arrays = valid_arrays()
    del arrays["air"]
    path = write_raw(tmp_path / "m.npz", header(), **arrays)
    with pytest.raises(ScanError, match=r"missing 'air' \(open-beam calibration\) array"):
        load_scan(path)


def test_newer_format_version(tmp_path):
    path = write_raw(tmp_path / "v.npz", header(format_version=99), **valid_arrays())
    with pytest.raises(ScanError, match=r"v\.npz: written by a newer parcelscan \(format_version 99"):
        load_scan(path)


@pytest.mark.parametrize(
    ("head", "match"),
    [
        (b"{not json", "not valid UTF-8 JSON"),
        (b"\xff\xfe{}", "not valid UTF-8 JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (header(format="other-scan"), "header format is 'other-scan'"),
        (header(format_version=0), "format_version must be a positive integer"),
        (header(format_version="1"), "format_version must be a positive integer"),
        (header(format_version=True), "format_version must be a positive integer"),
        ({k: v for k, v in header().items() if k != "kvp"}, "header lacks 'kvp'"),
        (header(channels="low"), "'channels' must be a list"),
        (header(metadata=[1]), "'metadata' must be an object"),
        (header(kvp=True), "kvp must be a positive finite number"),
        (b'{"format": "parcelscan-scan", "format_version": 1, "kvp": NaN}', "non-standard JSON"),
        (
            json.dumps(header()).replace("160.0", "1" + "0" * 400).encode(),
            "kvp must be a positive finite number",
        ),
        (header(pixel_mm=-1), "pixel_mm must be a positive finite number"),
    ],
)
def test_bad_header(tmp_path, head, match):
    path = write_raw(tmp_path / "h.npz", head, **valid_arrays())
    with pytest.raises(ScanError, match=match):
        load_scan(path)


def test_header_of_wrong_dtype(tmp_path):
    arrays = valid_arrays()
    path = tmp_path / "h.npz"
    with open(path, "wb") as fh:
        np.savez_compressed(fh, header=np.array(json.dumps(header())), **arrays)
    with pytest.raises(ScanError, match="'header' array must be 1-D uint8"):
        load_scan(path)


def test_nan_in_air(tmp_path):
    arrays = valid_arrays()
    arrays["air"][1, 4] = np.nan
    path = write_raw(tmp_path / "nan.npz", header(), **arrays)
    with pytest.raises(ScanError, match=r"nan\.npz: invalid scan: air reference contains NaN or Inf"):
        load_scan(path)


def test_air_not_above_dark_in_file(tmp_path):
    arrays = valid_arrays()
    arrays["air"][0, :3] = arrays["dark"][0, :3]
    path = write_raw(tmp_path / "a.npz", header(), **arrays)
    with pytest.raises(ScanError, match=r"a\.npz: invalid scan: .*3 pixels do not"):
        load_scan(path)


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        (
            "signals",
            np.zeros((2, 11, 7), np.float32),
            "must be uint16 raw detector values, got dtype float32",
        ),
        ("signals", np.zeros((2, 11, 7), ">u2"), "must be uint16"),
        ("signals", np.zeros((22, 7), np.uint16), r"must have shape \(channels, lines, pixels\)"),
        ("air", np.ones((2, 11), np.float32), r"must have shape \(channels, pixels\) = \(2, 7\)"),
        ("dark", np.zeros((2, 7), np.float64), "must be float32, got dtype float64"),
    ],
)
def test_wrong_array_dtype_or_shape_in_file(tmp_path, name, value, match):
    arrays = valid_arrays()
    arrays[name] = value
    path = write_raw(tmp_path / "w.npz", header(), **arrays)
    with pytest.raises(ScanError, match=rf"w\.npz: '{name}' array {match}"):
        load_scan(path)


def test_channel_names_mismatch_in_file(tmp_path):
    path = write_raw(tmp_path / "c.npz", header(channels=["single"]), **valid_arrays())
    with pytest.raises(ScanError, match=r"c\.npz: invalid scan: 1 channel names"):
        load_scan(path)


def _zip_with(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def test_absurd_declared_size_is_refused_before_reading(tmp_path):
    arrays = {k: _npy(v) for k, v in valid_arrays().items()}
    arrays["signals"] = npy_bytes_declaring((2, 2**20, 2**11), np.uint16)
    entries = {f"{k}.npy": v for k, v in arrays.items()}
    entries["header.npy"] = _npy(np.frombuffer(json.dumps(header()).encode(), np.uint8))
    path = _zip_with(tmp_path / "big.npz", entries)
    with pytest.raises(ScanError, match=r"'signals' array of shape \(2, 1048576, 2048\) is absurdly large"):
        load_scan(path)


def test_entry_shorter_than_its_declared_shape(tmp_path):
    entries = {f"{k}.npy": _npy(v) for k, v in valid_arrays().items()}
    entries["signals.npy"] = npy_bytes_declaring((2, 11, 7), np.uint16, payload=b"\x00" * 20)
    entries["header.npy"] = _npy(np.frombuffer(json.dumps(header()).encode(), np.uint8))
    path = _zip_with(tmp_path / "short.npz", entries)
    with pytest.raises(ScanError, match=r"'signals' entry holds \d+ bytes, its shape needs"):
        load_scan(path)


def test_object_extra_in_file_is_refused_only_when_asked(tmp_path):
    entries = {f"{k}.npy": _npy(v) for k, v in valid_arrays().items()}
    entries["header.npy"] = _npy(np.frombuffer(json.dumps(header()).encode(), np.uint8))
    entries["extra_evil.npy"] = _npy(np.array([{"x": 1}], dtype=object))
    path = _zip_with(tmp_path / "obj.npz", entries)
    assert isinstance(read_npz(path), Scan)
    with pytest.raises(ScanError, match="'extra_evil' array has object dtype"):
        read_npz(path, with_extras=True)


def test_byte_fuzz_gives_the_scan_or_a_scan_error(tmp_path):
    scan = make_scan(15, metadata={"k": [1, 2, {"n": "v"}]})
    good = save_scan(scan, tmp_path / "good.npz").read_bytes()
    rng = np.random.default_rng(20240611)
    path = tmp_path / "fuzz.npz"
    outcomes = {"scan": 0, "error": 0}
    for _ in range(200):
        data = bytearray(good)
        if rng.random() < 0.7:
            for pos in rng.integers(0, len(data), size=rng.integers(1, 9)):
                data[pos] = int(rng.integers(0, 256))
        if rng.random() < 0.4:
            data = data[: int(rng.integers(0, len(data)))]
        path.write_bytes(bytes(data))
        try:
            loaded = load_scan(path)
        except ScanError as exc:
            assert "fuzz.npz" in str(exc)
            outcomes["error"] += 1
        else:
            # Zip CRCs cover every entry, so a scan that loads must be the one written.
            assert_same_scan(scan, loaded)
            outcomes["scan"] += 1
    assert outcomes["error"] > 100


# --- the Scan type -----------------------------------------------------------------------------


def test_transmission_exact_values():
    # 2 channels x 2 lines x 3 pixels; a different air per pixel catches axis mix-ups.
    air = np.array([[1010, 2010, 110], [510, 1010, 60]], np.float32)
    dark = np.full((2, 3), 10, np.float32)
    signals = np.array(
        [[[510, 1010, 60], [10, 4010, 35]], [[260, 260, 35], [5, 3010, 60]]],
        np.uint16,
    )
    expected = np.array(
        [[[0.5, 0.5, 0.5], [1e-6, 2.0, 0.25]], [[0.5, 0.25, 0.5], [1e-6, 2.0, 1.0]]],
        np.float32,
    )
    scan = Scan(signals, air, dark, DUAL, 0.8, 1.2, 160)
    t = scan.transmission()
    assert t.dtype == np.float32
    assert t.shape == (2, 2, 3)
    np.testing.assert_array_equal(t, expected)
    ints = Scan(signals, air.astype(np.int32), dark.astype(np.int64), DUAL, 0.8, 1.2, 160)
    assert ints.transmission().dtype == np.float32
    np.testing.assert_array_equal(ints.transmission(), expected)


def test_scan_rejects_float_signals():
    s = make_scan(16)
    with pytest.raises(ScanError, match="signals must be uint16"):
        Scan(s.signals.astype(np.float32), s.air, s.dark, DUAL, 0.8, 1.2, 160.0)


def test_scan_rejects_air_not_above_dark():
    s = make_scan(17)
    air = s.air.copy()
    air[1, 5] = s.dark[1, 5] - 1
    with pytest.raises(ScanError, match="1 pixels do not"):
        Scan(s.signals, air, s.dark, DUAL, 0.8, 1.2, 160.0)


def test_scan_rejects_channel_names_mismatch():
    s = make_scan(18, channels=SINGLE)
    with pytest.raises(ScanError, match=r"2 channel names \('low', 'high'\) for 1 signal channels"):
        Scan(s.signals, s.air, s.dark, DUAL, 0.8, 1.2, 160.0)


@pytest.mark.parametrize("bad", [True, 10**400, float("inf"), "0.8", 0])
def test_scan_rejects_bad_pixel_pitch(bad):
    s = make_scan(19)
    with pytest.raises(ScanError, match="pixel_mm must be a positive finite number"):
        Scan(s.signals, s.air, s.dark, DUAL, bad, 1.2, 160.0)
