"""Ideal-observer detectability (the physical limit of detection), per ``shared/physics.md``.

For two energy-integrating channels,
    d'^2 = sum_rays sum_c (a_c(bg + obj) - a_c(bg))^2 / sigma_c^2,
    sigma_c^2 = (V_c + e_c^2) / S_c^2,
with a_c = -ln(S_c / S_c,air), V_c the compound-Poisson variance and e_c the read noise. The
sum runs over the rays (pixels x lines) that the object covers, so n = A / p^2 is implicit.
The contrast is evaluated in its variance-stabilised form (valid for any contrast, opaque
objects included), which equals the expression above for small contrast.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

__all__ = ["SpectralModel", "detection_probability", "dprime", "dprime_discrimination", "required_dprime"]


class SpectralModel:
    """Photons and detector weights of one scanner, ready to turn path lengths into signals.

    energies_kev : (E,) bins used; n0 : (E,) incident photons per pixel per line per bin;
    weights : (C, E) detector weights; e_noise_kev : (C,) read-noise sigma.
    """

    def __init__(
        self, energies_kev: np.ndarray, n0: np.ndarray, weights: np.ndarray, electronic_noise_photons: float
    ):
        keep = n0 * weights.sum(0) > 1e-9 * np.max(n0 * weights.sum(0))
        self.energies_kev = energies_kev[keep]
        self.n0 = n0[keep]
        self.weights = weights[:, keep]
        self.n0_w = self.n0 * self.weights
        self.n0_w2 = self.n0 * self.weights**2
        self.air_signal = self.n0_w.sum(1)
        self.air_variance = self.n0_w2.sum(1)
        self.e_noise_kev = electronic_noise_photons * self.air_variance / self.air_signal

    def merged(self, edges_kev: list[float] | np.ndarray, from_kev: float = 40.0) -> SpectralModel:
        """A cheaper model with pairs of 1 keV bins above ``from_kev`` merged into 2 keV bins.

        physics.md allows 2 keV bins except where a bin would straddle an absorption edge, so a
        pair is left alone when any of ``edges_kev`` (those of the materials in the scene) lies
        within it. Weights are summed; the merged bin sits at the pair's mean energy.
        """
        e = self.energies_kev
        edges = np.asarray(list(edges_kev), dtype=np.float64)
        groups: list[list[int]] = []
        i = 0
        while i < len(e):
            pair = i + 1 < len(e) and e[i] >= from_kev and np.isclose(e[i + 1] - e[i], 1.0)
            if pair and not np.any((edges > e[i] - 0.5) & (edges < e[i + 1] + 0.5)):
                groups.append([i, i + 1])
                i += 2
            else:
                groups.append([i])
                i += 1
        out = object.__new__(SpectralModel)
        out.energies_kev = np.array([e[g].mean() for g in groups])
        out.n0 = np.array([self.n0[g].sum() for g in groups])
        out.weights = np.stack([self.n0_w[:, g].sum(1) for g in groups], axis=1) / out.n0
        out.n0_w = np.stack([self.n0_w[:, g].sum(1) for g in groups], axis=1)
        out.n0_w2 = np.stack([self.n0_w2[:, g].sum(1) for g in groups], axis=1)
        out.air_signal, out.air_variance, out.e_noise_kev = (
            self.air_signal,
            self.air_variance,
            self.e_noise_kev,
        )
        return out

    def signals(self, areal_g_cm2: np.ndarray, mu_rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expected signal and quantum variance (C, N) for (M, N) areal densities and (M, E) mu/rho."""
        from .detector import expected_signals

        return expected_signals(np.atleast_2d(areal_g_cm2), mu_rho, self.n0_w, self.n0_w2)

    def attenuation(self, areal_g_cm2: np.ndarray, mu_rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log attenuation a_c and its noise variance sigma_c^2, each (C, N)."""
        s, v = self.signals(areal_g_cm2, mu_rho)
        s = np.maximum(s, 1e-30)
        a = -np.log(s / self.air_signal[:, None])
        return a, (v + self.e_noise_kev[:, None] ** 2) / s**2


def dprime(
    model: SpectralModel,
    background: np.ndarray,
    with_object: np.ndarray,
    mu_rho: np.ndarray,
    form: str = "stabilised",
) -> float | tuple[float, float]:
    """Ideal-observer d' of an object given per-ray areal densities without and with it.

    background, with_object : (M, N) areal densities (g/cm^2) on the N rays the object covers.
    mu_rho : (M, E) on ``model.energies_kev``.
    form : "both" returns (stabilised, log) from one evaluation of the signals;
        "stabilised" (default) evaluates each ray and channel as 2 |S_b - S_o| / (sigma_b + sigma_o),
        the variance-stabilised contrast that is valid for any contrast, opaque objects included
        (for Poisson counts it is 2 |sqrt(lambda_b) - sqrt(lambda_o)|; for small contrast it equals
        |a_o - a_b| / sigma_a). "log" is physics.md's two-channel formula with sigma_c taken at
        background plus object; it reproduces the worked case there, but goes to zero for an
        opaque object however visible.
    """
    s_bg, v_bg = model.signals(background, mu_rho)
    s_obj, v_obj = model.signals(with_object, mu_rho)
    e2 = model.e_noise_kev[:, None] ** 2
    if form not in ("stabilised", "log", "both"):
        raise ValueError(f"form must be 'stabilised', 'log' or 'both', got {form!r}")
    z = 2 * (s_bg - s_obj) / (np.sqrt(v_bg + e2) + np.sqrt(v_obj + e2))
    stabilised = float(np.sqrt(np.sum(z**2)))
    s_bg, s_obj = np.maximum(s_bg, 1e-30), np.maximum(s_obj, 1e-30)
    z = np.log(s_bg / s_obj) * s_obj / np.sqrt(v_obj + e2)
    log = float(np.sqrt(np.sum(z**2)))
    return {"stabilised": stabilised, "log": log, "both": (stabilised, log)}[form]


def dprime_discrimination(
    model: SpectralModel,
    background: np.ndarray,
    with_object: np.ndarray,
    mu_rho: np.ndarray,
    alternative_areal: np.ndarray,
    alternative_mu_rho: np.ndarray,
    max_search_rays: int = 4096,
) -> tuple[float, float]:
    """Ideal-observer d' for telling an object from an innocent alternative of unknown amount.

    physics.md's "discriminating material A from B of unknown thickness": the alternative puts
    material B (``alternative_mu_rho``, (E,)) on the same rays as ``k * alternative_areal`` ((N,)
    g/cm^2, usually the object's own areal density: the same shape filled with B), on top of
    ``background``, with k >= 0 unknown (a thicker tile, a jar packed denser). d' is the smallest
    variance-stabilised d' (as :func:`dprime`) over k; k = 0, nothing there, gives the detection
    d', so the result never exceeds it. An opaque object against an opaque alternative gives ~0.

    k is searched on a log grid (1e-3 to 1e3) and refined by golden section on at most
    ``max_search_rays`` evenly spaced rays; d' is then evaluated on every ray at that k.
    Returns (d', k).
    """
    background = np.atleast_2d(np.asarray(background, np.float64))
    with_object = np.atleast_2d(np.asarray(with_object, np.float64))
    alternative_areal = np.asarray(alternative_areal, np.float64).ravel()
    alternative_mu_rho = np.asarray(alternative_mu_rho, np.float64).ravel()
    n = background.shape[1]
    if with_object.shape != background.shape or alternative_areal.shape != (n,):
        raise ValueError(
            f"background {background.shape}, with_object {with_object.shape} and alternative_areal "
            f"{alternative_areal.shape} must cover the same {n} rays"
        )
    if alternative_mu_rho.shape != (len(model.energies_kev),):
        raise ValueError(
            f"alternative_mu_rho must have one value per energy bin ({len(model.energies_kev)}), "
            f"got shape {alternative_mu_rho.shape}"
        )
    if n == 0:
        return 0.0, 0.0
    mu_all = np.vstack([mu_rho, alternative_mu_rho[None]])
    e2 = model.e_noise_kev[:, None] ** 2

    def sq(rays: np.ndarray | slice, s_obj: np.ndarray, sd_obj: np.ndarray, k: float) -> float:
        alt = np.vstack([background[:, rays], k * alternative_areal[None, rays]])
        s_alt, v_alt = model.signals(alt, mu_all)
        z = 2 * (s_obj - s_alt) / (sd_obj + np.sqrt(v_alt + e2))
        return float(np.sum(z**2))

    def object_signals(rays):
        s, v = model.signals(with_object[:, rays], mu_rho)
        return s, np.sqrt(v + e2)

    rays = np.unique(np.linspace(0, n - 1, min(n, max_search_rays)).round().astype(int))
    s_sub, sd_sub = object_signals(rays)
    grid = np.logspace(-3, 3, 61)
    costs = [sq(rays, s_sub, sd_sub, k) for k in grid]
    i = int(np.argmin(costs))
    lo, hi = np.log(grid[max(i - 1, 0)]), np.log(grid[min(i + 1, len(grid) - 1)])
    golden = (np.sqrt(5) - 1) / 2
    a, b = hi - golden * (hi - lo), lo + golden * (hi - lo)
    fa, fb = sq(rays, s_sub, sd_sub, np.exp(a)), sq(rays, s_sub, sd_sub, np.exp(b))
    for _ in range(24):  # the bracket shrinks to 1e-5 of its log width
        # golden section: the kept inner point becomes the other inner point of the smaller bracket
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - golden * (hi - lo)
            fa = sq(rays, s_sub, sd_sub, np.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + golden * (hi - lo)
            fb = sq(rays, s_sub, sd_sub, np.exp(b))
    best = float(np.exp((lo + hi) / 2))
    s_all, sd_all = object_signals(slice(None))
    at_best = sq(slice(None), s_all, sd_all, best)
    nothing = sq(slice(None), s_all, sd_all, 0.0)
    if nothing <= at_best:
        return float(np.sqrt(nothing)), 0.0
    return float(np.sqrt(at_best)), best


def required_dprime(locations: int = 1000, false_alarm: float = 0.01, p_detect: float = 0.9) -> float:
    """d' needed to find a target among M locations: z(1 - alpha/M) + z(Pd) (5.55 by default)."""
    norm = NormalDist()  # the stdlib quantile: scipy.stats alone takes a second to import
    return float(norm.inv_cdf(1 - false_alarm / locations) + norm.inv_cdf(p_detect))


def detection_probability(dprime: float, locations: int = 1000, false_alarm: float = 0.01) -> float:
    """Probability that the ideal observer finds a target of this d' among ``locations`` places at
    a ``false_alarm`` rate per parcel: Phi(d' - z(1 - alpha/M)); 0.9 at :func:`required_dprime`."""
    norm = NormalDist()
    return float(norm.cdf(dprime - norm.inv_cdf(1 - false_alarm / locations)))
