"""Energy-integrating line detectors: dual-energy sandwich and single-energy, and their artefacts.

Sandwich detector (physics.md): front thin scintillator -> copper filter -> thick rear scintillator,
    w_L(E) = E (1 - exp(-mu_F rho_F t_F))
    w_H(E) = E exp(-mu_F rho_F t_F) exp(-mu_Cu rho_Cu t_Cu) (1 - exp(-mu_R rho_R t_R)).
A channel records S_c = sum_E N0(E) T(E) w_c(E) (keV deposited) with compound-Poisson variance
V_c = sum_E N0(E) T(E) w_c(E)^2. :func:`digitise` turns expected signals into raw uint16 values,
adding, in physical order, scatter, quantum noise, layer offset, afterglow, crosstalk, pixel gains
(with a flat-field residual between calibration and scan), electronic noise and the ADC.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .attenuation import ENERGIES_KEV
from .materials import get_material

__all__ = ["DetectorConfig", "channel_weights", "digitise", "electronic_noise_kev", "expected_signals"]

_SCINTILLATORS = ("CsI", "GOS")


@dataclass(frozen=True)
class DetectorConfig:
    """Detector stack and electronics.

    kind : "dual" (sandwich) or "single".  Thicknesses in mm. For "single" only ``rear_*`` is used
    (one thick scintillator). electronic_noise_photons : read noise in photon equivalents at the mean
    detected air energy. flat_field_residual : relative rms gain drift between calibration and scan.
    crosstalk_px : Gaussian sigma across pixels. afterglow : fraction of a line's signal that
    appears in the next line. layer_offset_px : sub-pixel shift of the rear layer across the belt.
    scatter_fraction, scatter_sigma_px : scatter floor, a fraction of a wide blur of (air - signal).
    """

    kind: str = "dual"
    front_material: str = "CsI"
    front_mm: float = 0.5
    filter_cu_mm: float = 0.5
    rear_material: str = "CsI"
    rear_mm: float = 4.0
    electronic_noise_photons: float = 3.0
    adc_bits: int = 16
    adc_offset: float = 1000.0
    air_fill: float = 0.8
    pixel_gain_rms: float = 0.03
    flat_field_residual: float = 0.002
    crosstalk_px: float = 0.4
    afterglow: float = 0.01
    layer_offset_px: float = 0.0
    scatter_fraction: float = 0.003
    scatter_sigma_px: float = 25.0

    def __post_init__(self) -> None:
        def check(name: str, lo: float, hi: float) -> None:
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not np.isfinite(v) or not lo <= v <= hi:
                raise ValueError(f"DetectorConfig.{name} must be in [{lo}, {hi}], got {v!r}")

        if self.kind not in ("dual", "single"):
            raise ValueError(f"DetectorConfig.kind must be 'dual' or 'single', got {self.kind!r}")
        for name in ("front_material", "rear_material"):
            if getattr(self, name) not in _SCINTILLATORS:
                raise ValueError(
                    f"DetectorConfig.{name} must be one of {_SCINTILLATORS}, got {getattr(self, name)!r}"
                )
        check("front_mm", 0.05, 3.0)
        check("filter_cu_mm", 0.0, 3.0)
        check("rear_mm", 0.5, 20.0)
        check("electronic_noise_photons", 0.0, 100.0)
        check("adc_bits", 12, 16)
        check("air_fill", 0.1, 0.98)
        check("pixel_gain_rms", 0.0, 0.2)
        check("flat_field_residual", 0.0, 0.05)
        check("crosstalk_px", 0.0, 3.0)
        check("afterglow", 0.0, 0.2)
        check("layer_offset_px", -1.0, 1.0)
        check("scatter_fraction", 0.0, 0.1)
        check("scatter_sigma_px", 1.0, 500.0)
        if not 0 <= self.adc_offset < 2**self.adc_bits * (1 - self.air_fill):
            raise ValueError(
                f"DetectorConfig.adc_offset {self.adc_offset} leaves no room for the air signal "
                f"at air_fill {self.air_fill} in {self.adc_bits} bits"
            )

    @property
    def channels(self) -> tuple[str, ...]:
        return ("low", "high") if self.kind == "dual" else ("single",)

    def to_dict(self) -> dict:
        return asdict(self)


def _absorbed(material: str, mm: float, energies: np.ndarray) -> np.ndarray:
    m = get_material(material)
    return 1.0 - np.exp(-m.mu_rho(energies) * m.density_g_cm3 * mm / 10)


def channel_weights(detector: DetectorConfig, energies_kev: np.ndarray | None = None) -> np.ndarray:
    """Energy-integrating weights w_c(E) (keV deposited per incident photon), shape (C, E)."""
    e = ENERGIES_KEV if energies_kev is None else np.asarray(energies_kev, dtype=np.float64)
    if detector.kind == "single":
        return (e * _absorbed(detector.rear_material, detector.rear_mm, e))[None]
    front = _absorbed(detector.front_material, detector.front_mm, e)
    cu = get_material("Cu")
    through_cu = np.exp(-cu.mu_rho(e) * cu.density_g_cm3 * detector.filter_cu_mm / 10)
    rear = _absorbed(detector.rear_material, detector.rear_mm, e)
    return np.stack([e * front, e * (1 - front) * through_cu * rear])


def expected_signals(
    areal_g_cm2: np.ndarray, mu_rho: np.ndarray, n0_w: np.ndarray, n0_w2: np.ndarray, chunk: int = 65536
) -> tuple[np.ndarray, np.ndarray]:
    """Polychromatic Beer-Lambert signals and their quantum variance.

    areal_g_cm2 : (M, N) areal density of each material along each of N rays.
    mu_rho : (M, E) mass-attenuation coefficients (cm^2/g).
    n0_w, n0_w2 : (C, E) incident photons per bin times w_c and times w_c^2.
    Returns S, V : (C, N) float64 expected signal and variance (keV, keV^2).
    """
    c = n0_w.shape[0]
    n = areal_g_cm2.shape[1]
    s = np.empty((c, n))
    v = np.empty((c, n))
    mu32 = mu_rho.astype(np.float32)
    # float32 throughout: the exponentials dominate the cost, and 1e-7 relative error is far
    # below the quantum noise of any ray.
    w = np.concatenate([n0_w, n0_w2]).T.astype(np.float32)  # (E, 2C)
    areal32 = areal_g_cm2.astype(np.float32, copy=False)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        t = areal32[:, start:stop].T @ mu32
        # exp(-80) ~ 2e-35 is zero for any detector; larger exponents would give float32
        # denormals, which make the exponential and the next matmul ten times slower.
        np.minimum(t, 80.0, out=t)
        np.negative(t, out=t)
        np.exp(t, out=t)
        out = t @ w
        s[:, start:stop] = out[:, :c].T
        v[:, start:stop] = out[:, c:].T
    return s, v


def electronic_noise_kev(
    detector: DetectorConfig, air_signal: np.ndarray, air_variance: np.ndarray
) -> np.ndarray:
    """Read-noise sigma per channel (keV): ``electronic_noise_photons`` times the mean energy
    an air photon deposits (V_air / S_air, the energy-weighted mean of w_c)."""
    return detector.electronic_noise_photons * np.asarray(air_variance) / np.asarray(air_signal)


def _blur_pixels(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur across pixels (last axis) of a (L, P) float32 image."""
    if sigma <= 0:
        return x
    k = cv2.getGaussianKernel(2 * int(np.ceil(3 * sigma)) + 1, sigma).astype(np.float32)
    return cv2.sepFilter2D(x, -1, k, np.ones((1, 1), np.float32), borderType=cv2.BORDER_REFLECT)


def _wide_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a smooth quantity, computed on a grid coarsened by up to sigma / 4."""
    f = max(int(sigma / 4), 1)
    h, w = x.shape
    small = cv2.resize(x, (max(w // f, 1), max(h // f, 1)), interpolation=cv2.INTER_AREA)
    k = 2 * int(3 * sigma / f) + 1
    small = cv2.GaussianBlur(small, (k, k), sigma / f, borderType=cv2.BORDER_REPLICATE)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _shift_pixels(x: np.ndarray, shift: float) -> np.ndarray:
    """Resample a (L, P) image at pixel positions p + shift (linear, edge-clamped)."""
    if shift == 0:
        return x
    p = np.arange(x.shape[1], dtype=np.float32) + shift
    i0 = np.clip(np.floor(p).astype(int), 0, x.shape[1] - 1)
    i1 = np.clip(i0 + 1, 0, x.shape[1] - 1)
    f = (p - np.floor(p)).astype(np.float32)
    return x[:, i0] * (1 - f) + x[:, i1] * f


def digitise(
    signal: np.ndarray,
    variance: np.ndarray,
    air_signal: np.ndarray,
    air_variance: np.ndarray,
    detector: DetectorConfig,
    rng: np.random.Generator,
    noise: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn expected signals into what the detector electronics record.

    signal, variance : (C, L, P) expected deposited energy and its quantum variance (keV, keV^2).
    air_signal, air_variance : (C,) the same for an unobstructed ray.
    noise : False gives the noise-free mean (for analytic tests); artefacts stay.
    Returns raw (C, L, P) uint16, air (C, P) float32, dark (C, P) float32 references.
    """
    c, _, n_pix = signal.shape
    full_scale = 2**detector.adc_bits - 1
    gain = (detector.air_fill * full_scale - detector.adc_offset) / air_signal  # ADC units per keV
    pixel_gain = 1 + detector.pixel_gain_rms * rng.standard_normal((c, n_pix))
    drift = 1 + detector.flat_field_residual * rng.standard_normal((c, n_pix))
    dark = detector.adc_offset + 5.0 * rng.standard_normal((c, n_pix))
    e_noise = electronic_noise_kev(detector, air_signal, air_variance)
    raw = np.empty(signal.shape, dtype=np.uint16)
    for ch in range(c):
        s = signal[ch].astype(np.float32)
        var = variance[ch].astype(np.float32)
        # Scatter: a small fraction of the removed energy comes back as a wide, smooth floor.
        if detector.scatter_fraction > 0:
            scatter = detector.scatter_fraction * _wide_blur(
                np.float32(air_signal[ch]) - s, detector.scatter_sigma_px
            )
            var = var + scatter * np.float32(air_variance[ch] / air_signal[ch])
            s = s + scatter
        if ch == 1:
            s, var = _shift_pixels(s, detector.layer_offset_px), _shift_pixels(var, detector.layer_offset_px)
        if noise:
            s = s + np.sqrt(var) * rng.standard_normal(s.shape, dtype=np.float32)
        if detector.afterglow > 0:
            s[1:] = (1 - detector.afterglow) * s[1:] + detector.afterglow * s[:-1]
        s = _blur_pixels(s, detector.crosstalk_px)
        adc = dark[ch] + gain[ch] * pixel_gain[ch] * drift[ch] * s
        if noise:
            adc = adc + gain[ch] * e_noise[ch] * rng.standard_normal(adc.shape, dtype=np.float32)
        raw[ch] = np.clip(np.rint(adc), 0, full_scale).astype(np.uint16)
    # References average many lines, so their own noise is small but not zero.
    n_ref = 256
    air_ref = dark + gain[:, None] * pixel_gain * air_signal[:, None]
    if noise:
        sd = gain[:, None] * pixel_gain * np.sqrt(air_variance + e_noise**2)[:, None] / np.sqrt(n_ref)
        air_ref = air_ref + sd * rng.standard_normal((c, n_pix))
    return raw, air_ref.astype(np.float32), dark.astype(np.float32)
