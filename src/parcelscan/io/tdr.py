"""DICOS Threat Detection Reports (TDR): the detector's answer in the form screening systems read.

One file per scan: SOP class DICOS Threat Detection Report Storage (1.2.840.10008.5.1.4.1.1.501.3),
Explicit VR Little Endian with preamble and file meta, Modality ``TDR``, TDR Type ``MACHINE``,
OOI Type ``BAGGAGE`` (DICOS has no parcel term), Alarm Decision ``ALARM``/``CLEAR`` from
``Detection.alarm``. Each potential threat object (PTO) is one Threat Sequence item:

- a :class:`~parcelscan.result.Region`: Threat Category ``ANOMALY`` (the model finds an unexplained
  dense mass, it does not name it), ATD Ability Assessment ``NO_INTERFERENCE``, ATD Assessment Flag
  ``THREAT`` when the parcel alarms and the region's score exceeds the threshold, else
  ``NO_THREAT``; ATD Assessment Probability = region score; Mass (g) and Z Effective where known;
  material class, mass hypothesis and carrier in the Threat Category Description;
- an :class:`~parcelscan.result.ImpenetrableArea`: Threat Category ``OTHER``, ATD Ability
  Assessment ``SHIELD`` (the algorithm could not see through it), ATD Assessment Flag ``UNKNOWN``,
  no probability; it never counts as an alarm object.

PTO geometry is 2-D, in the scan's pixel coordinates, which are the referenced DX image's:
x = column (detector pixel, across the belt), y = row (scan line, along it), z = 0, in pixel-edge
coordinates (column j spans [j, j + 1), as in :mod:`parcelscan.postprocess` and DICOM's spatial
coordinates). Threat ROI Base = (x0, y0, 0) and Threat ROI Extents = (x1 - x0, y1 - y0, 0) for the
half-open box ``(x0, y0, x1, y1)``; the Threat ROI Bitmap is empty (every pixel of the box). The
box's two corners form the Bounding Polygon; Center of PTO is the region's centroid (an impenetrable
area's box centre). Total Processing Time is in milliseconds.
"""

from __future__ import annotations

import io
import math
import numbers
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import (
    DICOSDigitalXRayImageStorageForPresentation,
    DICOSDigitalXRayImageStorageForProcessing,
    DICOSThreatDetectionReportStorage,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    generate_uid,
)

from ..result import Detection, FailedScan, ImpenetrableArea, Region
from ._calibration import atomic_write
from .dicos import new_dataset

__all__ = ["SOP_CLASS", "read_tdr", "write_tdr"]

SOP_CLASS = DICOSThreatDetectionReportStorage  # 1.2.840.10008.5.1.4.1.1.501.3
# The TDR's boxes are 2-D pixel boxes: only a 2-D projection image can be referenced.
_DX_CLASSES = {
    DICOSDigitalXRayImageStorageForProcessing,
    DICOSDigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    DigitalXRayImageStorageForPresentation,
}
# Study-level and object-of-inspection attributes a TDR shares with the image it reports on.
_SHARED = ("PatientName", "PatientID", "StudyID", "StudyDate", "StudyTime", "AccessionNumber")
_LO_MAX = 64  # characters in one LO value


def write_tdr(detection: Detection, path: str | os.PathLike, *, referenced_scan: Any = None) -> Path:
    """Write ``detection`` as a DICOS Threat Detection Report, atomically; returns the path.

    Parameters
    ----------
    detection : Detection
        The detector's answer for one scan (a :class:`FailedScan` has nothing to report).
    path : str or PathLike
        The file to write.
    referenced_scan : pydicom Dataset, str, PathLike or None
        The DICOS/DICOM DX image the scan came from (a data set or its file). The TDR then joins
        its study (same Study Instance UID, OOI and frame of reference; a series of its own, as
        DICOM keeps one modality per series) and every PTO references the image's SOP instance.
        Its Rows x Columns must equal ``detection.scan_shape``. ``None``: new study UIDs and no
        Referenced Instance Sequence.

    Raises
    ------
    ValueError
        Wrong argument types, boxes outside ``scan_shape``, scores outside [0, 1], or a
        referenced scan that is unreadable, not a DX image, or of another size.
    """
    _check_detection(detection)
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be a str or PathLike, got {type(path).__name__}")
    path = Path(path)
    ref = _reference(referenced_scan, detection.scan_shape)
    now = datetime.now().astimezone()  # local time, as the station's other records; DT states the offset
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S.%f")

    ds = new_dataset(path, SOP_CLASS)
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.PatientName, ds.PatientID = date, time, "", "", ""
    ds.StudyInstanceUID = generate_uid() if ref is None else ref.StudyInstanceUID
    ds.FrameOfReferenceUID = generate_uid()
    if ref is not None:
        for keyword in (*_SHARED, "FrameOfReferenceUID"):
            if ref.get(keyword) not in (None, ""):
                setattr(ds, keyword, ref.get(keyword))
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "TDR"
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.ContentDate, ds.ContentTime = date, time
    ds.OOIType = "BAGGAGE"
    ds.Manufacturer = "parcelscan"
    ds.SoftwareVersions = _lo(detection.model.get("version") or "unknown")
    ds.TDRType = "MACHINE"
    ds.ThreatDetectionAlgorithmAndVersion = _algorithm(detection.model)
    ds.AlarmDecision = "ALARM" if detection.alarm else "CLEAR"
    ds.AlarmDecisionTime = now.strftime("%Y%m%d%H%M%S.%f%z")
    ds.AbortFlag = "SUCCESS"
    ds.TotalProcessingTime = _total_ms(detection.timings_ms)

    # A region alarms when the parcel does and its own score passes the parcel threshold.
    alarms = [bool(detection.alarm and r.score > detection.threshold) for r in detection.regions]
    regions, n = detection.regions, len(detection.regions)
    items = [_region_item(i + 1, regions[i], alarms[i], ref) for i in range(n)]
    items += [_shield_item(n + i, a, ref) for i, a in enumerate(detection.impenetrable, 1)]
    if len(items) > 65535:
        raise ValueError(f"{len(items)} objects exceed the 65535 PTO IDs a TDR can hold")
    ds.NumberOfTotalObjects = len(items)
    if detection.alarm:  # required (only) when the decision is ALARM
        ds.NumberOfAlarmObjects = sum(alarms)
    if items:
        ds.ThreatSequence = items

    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    atomic_write(path, buf.getvalue())
    return path


def read_tdr(path: str | os.PathLike) -> dict[str, Any]:
    """Read back a TDR: the decision, the UIDs and one dict per potential threat object.

    Returns ``{"alarm": bool | None, "alarm_decision", "tdr_type", "sop_class_uid",
    "sop_instance_uid", "study_instance_uid", "series_instance_uid", "total_objects",
    "alarm_objects", "total_processing_time_ms", "algorithm": [str, ...], "objects": [...]}`` with
    each object ``{"id", "kind": "region" | "impenetrable", "box": (x0, y0, x1, y1) floats in
    image pixels, "score", "mass_g", "z_effective", "threat_category", "assessment_flag",
    "ability_assessment", "description", "referenced_sop_instance_uids": [str, ...]}``;
    ``None`` where the file does not state a value. ``kind`` is "impenetrable" for ATD Ability
    Assessment ``SHIELD``.

    Raises
    ------
    ValueError
        Not a DICOM file, not a TDR, or a damaged one (the message names the file).
    OSError
        The file cannot be opened.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be a str or PathLike, got {type(path).__name__}")
    path = Path(path)
    with open(path, "rb") as fh:
        try:
            ds = pydicom.dcmread(fh)
            sop = ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID")
        except Exception as exc:  # pydicom raises an open set of exceptions on damaged input
            raise ValueError(f"{path}: not a DICOM file ({type(exc).__name__}: {exc})") from exc
    if sop != SOP_CLASS:
        raise ValueError(f"{path}: SOP class {sop or 'missing'} is not a DICOS TDR ({SOP_CLASS})")
    try:
        return _summary(ds, sop)
    except Exception as exc:  # parsing is lazy: a damaged element only fails when read
        raise ValueError(f"{path}: damaged DICOS TDR ({type(exc).__name__}: {exc})") from exc


def _summary(ds: Dataset, sop: str) -> dict[str, Any]:
    decision = str(ds.get("AlarmDecision") or "")
    return {
        "alarm": {"ALARM": True, "CLEAR": False}.get(decision),
        "alarm_decision": decision,
        "tdr_type": str(ds.get("TDRType") or ""),
        "sop_class_uid": str(sop),
        "sop_instance_uid": str(ds.SOPInstanceUID),
        "study_instance_uid": str(ds.get("StudyInstanceUID") or ""),
        "series_instance_uid": str(ds.get("SeriesInstanceUID") or ""),
        "total_objects": _int(ds.get("NumberOfTotalObjects")),
        "alarm_objects": _int(ds.get("NumberOfAlarmObjects")) or 0,
        "total_processing_time_ms": _float(ds.get("TotalProcessingTime")),
        "algorithm": [str(v) for v in _values(ds.get("ThreatDetectionAlgorithmAndVersion"))],
        "objects": [_read_object(item) for item in ds.get("ThreatSequence") or []],
    }


def _check_detection(detection: Any) -> None:
    if isinstance(detection, FailedScan):
        raise ValueError(f"detection is a FailedScan ({detection.error}): there is no result to report")
    if not isinstance(detection, Detection):
        raise ValueError(f"detection must be a parcelscan.result.Detection, got {type(detection).__name__}")
    shape = detection.scan_shape
    if len(shape) != 2 or not all(_is_int(v) and v > 0 for v in shape):
        raise ValueError(f"detection.scan_shape must be (lines, pixels) positive ints, got {shape!r}")
    if not isinstance(detection.threshold, numbers.Real) or not math.isfinite(detection.threshold):
        raise ValueError(f"detection.threshold must be finite, got {detection.threshold!r}")
    for name in ("model", "timings_ms"):
        if not isinstance(getattr(detection, name), dict):
            raise ValueError(
                f"detection.{name} must be a dict, got {type(getattr(detection, name)).__name__}"
            )
    named = [(f"regions[{i}]", r) for i, r in enumerate(detection.regions)]
    named += [(f"impenetrable[{i}]", a) for i, a in enumerate(detection.impenetrable)]
    lines, pixels = shape
    for name, obj in named:
        box = obj.box_px
        ok = len(box) == 4 and all(_is_int(v) for v in box)
        if not ok or not (0 <= box[0] < box[2] <= pixels and 0 <= box[1] < box[3] <= lines):
            raise ValueError(
                f"{name}.box_px must be (x0, y0, x1, y1) ints with 0 <= x0 < x1 <= {pixels} and "
                f"0 <= y0 < y1 <= {lines} (scan_shape {shape}), got {box!r}"
            )
        score = getattr(obj, "score", 0.0)
        if not isinstance(score, numbers.Real) or not 0 <= score <= 1:  # also rejects NaN
            raise ValueError(f"{name}.score must be a number in [0, 1], got {score!r}")


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _reference(referenced_scan: Any, scan_shape: tuple[int, int]) -> Dataset | None:
    """The referenced image's data set (pixels not read), checked against the scan's shape."""
    if referenced_scan is None:
        return None
    if isinstance(referenced_scan, (str, os.PathLike)):
        where = str(referenced_scan)
        with open(referenced_scan, "rb") as fh:
            preamble = fh.read(132)[128:] == b"DICM"
            fh.seek(0)
            try:
                ref = pydicom.dcmread(fh, stop_before_pixels=True, force=not preamble)
            except Exception as exc:
                raise ValueError(f"referenced_scan {where}: not readable as DICOM ({exc})") from exc
    elif isinstance(referenced_scan, Dataset):
        where, ref = "referenced_scan", referenced_scan
    else:
        raise ValueError(
            f"referenced_scan must be a pydicom Dataset, a path or None, got {type(referenced_scan).__name__}"
        )
    try:  # a forced read of a foreign file parses lazily: its elements may fail here
        sop = ref.get("SOPClassUID")
        missing = [
            k for k in ("SOPInstanceUID", "StudyInstanceUID", "Rows", "Columns") if ref.get(k) in (None, "")
        ]
        shape = None if missing else (int(ref.Rows), int(ref.Columns))
    except Exception as exc:
        raise ValueError(f"{where}: damaged DICOM data set ({type(exc).__name__}: {exc})") from exc
    if sop not in _DX_CLASSES:
        raise ValueError(f"{where}: SOP class {sop or 'missing'} is not a (DICOS) DX image")
    if missing:
        raise ValueError(f"{where}: no {', '.join(missing)}")
    if shape != tuple(scan_shape):
        raise ValueError(
            f"{where}: image of {shape[0]} rows x {shape[1]} columns, but the detection's boxes are "
            f"on a scan of {scan_shape[0]} lines x {scan_shape[1]} pixels"
        )
    return ref


def _region_item(pto_id: int, region: Region, alarm: bool, ref: Dataset | None) -> Dataset:
    parts = [f"concealed dense mass: material class {region.material_class}"]
    if _known(region.apparent_z):
        parts.append(f"apparent Z {region.apparent_z:.1f}")
    if _known(region.mass_g):
        bound = ">= " if region.mass_lower_bound else ""
        material = f" as {region.mass_material}" if region.mass_material else ""
        parts.append(f"mass {bound}{region.mass_g:.1f} g{material}")
    else:
        parts.append("mass unknown")
    parts.append(f"inside {region.carrier}" if region.carrier else "no carrier")
    parts.append(f"area {region.area_cm2:.2f} cm2")
    assessment = _assessment("ANOMALY", "THREAT" if alarm else "NO_THREAT", "NO_INTERFERENCE", parts)
    assessment.ATDAssessmentProbability = float(region.score)
    rep = _representation(region.box_px, region.centroid_px, region.box_mm, ref)
    if _known(region.mass_g):
        rep.Mass = float(region.mass_g)
    if _known(region.apparent_z):
        rep.ZEffective = float(region.apparent_z)
    return _pto(pto_id, assessment, rep)


def _shield_item(pto_id: int, area: ImpenetrableArea, ref: Dataset | None) -> Dataset:
    parts = [f"impenetrable area of {area.area_cm2:.2f} cm2", "cannot be assessed: open or re-scan"]
    assessment = _assessment("OTHER", "UNKNOWN", "SHIELD", parts)
    x0, y0, x1, y1 = area.box_px
    rep = _representation(area.box_px, ((x0 + x1) / 2, (y0 + y1) / 2), area.box_mm, ref)
    return _pto(pto_id, assessment, rep)


def _assessment(category: str, flag: str, ability: str, parts: list[str]) -> Dataset:
    item = Dataset()
    item.ThreatCategory = category
    item.ThreatCategoryDescription = "; ".join(parts)
    item.ATDAbilityAssessment = ability
    item.ATDAssessmentFlag = flag
    return item


def _representation(box, centre, box_mm, ref: Dataset | None) -> Dataset:
    """PTO Representation Sequence item: the box in image pixels (x, y, z = 0), see module doc."""
    x0, y0, x1, y1 = (float(v) for v in box)
    roi = Dataset()
    roi.ThreatROIBase = [x0, y0, 0.0]
    roi.ThreatROIExtents = [x1 - x0, y1 - y0, 0.0]
    roi.ThreatROIBitmap = b""  # empty: every pixel of the box
    rep = Dataset()
    if ref is not None:
        instance = Dataset()
        instance.ReferencedSOPClassUID = ref.SOPClassUID
        instance.ReferencedSOPInstanceUID = ref.SOPInstanceUID
        rep.ReferencedInstanceSequence = [instance]
    rep.ThreatROIVoxelSequence = [roi]
    rep.BoundingPolygon = [x0, y0, 0.0, x1, y1, 0.0]
    rep.CenterOfPTO = [float(centre[0]), float(centre[1]), 0.0]
    mx0, my0, mx1, my1 = box_mm
    rep.PTOLocationDescription = f"{mx0:.1f}-{mx1:.1f} mm across the belt, {my0:.1f}-{my1:.1f} mm along it"
    return rep


def _pto(pto_id: int, assessment: Dataset, rep: Dataset) -> Dataset:
    item = Dataset()
    item.PotentialThreatObjectID = pto_id
    item.ATDAssessmentSequence = [assessment]
    item.PTORepresentationSequence = [rep]
    return item


def _algorithm(model: dict[str, Any]) -> list[str]:
    """Threat Detection Algorithm and Version: manufacturer, version, then control parameters."""
    values = [f"parcelscan {model.get('name') or 'model'}", str(model.get("version") or "unknown")]
    if model.get("precision"):
        values.append(f"precision={model['precision']}")
    if model.get("sha256"):
        # A labelled 128-bit prefix: the full 64 hex digits fill an LO value, and as the last value
        # its padding space would make readers warn of 65 characters.
        values.append(f"sha256={str(model['sha256'])[:32]}")
    return [_lo(v) for v in values]


def _lo(text: str) -> str:
    """One LO value: no backslash (the value separator), at most 64 characters."""
    return str(text).replace("\\", "/")[:_LO_MAX]


def _total_ms(timings_ms: dict[str, float]) -> float:
    """A stated ``total_ms``, else the sum of the per-stage times (milliseconds)."""
    if "total_ms" in timings_ms:
        return float(timings_ms["total_ms"])
    return float(sum(float(v) for v in timings_ms.values() if _known(v)))


def _known(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def _read_object(item: Dataset) -> dict[str, Any]:
    assessment = (item.get("ATDAssessmentSequence") or [Dataset()])[0]
    rep = (item.get("PTORepresentationSequence") or [Dataset()])[0]
    roi = (rep.get("ThreatROIVoxelSequence") or [Dataset()])[0]
    box = None
    if roi.get("ThreatROIBase") is not None and roi.get("ThreatROIExtents") is not None:
        (x, y, _), (w, h, _) = _values(roi.ThreatROIBase), _values(roi.ThreatROIExtents)
        box = (float(x), float(y), float(x + w), float(y + h))
    ability = str(assessment.get("ATDAbilityAssessment") or "")
    return {
        "id": _int(item.get("PotentialThreatObjectID")),
        "kind": "impenetrable" if ability == "SHIELD" else "region",
        "box": box,
        "score": _float(assessment.get("ATDAssessmentProbability")),
        "mass_g": _float(rep.get("Mass")),
        "z_effective": _float(rep.get("ZEffective")),
        "threat_category": str(assessment.get("ThreatCategory") or ""),
        "assessment_flag": str(assessment.get("ATDAssessmentFlag") or ""),
        "ability_assessment": ability,
        "description": str(assessment.get("ThreatCategoryDescription") or ""),
        "referenced_sop_instance_uids": [
            str(r.ReferencedSOPInstanceUID) for r in rep.get("ReferencedInstanceSequence") or []
        ],
    }


def _values(v: Any) -> list[Any]:
    """A multi-valued element's values as a list (pydicom returns a bare value when VM is 1)."""
    if v is None:
        return []
    return list(v) if isinstance(v, (list, tuple, MultiValue)) else [v]


def _int(v: Any) -> int | None:
    return None if v in (None, "") else int(v)


def _float(v: Any) -> float | None:
    return None if v in (None, "") else float(v)
