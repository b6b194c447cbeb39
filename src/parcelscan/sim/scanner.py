"""Scanner configuration, its randomisation, and flux calibration by steel penetration.

A :class:`ScannerConfig` fixes tube, filtration, detector stack, pixel pitch, belt speed and
tunnel. The tube current is not typed in: :func:`calibrate_ma` chooses it so that the scanner's
advertised steel penetration is where the penetration test wire behind steel is just detectable
(ideal-observer d' = ``PENETRATION_DPRIME``), as physics.md prescribes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from functools import cached_property

import numpy as np

from ..physics.attenuation import ENERGIES_KEV
from ..physics.detector import DetectorConfig, channel_weights
from ..physics.materials import get_material
from ..physics.observer import SpectralModel, dprime
from ..physics.spectrum import tube_spectrum

__all__ = ["PENETRATION_DPRIME", "ScannerConfig", "calibrate_ma", "random_scanner", "wire_dprime"]

# Penetration test object: a 2 mm (AWG 12) copper wire, judged over a 20 mm length with the
# Rose criterion d' = 5 (what a trained operator needs to call a line "visible"). With it,
# 140 kVp / 32 mm calibrates to about 1 mA and 5e4 photons per 0.8 mm pixel per line.
WIRE_DIAMETER_CM = 0.2
WIRE_LENGTH_CM = 2.0
PENETRATION_DPRIME = 5.0


@dataclass(frozen=True)
class ScannerConfig:
    """One line-scan X-ray scanner. Lengths in the unit their name says.

    ma : tube current in mA; None means "calibrate from steel_penetration_mm" (see :meth:`calibrated`).
    """

    kvp: float = 140.0
    al_mm: float = 2.0
    pixel_mm: float = 0.8
    line_mm: float = 0.8
    belt_speed_m_s: float = 0.2
    source_below_belt_cm: float = 50.0
    tunnel_width_cm: float = 65.0
    tunnel_height_cm: float = 50.0
    steel_penetration_mm: float = 30.0
    belt_mm: float = 4.0
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    ma: float | None = None

    def __post_init__(self) -> None:
        limits = {
            "kvp": (60, 200),
            "al_mm": (0, 20),
            "pixel_mm": (0.2, 5),
            "line_mm": (0.2, 5),
            "belt_speed_m_s": (0.05, 2),
            "source_below_belt_cm": (10, 300),
            "tunnel_width_cm": (10, 300),
            "tunnel_height_cm": (10, 300),
            "steel_penetration_mm": (5, 80),
            "belt_mm": (0, 20),
        }
        for name, (lo, hi) in limits.items():
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not np.isfinite(v) or not lo <= v <= hi:
                raise ValueError(f"ScannerConfig.{name} must be in [{lo}, {hi}], got {v!r}")
        if self.ma is not None and (not np.isfinite(self.ma) or not 0.01 <= self.ma <= 50):
            raise ValueError(f"ScannerConfig.ma must be in [0.01, 50] mA or None, got {self.ma!r}")
        if not isinstance(self.detector, DetectorConfig):
            raise ValueError(
                f"ScannerConfig.detector must be a DetectorConfig, got {type(self.detector).__name__}"
            )

    @property
    def n_pixels(self) -> int:
        """Detector pixels needed to cover the tunnel width at the belt plane."""
        return int(np.ceil(self.tunnel_width_cm * 10 / self.pixel_mm))

    @property
    def detector_height_cm(self) -> float:
        return self.tunnel_height_cm + 10.0

    @property
    def line_time_s(self) -> float:
        return self.line_mm / 1000 / self.belt_speed_m_s

    def photons_per_ma(self) -> np.ndarray:
        """Incident photons per pixel per line per 1 keV bin at 1 mA, on ENERGIES_KEV.

        The rubber belt lies in every ray, air reference included, so it acts as beam filtration.
        """
        area_cm2 = self.pixel_mm / 10 * self.line_mm / 10  # pixel footprint at the belt plane
        distance_m = self.source_below_belt_cm / 100
        belt = get_material("rubber")
        belt_t = np.exp(-belt.mu_rho(ENERGIES_KEV) * belt.density_g_cm3 * self.belt_mm / 10)
        return tube_spectrum(self.kvp, self.al_mm) * belt_t * self.line_time_s * area_cm2 / distance_m**2

    def calibrated(self) -> ScannerConfig:
        """This configuration with ``ma`` set (calibrated from steel penetration if it was None)."""
        return self if self.ma is not None else replace(self, ma=calibrate_ma(self))

    @cached_property
    def model(self) -> SpectralModel:
        """Photon and detector model at the (calibrated) tube current."""
        ma = self.calibrated().ma
        return SpectralModel(
            ENERGIES_KEV,
            self.photons_per_ma() * ma,
            channel_weights(self.detector),
            self.detector.electronic_noise_photons,
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ma"] = self.calibrated().ma
        d["n_pixels"] = self.n_pixels
        return d

    @staticmethod
    def from_dict(d: dict) -> ScannerConfig:
        d = {k: v for k, v in d.items() if k != "n_pixels"}
        return ScannerConfig(**{**d, "detector": DetectorConfig(**d["detector"])})


def wire_dprime(config: ScannerConfig, steel_mm: float, ma: float) -> float:
    """Ideal-observer d' of the penetration test wire behind ``steel_mm`` of steel at ``ma``."""
    model = SpectralModel(
        ENERGIES_KEV,
        config.photons_per_ma() * ma,
        channel_weights(config.detector),
        config.detector.electronic_noise_photons,
    )
    steel, cu = get_material("steel"), get_material("Cu")
    mu = np.stack([steel.mu_rho(model.energies_kev), cu.mu_rho(model.energies_kev)])
    # The wire's cross-section spread evenly over the pixels it crosses (at least one).
    across = max(WIRE_DIAMETER_CM / (config.pixel_mm / 10), 1.0)
    wire_cm = np.pi * (WIRE_DIAMETER_CM / 2) ** 2 / (across * config.pixel_mm / 10)
    n_rays = across * max(WIRE_LENGTH_CM / (config.line_mm / 10), 1.0)
    bg = np.array([[steel_mm / 10 * steel.density_g_cm3], [0.0]])
    obj = bg + np.array([[0.0], [wire_cm * cu.density_g_cm3]])
    return dprime(model, bg, obj, mu) * np.sqrt(n_rays)


def calibrate_ma(config: ScannerConfig) -> float:
    """Tube current (mA) at which the test wire is just visible behind the rated steel thickness."""
    lo, hi = 1e-3, 1e3
    for _ in range(60):  # bisection in log space: d' rises monotonically with current
        mid = np.sqrt(lo * hi)
        if wire_dprime(config, config.steel_penetration_mm, mid) < PENETRATION_DPRIME:
            lo = mid
        else:
            hi = mid
    return float(np.sqrt(lo * hi))


MAX_TUBE_MA = 15.0


def random_scanner(rng: np.random.Generator, single_energy: bool = False) -> ScannerConfig:
    """A plausible scanner drawn from the ranges in physics.md (typical brochure values), calibrated.

    Draws are repeated until the calibrated tube current is plausible (<= MAX_TUBE_MA): a low-kVp
    tube cannot be rated at the top of the penetration range.
    """
    for _ in range(50):
        config = _draw_scanner(rng, single_energy)
        ma = calibrate_ma(config)
        if ma <= MAX_TUBE_MA:
            return replace(config, ma=ma)
    raise RuntimeError("could not draw a scanner with a plausible tube current")  # pragma: no cover


def _draw_scanner(rng: np.random.Generator, single_energy: bool) -> ScannerConfig:
    pixel = float(rng.choice([0.8, 1.0, 1.2, 1.6]))
    scint = str(rng.choice(["CsI", "GOS"]))
    detector = DetectorConfig(
        kind="single" if single_energy else "dual",
        front_material=scint,
        front_mm=float(rng.uniform(0.2, 0.6)),
        filter_cu_mm=float(rng.uniform(0.2, 1.0)),
        rear_material=scint,
        rear_mm=float(rng.uniform(2.0, 6.0)),
        electronic_noise_photons=float(rng.uniform(1.0, 5.0)),
        adc_bits=int(rng.choice([14, 16])),
        adc_offset=float(rng.uniform(200, 1500)) * 0.25,
        air_fill=float(rng.uniform(0.6, 0.9)),
        pixel_gain_rms=float(rng.uniform(0.01, 0.05)),
        flat_field_residual=float(rng.uniform(0.001, 0.005)),
        crosstalk_px=float(rng.uniform(0.3, 0.5)),
        afterglow=float(rng.uniform(0.005, 0.015)),
        layer_offset_px=float(rng.uniform(-0.3, 0.3)),
        scatter_fraction=float(10 ** rng.uniform(-3, -2)),
        scatter_sigma_px=float(rng.uniform(40, 120) / pixel),
    )
    width = float(rng.uniform(55, 105))
    kvp = float(rng.uniform(100, 160))
    # Rated penetration grows with tube voltage across the brochure range of 24-37 mm.
    penetration = float(np.clip(24 + 13 * (kvp - 100) / 60 + rng.uniform(-2, 2), 24, 37))
    return ScannerConfig(
        kvp=kvp,
        al_mm=float(rng.uniform(1.0, 4.0)),
        pixel_mm=pixel,
        line_mm=pixel * float(rng.uniform(0.9, 1.1)),
        belt_speed_m_s=float(rng.uniform(0.2, 0.5)),
        belt_mm=float(rng.uniform(2, 6)),
        source_below_belt_cm=float(rng.uniform(40, 60)),
        tunnel_width_cm=width,
        tunnel_height_cm=float(rng.uniform(40, min(width, 100))),
        steel_penetration_mm=penetration,
        detector=detector,
    )
