"""Render a scene into a scan: per-material path-length maps, then polychromatic signals.

Each item's analytic chord map (cm) times its density becomes areal density (g/cm^2) in the map
of its material; transmission then follows Beer-Lambert over the tube spectrum for every ray,
S_c = sum_E N0(E) w_c(E) exp(-sum_m mu_m(E) A_m), and the detector model adds noise and
artefacts. Concealed masses are rendered into the same maps, at the path-length level (never by
log-adding), and their own maps give the ground-truth mask and the ideal-observer d'.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..physics.attenuation import edge_energy_kev
from ..physics.detector import digitise
from ..physics.materials import Material
from ..physics.observer import dprime, dprime_discrimination
from ..scan import Scan
from .geometry import ScanGeometry, chord_map
from .scanner import ScannerConfig
from .scene import Scene

__all__ = ["MassTruth", "Rendered", "render_scene", "scan_geometry"]

# Below this high-energy attenuation a ray counts as air in the class map.
_AIR_ATTENUATION = 0.02
_CLASS_ENERGY_KEV = 70.0


@dataclass
class MassTruth:
    """Ground truth of one concealed mass. bbox_px = [x0, y0, x1, y1] (pixel, line; x1/y1 exclusive).

    dprime : ideal-observer d' for detecting the mass against the same rays without it (any-contrast,
    variance-stabilised form); dprime_log : physics.md's small-contrast two-channel form (see
    :func:`parcelscan.physics.observer.dprime`).
    innocent_material : what the innocent carrier could hold there (None: it should be hollow);
    dprime_discrimination : d' for telling the mass from that material in any amount on the same
    rays (:func:`parcelscan.physics.observer.dprime_discrimination`); equal to ``dprime`` when
    there is no innocent material.
    """

    material: str
    mass_g: float
    concealment: str
    carrier: str
    form: str
    bbox_px: list[int]
    n_pixels: int
    dprime: float
    dprime_log: float
    innocent_material: str | None = None
    dprime_discrimination: float | None = None

    def to_dict(self) -> dict:
        return {
            **self.__dict__,
            "mass_g": round(self.mass_g, 2),
            "dprime": round(self.dprime, 2),
            "dprime_log": round(self.dprime_log, 2),
            "dprime_discrimination": round(self.dprime_discrimination, 2),
        }

    def __post_init__(self) -> None:
        if self.dprime_discrimination is None:
            self.dprime_discrimination = self.dprime


@dataclass
class Rendered:
    """A rendered scan with its ground truth.

    mask : (L, P) uint8, 0 = no concealed mass, k = the k-th entry of ``masses`` (1-based).
    class_map : (L, P) uint8 :class:`MaterialClass` of the material dominating each ray.
    """

    scan: Scan
    mask: np.ndarray
    class_map: np.ndarray
    masses: list[MassTruth]


def scan_geometry(scanner: ScannerConfig, length_cm: float) -> ScanGeometry:
    """The geometry that scans ``length_cm`` of belt with this scanner."""
    return ScanGeometry(
        pixel_mm=scanner.pixel_mm,
        line_mm=scanner.line_mm,
        n_pixels=scanner.n_pixels,
        n_lines=int(np.ceil(length_cm * 10 / scanner.line_mm)),
        source_below_belt_cm=scanner.source_below_belt_cm,
        detector_height_cm=scanner.detector_height_cm,
    )


def _texture(
    shape: tuple[int, int], amplitude: float, feature_px: float, rng: np.random.Generator
) -> np.ndarray:
    """Smooth multiplicative texture 1 + amplitude * n, n ~ unit-variance noise of the given feature size."""
    h, w = shape
    gh, gw = max(int(h / feature_px) + 2, 2), max(int(w / feature_px) + 2, 2)
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    field /= max(float(field.std()), 1e-6)
    return np.clip(1 + amplitude * field, 0.2, 3.0)


def _material_index(scene: Scene) -> tuple[list[Material], list[int]]:
    mats: dict[str, Material] = {}
    for item in scene.items:
        mats.setdefault(item.material.name, item.material)
    for m in scene.masses:
        if m.benign_material is not None:
            mats.setdefault(m.benign_material.name, m.benign_material)
    names = list(mats)
    return list(mats.values()), [names.index(it.material.name) for it in scene.items]


def render_scene(
    scene: Scene, scanner: ScannerConfig, rng: np.random.Generator, noise: bool = True
) -> Rendered:
    """Render ``scene`` with ``scanner`` into a raw :class:`Scan` plus ground truth."""
    scanner = scanner.calibrated()
    geom = scan_geometry(scanner, scene.length_cm)
    materials, mat_of_item = _material_index(scene)
    model = scanner.model.merged(_edges(materials))
    areal = np.zeros((len(materials), geom.n_lines, geom.n_pixels), np.float32)
    covered = np.zeros((geom.n_lines, geom.n_pixels), bool)  # rays that cross anything
    in_mass = {i: k for k, m in enumerate(scene.masses) for i in m.items}
    # (mass index, material index) -> areal density that the mass itself contributes
    mass_areal: dict[tuple[int, int], np.ndarray] = {}
    for i, item in enumerate(scene.items):
        cm = chord_map(item.shape, geom)
        if cm.chords.size == 0:
            continue
        a = cm.chords * np.float32(item.density_g_cm3)
        if item.texture is not None:
            amp, size_cm = item.texture
            a = a * _texture(a.shape, amp, size_cm * 10 / scanner.pixel_mm, rng)
        areal[mat_of_item[i], cm.lines, cm.pixels] += a
        covered[cm.lines, cm.pixels] |= a > 0
        if i in in_mass:
            key = (in_mass[i], mat_of_item[i])
            if key not in mass_areal:
                mass_areal[key] = np.zeros((geom.n_lines, geom.n_pixels), np.float32)
            mass_areal[key][cm.lines, cm.pixels] += a

    mu = np.stack([m.mu_rho(model.energies_kev) for m in materials]) if materials else np.zeros((0, 1))
    flat = areal.reshape(len(materials), -1)
    hit = np.flatnonzero(covered)
    c = len(model.air_signal)
    signal = np.empty((c, flat.shape[1]))
    variance = np.empty((c, flat.shape[1]))
    signal[:] = model.air_signal[:, None]
    variance[:] = model.air_variance[:, None]
    if hit.size:
        signal[:, hit], variance[:, hit] = model.signals(flat[:, hit], mu)
    shape = (c, geom.n_lines, geom.n_pixels)
    raw, air, dark = digitise(
        signal.reshape(shape),
        variance.reshape(shape),
        model.air_signal,
        model.air_variance,
        scanner.detector,
        rng,
        noise=noise,
    )
    scan = Scan(
        raw,
        air,
        dark,
        scanner.detector.channels,
        scanner.pixel_mm,
        scanner.line_mm,
        scanner.kvp,
        metadata={"scanner": scanner.to_dict(), "simulated": True},
    )

    class_map = _class_map(areal, materials)
    mask = np.zeros((geom.n_lines, geom.n_pixels), np.uint8)
    truths = []
    for k, m in enumerate(scene.masses):
        own = {j: a for (kk, j), a in mass_areal.items() if kk == k}
        footprint = np.zeros(mask.shape, bool)
        for a in own.values():
            footprint |= a > 0
        mask[footprint & (mask == 0)] = k + 1
        truths.append(_mass_truth(m, footprint, own, areal, materials, mu, model))
    return Rendered(scan, mask, class_map, truths)


def _edges(materials: list[Material]) -> list[float]:
    """Absorption edges (keV) of every element in the scene's materials."""
    return sorted(
        {
            edge_energy_kev(el, name)
            for m in materials
            for el in m.composition
            for name in ("K", "L1", "L2", "L3")
            if np.isfinite(edge_energy_kev(el, name))
        }
    )


def _class_map(areal: np.ndarray, materials: list[Material]) -> np.ndarray:
    """Class of the material class that attenuates each ray most at 70 keV (AIR if nothing does)."""
    if not materials:
        return np.zeros(areal.shape[1:], np.uint8)
    by_class: dict[int, np.ndarray] = {}
    for a, m in zip(areal, materials, strict=True):
        contrib = a * np.float32(m.mu_rho(_CLASS_ENERGY_KEV))
        cls = int(m.material_class)
        if cls in by_class:
            by_class[cls] += contrib
        else:
            by_class[cls] = contrib
    out = np.zeros(areal.shape[1:], np.uint8)
    best = np.full(areal.shape[1:], _AIR_ATTENUATION, np.float32)
    for cls, contrib in by_class.items():
        better = contrib > best
        out[better] = cls
        np.maximum(best, contrib, out=best)
    return out


def _mass_truth(mass, footprint, own, areal, materials, mu, model) -> MassTruth:
    """Label of one mass: bbox from its footprint, d' against the same rays without it."""
    lines, pixels = np.nonzero(footprint)
    if lines.size == 0:  # entirely outside the scanned window
        return MassTruth(
            mass.material, mass.mass_g, mass.concealment, mass.carrier, mass.form, [0, 0, 0, 0], 0, 0.0, 0.0
        )
    bbox = [int(pixels.min()), int(lines.min()), int(pixels.max()) + 1, int(lines.max()) + 1]
    with_obj = areal[:, lines, pixels].astype(np.float64)
    emptied = with_obj.copy()  # the rays with the mass taken out
    total_own = np.zeros(lines.size)
    for j, a in own.items():
        emptied[j] -= a[lines, pixels]
        total_own += a[lines, pixels]
    np.clip(emptied, 0, None, out=emptied)
    background = emptied
    if mass.benign_material is not None:
        names = [m.name for m in materials]
        background = emptied.copy()
        background[names.index(mass.benign_material.name)] += mass.benign_fraction * total_own
    detect, detect_log = dprime(model, background, with_obj, mu, form="both")
    innocent = mass.innocent_material
    discriminate = detect
    if innocent is not None:
        discriminate = min(
            detect,
            dprime_discrimination(
                model, emptied, with_obj, mu, total_own, innocent.mu_rho(model.energies_kev)
            )[0],
        )
    return MassTruth(
        mass.material,
        mass.mass_g,
        mass.concealment,
        mass.carrier,
        mass.form,
        bbox,
        int(lines.size),
        detect,
        detect_log,
        None if innocent is None else innocent.name,
        discriminate,
    )
