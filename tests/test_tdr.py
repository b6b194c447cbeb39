"""DICOS Threat Detection Reports: hand-built detections written, then read back with plain pydicom.

The scan is 11 lines x 37 pixels (odd, different) and the boxes reach x > 11, so a swap of x
(columns, across the belt) and y (rows, along it) cannot pass.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pydicom
import pytest
from pydicom.uid import DICOSDigitalXRayImageStorageForProcessing

from parcelscan import Scan
from parcelscan.io import write_dicos, write_tdr
from parcelscan.io.tdr import read_tdr
from parcelscan.result import Detection, FailedScan, ImpenetrableArea, Region

TDR_UID = "1.2.840.10008.5.1.4.1.1.501.3"  # DICOS Threat Detection Report Storage
L, P = 11, 37
LINE_MM, PIXEL_MM = 1.2, 0.8
MODEL = {"name": "unet-s", "version": "2.3.1", "precision": "fp16", "sha256": "ab" * 32}
TIMINGS = {"preprocess_ms": 12.5, "inference_ms": 30.25, "stitch_ms": 1.25}


def mm(box):
    x0, y0, x1, y1 = box
    return (x0 * PIXEL_MM, y0 * LINE_MM, x1 * PIXEL_MM, y1 * LINE_MM)


def region(box, score, mass_g=None, apparent_z=None, material_class="unknown", carrier=None) -> Region:
    x0, y0, x1, y1 = box
    return Region(
        box_px=box,
        box_mm=mm(box),
        centroid_px=((x0 + x1) / 2, (y0 + y1) / 2),  # edge coordinates: pixel j spans [j, j + 1)
        score=score,
        area_cm2=(x1 - x0) * (y1 - y0) * PIXEL_MM * LINE_MM / 100,
        mass_g=mass_g,
        mass_lower_bound=mass_g is not None,
        mass_material="iron" if mass_g is not None else None,
        apparent_z=apparent_z,
        material_class=material_class,
        carrier=carrier,
    )


def detection(regions=(), impenetrable=(), threshold=0.5, shape=(L, P)) -> Detection:
    heatmap = np.zeros((3, 7), np.float32)
    heatmap[1, 4] = max((r.score for r in regions), default=0.0)
    score = float(heatmap.max())
    return Detection(
        source="parcel-17.dcm",
        score=score,
        alarm=score > threshold,
        threshold=threshold,
        regions=tuple(regions),
        impenetrable=tuple(impenetrable),
        heatmap=heatmap,
        heatmap_scales=(3 / shape[0], 7 / shape[1]),
        scan_shape=shape,
        line_mm=LINE_MM,
        pixel_mm=PIXEL_MM,
        timings_ms=dict(TIMINGS),
        model=dict(MODEL),
    )


def alarm_detection() -> Detection:
    return detection(
        regions=[
            region(
                (20, 1, 31, 6),
                0.875,
                mass_g=412.5,
                apparent_z=26.0,
                material_class="metal",
                carrier="organic bulk",
            ),
            region((2, 7, 9, 11), 0.3125),  # below the threshold: reported, not an alarm object
        ],
        impenetrable=[ImpenetrableArea((12, 3, 36, 10), mm((12, 3, 36, 10)), 2.3)],
    )


def make_scan(seed: int = 0) -> Scan:
    rng = np.random.default_rng(seed)
    dark = rng.uniform(50, 150, size=(2, P)).astype(np.float32)
    air = (dark + rng.uniform(20_000, 60_000, size=(2, P))).astype(np.float32)
    signals = rng.integers(0, 65_536, size=(2, L, P), dtype=np.uint16)
    return Scan(signals, air, dark, ("low", "high"), PIXEL_MM, LINE_MM, 160.0)


def test_alarm_report_is_a_valid_dicos_tdr(tmp_path):
    path = write_tdr(alarm_detection(), tmp_path / "r.dcs")
    assert path.read_bytes()[128:132] == b"DICM"
    ds = pydicom.dcmread(path)  # no force: a proper Part 10 file
    assert ds.SOPClassUID == TDR_UID == ds.file_meta.MediaStorageSOPClassUID
    assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
    assert (ds.Modality, ds.TDRType, ds.AlarmDecision, ds.OOIType) == ("TDR", "MACHINE", "ALARM", "BAGGAGE")
    assert (ds.NumberOfTotalObjects, ds.NumberOfAlarmObjects) == (3, 1)
    assert ds.TotalProcessingTime == pytest.approx(44.0)
    assert list(ds.ThreatDetectionAlgorithmAndVersion) == [
        "parcelscan unet-s",
        "2.3.1",
        "precision=fp16",
        "sha256=" + "ab" * 16,
    ]
    first, second, shield = ds.ThreatSequence
    assert [item.PotentialThreatObjectID for item in ds.ThreatSequence] == [1, 2, 3]
    roi = first.PTORepresentationSequence[0].ThreatROIVoxelSequence[0]
    assert list(roi.ThreatROIBase) == [20, 1, 0] and list(roi.ThreatROIExtents) == [11, 5, 0]
    a = first.ATDAssessmentSequence[0]
    assert (a.ThreatCategory, a.ATDAssessmentFlag, a.ATDAbilityAssessment) == (
        "ANOMALY",
        "THREAT",
        "NO_INTERFERENCE",
    )
    assert "metal" in a.ThreatCategoryDescription and "organic bulk" in a.ThreatCategoryDescription
    assert "412.5 g" in a.ThreatCategoryDescription
    assert second.ATDAssessmentSequence[0].ATDAssessmentFlag == "NO_THREAT"
    s = shield.ATDAssessmentSequence[0]
    assert (s.ATDAbilityAssessment, s.ATDAssessmentFlag) == ("SHIELD", "UNKNOWN")
    assert "ATDAssessmentProbability" not in s
    assert "ReferencedInstanceSequence" not in first.PTORepresentationSequence[0]


def test_alarm_report_round_trips(tmp_path):
    det = alarm_detection()
    out = read_tdr(write_tdr(det, tmp_path / "r.dcs"))
    assert out["alarm"] is True and out["sop_class_uid"] == TDR_UID
    assert (out["total_objects"], out["alarm_objects"]) == (3, 1)
    objs = out["objects"]
    assert [o["kind"] for o in objs] == ["region", "region", "impenetrable"]
    assert [o["box"] for o in objs] == [(20, 1, 31, 6), (2, 7, 9, 11), (12, 3, 36, 10)]
    assert [o["score"] for o in objs[:2]] == pytest.approx([0.875, 0.3125]) and objs[2]["score"] is None
    assert objs[0]["mass_g"] == pytest.approx(412.5) and objs[0]["z_effective"] == pytest.approx(26.0)
    assert objs[1]["mass_g"] is None and objs[1]["z_effective"] is None


def test_clear_report_without_regions(tmp_path):
    path = write_tdr(detection(), tmp_path / "clear.dcs")
    ds = pydicom.dcmread(path)
    assert (ds.AlarmDecision, ds.NumberOfTotalObjects) == ("CLEAR", 0)
    assert "NumberOfAlarmObjects" not in ds and "ThreatSequence" not in ds
    out = read_tdr(path)
    assert out["alarm"] is False and out["objects"] == [] and out["alarm_objects"] == 0


def test_report_references_the_dicos_scan(tmp_path):
    scan_path = write_dicos(make_scan(), tmp_path / "scan.dcs")
    dx = pydicom.dcmread(scan_path)
    for ref in (scan_path, dx):
        ds = pydicom.dcmread(write_tdr(alarm_detection(), tmp_path / "r.dcs", referenced_scan=ref))
        assert ds.StudyInstanceUID == dx.StudyInstanceUID
        assert ds.SeriesInstanceUID != dx.SeriesInstanceUID  # a TDR series of its own
        for item in ds.ThreatSequence:
            (instance,) = item.PTORepresentationSequence[0].ReferencedInstanceSequence
            assert instance.ReferencedSOPInstanceUID == dx.SOPInstanceUID
            assert instance.ReferencedSOPClassUID == DICOSDigitalXRayImageStorageForProcessing
    out = read_tdr(tmp_path / "r.dcs")
    assert all(o["referenced_sop_instance_uids"] == [dx.SOPInstanceUID] for o in out["objects"])


def test_processing_time_prefers_the_stated_total(tmp_path):
    det = dataclasses.replace(detection(), timings_ms={**TIMINGS, "total_ms": 50.0})  # not summed again
    assert read_tdr(write_tdr(det, tmp_path / "r.dcs"))["total_processing_time_ms"] == pytest.approx(50.0)


def test_unreferenced_reports_get_new_uids(tmp_path):
    a = pydicom.dcmread(write_tdr(detection(), tmp_path / "a.dcs"))
    b = pydicom.dcmread(write_tdr(detection(), tmp_path / "b.dcs"))
    for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        assert a[keyword].value != b[keyword].value


def test_reference_of_another_size_is_rejected(tmp_path):
    scan_path = write_dicos(make_scan(), tmp_path / "scan.dcs")
    with pytest.raises(ValueError, match="11 rows x 37 columns"):
        write_tdr(detection(shape=(13, P)), tmp_path / "r.dcs", referenced_scan=scan_path)
    tdr_path = write_tdr(detection(), tmp_path / "t.dcs")
    with pytest.raises(ValueError, match="not a \\(DICOS\\) DX image"):
        write_tdr(detection(), tmp_path / "r.dcs", referenced_scan=tdr_path)
    assert not (tmp_path / "r.dcs").exists()


def test_wrong_inputs_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match=r"must be a parcelscan\.result\.Detection, got dict"):
        write_tdr({"alarm": True}, tmp_path / "r.dcs")
    with pytest.raises(ValueError, match="FailedScan"):
        write_tdr(FailedScan("x.dcs", "unreadable", "ScanError"), tmp_path / "r.dcs")
    with pytest.raises(ValueError, match="referenced_scan must be a pydicom Dataset"):
        write_tdr(detection(), tmp_path / "r.dcs", referenced_scan=42)
    with pytest.raises(ValueError, match=r"regions\[0\].box_px"):  # x1 beyond the 37 pixels
        write_tdr(detection(regions=[region((30, 1, 38, 4), 0.9)]), tmp_path / "r.dcs")
    with pytest.raises(ValueError, match=r"regions\[0\].score"):
        write_tdr(detection(regions=[region((3, 1, 8, 4), float("nan"))]), tmp_path / "r.dcs")


def test_read_tdr_rejects_other_files(tmp_path):
    scan_path = write_dicos(make_scan(), tmp_path / "scan.dcs")
    with pytest.raises(ValueError, match="is not a DICOS TDR"):
        read_tdr(scan_path)
    junk = tmp_path / "junk.dcs"
    junk.write_bytes(b"not dicom at all")
    with pytest.raises(ValueError, match="not a DICOM file"):
        read_tdr(junk)
    with pytest.raises(ValueError, match="path must be a str or PathLike, got int"):
        read_tdr(42)
