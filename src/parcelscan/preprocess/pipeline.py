"""The one preprocessing used by training and inference: raw scan -> model input at a fixed pixel size.

Data flow (:class:`Preprocessor`): transmission T = (S - dark) / (air - dark) at scan resolution
-> resample T to ``target_mm`` square pixels (linear domain, anti-aliased) -> attenuation a = -ln T
-> optional edge-preserving denoising -> impenetrable mask from a_high -> model input
``("a_low", "a_high", "impenetrable")``, each attenuation divided by a fixed constant, and for models
that take it (:data:`KVP_CHANNELS`) a fourth plane holding the scan's tube voltage.
Resampling first keeps the per-pixel work after it small (performance.md); resampling T rather
than a is the physically right average (see :func:`~parcelscan.preprocess.tiling.resample`).

Normalisation uses fixed physical constants, never dataset statistics, so that a scan means the
same to the model whichever dataset it was trained on. Every parameter lives in
:class:`PreprocessConfig`, which serialises to the model card and the ONNX metadata.

Threads: nothing here calls ``cv2.setNumThreads``; a station or benchmark sets OpenCV's thread
count once, deliberately, next to its ONNX Runtime settings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import cv2
import numpy as np

from ..scan import Scan, validate_scan
from .tiling import _check_array, _check_positive, _resample, stitch, tiles

__all__ = [
    "INPUT_CHANNELS",
    "INPUT_LAYOUTS",
    "KVP_CHANNELS",
    "KVP_PLANE_UNIT",
    "PreprocessConfig",
    "Preprocessed",
    "Preprocessor",
    "denoise",
    "impenetrable_mask",
    "log_attenuation",
    "model_input",
    "transmission",
]

INPUT_CHANNELS = ("a_low", "a_high", "impenetrable")
#: The layout with the tube voltage as a fourth, constant plane (kV / :data:`KVP_PLANE_UNIT`, so 1.4 at
#: 140 kV). Dual-energy ratios R = a_low / a_high shift with the spectrum: at 100 kV Dy2O3 reads as
#: organic, at 160 kV as a metal (physics.md, "the trap"), and over the simulator's 100-160 kV the
#: a_low of one material at a fixed a_high spreads more than the gap between Dy2O3 and the CeO2, La2O3
#: or nickel powders it must be told from. Every scan records its kV, so the network may condition on it.
#: Padding is 0, below any real plane value, so the network reads the plane's maximum.
KVP_CHANNELS = (*INPUT_CHANNELS, "kvp")
INPUT_LAYOUTS = (INPUT_CHANNELS, KVP_CHANNELS)
KVP_PLANE_UNIT = 100.0
DENOISE_METHODS = ("none", "bilateral", "median")
# Above 1 only by noise and flat-field drift; anything far above means a broken air reference.
TRANSMISSION_CEILING = 1.5


def transmission(signals: np.ndarray, air: np.ndarray, dark: np.ndarray, floor: float = 1e-4) -> np.ndarray:
    """Dark- and air-corrected transmission T = (signals - dark) / (air - dark).

    signals : (C, L, P) raw detector values (uint16 or float); air, dark : (C, P) references.
    Returns (C, L, P) float32 in [floor, 1.5].
    """
    _check_array("signals", signals, 3, "(C, L, P)")
    c, _, n_pix = signals.shape
    for name, ref in (("air", air), ("dark", dark)):
        _check_array(name, ref, 2, "(C, P)")
        if ref.shape != (c, n_pix):
            raise ValueError(f"{name} must have shape (C, P) = {(c, n_pix)}, got {ref.shape}")
    if not np.all(air > dark):
        raise ValueError(f"air must exceed dark in every pixel; {int(np.sum(air <= dark))} pixels do not")
    floor = _check_positive("floor", floor)
    if floor >= 1:
        raise ValueError(f"floor must be in (0, 1), got {floor}")
    dark32 = dark.astype(np.float32)[:, None, :]
    gain = (1.0 / (air.astype(np.float64) - dark)).astype(np.float32)[:, None, :]
    t = signals.astype(np.float32)
    t -= dark32
    t *= gain
    # Noise (quantum, electronic, flat-field drift) pushes T of air slightly above 1 and of opaque
    # regions below 0. Clip: the floor keeps -ln T finite, the ceiling bounds what a bad pixel can do.
    return np.clip(t, floor, TRANSMISSION_CEILING, out=t)


def log_attenuation(t: np.ndarray) -> np.ndarray:
    """Attenuation a = -ln T. t : (C, L, P) transmission > 0. Returns (C, L, P) float32."""
    _check_array("t", t, 3, "(C, L, P)")
    if float(t.min()) <= 0:
        raise ValueError(f"t must be a transmission > 0 (clip it first), got minimum {float(t.min())}")
    t32 = np.ascontiguousarray(t, dtype=np.float32)
    # cv2.log is 5x faster than np.log on float32 here, with relative error ~1e-6; it needs 2-D input.
    a = cv2.log(t32.reshape(-1, t32.shape[-1])).reshape(t32.shape)
    return np.negative(a, out=a)


def impenetrable_mask(a_high: np.ndarray, threshold: float = 5.0) -> np.ndarray:
    """Where too few photons remain to read the material: a_high > threshold. (L, P) -> (L, P) bool.

    a_high : attenuation of the high-energy channel (the single channel of a single-energy scan),
    the more penetrating one, so where it gives up the low channel has too.
    Why ~5 (T < 0.7 %): the scatter floor is 1e-3..1e-2 of the removed air signal, so behind a large
    opaque region a plateaus at 4.6..6.9 whatever lies there; and ~1e4 incident photons per 0.8 mm
    pixel and line (physics.md) leave ~60 at T = 0.7 %, i.e. ~13 % noise in T. The 14-16-bit ADC is not
    the limit: air sits ~1.2e4-5e4 ADU above dark, so T = 0.7 % is still ~80-340 ADU. For a scanner at
    the top of the scatter range (opaque plateau near 4.6), lower the threshold.
    """
    _check_array("a_high", a_high, 2, "(L, P)")
    threshold = _check_positive("threshold", threshold)
    return a_high > threshold


def denoise(
    a: np.ndarray, method: str = "none", size: int = 5, sigma_attenuation: float = 0.1, sigma_px: float = 1.5
) -> np.ndarray:
    """Optional edge-preserving denoising of attenuation, per channel. (C, H, W) -> (C, H, W) float32.

    method : "none" (a float32 copy), "bilateral" (cv2.bilateralFilter on float32: neighbourhood
    diameter ``size`` px, range sigma ``sigma_attenuation`` in attenuation units, spatial sigma
    ``sigma_px``), or "median" (cv2.medianBlur, ``size`` 3 or 5). OpenCV medians float32 directly
    only up to 5 px; larger apertures need 8-bit input, whose 0.04 steps over a = 0..10 would cost
    more precision than the denoising gains, so they are not offered.
    """
    _check_array("a", a, 3, "(C, H, W)")
    if method not in DENOISE_METHODS:
        raise ValueError(f"method must be one of {DENOISE_METHODS}, got {method!r}")
    a32 = np.ascontiguousarray(a, dtype=np.float32)
    if method == "none":
        return a32.copy()
    if method == "median":
        if size not in (3, 5):
            raise ValueError(f"size must be 3 or 5 for the float32 median, got {size!r}")
        return np.stack([cv2.medianBlur(ch, size) for ch in a32])
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"size must be a positive integer diameter in px, got {size!r}")
    s_a, s_px = _check_positive("sigma_attenuation", sigma_attenuation), _check_positive("sigma_px", sigma_px)
    return np.stack([cv2.bilateralFilter(ch, size, s_a, s_px) for ch in a32])


def model_input(
    attenuation: np.ndarray,
    impenetrable: np.ndarray,
    scale: tuple[float, float],
    clip: float,
    kvp: float | None = None,
) -> np.ndarray:
    """Assemble the model input (3, H, W) float32 in :data:`INPUT_CHANNELS` order, or with ``kvp``
    (the tube voltage in kV) (4, H, W) in :data:`KVP_CHANNELS` order.

    attenuation : (C, H, W), C = 2 (low, high) or 1 (single energy); impenetrable : (H, W) bool.
    Each attenuation is clipped to [-clip, clip] and divided by its ``scale`` (fixed constants, e.g.
    a = 4, T = 1.8 %, maps to 1). The mask becomes 0/1. Single-energy scans fill BOTH attenuation
    channels with their one channel (a_low = a_high), so one network serves both kinds of scanner;
    the model then sees R = a_low / a_high = 1 exactly, which dual-energy scans practically never show
    (R > 1 for matter), so it can tell the two apart without an extra flag channel.
    """
    _check_array("attenuation", attenuation, 3, "(C, H, W)")
    c, h, w = attenuation.shape
    if c not in (1, 2):
        raise ValueError(f"attenuation must have 1 or 2 channels (C, H, W), got shape {attenuation.shape}")
    if not isinstance(impenetrable, np.ndarray) or impenetrable.shape != (h, w):
        raise ValueError(
            f"impenetrable must have shape (H, W) = {(h, w)}, got {getattr(impenetrable, 'shape', None)}"
        )
    clip = _check_positive("clip", clip)
    if kvp is not None:
        kvp = _check_positive("kvp", kvp)
    out = np.empty((3 if kvp is None else 4, h, w), np.float32)
    for i, ch in enumerate((0, c - 1)):
        np.clip(attenuation[ch], -clip, clip, out=out[i])
        out[i] *= np.float32(1.0 / _check_positive(f"scale[{i}]", scale[i]))
    out[2] = impenetrable
    if kvp is not None:
        out[3] = kvp / KVP_PLANE_UNIT
    return out


@dataclass(frozen=True)
class PreprocessConfig:
    """Every preprocessing parameter; it travels in the model card and the ONNX metadata.

    target_mm : model pixel size in mm, the same along and across the belt.
    tile, overlap : square tile size and minimum overlap in model pixels (overlap <= tile / 2).
    transmission_floor : lowest transmission kept (caps a at -ln floor = 9.2 by default).
    impenetrable_attenuation : a_high above which a pixel is marked impenetrable.
    denoise, denoise_size, denoise_sigma_attenuation, denoise_sigma_px : see :func:`denoise`.
    attenuation_scale : divisors of (a_low, a_high); attenuation_clip : |a| cap before dividing.
    channels : model input layout, :data:`INPUT_CHANNELS` or :data:`KVP_CHANNELS` (one of
    :data:`INPUT_LAYOUTS`), recorded so a card written for another layout fails loudly.
    """

    target_mm: float = 2.0
    tile: int = 256
    overlap: int = 32
    transmission_floor: float = 1e-4
    impenetrable_attenuation: float = 5.0
    denoise: str = "none"
    denoise_size: int = 5
    denoise_sigma_attenuation: float = 0.1
    denoise_sigma_px: float = 1.5
    attenuation_scale: tuple[float, float] = (4.0, 4.0)
    attenuation_clip: float = 10.0
    channels: tuple[str, ...] = INPUT_CHANNELS

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _typed(f.name, getattr(self, f.name), f.default))
        for name in (
            "target_mm",
            "impenetrable_attenuation",
            "denoise_sigma_attenuation",
            "denoise_sigma_px",
        ):
            _check_positive(f"PreprocessConfig.{name}", getattr(self, name))
        for i, s in enumerate(self.attenuation_scale):
            _check_positive(f"PreprocessConfig.attenuation_scale[{i}]", s)
        _check_positive("PreprocessConfig.attenuation_clip", self.attenuation_clip)
        if self.tile < 8 or not 0 <= self.overlap <= self.tile // 2:
            raise ValueError(
                f"PreprocessConfig.tile must be >= 8 and overlap in [0, tile / 2], got tile={self.tile}, "
                f"overlap={self.overlap}"
            )
        if not 0 < self.transmission_floor < 1:
            raise ValueError(
                f"PreprocessConfig.transmission_floor must be in (0, 1), got {self.transmission_floor}"
            )
        if self.impenetrable_attenuation >= -np.log(self.transmission_floor):
            raise ValueError(
                f"PreprocessConfig.impenetrable_attenuation must be below -ln(transmission_floor) = "
                f"{-np.log(self.transmission_floor):.2f}, or nothing can ever be marked; "
                f"got {self.impenetrable_attenuation}"
            )
        if self.denoise not in DENOISE_METHODS:
            raise ValueError(
                f"PreprocessConfig.denoise must be one of {DENOISE_METHODS}, got {self.denoise!r}"
            )
        if self.denoise == "median" and self.denoise_size not in (3, 5):
            raise ValueError(
                f"PreprocessConfig.denoise_size must be 3 or 5 for median, got {self.denoise_size}"
            )
        if self.channels not in INPUT_LAYOUTS:
            raise ValueError(
                f"PreprocessConfig.channels must be one of {list(INPUT_LAYOUTS)}, got {self.channels}"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreprocessConfig:
        """Inverse of :meth:`to_dict`. Strict: every key must be present, known and of the right type.

        A missing key is an error rather than a default: a card that lacks a parameter would
        otherwise be read with today's default, which need not be what the model was trained with.
        """
        if not isinstance(d, dict):
            raise ValueError(f"PreprocessConfig.from_dict needs a dict, got {type(d).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"unknown PreprocessConfig key(s) {unknown}; expected {known}")
        missing = [k for k in known if k not in d]
        if missing:
            raise ValueError(f"missing PreprocessConfig key(s) {missing}")
        return cls(**d)


def _typed(name: str, v: Any, default: Any) -> Any:
    """``v`` as the type of ``default`` (int -> float, list -> tuple), or a ValueError naming ``name``."""
    where = f"PreprocessConfig.{name}"
    if name == "channels":  # layouts differ in length; __post_init__ checks it is one of INPUT_LAYOUTS
        if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
            raise ValueError(f"{where} must be a list of channel names, got {v!r}")
        return tuple(v)
    if isinstance(default, tuple):
        if not isinstance(v, (list, tuple)) or len(v) != len(default):
            raise ValueError(f"{where} must be a list of {len(default)} values, got {v!r}")
        return tuple(_typed(f"{name}[{i}]", x, default[i]) for i, x in enumerate(v))
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise ValueError(f"{where} must be {type(default).__name__}, got {type(v).__name__} {v!r}")
    if isinstance(default, float) and isinstance(v, (int, float)):
        return float(v)
    if type(v) is not type(default):
        raise ValueError(f"{where} must be {type(default).__name__}, got {type(v).__name__} {v!r}")
    return v


@dataclass(frozen=True, eq=False)
class Preprocessed:
    """One scan ready for the model.

    image : (K, H, W) float32 model input, channels ``PreprocessConfig.channels``, at ``target_mm``.
    attenuation : (C, H, W) float32 un-normalised a = -ln T per scan channel (C = 2 or 1), at target_mm.
    impenetrable : (H, W) bool.
    scale_lines, scale_pixels : model pixels per scan pixel (H / L, W / P).
    scan_shape : (L, P) of the scan; line_mm, pixel_mm : the scan's pitch, for boxes in mm.
    """

    image: np.ndarray
    attenuation: np.ndarray
    impenetrable: np.ndarray
    scale_lines: float
    scale_pixels: float
    scan_shape: tuple[int, int]
    line_mm: float
    pixel_mm: float

    @property
    def scales(self) -> tuple[float, float]:
        return self.scale_lines, self.scale_pixels


class Preprocessor:
    """Holds a :class:`PreprocessConfig` and applies the pure functions above in pipeline order."""

    def __init__(self, config: PreprocessConfig | None = None) -> None:
        config = PreprocessConfig() if config is None else config
        if not isinstance(config, PreprocessConfig):
            raise ValueError(f"config must be a PreprocessConfig, got {type(config).__name__}")
        self.config = config

    def __repr__(self) -> str:
        return f"Preprocessor({self.config!r})"

    def __call__(self, scan: Scan) -> Preprocessed:
        if not isinstance(scan, Scan):
            raise ValueError(f"scan must be a parcelscan Scan, got {type(scan).__name__}")
        validate_scan(scan)  # again: its arrays may have been changed in place since it was made
        cfg = self.config
        t = transmission(scan.signals, scan.air, scan.dark, cfg.transmission_floor)
        # The Scan checked its pitches and transmission() returns finite values: skip resample()'s checks.
        t, scale_lines, scale_pixels = _resample(t, scan.line_mm, scan.pixel_mm, cfg.target_mm)
        a = log_attenuation(t)
        if cfg.denoise != "none":
            a = denoise(a, cfg.denoise, cfg.denoise_size, cfg.denoise_sigma_attenuation, cfg.denoise_sigma_px)
        # Channels are ("low", "high") or ("single",): the last is the most penetrating either way.
        mask = impenetrable_mask(a[-1], cfg.impenetrable_attenuation)
        kvp = scan.kvp if "kvp" in cfg.channels else None
        image = model_input(a, mask, cfg.attenuation_scale, cfg.attenuation_clip, kvp)
        return Preprocessed(
            image,
            a,
            mask,
            scale_lines,
            scale_pixels,
            scan.shape[1:],
            float(scan.line_mm),
            float(scan.pixel_mm),
        )

    def tiles(self, pre: Preprocessed) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """Model-input tiles (N, K, tile, tile) float32 and their (y, x) origins; padding is air (0)."""
        return tiles(pre.image, self.config.tile, self.config.overlap, 0.0)

    def stitch(self, maps: np.ndarray, origins: list[tuple[int, int]], pre: Preprocessed) -> np.ndarray:
        """Blend per-tile model outputs (N, K, tile, tile) into (K, H, W) at model resolution."""
        return stitch(maps, origins, pre.image.shape[1:], self.config.overlap)
