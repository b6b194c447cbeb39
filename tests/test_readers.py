"""Foreign scan formats behind load_scan: PNG/TIFF raw and pairs, grayscale, pseudo-colour, DICOS.

Small odd-sized images (lines != pixels) with fixed seeds; files written independently of our
writers (OpenCV, plain pydicom, a TIFF assembled by hand) check the readers against the
documented conventions, not only against themselves.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    DICOSDigitalXRayImageStorageForProcessing,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    ExplicitVRLittleEndian,
    generate_uid,
)

from parcelscan import Scan, ScanError, load_scan
from parcelscan.io import read_pseudocolour, write_dicos, write_png_pair, write_tiff
from parcelscan.io._calibration import ESTIMATED, estimate_from_margin

DUAL = ("low", "high")
SINGLE = ("single",)
L, P = 11, 37  # lines x pixels: odd and different, so a transposition fails


def make_scan(seed: int = 0, channels=DUAL, lines: int = L, pixels: int = P) -> Scan:
    rng = np.random.default_rng(seed)
    c = len(channels)
    dark = rng.uniform(50, 150, size=(c, pixels)).astype(np.float32)
    air = (dark + rng.uniform(20_000, 60_000, size=(c, pixels))).astype(np.float32)
    signals = rng.integers(0, 65_536, size=(c, lines, pixels), dtype=np.uint16)
    return Scan(signals, air, dark, channels, 0.8, 1.2, 160.0, {"scanner": {"model": "RS-2", "serial": 17}})


def belt_signals(seed: int = 0, channels: int = 2, lines: int = 61, pixels: int = P):
    """Poisson counts of a parcel on a belt with empty leading and trailing margins; true air (C, P)."""
    rng = np.random.default_rng(seed)
    air = rng.uniform(30_000, 50_000, size=(channels, pixels))
    yy, xx = np.mgrid[0:lines, 0:pixels]
    t = np.ones((lines, pixels))
    parcel = (yy >= 8) & (yy < lines - 8) & (xx >= 4) & (xx < pixels - 4)
    t[parcel] = 0.3 + 0.4 * np.sin(yy[parcel] / 3.0) ** 2
    trans = t[None] ** np.array([1.3, 1.0][:channels])[:, None, None]  # the low channel attenuates more
    return rng.poisson(air[:, None, :] * trans).astype(np.uint16), air


def assert_same_scan(a: Scan, b: Scan) -> None:
    for name in ("signals", "air", "dark"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert a.channels == b.channels
    assert (a.pixel_mm, a.line_mm, a.kvp) == (b.pixel_mm, b.line_mm, b.kvp)
    assert a.metadata == b.metadata


def imwrite(path: Path, image: np.ndarray, params=()) -> Path:
    """Write with OpenCV; ``image`` in RGB order for colour (OpenCV wants BGR)."""
    if image.ndim == 3:
        image = image[:, :, ::-1]
    ext = ".jpg" if path.suffix == ".jpg" else path.suffix if path.suffix in (".png", ".tif") else ".png"
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(image), list(params))
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def dx_dataset(frames: np.ndarray, sop=DigitalXRayImageStorageForProcessing, **tags) -> Dataset:
    """A DX data set built with plain pydicom calls (no parcelscan code)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = sop, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PresentationIntentType = "DX", "FOR PROCESSING"
    ds.KVP, ds.ImagerPixelSpacing = "150", ["1.5", "0.75"]
    ds.Rows, ds.Columns, ds.NumberOfFrames = frames.shape[1], frames.shape[2], frames.shape[0]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = frames.astype("<u2").tobytes()
    ds["PixelData"].VR = "OW"
    for key, value in tags.items():
        setattr(ds, key, value)
    return ds


def save_dx(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


# ---------------------------------------------------------------- round trips through our writers


def test_png_pair_round_trip_from_either_file(tmp_path):
    scan = make_scan(1)
    low, high, side = write_png_pair(scan, tmp_path / "parcel")
    assert (low.name, high.name, side.name) == ("parcel_low.png", "parcel_high.png", "parcel.json")
    assert_same_scan(load_scan(low), scan)
    assert_same_scan(load_scan(high), scan)
    assert cv2.imread(str(low), cv2.IMREAD_UNCHANGED).shape == (L, P)  # rows = lines


@pytest.mark.parametrize("channels", [DUAL, SINGLE])
def test_tiff_round_trip(tmp_path, channels):
    scan = make_scan(2, channels)
    path, side = write_tiff(scan, tmp_path / "scan.tif")
    assert side.name == "scan.json"
    assert_same_scan(load_scan(path), scan)


def test_single_sample_tiff_is_readable_by_opencv(tmp_path):
    scan = make_scan(3, SINGLE)
    path, _ = write_tiff(scan, tmp_path / "scan.tif")
    np.testing.assert_array_equal(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), scan.signals[0])


@pytest.mark.parametrize("channels", [DUAL, SINGLE])
def test_dicos_round_trip_and_tags(tmp_path, channels):
    scan = make_scan(4, channels)
    path = write_dicos(scan, tmp_path / "scan.dcm")
    assert_same_scan(load_scan(path), scan)
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.SOPClassUID == DICOSDigitalXRayImageStorageForProcessing
    assert ds.PresentationIntentType == "FOR PROCESSING"
    assert (ds.Rows, ds.Columns, int(ds.NumberOfFrames)) == (L, P, len(channels))
    assert [float(v) for v in ds.ImagerPixelSpacing] == [1.2, 0.8]  # [line_mm, pixel_mm]
    np.testing.assert_array_equal(ds.pixel_array.reshape(scan.signals.shape), scan.signals)


# ---------------------------------------------------------------- files written by other tools


def test_rgb16_png_written_by_opencv_with_sidecar(tmp_path):
    rng = np.random.default_rng(5)
    low, high = rng.integers(0, 65_536, size=(2, L, P), dtype=np.uint16)
    path = imwrite(tmp_path / "scan.bin", np.dstack([low, high, np.zeros_like(low)]))  # R, G, B
    air_low = rng.uniform(40_000, 50_000, P).round(1).tolist()
    sidecar = {"air": {"low": air_low, "high": 30_000}, "dark": 100, "pixel_mm": 1.6, "kvp": 120}
    (tmp_path / "scan.json").write_text(json.dumps(sidecar))
    scan = load_scan(path)  # recognised by content: the name says .bin
    np.testing.assert_array_equal(scan.signals, np.stack([low, high]))
    np.testing.assert_array_equal(scan.air, np.stack([np.float32(air_low), np.full(P, 30_000, np.float32)]))
    assert np.all(scan.dark == 100) and scan.channels == DUAL
    assert (scan.pixel_mm, scan.line_mm, scan.kvp) == (1.6, 1.6, 120)
    assert scan.metadata == {"source": "16-bit RGB image", "assumed": ["line_mm"]}  # no metadata given


def test_belt_margin_recovers_air_within_one_percent(tmp_path):
    signals, air = belt_signals(6)
    path = imwrite(tmp_path / "belt.png", np.dstack([signals[0], signals[1], np.zeros_like(signals[0])]))
    scan = load_scan(path)
    np.testing.assert_allclose(scan.air, air, rtol=0.01)
    assert np.all(scan.dark == 0)
    assert scan.metadata["calibration"] == ESTIMATED
    assert scan.metadata["assumed"] == ["pixel_mm", "line_mm", "kvp"]
    assert (scan.pixel_mm, scan.line_mm, scan.kvp) == (0.8, 0.8, 140.0)


def test_belt_margin_refuses_what_is_not_air():
    signals, _ = belt_signals(7)
    touching = signals.copy()
    touching[:, :3, 5:30] //= 3  # the parcel reaches into the leading margin in 25 of 37 columns
    with pytest.raises(ScanError, match="does not look like open beam"):
        estimate_from_margin(touching, DUAL)
    with pytest.raises(ScanError, match="darker than the scan interior"):
        estimate_from_margin(65_535 - signals, DUAL)  # an inverted image
    with pytest.raises(ScanError, match="nearly black"):
        estimate_from_margin(np.zeros((1, L, P), np.uint16), SINGLE)
    few = signals.copy()
    few[:, :2, 0] = 1_000  # one strapped column of 37 is tolerated: its air comes from the empty end
    air, _ = estimate_from_margin(few, DUAL)
    np.testing.assert_allclose(air[:, 0], np.median(signals[:, -6:, 0], axis=1), rtol=0.01)


def test_pair_written_by_opencv_with_tiff_partner(tmp_path):
    signals, air = belt_signals(8)
    imwrite(tmp_path / "p_low.png", signals[0])
    imwrite(tmp_path / "p_high.tif", signals[1])
    scan = load_scan(tmp_path / "p_low.png")
    np.testing.assert_array_equal(scan.signals, signals)
    np.testing.assert_allclose(scan.air, air, rtol=0.01)


def _tiff_by_hand(planes: np.ndarray) -> bytes:
    """A big-endian, planar (one plane per sample), two-strip, two-sample TIFF, assembled by hand."""
    s, h, w = planes.shape
    strips = [planes[k].astype(">u2").tobytes() for k in range(s)]
    offsets = [8, 8 + len(strips[0])]
    ifd = 8 + sum(len(x) for x in strips)
    entries = [
        (256, 3, 1, struct.pack(">H2x", w)),
        (257, 3, 1, struct.pack(">H2x", h)),
        (258, 3, 2, struct.pack(">HH", 16, 16)),
        (259, 3, 1, struct.pack(">H2x", 1)),
        (262, 3, 1, struct.pack(">H2x", 1)),
        (273, 4, 2, struct.pack(">I", ifd + 2 + 12 * 10 + 4)),
        (277, 3, 1, struct.pack(">H2x", 2)),
        (279, 4, 2, struct.pack(">I", ifd + 2 + 12 * 10 + 4 + 8)),
        (284, 3, 1, struct.pack(">H2x", 2)),
        (338, 3, 1, struct.pack(">H2x", 0)),
    ]
    table = struct.pack(">H", len(entries)) + b"".join(struct.pack(">HHI", *e[:3]) + e[3] for e in entries)
    arrays = struct.pack(">II", *offsets) + struct.pack(">II", *(len(x) for x in strips))
    return b"MM\0*" + struct.pack(">I", ifd) + b"".join(strips) + table + b"\0\0\0\0" + arrays


def test_two_sample_tiff_assembled_by_hand(tmp_path):
    signals, air = belt_signals(9)
    path = tmp_path / "hand.tif"
    path.write_bytes(_tiff_by_hand(signals))
    scan = load_scan(path)
    assert scan.channels == DUAL
    np.testing.assert_array_equal(scan.signals, signals)
    np.testing.assert_allclose(scan.air, air, rtol=0.01)


def _per_frame_labels(*labels: str) -> list[Dataset]:
    groups = []
    for label in labels:
        content = Dataset()
        content.FrameLabel = label
        group = Dataset()
        group.FrameContentSequence = [content]
        groups.append(group)
    return groups


@pytest.mark.parametrize("labels", [None, "vector", "per-frame"])
def test_dx_written_by_plain_pydicom(tmp_path, labels):
    signals, air = belt_signals(10)
    if labels is None:  # no labels: frame 0 is taken as low
        ds = dx_dataset(signals)
    elif labels == "vector":
        ds = dx_dataset(signals[::-1], FrameLabelVector=["HIGH", "LOW"])
    else:
        groups = _per_frame_labels("High energy", "LE")
        ds = dx_dataset(signals[::-1], PerFrameFunctionalGroupsSequence=groups)
    scan = load_scan(save_dx(ds, tmp_path / "dx"))
    assert scan.channels == DUAL
    np.testing.assert_array_equal(scan.signals, signals)
    np.testing.assert_allclose(scan.air, air, rtol=0.01)
    assert (scan.line_mm, scan.pixel_mm, scan.kvp) == (1.5, 0.75, 150.0)
    assert scan.metadata["calibration"] == ESTIMATED
    assert scan.metadata.get("assumed", []) == ([] if labels else ["frame order (0 = low, 1 = high)"])


@pytest.mark.parametrize("implicit", [False, True])
def test_dicom_without_preamble(tmp_path, implicit):
    signals, _ = belt_signals(11)
    ds = dx_dataset(signals)
    del ds.file_meta  # a bare data set: no preamble, no "DICM", no meta information
    path = tmp_path / "bare.dcm"
    pydicom.dcmwrite(path, ds, implicit_vr=implicit, little_endian=True)
    assert path.read_bytes()[128:132] != b"DICM"
    np.testing.assert_array_equal(load_scan(path).signals, signals)


# ---------------------------------------------------------------- grayscale and pseudo-colour


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_grayscale_8bit_is_single_energy(tmp_path, ext):
    signals, air = belt_signals(12, channels=1)
    grey = (signals[0] // 200).astype(np.uint8)
    scan = load_scan(imwrite(tmp_path / f"g{ext}", grey))
    assert scan.channels == SINGLE and scan.metadata["source"] == "8-bit grayscale image"
    np.testing.assert_array_equal(scan.signals[0], grey.astype(np.uint16) * 257)
    np.testing.assert_allclose(scan.air[0], air[0] / 200 * 257, rtol=0.02)  # 8-bit quantisation


def test_grayscale_sidecar_is_in_file_units(tmp_path):
    grey = np.random.default_rng(13).integers(0, 200, size=(L, P), dtype=np.uint8)
    path = imwrite(tmp_path / "g.png", grey)
    (tmp_path / "g.json").write_text('{"air": 250, "dark": 5, "pixel_mm": 0.4, "line_mm": 0.4, "kvp": 80}')
    scan = load_scan(path)
    assert np.all(scan.air == 250 * 257) and np.all(scan.dark == 5 * 257)
    assert "assumed" not in scan.metadata and "calibration" not in scan.metadata


def test_grey_jpeg_stored_as_colour_is_grayscale(tmp_path):
    signals, _ = belt_signals(14, channels=1)
    grey = (signals[0] // 200).astype(np.uint8)
    path = imwrite(tmp_path / "g.jpg", np.dstack([grey] * 3), [cv2.IMWRITE_JPEG_QUALITY, 95])
    scan = load_scan(path)
    assert scan.channels == SINGLE and scan.metadata["source"] == "8-bit grayscale image"
    with pytest.raises(ScanError, match=r"g\.jpg: a grey image"):
        read_pseudocolour(path)


def test_16bit_single_channel_is_single_energy(tmp_path):
    signals, air = belt_signals(15, channels=1)
    scan = load_scan(imwrite(tmp_path / "s.png", signals[0]))
    assert scan.channels == SINGLE
    np.testing.assert_array_equal(scan.signals, signals)
    np.testing.assert_allclose(scan.air, air, rtol=0.01)


# RGB swatches: (colour, class, HSL lightness): white, pale/mid/deep orange, green, blue, black.
SWATCHES = [
    ((255, 255, 255), 0, 1.0),
    ((255, 200, 140), 1, 395 / 510),
    ((255, 140, 0), 1, 0.5),
    ((128, 70, 0), 1, 128 / 510),
    ((0, 200, 0), 2, 200 / 510),
    ((0, 80, 255), 3, 0.5),
    ((10, 10, 10), 4, 20 / 510),
]


def swatch_image(width: int = 9) -> np.ndarray:
    return np.concatenate([np.full((L, width, 3), c, np.uint8) for c, _, _ in SWATCHES], axis=1)


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_pseudocolour_classes_and_attenuation(tmp_path, ext):
    path = imwrite(tmp_path / f"x{ext}", swatch_image(), [cv2.IMWRITE_JPEG_QUALITY, 95])
    scan, classes = read_pseudocolour(path)
    centres = [9 * i + 4 for i in range(len(SWATCHES))]
    assert classes.shape == (L, 9 * len(SWATCHES)) and classes.dtype == np.uint8
    assert classes[L // 2, centres].tolist() == [cls for _, cls, _ in SWATCHES]
    attenuation = -np.log(scan.transmission()[0, L // 2, centres])
    assert np.all(np.diff(attenuation[:4]) > 0)  # white, pale, mid, deep orange: darker attenuates more
    if ext == ".png":
        np.testing.assert_allclose(attenuation, [-np.log(v) for _, _, v in SWATCHES], atol=1e-4)
    assert scan.channels == SINGLE and scan.metadata["approximate"] is True
    assert scan.metadata["source"] == "pseudo-colour RGB"
    assert_same_scan(load_scan(path), scan)


# ---------------------------------------------------------------- refusals


def raises(path: Path, pattern: str) -> None:
    with pytest.raises(ScanError, match=pattern) as info:
        load_scan(path)
    assert str(path.name) in str(info.value), f"message does not name the file: {info.value}"


def test_unknown_empty_corrupt_and_truncated_files(tmp_path):
    (tmp_path / "u").write_bytes(b"GIF89a" + bytes(64))
    raises(tmp_path / "u", "unrecognised scan file format")
    (tmp_path / "e").write_bytes(b"")
    raises(tmp_path / "e", "empty file")
    png = imwrite(tmp_path / "s.png", make_scan(16, SINGLE).signals[0]).read_bytes()
    (tmp_path / "t.png").write_bytes(png[: len(png) // 2])
    raises(tmp_path / "t.png", "cannot decode the PNG")
    broken = bytearray(png)
    broken[60:70] = bytes(10)  # inside IDAT: CRC mismatch
    (tmp_path / "c.png").write_bytes(bytes(broken))
    raises(tmp_path / "c.png", "cannot decode the PNG")
    (tmp_path / "h.png").write_bytes(png[:20])
    raises(tmp_path / "h.png", "truncated PNG")
    dcm = write_dicos(make_scan(17), tmp_path / "d.dcm").read_bytes()
    (tmp_path / "t.dcm").write_bytes(dcm[: len(dcm) - 500])
    raises(tmp_path / "t.dcm", "pixel data of")
    (tmp_path / "j.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(40))
    raises(tmp_path / "j.jpg", "cannot decode the JPEG")
    tif = write_tiff(make_scan(18), tmp_path / "w.tif")[0].read_bytes()
    (tmp_path / "w.tif").write_bytes(tif[:300])
    raises(tmp_path / "w.tif", "damaged or truncated TIFF|two-sample TIFF")


def _png_header_only(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def test_absurd_and_degenerate_sizes(tmp_path):
    (tmp_path / "big.png").write_bytes(_png_header_only(2**20, 2**20))
    raises(tmp_path / "big.png", "absurdly large")
    imwrite(tmp_path / "line.png", np.full((1, P), 60_000, np.uint16))
    raises(tmp_path / "line.png", "at least 2")
    write_tiff(make_scan(19, lines=2), tmp_path / "ok.tif")
    data = bytearray((tmp_path / "ok.tif").read_bytes())
    ifd = len(data) - (2 + 12 * 12 + 4)  # our writer: 12 IFD entries at the end of the file
    data[ifd + 2 + 12 + 8 : ifd + 2 + 12 + 12] = struct.pack("<I", 1)  # entry 1, ImageLength := 1
    (tmp_path / "one.tif").write_bytes(bytes(data))
    raises(tmp_path / "one.tif", "at least 2")


def test_pair_refusals(tmp_path):
    a, b = np.random.default_rng(20).integers(0, 65_536, size=(2, L, P), dtype=np.uint16)
    imwrite(tmp_path / "m_low.png", a)
    raises(tmp_path / "m_low.png", "partner m_high.png is missing")
    imwrite(tmp_path / "m_high.png", b[:, :-1])
    raises(tmp_path / "m_low.png", "differ in size")
    raises(tmp_path / "m_high.png", "differ in size")
    imwrite(tmp_path / "m_high.png", (b >> 8).astype(np.uint8))
    with pytest.raises(ScanError, match=r"m_high\.png: the 'high' file of a pair must be 16-bit"):
        load_scan(tmp_path / "m_low.png")


def test_image_content_refusals(tmp_path):
    rng = np.random.default_rng(21)
    rgb = rng.integers(1, 65_536, size=(L, P, 3), dtype=np.uint16)
    raises(imwrite(tmp_path / "blue.png", rgb), "non-zero blue channel")
    rgba = np.dstack([rgb, rgb[:, :, :1]])
    (tmp_path / "rgba.png").write_bytes(cv2.imencode(".png", rgba)[1].tobytes())
    raises(tmp_path / "rgba.png", "16-bit image with 4 channels")
    floats = rng.uniform(0, 1, size=(L, P)).astype(np.float32)
    (tmp_path / "f.tif").write_bytes(cv2.imencode(".tif", floats)[1].tobytes())
    raises(tmp_path / "f.tif", "pixels of type float32")
    with pytest.raises(ScanError, match="not a pseudo-colour image"):
        read_pseudocolour(imwrite(tmp_path / "s16.png", rgb[:, :, 0]))


SIDECAR_ERRORS = [
    ('{"air": NaN, "dark": 0}', "not valid UTF-8 JSON"),
    ('{"air": 100, "dark": 200}', "'air' must exceed 'dark' in every pixel"),
    ('{"air": {"single": [40000, 40000]}, "dark": 0}', r"has 2 values, the image has 37 pixels"),
    ('{"air": 40000}', "lacks 'dark'"),
    ('{"air": {"low": 40000}, "dark": 0}', "has channels"),
    ('{"air": true, "dark": 0}', "must be a number"),
    ('{"air": 1e300, "dark": 0}', "finite number"),
    ('{"air": 40000, "dark": 0, "kvp": "high"}', "'kvp' must be a number"),
    ('{"air": 40000, "dark": 0, "pixel_mm": 300}', "invalid scan: pixel_mm=300"),
    ('{"air": 40000, "dark": 0, "metadata": [1]}', "'metadata' must be an object"),
    ('{"air": 40000, "dark": 0, "format": "other"}', "'format' is 'other'"),
    ("[1, 2]", "must hold a JSON object"),
    ("{", "not valid UTF-8 JSON"),
]


@pytest.mark.parametrize(("text", "pattern"), SIDECAR_ERRORS)
def test_sidecar_refusals(tmp_path, text, pattern):
    path = imwrite(tmp_path / "s.png", make_scan(22, SINGLE).signals[0])
    (tmp_path / "s.json").write_text(text)
    with pytest.raises(ScanError, match=pattern) as info:
        load_scan(path)
    assert "s.png: sidecar s.json" in str(info.value) or "s.png: invalid scan" in str(info.value)


def test_pseudocolour_sidecar_may_not_calibrate(tmp_path):
    path = imwrite(tmp_path / "x.png", swatch_image())
    (tmp_path / "x.json").write_text('{"air": 1, "dark": 0}')
    raises(path, "makes no sense for a pseudo-colour image")


def _dicos_with(tmp_path: Path, name: str, **changes) -> Path:
    ds = pydicom.dcmread(write_dicos(make_scan(23), tmp_path / name))
    block = ds.private_block(0x0011, "parcelscan")
    for key, value in changes.items():
        if key in ("air", "dark"):
            block[{"air": 0x10, "dark": 0x11}[key]].value = value
        elif value is None:
            delattr(ds, key)
        else:
            setattr(ds, key, value)
    ds.save_as(tmp_path / name, enforce_file_format=True)
    return tmp_path / name


def test_dicos_refusals(tmp_path):
    signals, _ = belt_signals(24)
    cases = [
        (dx_dataset(signals, DigitalXRayImageStorageForPresentation), "'for presentation'"),
        (dx_dataset(signals, PresentationIntentType="FOR PRESENTATION"), "'for presentation'"),
        (dx_dataset(signals, CTImageStorage), "is not a .DICOS. DX image"),
        (dx_dataset(np.concatenate([signals, signals[:1]])), "3 frames"),
        (dx_dataset(signals, PixelRepresentation=1), "PixelRepresentation 1"),
        (dx_dataset(signals, FrameLabelVector=["LOW", "LOW"]), r"frame labels \['LOW', 'LOW'\]"),
        (dx_dataset(signals, Rows=signals.shape[1] + 5), "pixel data of"),
        (dx_dataset(signals, ImagerPixelSpacing=["1", "2", "3"]), "must have 2 values"),
    ]
    for k, (ds, pattern) in enumerate(cases):
        raises(save_dx(ds, tmp_path / f"case{k}.dcm"), pattern)
    raises(_dicos_with(tmp_path, "short.dcm", air=b"\0" * 12), "'air' holds 12 bytes")
    nan = np.full(2 * P, np.nan, "<f4").tobytes()
    raises(_dicos_with(tmp_path, "nan.dcm", dark=nan), "invalid scan: dark reference contains NaN")


def test_writer_refusals(tmp_path):
    with pytest.raises(ScanError, match="needs a dual-energy scan"):
        write_png_pair(make_scan(25, SINGLE), tmp_path / "x")
    with pytest.raises(ScanError, match="overwrite its own sidecar"):
        write_tiff(make_scan(25), tmp_path / "x.json")
    bad = make_scan(25)
    bad.metadata["array"] = np.zeros(2)
    for write, target, named in ((write_dicos, "x.dcm", "x.dcm"), (write_tiff, "x.tif", "x.json")):
        with pytest.raises(ScanError, match=rf"cannot write .*{named}: metadata is not plain JSON"):
            write(bad, tmp_path / target)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing half-written


# ---------------------------------------------------------------- fuzz


def _fix_png_crcs(data: bytes) -> bytes:
    """Recompute every chunk CRC, so that a mutation reaches libpng's parser and our dispatch."""
    out, pos = bytearray(data[:8]), 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        body = data[pos + 4 : pos + 8 + length]
        out += data[pos : pos + 4] + body + struct.pack(">I", zlib.crc32(body))
        pos += 12 + length
    return bytes(out + data[pos:])


def _mutate(rng: np.random.Generator, data: bytes) -> bytes:
    if data.startswith(b"\x89PNG") and rng.random() < 0.5:
        return _fix_png_crcs(_mutate_bytes(rng, data))
    return _mutate_bytes(rng, data)


def _mutate_bytes(rng: np.random.Generator, data: bytes) -> bytes:
    kind = rng.integers(4)
    if kind == 0:  # truncate
        return data[: rng.integers(0, len(data))]
    buf = bytearray(data)
    if kind == 1:  # flip bytes, mostly past the magic so the reader is reached
        for i in rng.integers(8 if rng.random() < 0.8 else 0, len(buf), size=rng.integers(1, 9)):
            buf[i] = rng.integers(256)
        return bytes(buf)
    if kind == 2:  # overwrite a run in the header region, where the parsers decide the most
        start = rng.integers(8, min(len(buf), 400))
        buf[start : start + 8] = rng.integers(0, 256, size=8, dtype=np.uint8).tobytes()
        return bytes(buf[: len(data)])
    return data[:12] + rng.integers(0, 256, size=rng.integers(0, 300), dtype=np.uint8).tobytes()  # garbage


@pytest.mark.filterwarnings("ignore")
def test_fuzz_only_scanerror_escapes(tmp_path):
    signals, _ = belt_signals(26)
    write_png_pair(make_scan(26), tmp_path / "pair")
    targets = [
        tmp_path / "pair_low.png",
        tmp_path / "pair.json",
        imwrite(tmp_path / "rgb16.png", np.dstack([signals[0], signals[1], np.zeros_like(signals[0])])),
        write_tiff(make_scan(27), tmp_path / "two.tif")[0],
        imwrite(tmp_path / "one.tif", signals[0]),
        imwrite(tmp_path / "grey.png", (signals[0] // 200).astype(np.uint8)),
        imwrite(tmp_path / "pseudo.jpg", swatch_image()),
        write_dicos(make_scan(28), tmp_path / "ours.dcm"),
        save_dx(dx_dataset(signals), tmp_path / "plain.dcm"),
    ]
    rng = np.random.default_rng(2024)
    outcomes = {"scan": 0, "error": 0}
    for target in targets:
        original = target.read_bytes()
        entry = tmp_path / "pair_low.png" if target.suffix == ".json" else target
        for i in range(40):
            target.write_bytes(_mutate(rng, original))
            try:
                assert isinstance(load_scan(entry), Scan)
                outcomes["scan"] += 1
            except ScanError as exc:
                assert entry.name in str(exc) or target.name in str(exc), str(exc)
                outcomes["error"] += 1
            except Exception as exc:  # the test's purpose: report which input broke through
                raise AssertionError(f"{target.name} mutation {i}: {type(exc).__name__}: {exc}") from exc
        target.write_bytes(original)
    assert outcomes["error"] > 200 and outcomes["scan"] > 10  # the fuzz reached both outcomes
