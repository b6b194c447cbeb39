"""Generate the elemental mass-attenuation table shipped inside the package.

Writes ``src/parcelscan/physics/data/mu_elements.npz`` from xraydb (Elam et al. tables,
total cross-section including coherent scattering) on a 1 keV grid from 10 to 200 keV for
Z = 1..94, together with atomic masses and the K and L absorption edges (energy and mu/rho
just below and just above each edge). At run time only NumPy reads the file; compounds and
mixtures are built from it with the mixture rule.

Usage::

    pip install xraydb
    python scripts/make_mu_table.py
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import xraydb

E_MIN_KEV, E_MAX_KEV, Z_MAX = 10, 200, 94
EDGES = ("K", "L1", "L2", "L3")
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src/parcelscan/physics/data/mu_elements.npz"


def build_table() -> dict[str, np.ndarray]:
    energies_kev = np.arange(E_MIN_KEV, E_MAX_KEV + 1, dtype=np.float64)
    symbols = [xraydb.atomic_symbol(z) for z in range(1, Z_MAX + 1)]
    mu = np.array([xraydb.mu_elam(s, energies_kev * 1e3) for s in symbols])
    masses = np.array([xraydb.atomic_mass(s) for s in symbols])
    edge_e = np.full((Z_MAX, len(EDGES)), np.nan)
    edge_mu = np.full((Z_MAX, len(EDGES), 2), np.nan)
    for i, s in enumerate(symbols):
        for j, name in enumerate(EDGES):
            edge = xraydb.xray_edge(s, name)
            if edge is None:
                continue
            e_ev = float(edge.energy)
            edge_e[i, j] = e_ev / 1e3
            # xraydb puts some steps a few eV below the tabulated edge energy: sample 10 eV either side
            edge_mu[i, j] = xraydb.mu_elam(s, [e_ev - 10.0, e_ev + 10.0])
    return {
        "energies_kev": energies_kev,
        "mu_rho_cm2_g": mu,
        "symbols": np.array(symbols),
        "atomic_mass": masses,
        "edge_names": np.array(EDGES),
        "edge_energy_kev": edge_e,
        "edge_mu_rho_cm2_g": edge_mu,
        "source": np.array(f"xraydb {xraydb.__version__} mu_elam (Elam, total incl. coherent)"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    with warnings.catch_warnings():  # light elements' L edges lie below 100 eV, outside our use
        warnings.simplefilter("ignore", UserWarning)
        table = build_table()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **table)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
