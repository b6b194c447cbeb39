"""PNG, TIFF and JPEG scans: 16-bit raw (dual or single energy, one file or a low/high pair),
grayscale (GDXray style) and pseudo-colour exports, told apart by their content.

Rows are lines (along the belt, row 0 scanned first), columns are detector pixels. Decided
from the decoded pixels, in this order:

* 16-bit, 1 channel, named ``<stem>_low.<ext>`` or ``<stem>_high.<ext>``: one file of a pair;
  the partner is read too and ``load_scan`` on either file gives the same dual-energy scan;
* 16-bit, 1 channel, any other name: single-energy raw;
* 16-bit, 2 samples (TIFF): dual-energy, sample 0 = low, sample 1 = high;
* 16-bit, 3 channels: dual-energy, R = low, G = high, B must be 0;
* 8-bit, 1 channel, or RGB(A) whose channels agree (:func:`is_grey`): single-energy
  grayscale, scaled by 257 into uint16 (dark = attenuating, bright = air);
* 8-bit RGB(A) with colour: a pseudo-colour export (:mod:`.pseudocolour`); alpha is ignored.

Air/dark come from the sidecar ``<stem>.json`` (``<common stem>.json`` for a pair) or are
estimated from the belt margin; see ``docs/scan_format.md``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np

from ..scan import Scan, ScanError
from ._calibration import Acquisition, atomic_write, build_scan, prepare_for_write, read_sidecar, sidecar_text
from ._image import decode_image
from ._tiff import encode_tiff
from .pseudocolour import is_grey, pseudocolour_scan

__all__ = ["read_image", "write_png_pair", "write_tiff"]

DUAL = ("low", "high")
SINGLE = ("single",)
_PAIR_NAME = re.compile(r"(?P<stem>.+)_(?P<role>low|high)")
_PARTNER_SUFFIXES = (".png", ".tif", ".tiff", ".PNG", ".TIF", ".TIFF")


def read_image(path: str | os.PathLike) -> Scan:
    """Read a PNG, TIFF or JPEG scan of any of the kinds above (see the module docstring).

    Raises
    ------
    ScanError
        The image is damaged, of an unsupported kind, a pair is incomplete or mismatched, the
        sidecar is invalid, or the belt margin cannot serve as calibration. Names the file.
    OSError
        The file cannot be opened.
    """
    path = Path(path)
    image = decode_image(path)
    n_chan = image.shape[2]
    if image.dtype == np.uint16:
        if n_chan == 1:
            match = _PAIR_NAME.fullmatch(path.stem)
            if match:
                return _read_pair(path, image, match["stem"], match["role"])
            signals = image[None, :, :, 0]
            return _raw_scan(path, signals, SINGLE, path.with_suffix(".json"), 1.0, "16-bit image")
        if n_chan == 2:
            signals = image.transpose(2, 0, 1)
            return _raw_scan(path, signals, DUAL, path.with_suffix(".json"), 1.0, "two-sample 16-bit TIFF")
        if n_chan == 3:
            if np.any(image[:, :, 2]):
                raise ScanError(
                    f"{path}: 16-bit RGB image with a non-zero blue channel; a dual-energy image "
                    "stores low in red, high in green and zeros in blue"
                )
            signals = image[:, :, :2].transpose(2, 0, 1)
            return _raw_scan(path, signals, DUAL, path.with_suffix(".json"), 1.0, "16-bit RGB image")
        raise ScanError(
            f"{path}: 16-bit image with {n_chan} channels; expected 1 (single energy or one of a "
            "_low/_high pair), 2 (TIFF: low, high) or 3 (R = low, G = high, B = 0)"
        )
    if image.dtype == np.uint8:
        if n_chan == 1:
            return _grey_scan(path, image[:, :, 0])
        if n_chan in (3, 4):
            rgb = image[:, :, :3]
            if is_grey(rgb):
                grey = np.round(rgb.astype(np.float32).mean(axis=2)).astype(np.uint8)
                return _grey_scan(path, grey)
            return pseudocolour_scan(path, rgb)[0]
        raise ScanError(f"{path}: 8-bit image with {n_chan} channels; expected grey or RGB")
    raise ScanError(f"{path}: pixels of type {image.dtype}; expected 8- or 16-bit unsigned integers")


def write_png_pair(scan: Scan, stem: str | os.PathLike) -> tuple[Path, Path, Path]:
    """Write a dual-energy scan as ``<stem>_low.png``, ``<stem>_high.png`` and ``<stem>.json``.

    The PNGs are 16-bit grey, rows = lines; the sidecar holds the per-pixel float32 air/dark,
    pitch, voltage and metadata, so :func:`parcelscan.load_scan` on either PNG gives the scan back
    exactly. Each file is written atomically. Returns (low, high, sidecar) paths.
    """
    stem = Path(stem)
    low, high, side = (stem.with_name(stem.name + s) for s in ("_low.png", "_high.png", ".json"))
    air, dark = prepare_for_write(scan, low)
    if not scan.dual_energy:
        raise ScanError(f"cannot write {low}: a PNG pair needs a dual-energy scan, not {scan.channels}")
    text = sidecar_text(scan, air, dark, side)
    blobs = [_encode(".png", scan.signals[k], p) for k, p in enumerate((low, high))]
    for p, blob in zip((low, high), blobs, strict=True):
        atomic_write(p, blob)
    atomic_write(side, text.encode("utf-8"))
    return low, high, side


def write_tiff(scan: Scan, path: str | os.PathLike) -> tuple[Path, Path]:
    """Write a scan as one uncompressed 16-bit TIFF plus the sidecar ``<stem>.json``.

    Dual energy: two samples per pixel, sample 0 = low, 1 = high (ExtraSamples = unspecified);
    single energy: one sample. Written atomically. Returns (tiff, sidecar) paths.
    """
    path = Path(path)
    side = path.with_suffix(".json")
    if side == path:
        raise ScanError(f"cannot write {path}: the image would overwrite its own sidecar; use .tif")
    air, dark = prepare_for_write(scan, path)
    text = sidecar_text(scan, air, dark, side)
    try:
        blob = encode_tiff(scan.signals.transpose(1, 2, 0))
    except ValueError as exc:
        raise ScanError(f"cannot write {path}: {exc}") from exc
    atomic_write(path, blob)
    atomic_write(side, text.encode("utf-8"))
    return path, side


def _raw_scan(
    path: Path, signals: np.ndarray, channels: tuple[str, ...], sidecar: Path, scale: float, source: str
) -> Scan:
    acq = read_sidecar(path, sidecar, channels, signals.shape[2], scale, calibration=True)
    return build_scan(path, np.ascontiguousarray(signals), channels, acq or Acquisition(), source)


def _grey_scan(path: Path, grey: np.ndarray) -> Scan:
    # 8-bit to 16-bit by 257 maps 0 -> 0 and 255 -> 65535 exactly; sidecar values scale alike.
    signals = grey.astype(np.uint16)[None] * np.uint16(257)
    return _raw_scan(path, signals, SINGLE, path.with_suffix(".json"), 257.0, "8-bit grayscale image")


def _read_pair(path: Path, image: np.ndarray, stem: str, role: str) -> Scan:
    other_role = "high" if role == "low" else "low"
    candidates = dict.fromkeys((path.suffix, *_PARTNER_SUFFIXES))
    partner = next(
        (p for s in candidates if (p := path.with_name(f"{stem}_{other_role}{s}")).is_file()), None
    )
    if partner is None:
        raise ScanError(
            f"{path}: the '{role}' file of a low/high pair, but its partner "
            f"{stem}_{other_role}{path.suffix} is missing"
        )
    other = decode_image(partner)
    if other.dtype != np.uint16 or other.shape[2] != 1:
        raise ScanError(
            f"{partner}: the '{other_role}' file of a pair must be 16-bit single-channel, got "
            f"{other.dtype} with {other.shape[2]} channels"
        )
    if other.shape != image.shape:
        raise ScanError(
            f"{path}: pair files differ in size: {path.name} is {image.shape[0]} x {image.shape[1]}, "
            f"{partner.name} is {other.shape[0]} x {other.shape[1]} (lines x pixels)"
        )
    low, high = (image, other) if role == "low" else (other, image)
    signals = np.stack([low[:, :, 0], high[:, :, 0]])
    return _raw_scan(path, signals, DUAL, path.with_name(stem + ".json"), 1.0, "16-bit PNG/TIFF pair")


def _encode(ext: str, image: np.ndarray, path: Path) -> bytes:
    try:
        ok, buf = cv2.imencode(ext, np.ascontiguousarray(image))
    except cv2.error as exc:
        raise ScanError(f"cannot write {path}: OpenCV failed to encode ({exc})") from exc
    if not ok:
        raise ScanError(f"cannot write {path}: OpenCV failed to encode the image")
    return buf.tobytes()
