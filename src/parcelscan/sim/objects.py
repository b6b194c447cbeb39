"""Benign parcel contents and look-alikes, each a :class:`Thing` built from analytic primitives.

Every builder is ``name(rng) -> Thing``: one object (or one retail set) resting on its base, z up,
centred on the origin, randomised (size, proportions, fill level, poses of sub-parts) from ``rng``
alone, so that a seed always gives the same object. Lengths in cm, densities in g/cm^3, masses in g.
Sizes, wall thicknesses and masses follow real goods; hollow things are :class:`Shell` s, so a can,
a laptop or a motor projects as thin walls around its parts.

Conventions
- Every item's ``group`` is the object's name (``Thing.name``, the registry key with spaces).
- ``declared`` is what an honest sender writes: a plain customs description and the mass read off a
  kitchen scale (within 3 %) rounded to a 1-2-5 step of at most 10 % of it (so within 8.2 % in all).
  Powders declare their net powder mass rounded to 10 g, the convention that
  ``carriers.powder_container`` uses for mis-declared powder, so that the style of the declaration
  tells nothing about the label.
- Folded textiles and fibre fill use effective (bulk, air-included) densities in
  :data:`FIBRE_DENSITY_G_CM3`, below the solid densities of the material catalogue, and always carry
  a texture.
- Small embedded parts (rivets, screws, shafts, zips) overlap their host; the host material that they
  displace (well under 1 % of it) is not subtracted.
- Arc magnets of motors are drawn as a full ring; wound wire (solder, coils) as a solid annulus of
  the metal's own volume at an effective density.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..physics.materials import get_material
from .geometry import Box, Cylinder, Ellipsoid, Primitive, Shell, random_rotation, rotation_matrix
from .scene import Item, Thing, transform

__all__ = ["BENIGN", "FIBRE_DENSITY_G_CM3", "FIBRE_MATERIALS", "LOOKALIKES"]

FIBRE_MATERIALS = ("cellulose", "polyester", "nylon")
FIBRE_DENSITY_G_CM3 = (0.02, 0.6)  # bulk density of folded cloth (0.1-0.6) and fibre fill (0.02-0.08)

_I = np.eye(3)
_O = np.zeros(3)
_X = rotation_matrix(0.0, np.pi / 2, 0.0)  # local z -> world x
_Y = rotation_matrix(0.0, 0.0, -np.pi / 2)  # local z -> world y
_FLIP = rotation_matrix(0.0, np.pi, 0.0)  # local z -> world -z
_MAGNET_RHO = {"ferrite": (4.6, 5.0), "NdFeB": (7.3, 7.5)}  # sintered magnets
Pose = tuple[np.ndarray, np.ndarray]


def _v(*xs: float) -> np.ndarray:
    return np.array(xs, dtype=np.float64)


class _Parts:
    """The items of one object, all in group ``name``; ``at(pose)`` gives a view that poses what it adds."""

    def __init__(self, name: str, items: list[Item] | None = None, pose: Pose | None = None) -> None:
        self.name, self.items, self.pose = name, [] if items is None else items, pose

    def at(self, rot: np.ndarray, offset: np.ndarray) -> _Parts:
        """A view adding to the same items, each shape moved by x -> rot @ x + offset first."""
        if self.pose is not None:
            rot, offset = self.pose[0] @ rot, self.pose[0] @ offset + self.pose[1]
        return _Parts(self.name, self.items, (np.asarray(rot, float), np.asarray(offset, float)))

    def add(self, shape: Primitive, material: str, rho: float | None = None, texture=None) -> None:
        """Add a solid; ``rho`` defaults to the material's nominal density."""
        if self.pose is not None:
            shape = transform(shape, *self.pose)
        mat = get_material(material)
        rho = mat.density_g_cm3 if rho is None else rho
        tex = None if texture is None else (float(texture[0]), float(texture[1]))
        self.items.append(Item(shape, mat, float(rho), self.name, tex))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.min([it.shape.bounds()[0] for it in self.items], axis=0)
        hi = np.max([it.shape.bounds()[1] for it in self.items], axis=0)
        return lo, hi


def _rho(rng: np.random.Generator, material: str, lo: float = 0.0, hi: float = np.inf) -> float:
    """A density drawn within the material's range, narrowed to [lo, hi]."""
    m_lo, m_hi = get_material(material).density_range_g_cm3
    return float(rng.uniform(max(m_lo, lo), min(m_hi, hi)))


def _tube(c, r_out: float, r_in: float, hl: float, rot=_I) -> Shell:
    """Open tube (ring) about local z."""
    return Shell(Cylinder(c, r_out, hl, rot), Cylinder(c, r_in, hl, rot))


def _can(c, r: float, hl: float, wall: float, rot=_I) -> Shell:
    """Closed cylindrical shell (both ends walled)."""
    return Shell(Cylinder(c, r, hl, rot), Cylinder(c, r - wall, hl - wall, rot))


def _cup(c, r: float, hl: float, wall: float, base: float, rot=_I) -> Shell:
    """Cylinder open at local +z, with a base of thickness ``base`` at -z."""
    inner_c = np.asarray(c, float) + np.asarray(rot) @ _v(0, 0, base / 2)
    return Shell(Cylinder(c, r, hl, rot), Cylinder(inner_c, r - wall, hl - base / 2, rot))


def _hbox(c, half, wall: float, rot=_I) -> Shell:
    """Closed hollow box."""
    half = np.asarray(half, float)
    return Shell(Box(c, half, rot), Box(c, half - wall, rot))


def _declare(rng: np.random.Generator, mass_g: float) -> float:
    """A scale reading within 3 %, rounded to the largest 1-2-5 step not above 10 % of it."""
    est = mass_g * rng.uniform(0.97, 1.03)
    steps = [s * 10.0**k for k in range(-1, 5) for s in (1, 2, 5) if s * 10.0**k <= 0.1 * est]
    step = max(steps, default=0.1)
    return round(round(est / step) * step, 1)


def _thing(rng: np.random.Generator, p: _Parts, description: str, net_g: float | None = None) -> Thing:
    """Centre the parts on the origin and declare them (net_g: a powder's net mass, else the total)."""
    lo, hi = p.bounds()
    mid = (lo + hi) / 2
    items = [
        Item(transform(it.shape, _I, -mid), it.material, it.density_g_cm3, it.group, it.texture)
        for it in p.items
    ]
    mass = sum(it.mass_g for it in items)
    declared = max(round(net_g, -1), 10.0) if net_g is not None else _declare(rng, mass)
    return Thing(p.name, items, hi - lo, (description, float(declared)))


def _box_around(rng: np.random.Generator, p: _Parts, material: str, wall: float, margin: float) -> None:
    """A closed box of ``material`` around everything built so far."""
    lo, hi = p.bounds()
    p.add(_hbox((lo + hi) / 2, (hi - lo) / 2 + margin + wall, wall), material, _rho(rng, material))


# ----------------------------------------------------------------------------------------------
# shared parts


def _cloth(rng, p: _Parts, z0: float, half_xy, mass_g: float, materials, rho=(0.2, 0.45), jitter=1.0):
    """A folded textile slab of ``mass_g`` resting on z0; returns (top z, centre, rotation, thickness)."""
    density = rng.uniform(*rho)
    t = mass_g / (4 * half_xy[0] * half_xy[1] * density)
    rot = rotation_matrix(rng.normal(0, 0.12), 0, 0)
    c = _v(rng.normal(0, jitter), rng.normal(0, jitter), z0 + t / 2)
    tex = (rng.uniform(0.2, 0.4), rng.uniform(2.0, 5.0))
    p.add(Box(c, _v(half_xy[0], half_xy[1], t / 2), rot), str(rng.choice(materials)), density, tex)
    return z0 + t, c, rot, t


def _aa_cell(p: _Parts, c, rot=_I) -> None:
    """AA alkaline cell (14.5 x 50.5 mm, ~24 g) along local z: core around a brass pin, steel nub."""
    c = np.asarray(c, float)
    p.add(Shell(Cylinder(c, 0.70, 2.42, rot), Cylinder(c, 0.08, 1.9, rot)), "alkaline_cell")
    p.add(Cylinder(c, 0.08, 1.9, rot), "brass")
    p.add(Cylinder(c + rot @ _v(0, 0, 2.495), 0.25, 0.075, rot), "steel")


def _cell_18650(p: _Parts, c, rot=_I) -> None:
    """18650 li-ion cell (18 x 65 mm, ~48 g): steel can around the jelly roll."""
    p.add(_can(c, 0.9, 3.25, 0.025, rot), "steel")
    p.add(Cylinder(c, 0.875, 3.225, rot), "li_ion_cell")


def _motor(rng, p: _Parts, r: float, length: float, magnet: str, shaft_out: float = 1.0) -> None:
    """Permanent-magnet DC motor along local z, shaft out at +z: steel can, magnet ring, laminated
    rotor, copper end turns, steel shaft."""
    hl, wall = length / 2, float(np.clip(0.045 * r, 0.04, 0.18))
    p.add(_can(_O, r, hl, wall), "steel", _rho(rng, "steel"))
    r_in, h_in = r - wall, hl - wall
    t_mag = r_in * (rng.uniform(0.2, 0.28) if magnet == "ferrite" else rng.uniform(0.1, 0.16))
    mag_hl = h_in * rng.uniform(0.6, 0.75)
    p.add(_tube(_O, r_in, r_in - t_mag, mag_hl), magnet, rng.uniform(*_MAGNET_RHO[magnet]))
    r_rot, r_sh = r_in - t_mag - max(0.03 * r, 0.03), max(0.08 * r, 0.1)
    p.add(Shell(Cylinder(_O, r_rot, mag_hl), Cylinder(_O, r_sh, mag_hl)), "steel", 7.7)
    ew = min(0.3 * mag_hl, 0.45 * (h_in - mag_hl))  # end turns either side of the stack
    for s in (-1, 1):
        p.add(_tube(_v(0, 0, s * (mag_hl + ew)), 0.9 * r_rot, 1.5 * r_sh, ew), "Cu", rng.uniform(4, 6))
    z0, z1 = -hl - 0.2, hl + shaft_out
    p.add(Cylinder(_v(0, 0, (z0 + z1) / 2), r_sh, (z1 - z0) / 2), "steel")


def _driver(rng, p: _Parts, R: float, magnet: str, cone: str = "paper", frame: str = "steel") -> float:
    """Loudspeaker driver of cone radius ``R`` along local z, magnet at z = 0, cone opening to +z.

    Ferrite: ring magnet between a back plate with pole piece and a top plate. NdFeB: disc magnet in
    a steel cup under a top plate. The copper voice coil sits in the gap; the cone is a stepped
    frustum of thin annuli; rubber surround, frame rim and (R >= 3 cm) four ribs. Returns the height.
    """
    if magnet == "ferrite":
        r_m = R * rng.uniform(0.45, 0.6)
        r_hole, h_m = r_m * rng.uniform(0.42, 0.5), R * rng.uniform(0.12, 0.18)
        t_bp, t_tp = max(0.06 * R, 0.1), max(0.05 * R, 0.08)
        r_p, gap = r_hole * rng.uniform(0.55, 0.7), max(0.012 * R, 0.05)
        z_top = t_bp + h_m + t_tp
        p.add(Cylinder(_v(0, 0, t_bp / 2), r_m, t_bp / 2), "steel")
        p.add(_tube(_v(0, 0, t_bp + h_m / 2), r_m, r_hole, h_m / 2), "ferrite", rng.uniform(4.6, 5.0))
        p.add(_tube(_v(0, 0, z_top - t_tp / 2), r_m, r_p + gap, t_tp / 2), "steel")
        p.add(Cylinder(_v(0, 0, (t_bp + z_top) / 2), r_p, (z_top - t_bp) / 2), "steel")  # pole piece
    else:
        r_m, wall = R * rng.uniform(0.2, 0.3), max(0.05 * R, 0.06)
        gap, h_m, t_tp = max(0.015 * R, 0.05), R * rng.uniform(0.07, 0.12), max(0.04 * R, 0.06)
        z_top, r_p = wall + h_m + t_tp, r_m - wall - gap
        p.add(_cup(_v(0, 0, z_top / 2), r_m, z_top / 2, wall, wall), "steel")
        p.add(Cylinder(_v(0, 0, wall + h_m / 2), r_p, h_m / 2), "NdFeB", rng.uniform(7.3, 7.5))
        p.add(Cylinder(_v(0, 0, z_top - t_tp / 2), r_p, t_tp / 2), "steel")
    coil_top = z_top + max(0.08 * R, 0.15)
    z_c = (z_top - t_tp + coil_top) / 2
    p.add(_tube(_v(0, 0, z_c), r_p + 0.8 * gap, r_p + 0.2 * gap, coil_top - z_c), "Cu", rng.uniform(4, 7))
    r_a, depth, k = r_p + gap, R * rng.uniform(0.25, 0.4), 5
    t = rng.uniform(0.04, 0.08) if cone == "paper" else rng.uniform(0.01, 0.02)
    rho_cone = _rho(rng, cone, 0.7, 1.0) if cone == "paper" else _rho(rng, cone)
    for j in range(k):
        r0, r1 = r_a + j * (R - r_a) / k, r_a + (j + 1) * (R - r_a) / k
        p.add(_tube(_v(0, 0, coil_top + (j + 0.5) * depth / k), r1, r0, t / 2), cone, rho_cone)
    p.add(Cylinder(_v(0, 0, coil_top + depth / k), r_a + 0.2, t / 2), cone, rho_cone)  # dust cap
    z1, w_s, w_r, t_r = coil_top + depth, max(0.06 * R, 0.15), max(0.06 * R, 0.2), max(0.015 * R, 0.08)
    p.add(_tube(_v(0, 0, z1), R + w_s, R, t_r / 2), "rubber", _rho(rng, "rubber"))
    p.add(_tube(_v(0, 0, z1), R + w_s + w_r, R + w_s, t_r / 2), frame, _rho(rng, frame))
    if R >= 3:  # basket ribs from the magnet to the rim
        r0, yaw0 = r_m + 0.1, rng.uniform(0, np.pi / 2)
        dr, dz = R + w_s - r0, z1 - z_top
        for q in range(4):
            yaw = yaw0 + q * np.pi / 2
            c = rotation_matrix(yaw, 0, 0) @ _v((r0 + R + w_s) / 2, 0, (z_top + z1) / 2)
            rot = rotation_matrix(yaw, -np.arctan2(dz, dr), 0)
            p.add(Box(c, _v(np.hypot(dr, dz) / 2, 0.08 * R + 0.3, t_r / 2), rot), frame, _rho(rng, frame))
    return z1 + t_r / 2


def _transformer(rng, p: _Parts, s: float, core: str, c) -> None:
    """E-I transformer of scale ``s`` cm at ``c``: copper winding round the centre leg of its core."""
    c, rho = np.asarray(c, float), (rng.uniform(4.6, 5.0) if core == "ferrite" else 7.7)
    p.add(_tube(c, 0.45 * s, 0.2 * s, 0.3 * s), "Cu", rng.uniform(5, 7))
    p.add(Cylinder(c, 0.18 * s, 0.3 * s), core, rho)
    for q in (-1, 1):
        p.add(Box(c + _v(0, 0, q * 0.38 * s), _v(0.66, 0.25, 0.08) * s), core, rho)
        p.add(Box(c + _v(q * 0.56 * s, 0, 0), _v(0.1, 0.25, 0.3) * s), core, rho)


def _cable(rng, p: _Parts, c, length_cm: float) -> None:
    """A coiled cable: a PVC annulus around a copper one, holding the cable's volumes of each."""
    r_o, h = rng.uniform(4, 7), rng.uniform(1.0, 2.0)
    r_mid = np.sqrt(r_o**2 - length_cm * 0.2**2 / h)  # 4 mm cable
    r_in = np.sqrt(r_mid**2 - length_cm * 2 * 0.045**2 / h)  # two 0.9 mm conductors
    c = np.asarray(c, float) + _v(0, 0, h / 2)
    p.add(_tube(c, r_o, r_mid, h / 2), "PVC", _rho(rng, "PVC"))
    p.add(_tube(c, r_mid, r_in, h / 2), "Cu")


def _glazed_cup(rng, p: _Parts, c, r: float, hl: float, wall: float, base: float, glaze: str, g: float):
    """Porcelain cup or bowl (open at +z) glazed outside, inside and on the inner floor."""
    c = np.asarray(c, float)
    p.add(_cup(c, r, hl, wall, base), "porcelain", _rho(rng, "porcelain"))
    p.add(_tube(c, r + g, r, hl), glaze)
    r_i, z_floor = r - wall, c[2] - hl + base
    p.add(Cylinder(_v(c[0], c[1], z_floor + g / 2), r_i, g / 2), glaze)
    inner_hl = (c[2] + hl - z_floor - g) / 2
    p.add(_tube(_v(c[0], c[1], z_floor + g + inner_hl), r_i, r_i - g, inner_hl), glaze)


def _filled(p: _Parts, c, r: float, hl: float, wall: float, fill: float, material: str, texture=None):
    """Contents filling ``fill`` of the cavity of an upright closed can centred at c, from its floor."""
    h = fill * 2 * (hl - wall)
    bottom = np.asarray(c, float) - _v(0, 0, hl - wall)
    p.add(Cylinder(bottom + _v(0, 0, h / 2), r - wall, h / 2), material, None, texture)


def _powder(rng, p: _Parts, material: str, mass_g: float, rho: float) -> None:
    """Powder in a screw-top jar (60 %: HDPE or glass, filled 70-95 %) or a sealed bag lying flat.

    The container model of ``carriers.powder_container``, so that genuine and mis-declared powders
    differ only in what is inside.
    """
    volume = mass_g / rho
    if rng.random() < 0.6:
        fill = rng.uniform(0.7, 0.95)
        r = (volume / (2 * np.pi * rng.uniform(1.0, 1.8) * fill)) ** (1 / 3)
        h = volume / (np.pi * r**2)
        wall, H = rng.uniform(0.15, 0.35), h / fill
        p.add(_can(_O, r + wall, H / 2 + wall, wall), str(rng.choice(["polyethylene", "glass"])))
        p.add(Cylinder(_v(0, 0, -H / 2 + h / 2), r, h / 2), material, rho, (0.05, 2.0))
    else:
        semi = np.sort(rng.uniform([0.6, 1.0, 0.25], [1.0, 1.0, 0.5]))[::-1]
        semi = semi * (volume / (4 / 3 * np.pi * np.prod(semi))) ** (1 / 3)
        p.add(Ellipsoid(_O, semi), material, rho, (0.12, 2.5))


def powder_package(
    rng: np.random.Generator, name: str, material: str, mass_g: float, rho: float, description: str
) -> Thing:
    """A jar or bag of powder declared as ``description`` with its net mass; the powder is the last item.

    Shared by the genuine powders here and the mis-declared ones in ``carriers``, so that the two
    differ only in what is inside.
    """
    p = _Parts(name)
    _powder(rng, p, material, mass_g, rho)
    return _thing(rng, p, description, net_g=p.items[-1].mass_g)


def _powder_thing(rng, name: str, material: str, mass_range_g, rho_range, description: str) -> Thing:
    mass = float(np.exp(rng.uniform(*np.log(mass_range_g))))
    return powder_package(rng, name, material, mass, _rho(rng, material, *rho_range), description)


def _row(n: int, pitch: float) -> np.ndarray:
    """n positions ``pitch`` apart, centred on 0."""
    return (np.arange(n) - (n - 1) / 2) * pitch


# ----------------------------------------------------------------------------------------------
# clothing, books, toys


def garment_stack(rng: np.random.Generator) -> Thing:
    """2-5 folded garments, sometimes with a zip or a row of buttons."""
    p, z = _Parts("garment stack"), 0.0
    for _ in range(int(rng.integers(2, 6))):
        half = _v(rng.uniform(14, 18), rng.uniform(10, 14))
        z, c, rot, t = _cloth(rng, p, z, half, rng.uniform(120, 500), FIBRE_MATERIALS)
        if rng.random() < 0.3:  # zip
            zc = c + rot @ _v(rng.uniform(-0.5, 0.5) * half[0], 0, 0)
            metal = str(rng.choice(["brass", "steel"]))
            p.add(Box(zc, _v(0.3, rng.uniform(6, 12), min(0.05, t / 2)), rot), metal, _rho(rng, metal))
        if rng.random() < 0.3:  # buttons
            mat = str(rng.choice(["ABS", "brass", "steel"], p=[0.6, 0.2, 0.2]))
            rb, x = rng.uniform(0.5, 0.8), rng.uniform(-0.5, 0.5) * half[0]
            for y in np.linspace(-0.7, 0.7, int(rng.integers(4, 8))) * half[1]:
                p.add(Cylinder(c + rot @ _v(x, y, 0), rb, min(0.1, t / 2), rot), mat, _rho(rng, mat))
    return _thing(rng, p, "clothing")


def jeans(rng: np.random.Generator) -> Thing:
    """A pair of folded denim jeans with a brass zip, a metal button and pocket rivets."""
    p, z = _Parts("jeans"), 0.0
    half = _v(rng.uniform(15, 18), rng.uniform(12, 15))
    mass, n = rng.uniform(550, 900), int(rng.integers(2, 4))
    for _ in range(n):
        z, c, rot, t = _cloth(rng, p, z, half, mass / n, ("cellulose",), rho=(0.3, 0.5), jitter=0.5)
    zc, zl = c + rot @ _v(0.3 * half[0], 0, t / 2 - 0.06), rng.uniform(5, 7)
    p.add(Box(zc, _v(0.3, zl, 0.05), rot), "brass")
    button, rb = str(rng.choice(["brass", "steel"])), rng.uniform(0.8, 1.0)
    p.add(Cylinder(zc + rot @ _v(0, zl + 1.2, 0), rb, 0.06, rot), button, _rho(rng, button))
    for k, x in enumerate(np.linspace(-0.8, 0.8, int(rng.integers(5, 9))) * half[0]):
        pos = c + rot @ _v(x + rng.uniform(-0.5, 0.5), (-1) ** k * 0.85 * half[1], t / 2 - 0.06)
        p.add(Cylinder(pos, rng.uniform(0.3, 0.45), 0.06, rot), "brass")
    return _thing(rng, p, "clothing")


def shoes(rng: np.random.Generator) -> Thing:
    """A pair of shoes (rubber outsole, foam midsole, hollow upper), sometimes steel shanks, in a box."""
    p = _Parts("shoes")
    L, W, H = rng.uniform(25, 31), rng.uniform(8.5, 10.5), rng.uniform(4.5, 6)
    t_out, t_mid, wall = rng.uniform(0.4, 0.6), rng.uniform(0.6, 1.2), rng.uniform(0.15, 0.25)
    shank = rng.random() < 0.3
    for y in (-W / 2 - 0.8, W / 2 + 0.8):
        q = p.at(rotation_matrix(float(rng.choice([0.0, np.pi])) + rng.normal(0, 0.05), 0, 0), _v(0, y, 0))
        q.add(Box(_v(0, 0, t_out / 2), _v(L / 2, W / 2, t_out / 2)), "rubber", _rho(rng, "rubber"))
        q.add(Box(_v(0, 0, t_out + t_mid / 2), _v(L / 2, W / 2, t_mid / 2)), "foam", rng.uniform(0.12, 0.2))
        semi, cu = _v(0.47 * L, 0.47 * W, H), _v(0, 0, t_out + t_mid + H)
        q.add(Shell(Ellipsoid(cu, semi), Ellipsoid(cu, semi - wall)), "polyester")  # leather-like upper
        if shank:
            q.add(Box(_v(0, 0, t_out + t_mid / 2), _v(5.0, 0.7, 0.06)), "steel")
    if rng.random() < 0.5:
        _box_around(rng, p, "cardboard", rng.uniform(0.12, 0.2), 1.0)
    return _thing(rng, p, "shoes")


def towel(rng: np.random.Generator) -> Thing:
    """1-3 folded cotton towels."""
    p, z = _Parts("towel"), 0.0
    half = _v(rng.uniform(15, 20), rng.uniform(12, 16))
    for _ in range(int(rng.integers(1, 4))):
        z = _cloth(rng, p, z, half, rng.uniform(250, 800), ("cellulose",), rho=(0.12, 0.3), jitter=0.5)[0]
    return _thing(rng, p, "towels")


def book(rng: np.random.Generator) -> Thing:
    """1-3 stacked books: a paper block in hard (cardboard boards) or soft covers, with a spine."""
    p, z = _Parts("book"), 0.0
    for _ in range(int(rng.choice([1, 1, 2, 3]))):
        w, t = rng.uniform(12, 21), rng.uniform(0.8, 4.0)
        hx, hy = w / 2, w * rng.uniform(1.35, 1.5) / 2
        board, cover = (rng.uniform(0.2, 0.3) if rng.random() < 0.4 else 0.03), _rho(rng, "cardboard")
        q = p.at(rotation_matrix(rng.normal(0, 0.1), 0, 0), _v(*rng.normal(0, 1.0, 2), z))
        for zc in (board / 2, board + t + board / 2):
            q.add(Box(_v(0, 0, zc), _v(hx + 0.3, hy + 0.3, board / 2)), "cardboard", cover)
        tex = (rng.uniform(0.05, 0.12), rng.uniform(2, 4))
        q.add(Box(_v(0, 0, board + t / 2), _v(hx, hy, t / 2)), "paper", _rho(rng, "paper", 0.7, 1.0), tex)
        spine = Box(_v(-hx - 0.3 - board / 2, 0, board + t / 2), _v(board / 2, hy + 0.3, t / 2))
        q.add(spine, "cardboard", cover)
        z += t + 2 * board
    return _thing(rng, p, "books")


def magazine_stack(rng: np.random.Generator) -> Thing:
    """3-10 magazines of coated paper, stacked a little askew."""
    p, z = _Parts("magazine stack"), 0.0
    half = _v(rng.uniform(10, 11.5), rng.uniform(14, 15))
    for _ in range(int(rng.integers(3, 11))):
        t, rot = rng.uniform(0.2, 0.7), rotation_matrix(rng.normal(0, 0.12), 0, 0)
        tex = (rng.uniform(0.05, 0.15), rng.uniform(2, 5))
        box = Box(_v(*rng.normal(0, 1.0, 2), z + t / 2), _v(*half, t / 2), rot)
        p.add(box, "paper", _rho(rng, "paper", 0.9), tex)
        z += t
    return _thing(rng, p, "magazines")


def plastic_toy(rng: np.random.Generator) -> Thing:
    """A toy car: ABS body over steel axles and wheels, holding AA cells, a small motor and a board,
    or a clockwork spring."""
    p = _Parts("plastic toy")
    L, W, H = rng.uniform(12, 26), rng.uniform(6, 12), rng.uniform(4, 9)
    wall, rw, hw = rng.uniform(0.15, 0.25), rng.uniform(1.5, 3.0), rng.uniform(0.6, 1.2)
    z0 = rw + 0.2  # body floor above the axles
    p.add(_hbox(_v(0, 0, z0 + H / 2), _v(L / 2, W / 2, H / 2), wall), "ABS", _rho(rng, "ABS"))
    wheel = str(rng.choice(["rubber", "ABS"]))
    for x in (-(L / 2 - rw - 0.5), L / 2 - rw - 0.5):
        p.add(Cylinder(_v(x, 0, rw), 0.12, W / 2 + 2 * hw, _Y), "steel")
        for y in (-(W / 2 + hw), W / 2 + hw):
            p.add(Cylinder(_v(x, y, rw), rw, hw, _Y), wheel, _rho(rng, wheel))
    floor, x_end = z0 + wall, L / 2 - wall
    if rng.random() < 0.7:
        for y in _row(min(int(rng.integers(2, 5)), int((W - 2 * wall) // 1.5)), 1.5):
            _aa_cell(p, _v(-x_end + 2.7, y, floor + 0.75), _X)
        length, r = rng.uniform(2.4, 3.2), min(rng.uniform(1.0, 1.3), (H - 2 * wall) / 2 - 0.05)
        _motor(rng, p.at(_X, _v(x_end - length / 2 - 0.8, 0, floor + r + 0.02)), r, length, "ferrite", 0.5)
        p.add(Box(_v(0, 0, z0 + H - wall - 0.3), _v(2.0, min(1.5, W / 2 - wall - 0.1), 0.06)), "pcb")
    else:
        p.add(Box(_v(0, 0, floor + 0.8), _v(1.2, 1.0, 0.75)), "steel")
    return _thing(rng, p, "toys")


def plush_toy(rng: np.random.Generator) -> Thing:
    """A soft toy: fibre-filled polyester body, head and limbs, plastic eyes, sometimes a voice box."""
    p = _Parts("plush toy")
    a, b, c = rng.uniform(5, 14), rng.uniform(4, 11), rng.uniform(6, 16)
    rh, la = rng.uniform(0.6, 0.9) * max(a, b), rng.uniform(0.4, 0.7) * c
    tex, rho = (rng.uniform(0.2, 0.4), rng.uniform(1.5, 4)), rng.uniform(0.02, 0.06)
    head = _v(0, 0, 2 * c + rh)
    p.add(Ellipsoid(_v(0, 0, c), _v(a, b, c)), "polyester", rho, tex)
    p.add(Ellipsoid(head, _v(rh, 0.9 * rh, rh)), "polyester", rho, tex)
    for s in (-1, 1):
        p.add(Ellipsoid(_v(s * (a + la), 0, 1.3 * c), _v(1, 0.35, 0.35) * la), "polyester", rho, tex)
        p.add(Ellipsoid(_v(s * a / 2, b + la, 0.35 * la), _v(0.35, 1, 0.35) * la), "polyester", rho, tex)
        p.add(Ellipsoid(head + _v(0.35 * s, -0.7, 0.2) * rh, _v(0.12, 0.12, 0.12) * rh), "ABS")  # eye
    if rng.random() < 0.25:  # voice box with three button cells
        p.add(_hbox(_v(0, 0, c), _v(2.5, 1.8, 1.0), 0.15), "ABS")
        for x in (-1.2, 0.0, 1.2):
            p.add(Cylinder(_v(x, 0, c - 0.5), 0.58, 0.27), "alkaline_cell")
    return _thing(rng, p, "toys")


# ----------------------------------------------------------------------------------------------
# electronics


def laptop(rng: np.random.Generator) -> Thing:
    """A closed laptop: Al or ABS base and lid, display, battery, board, heat pipe, speakers, screws."""
    p = _Parts("laptop")
    W, D, hb, hl = rng.uniform(30, 36), rng.uniform(21, 25), rng.uniform(1.4, 2.0), rng.uniform(0.55, 0.8)
    shell, wall = ("Al", rng.uniform(0.08, 0.12)) if rng.random() < 0.5 else ("ABS", rng.uniform(0.12, 0.18))
    wl = 0.8 * wall
    p.add(_hbox(_v(0, 0, hb / 2), _v(W / 2, D / 2, hb / 2), wall), shell, _rho(rng, shell))
    p.add(_hbox(_v(0, 0, hb + hl / 2), _v(W / 2, D / 2, hl / 2), wl), shell, _rho(rng, shell))
    t_d, dx, dy = min(0.1, 0.4 * (hl - 2 * wl)), W / 2 - wl - 0.3, D / 2 - wl - 0.3
    p.add(Box(_v(0, 0, hb + wl + t_d / 2), _v(dx, dy, t_d / 2)), "glass")  # display glass and backlight
    p.add(Box(_v(0, 0, hb + wl + 1.5 * t_d), _v(dx, dy, t_d / 2)), "ABS")
    ix, iy, z0, z1 = W / 2 - wall, D / 2 - wall, wall, hb - wall
    wc, dc, tc = rng.uniform(6, 8.5), rng.uniform(5.5, 7), min(rng.uniform(0.45, 0.65), z1 - z0 - 0.3)
    yb = -iy + 0.8 + dc / 2
    for x in _row(min(int(rng.integers(3, 5)), int((2 * ix - 6) // (wc + 0.2))), wc + 0.2):
        p.add(Box(_v(x, yb, z0 + 0.05 + tc / 2), _v(wc / 2, dc / 2, tc / 2)), "li_ion_cell")  # pouch cells
    p.add(Box(_v(0, yb - 0.4, z1 - 0.05), _v(5.5, 3.0, 0.05)), "glass")  # touchpad
    for s in (-1, 1):  # speakers: NdFeB magnet in a steel cup
        rm = rng.uniform(0.25, 0.4)
        p.add(_cup(_v(s * (ix - 1.5), yb, z0 + 0.15), rm + 0.08, 0.15, 0.08, 0.05), "steel")
        p.add(Cylinder(_v(s * (ix - 1.5), yb, z0 + 0.2), rm, 0.1), "NdFeB")
    rf, hp = rng.uniform(2.5, 3.2), rng.uniform(5, 8)
    x0, x1, y0, y1 = -ix + 0.8, ix - 2 * rf - 1.0, yb + dc / 2 + 0.3, iy - 1.0
    p.add(Box(_v((x0 + x1) / 2, (y0 + y1) / 2, z0 + 0.25), _v((x1 - x0) / 2, (y1 - y0) / 2, 0.06)), "pcb")
    p.add(_hbox(_v(x1 - hp, (y0 + y1) / 2, z0 + 0.45), _v(hp, 0.35, 0.12), 0.03), "Cu")  # heat pipe
    fins = Box(_v(ix - rf - 0.6, iy - 2 * rf - 1.6, z0 + 0.4), _v(rf - 0.3, 0.5, 0.3))
    p.add(fins, "Cu", rng.uniform(1.5, 3))  # copper fin stack: metal and air
    fan_hl = 0.5 * (z1 - z0 - 0.3)
    p.add(_tube(_v(ix - rf - 0.6, iy - rf - 1.1, z0 + fan_hl), rf, rf - 0.15, fan_hl), "ABS")
    ky = rng.uniform(4.5, 5.5)
    kc = _v(0, iy - 1.0 - ky, z1 - 0.1)
    p.add(Box(kc, _v(ix - 2.0, ky, 0.1)), "ABS")  # keyboard on a steel plate
    p.add(Box(kc - _v(0, 0, 0.115), _v(ix - 2.0, ky, 0.015)), "steel")
    for s in (-1, 1):
        p.add(Box(_v(s * (ix - 1.0), iy - 0.5, z1 - 0.25), _v(0.9, 0.5, 0.25)), "Zn")  # hinges
    for _ in range(int(rng.integers(8, 13))):  # screws along the sides
        hs, side = rng.uniform(0.12, 0.2), rng.choice([-1, 1])
        if rng.random() < 0.5:
            xy = _v(side * (ix - 0.4), rng.uniform(-iy, iy) * 0.9)
        else:
            xy = _v(rng.uniform(-ix, ix) * 0.9, side * (iy - 0.4))
        p.add(Cylinder(_v(*xy, z0 + hs), rng.uniform(0.08, 0.1), hs), "steel")
    return _thing(rng, p, "laptop computer")


def smartphone(rng: np.random.Generator) -> Thing:
    """A smartphone: metal frame, glass front and back, pouch battery, board, camera, tiny magnet."""
    p = _Parts("smartphone")
    W, L, T = rng.uniform(6.8, 7.8), rng.uniform(14.3, 16.5), rng.uniform(0.75, 0.95)
    frame, f = str(rng.choice(["Al", "stainless_steel"], p=[0.75, 0.25])), rng.uniform(0.08, 0.12)
    iw, il, zb = W / 2 - f, L / 2 - f, -T / 2
    p.add(Shell(Box(_O, _v(W / 2, L / 2, T / 2)), Box(_O, _v(iw, il, T / 2))), frame, _rho(rng, frame))
    for z in (zb + 0.035, T / 2 - 0.035):
        p.add(Box(_v(0, 0, z), _v(iw, il, 0.035)), "glass")
    p.add(Box(_v(0, 0, T / 2 - 0.09), _v(iw - 0.1, il - 0.1, 0.02)), "polyester")  # OLED stack
    p.add(Box(_v(0, 0, T / 2 - 0.135), _v(iw, il, 0.025)), "Al")  # mid-frame
    tb, hx, hy = min(0.5, T - 0.3), min(rng.uniform(2.7, 3.2), iw - 0.3), rng.uniform(3.2, 4.0)
    yb = -il + 1.6 + hy
    p.add(Box(_v(0, yb, zb + 0.09 + tb / 2), _v(hx, hy, tb / 2)), "li_ion_cell")
    y0, x0 = yb + hy + 0.2, -iw + 2.0
    pc = _v((x0 + iw - 0.2) / 2, (y0 + il - 0.2) / 2, zb + 0.12)
    ph = _v((iw - 0.2 - x0) / 2, (il - 0.2 - y0) / 2, 0.05)
    p.add(Box(pc, ph), "pcb")
    p.add(Box(pc + _v(0, 0, 0.06), ph - _v(0.2, 0.2, 0.04)), "steel")  # shield can
    p.add(Box(_v(-iw + 0.9, il - 1.0, zb + 0.29), _v(0.6, 0.6, 0.2)), "Al")  # camera module
    p.add(Box(_v(0, -il + 0.6, zb + 0.2), _v(0.5, 0.3, 0.08)), "NdFeB")  # speaker magnet
    p.add(Cylinder(_v(iw - 0.8, -il + 1.2, zb + 0.3), 0.2, 0.4, _X), "steel")  # vibration motor
    if rng.random() < 0.3:
        _box_around(rng, p, "cardboard", rng.uniform(0.1, 0.15), 1.0)
    return _thing(rng, p, "mobile phone")


def power_bank(rng: np.random.Generator) -> Thing:
    """A power bank: 18650 cells (or a pouch cell) and a board in an ABS or Al housing."""
    p = _Parts("power bank")
    n, layers = int(rng.integers(2, 5)), int(rng.integers(1, 3))
    shell = str(rng.choice(["ABS", "Al"], p=[0.7, 0.3]))
    wall = rng.uniform(0.15, 0.25) if shell == "ABS" else rng.uniform(0.08, 0.12)
    half = _v(3.25 + 0.9, n * 0.9 + 0.15, layers * 0.9 + 0.1) + wall
    p.add(_hbox(_O, half, wall), shell, _rho(rng, shell))
    if rng.random() < 0.75:
        for y in _row(n, 1.8):
            for z in _row(layers, 1.8):
                _cell_18650(p, _v(-0.75, y, z), _X)
    else:
        p.add(Box(_v(-0.75, 0, 0), _v(3.25, n * 0.9, layers * 0.8)), "li_ion_cell")
    p.add(Box(_v(half[0] - wall - 0.7, 0, 0), _v(0.06, half[1] - wall - 0.2, half[2] - wall - 0.1)), "pcb")
    return _thing(rng, p, "power bank")


def charger(rng: np.random.Generator) -> Thing:
    """A phone charger (ferrite core), a laptop adapter (ferrite, cables) or a mains transformer
    (steel laminations, cable)."""
    p = _Parts("charger")
    kind = str(rng.choice(["phone", "laptop", "mains"], p=[0.45, 0.35, 0.2]))
    s = rng.uniform(*{"phone": (1.3, 1.7), "laptop": (2.3, 3.0), "mains": (4.0, 5.5)}[kind])
    half = _v(0.66 * s + 0.9, 0.45 * s + 0.6, 0.46 * s + 0.6) * _v(1.6 if kind == "laptop" else 1.0, 1, 1)
    wall = rng.uniform(0.15, 0.25)
    p.add(_hbox(_O, half, wall), "ABS", _rho(rng, "ABS"))
    core = "steel" if kind == "mains" else "ferrite"  # 50 Hz laminations or a switch-mode ferrite
    _transformer(rng, p, s, core, _v(half[0] - wall - 0.7 * s - 0.05, 0, 0))
    p.add(Box(_v(0, 0, -half[2] + wall + 0.15), half - _v(wall + 0.2, wall + 0.2, half[2] - 0.07)), "pcb")
    if kind != "laptop":  # plug pins through the bottom
        for x in (-0.95, 0.95):
            p.add(Cylinder(_v(x * min(1, half[0] - 0.4), 0, -half[2] - 0.9), 0.24, 0.95), "brass")
    if kind != "phone":
        _cable(rng, p, _v(0, 0, half[2] + 0.5), rng.uniform(100, 180))
    description = {"phone": "phone charger", "laptop": "laptop power adapter", "mains": "transformer"}
    return _thing(rng, p, description[kind])


def headphones(rng: np.random.Generator) -> Thing:
    """Over-ear headphones: ABS cups with 40-50 mm NdFeB drivers, foam cushions, a sprung headband."""
    p = _Parts("headphones")
    rc, hc, wall = rng.uniform(4.0, 5.0), rng.uniform(1.3, 1.8), rng.uniform(0.18, 0.25)
    X, wireless = rng.uniform(7.5, 9), rng.random() < 0.5
    for s in (-1, 1):
        cup, cush, rim = _v(s * X, 0, 0), rng.uniform(0.8, 1.2), rc - wall
        p.add(_can(cup, rc, hc, wall, _X), "ABS")
        facing = p.at(rotation_matrix(0, -s * np.pi / 2, 0), cup + _v(s * (hc - wall - 0.02), 0, 0))
        _driver(rng, facing, rng.uniform(2.0, 2.5), "NdFeB", "polyester", "ABS")  # drivers face each other
        cushion = _tube(cup - _v(s * (hc + cush), 0, 0), rc, 0.55 * rc, cush, _X)
        p.add(cushion, "foam", rng.uniform(0.04, 0.1), (0.15, 1))
        if wireless and s > 0:  # a pouch cell beside the driver
            p.add(Box(cup - _v(0, 0, rim - 0.5), _v(0.8, 0.9, 0.25)), "li_ion_cell")
    th_e, n = rng.uniform(np.radians(60), np.radians(75)), 9
    Rb = X / np.sin(th_e)
    seg = _v(Rb * th_e / (n - 1), 1.6, 0.25)
    zc = rc + seg[0] + 0.3 - Rb * np.cos(th_e)  # the band's ends stand just above the cups
    steel_band = rng.random() < 0.5
    for th in np.linspace(-th_e, th_e, n):
        rot, c = rotation_matrix(0, th, 0), _v(Rb * np.sin(th), 0, zc + Rb * np.cos(th))
        strip = Box(c, seg * _v(1, 0.6, 0.2), rot)
        if steel_band:
            p.add(Box(c, seg * _v(1, 1, 0.4), rot), "steel")
        else:  # plastic band around a spring-steel strip
            p.add(Shell(Box(c, seg, rot), strip), "ABS")
            p.add(strip, "steel")
    return _thing(rng, p, "headphones")


# ----------------------------------------------------------------------------------------------
# tools and metal goods


def wrench(rng: np.random.Generator) -> Thing:
    """1-3 combination spanners (ring and open end) lying side by side."""
    p, y = _Parts("wrench"), 0.0
    for size_mm in np.sort(rng.uniform(8, 24, int(rng.integers(1, 4)))):
        L, w, t = 7 + 0.8 * size_mm, 0.6 + 0.06 * size_mm, 0.3 + 0.02 * size_mm
        r_i = 0.055 * size_mm
        r_o, wp = r_i + 0.35 + 0.02 * size_mm, 0.2 + 0.01 * size_mm
        y += r_o + 0.3
        q, rho = p.at(_I, _v(0, y, t / 2)), _rho(rng, "steel")
        q.add(Box(_O, _v(L / 2, w / 2, t / 2)), "steel", rho)
        q.add(_tube(_v(L / 2 + r_o, 0, 0), r_o, r_i, t / 2), "steel", rho)  # ring end
        q.add(Box(_v(-L / 2 - 0.3, 0, 0), _v(0.3, r_o, t / 2)), "steel", rho)  # open end: jaw root, jaws
        for s in (-1, 1):
            jaw = Box(_v(-L / 2 - 0.6 - 0.8 * r_i, s * (r_i + wp), 0), _v(0.8 * r_i, wp, t / 2))
            q.add(jaw, "steel", rho)
        y += r_o + 0.3
    return _thing(rng, p, "tools")


def hammer(rng: np.random.Generator) -> Thing:
    """A claw hammer: steel head (eye block, face, claws) on a wood or fibreglass handle."""
    p = _Parts("hammer")
    k, hh, lc = rng.uniform(0.8, 1.15), rng.uniform(28, 33), rng.uniform(5, 7)
    eye, rho = _v(1.4, 1.2, 1.7) * k, _rho(rng, "steel")
    q = p.at(_I, _v(0, 0, hh + eye[2]))
    q.add(Box(_O, eye), "steel", rho)
    q.add(Cylinder(_v(eye[0] + 2.5 * k, 0, 0), 1.4 * k, 2.5 * k, _X), "steel", rho)
    for s in (-1, 1):
        claw_c = _v(-eye[0] - lc * k / 2 + 0.2, s * 0.45 * k, -0.5 * k)
        q.add(Box(claw_c, _v(lc / 2, 0.35, 0.5) * k, rotation_matrix(0, -0.3, 0)), "steel", rho)
    if rng.random() < 0.7:
        p.add(Cylinder(_v(0, 0, hh / 2), 1.3 * k, hh / 2), "wood", _rho(rng, "wood", 0.55, 0.8))
    else:  # fibreglass handle with a rubber grip
        p.add(Cylinder(_v(0, 0, hh / 2), 1.05 * k, hh / 2), "GFRP", _rho(rng, "GFRP"))
        p.add(_tube(_v(0, 0, 6), 1.3 * k, 1.05 * k, 6), "rubber", _rho(rng, "rubber"))
    return _thing(rng, p, "tools")


def screwdriver_set(rng: np.random.Generator) -> Thing:
    """4-8 screwdrivers (plastic handles, steel shafts) side by side, often in a plastic case."""
    p, y = _Parts("screwdriver set"), 0.0
    for _ in range(int(rng.integers(4, 9))):
        rh, hlh = rng.uniform(1.0, 1.8), rng.uniform(3.5, 5.5)  # handle radius, half length
        rs, ls = rng.uniform(0.15, 0.4), rng.uniform(5, 20)  # shaft radius, length
        y += rh + 0.2
        q = p.at(_X, _v(0, y, rh))  # axis along x, tip at +x
        bore = Cylinder(_v(0, 0, -1.25), rs, 1.25)  # the shaft's tang, 2.5 cm into the handle
        q.add(Shell(Cylinder(_v(0, 0, -hlh), rh, hlh), bore), "ABS", _rho(rng, "ABS"))
        q.add(Cylinder(_v(0, 0, (ls - 2.5) / 2), rs, (ls + 2.5) / 2), "steel", _rho(rng, "steel"))
        y += rh + 0.2
    if rng.random() < 0.6:
        _box_around(rng, p, "ABS", rng.uniform(0.2, 0.3), 0.5)
    return _thing(rng, p, "tools")


def cutlery_set(rng: np.random.Generator) -> Thing:
    """Stainless-steel knives, forks and spoons for 1-6 people, laid out in a box or bundled."""
    p, y = _Parts("cutlery set"), 0.0
    for _ in range(int(rng.integers(1, 7))):
        for kind in ("knife", "fork", "spoon") + (("teaspoon",) if rng.random() < 0.5 else ()):
            s = 0.7 if kind == "teaspoon" else 1.0
            w = {"knife": 0.95, "fork": 1.2}.get(kind, 1.9 * s)  # half width
            q = p.at(rotation_matrix(float(rng.choice([0.0, np.pi])), 0, 0), _v(0, y + w, 0.3))
            if kind == "knife":
                parts = [Box(_v(-5, 0, 0), _v(5, 0.75, 0.22)), Box(_v(5.5, 0, 0), _v(5.5, 0.95, 0.1))]
            elif kind == "fork":
                parts = [Box(_v(-5.5, 0, 0), _v(5.5, 0.6, 0.12)), Box(_v(2, 0, 0), _v(2, 1.2, 0.1))]
                parts += [Box(_v(5.8, yt, 0), _v(1.8, 0.12, 0.1)) for yt in (-0.9, -0.3, 0.3, 0.9)]
            else:
                parts = [Box(_v(-5.5, 0, 0) * s, _v(5.5 * s, 0.6 * s, 0.12))]
                parts.append(Ellipsoid(_v(2.8, 0, 0) * s, _v(2.8 * s, 1.9 * s, 0.12)))
            for shape in parts:
                q.add(shape, "stainless_steel")
            y += 2 * w + 0.3
    if rng.random() < 0.6:
        _box_around(rng, p, "cardboard", rng.uniform(0.15, 0.25), 0.8)
    return _thing(rng, p, "cutlery")


def bolts_and_nuts(rng: np.random.Generator) -> Thing:
    """A plastic bag of steel bolts, nuts and washers of one size, lying in a loose heap."""
    p, placed = _Parts("bolts and nuts"), []
    d = float(rng.choice([0.4, 0.5, 0.6, 0.8, 1.0, 1.2]))
    n = int(rng.integers(8, 51 if d <= 0.6 else 31))
    side = np.sqrt(n) * 3.2 * d
    for _ in range(n):
        kind = str(rng.choice(["bolt", "nut", "washer"], p=[0.5, 0.35, 0.15]))
        if kind == "bolt":  # hexagon head (drawn round) and shank
            ln = d * rng.uniform(2.5, 8)
            parts = [
                Cylinder(_v(0, 0, ln / 2 + 0.35 * d), 0.9 * d, 0.35 * d),
                Cylinder(_v(0, 0, -0.35 * d), d / 2, ln / 2),
            ]
            rad = np.hypot(0.9 * d, ln / 2 + 0.7 * d)
        else:
            parts = [
                _tube(_O, 0.9 * d, d / 2, 0.4 * d)
                if kind == "nut"
                else _tube(_O, d, 0.53 * d, 0.08 * d + 0.03)
            ]
            rad = d
        layer = 0
        for attempt in range(60):  # rejection sampling of non-touching bounding spheres
            pos = _v(*rng.uniform(-side / 2, side / 2, 2), rad * (1 + 2 * layer))
            if all(np.linalg.norm(pos - c) >= rad + rc for c, rc in placed):
                break
            layer += attempt % 20 == 19
        placed.append((pos, rad))
        q = p.at(random_rotation(rng), pos)
        for shape in parts:
            q.add(shape, "steel")
    _box_around(rng, p, "polyethylene", 0.008, 0.3)
    return _thing(rng, p, "bolts and nuts")


def solder_reel(rng: np.random.Generator) -> Thing:
    """A reel of tin-lead solder wire (100 g-1 kg) on a plastic spool, lying flat."""
    p = _Parts("solder reel")
    r_hub, h, spool = rng.uniform(1.5, 2.5), rng.uniform(2.5, 4.0), str(rng.choice(["ABS", "polyethylene"]))
    r_o = np.sqrt(r_hub**2 + rng.uniform(100, 1000) / 8.4 / (np.pi * h))
    p.add(_tube(_v(0, 0, h / 2), r_hub, r_hub - 0.2, h / 2), spool, _rho(rng, spool))
    p.add(_tube(_v(0, 0, h / 2), r_o, r_hub, h / 2), "solder")
    tf = rng.uniform(0.15, 0.25)
    for z in (-tf / 2, h + tf / 2):
        p.add(_tube(_v(0, 0, z), r_o + 0.5, r_hub - 0.2, tf / 2), spool, _rho(rng, spool))
    return _thing(rng, p, "solder wire")


def carbide_drill_bits(rng: np.random.Generator) -> Thing:
    """Solid tungsten-carbide bits (2-8 mm) or carbide-tipped masonry bits in a plastic case."""
    p, y, floor = _Parts("carbide drill bits"), 0.0, 0.6
    solid = rng.random() < 0.5
    sizes = np.sort(rng.choice(np.arange(2, 13), size=int(rng.integers(5, 11)), replace=False)) / 10  # cm
    for dia in sizes[sizes <= 0.8] if solid else sizes:
        r, ln = dia / 2, 5 + 8 * dia
        y += r + 0.3
        c = _v(0, y, floor + r)
        if solid:
            p.add(Cylinder(c, r, ln / 2, _X), "WC", _rho(rng, "WC"))
        else:
            p.add(Cylinder(c - _v(0.4, 0, 0), r, ln / 2 - 0.4, _X), "steel")
            p.add(Box(c + _v(ln / 2 - 0.4, 0, 0), _v(0.4, 1.05 * r, 0.3 * r)), "WC", _rho(rng, "WC"))
        y += r + 0.3
    lo, hi = p.bounds()
    p.add(Box(_v((lo[0] + hi[0]) / 2, y / 2, floor / 2), _v((hi[0] - lo[0]) / 2, y / 2, floor / 2)), "ABS")
    _box_around(rng, p, "ABS", rng.uniform(0.15, 0.25), 0.3)
    return _thing(rng, p, "drill bits")


# ----------------------------------------------------------------------------------------------
# containers


def food_can(rng: np.random.Generator) -> Thing:
    """1-3 tinplate food cans side by side, each 85-97 % full of food."""
    p = _Parts("food can")
    r, hl, wall = rng.uniform(3.3, 5.0), rng.uniform(4.0, 7.0), rng.uniform(0.018, 0.028)
    for k in range(int(rng.integers(1, 4))):
        c = _v(k * (2 * r + 0.2), 0, hl)
        p.add(_can(c, r, hl, wall), "steel", _rho(rng, "steel"))
        food = (rng.uniform(0.05, 0.15), rng.uniform(1, 3))  # texture of chunky food in sauce
        _filled(p, c, r, hl, wall, rng.uniform(0.85, 0.97), "water", food)
    return _thing(rng, p, "canned food")


def drinks_cans(rng: np.random.Generator) -> Thing:
    """1-6 aluminium drinks cans (250, 330 or 500 ml) in a row or a 2-row pack."""
    p = _Parts("drinks cans")
    r, hl = [(2.65, 6.7), (3.3, 5.75), (3.3, 8.4)][int(rng.integers(3))]
    wall, n = rng.uniform(0.010, 0.014), int(rng.integers(1, 7))
    rows = 2 if n >= 4 else 1
    for k in range(n):
        c = _v((k // rows) * (2 * r + 0.1), (k % rows) * (2 * r + 0.1), hl)
        p.add(_can(c, r, hl, wall), "Al")
        _filled(p, c, r, hl, wall, rng.uniform(0.93, 0.97), "water")
    return _thing(rng, p, "soft drinks")


def glass_bottle(rng: np.random.Generator) -> Thing:
    """A glass bottle of wine, beer or spirits with its liquid and a cork or a metal cap."""
    p = _Parts("glass bottle")
    kind = str(rng.choice(["wine", "beer", "spirits"]))
    body = {"wine": (3.7, 20.0), "beer": (3.0, 14.0), "spirits": (4.0, 16.0)}[kind]  # radius, height
    r, hb = _v(*body) * rng.uniform(0.93, 1.07, 2)
    wall, wn = rng.uniform(0.25, 0.45), rng.uniform(0.25, 0.35)  # body and neck walls
    rn, ln = rng.uniform(1.3, 1.6), rng.uniform(6, 9)
    p.add(_can(_v(0, 0, hb / 2), r, hb / 2, wall), "glass", _rho(rng, "glass"))
    _filled(p, _v(0, 0, hb / 2), r, hb / 2, wall, rng.uniform(0.85, 0.97), "water")
    p.add(_tube(_v(0, 0, hb + ln / 2), rn, rn - wn, ln / 2), "glass", _rho(rng, "glass"))
    top = hb + ln
    if kind == "wine" and rng.random() < 0.6:
        p.add(Cylinder(_v(0, 0, top - 2.2), rn - wn, 2.2), "wood", _rho(rng, "wood", 0.35, 0.5))  # cork
    else:  # aluminium cap over the neck
        p.add(_cup(_v(0, 0, top + 0.03 - 0.8), rn + 0.03, 0.8, 0.03, 0.03, _FLIP), "Al")
    return _thing(rng, p, kind)


def pet_bottle(rng: np.random.Generator) -> Thing:
    """1-2 PET bottles of water (0.5-2 l) with HDPE caps. PET is the catalogue's ``polyester``."""
    p = _Parts("pet bottle")
    r, hl, wall = rng.uniform(3.2, 4.6), rng.uniform(9, 15), rng.uniform(0.025, 0.04)
    for k in range(int(rng.integers(1, 3))):
        c = _v(k * (2 * r + 0.3), 0, hl)
        p.add(_can(c, r, hl, wall), "polyester")
        _filled(p, c, r, hl, wall, rng.uniform(0.85, 0.98), "water")
        p.add(_tube(c + _v(0, 0, hl + 1.0), 1.3, 1.2, 1.0), "polyester")  # neck
        p.add(_cup(c + _v(0, 0, hl + 1.32), 1.45, 0.8, 0.12, 0.12, _FLIP), "polyethylene")
    return _thing(rng, p, "mineral water")


def cosmetics(rng: np.random.Generator) -> Thing:
    """1-5 cosmetics side by side: thick-walled cream jars, squeeze tubes, perfume bottles."""
    p, x = _Parts("cosmetics"), 0.0
    for _ in range(int(rng.integers(1, 6))):
        kind = str(rng.choice(["jar", "tube", "perfume"]))
        if kind == "tube":  # squeeze tube lying along y, partly full
            r, hl, mat = rng.uniform(1.5, 2.2), rng.uniform(6, 9), str(rng.choice(["polyethylene", "Al"]))
            c, fl = _v(x + r, 0, r), rng.uniform(0.5, 0.9) * (hl - 0.05)
            p.add(_can(c, r, hl, 0.05, _Y), mat, _rho(rng, mat))
            p.add(Cylinder(c + _v(0, fl - hl + 0.05, 0), r - 0.05, fl, _Y), "cosmetic")
        else:  # jar or bottle with a screw lid
            glass = kind == "perfume" or rng.random() < 0.5
            r, hl, hc = rng.uniform(2.5, 4.5), rng.uniform(1.5, 3.5), rng.uniform(0.6, 1.0)
            wall = rng.uniform(0.3, 0.6) if glass else rng.uniform(0.15, 0.3)
            c = _v(x + r, 0, hl)
            p.add(_can(c, r, hl, wall), "glass" if glass else "polyethylene")
            _filled(p, c, r, hl, wall, rng.uniform(0.5, 0.95), "water" if kind == "perfume" else "cosmetic")
            p.add(_cup(c + _v(0, 0, hl + hc), r, hc, 0.15, 0.15, _FLIP), "ABS")
        x += 2 * r + 0.5
    return _thing(rng, p, "cosmetics")


# ----------------------------------------------------------------------------------------------
# look-alikes: dense, metallic or rare-earth-bearing, and innocent


def nickel_powder_jar(rng: np.random.Generator) -> Thing:
    """Genuine nickel powder, 100-1500 g at bulk density 3-5 g/cm^3, in a jar or a bag."""
    return _powder_thing(rng, "nickel powder jar", "Ni", (100, 1500), (3.0, 5.0), "nickel powder")


def ceria_polishing_powder(rng: np.random.Generator) -> Thing:
    """Cerium oxide polishing powder (for glass and stone), 100 g-1 kg."""
    desc = "cerium oxide polishing powder"
    return _powder_thing(rng, "ceria polishing powder", "CeO2", (100, 1000), (1.2, 2.5), desc)


def barium_sulfate_powder(rng: np.random.Generator) -> Thing:
    """Barium sulfate powder (filler, pigment, lab chemical), 100 g-1 kg."""
    desc = "barium sulfate powder"
    return _powder_thing(rng, "barium sulfate powder", "BaSO4", (100, 1000), (1.5, 2.5), desc)


def lanthanum_oxide_powder(rng: np.random.Generator) -> Thing:
    """Lanthanum oxide powder (lab chemical, optical glass), 50-500 g."""
    desc = "lanthanum oxide powder"
    return _powder_thing(rng, "lanthanum oxide powder", "La2O3", (50, 500), (1.2, 2.5), desc)


def loudspeaker(rng: np.random.Generator) -> Thing:
    """A loudspeaker driver (ferrite or NdFeB magnet), sometimes in a wooden cabinet lying on its back."""
    p = _Parts("loudspeaker")
    R, magnet = rng.uniform(4, 13), str(rng.choice(["ferrite", "NdFeB"], p=[0.6, 0.4]))
    height = _driver(rng, p, R, magnet)
    p.add(Box(_v(R * 0.6, 0, height * 0.5), _v(0.5, 0.3, 0.05)), "brass")  # solder tags
    if R <= 9 and rng.random() < 0.35:  # cabinet, the driver under its front baffle
        wall, (lo, hi) = rng.uniform(0.9, 1.5), p.bounds()
        half = (hi - lo) / 2 + wall + 0.2 + _v(rng.uniform(1, 3), rng.uniform(4, 8), rng.uniform(1, 4))
        p.add(_hbox(_v(0, 0, hi[2] + 0.1 + wall - half[2]), half, wall), "wood", _rho(rng, "wood", 0.6, 0.8))
    return _thing(rng, p, "loudspeaker")


def electric_motor(rng: np.random.Generator) -> Thing:
    """A permanent-magnet DC motor (NdFeB or ferrite arcs), sometimes with a steel gearhead."""
    p = _Parts("electric motor")
    r, magnet = rng.uniform(1.2, 3.8), str(rng.choice(["NdFeB", "ferrite"], p=[0.55, 0.45]))
    length = r * rng.uniform(1.6, 3.0)
    _motor(rng, p.at(_X, _v(0, 0, r)), r, length, magnet, rng.uniform(1.0, 3.0))
    p.add(Box(_v(-length / 2 - 0.4, 0, r), _v(0.15, 0.3, 0.4)), "brass")  # terminals
    if rng.random() < 0.3:  # planetary gearhead on the shaft side
        lg = r * rng.uniform(0.8, 1.5)
        q = p.at(_X, _v(length / 2 + 0.1 + lg / 2, 0, r))
        q.add(_can(_O, r, lg / 2, 0.15 * r), "steel")
        for a in (0, 2 * np.pi / 3, 4 * np.pi / 3):
            q.add(Cylinder(_v(np.cos(a), np.sin(a), 0) * 0.45 * r, 0.3 * r, 0.3 * lg), "steel")
    return _thing(rng, p, "electric motor")


def ferrite_magnets(rng: np.random.Generator) -> Thing:
    """A pack of ferrite magnets (discs, rings or blocks) in up to 6 stacks, 0.1-2.5 kg."""
    p = _Parts("ferrite magnets")
    kind, t, rho = str(rng.choice(["disc", "ring", "block"])), rng.uniform(0.3, 1.0), rng.uniform(4.6, 5.0)
    if kind == "block":
        foot = _v(rng.uniform(1, 2.5), rng.uniform(0.5, 1.25))
        area = 4 * foot[0] * foot[1]
    else:
        r = rng.uniform(0.5, 2.5) if kind == "disc" else rng.uniform(3, 5)
        foot, area = _v(r, r), np.pi * r**2 * (1 if kind == "disc" else 1 - 0.45**2)

    def magnet(c):
        if kind == "block":
            return Box(c, _v(*foot, t / 2))
        return Cylinder(c, r, t / 2) if kind == "disc" else _tube(c, r, 0.45 * r, t / 2)

    n = max(2, int(np.exp(rng.uniform(np.log(100), np.log(2500))) / (area * t * rho)))
    spacer = rng.uniform(0.05, 0.1) if rng.random() < 0.5 else 0.0
    per = max(1, min(n, int(10 / (t + spacer))))
    for s in range(min(-(-n // per), 6)):
        xy = _v((s % 3) * (2 * foot[0] + 0.4), (s // 3) * (2 * foot[1] + 0.4), 0)
        for k in range(min(per, n - s * per)):
            z = k * (t + spacer)
            p.add(magnet(xy + _v(0, 0, z + t / 2)), "ferrite", rho)
            if spacer:
                p.add(Box(xy + _v(0, 0, z + t + spacer / 2), _v(*foot, spacer / 2)), "cardboard")
    if rng.random() < 0.7:
        _box_around(rng, p, "cardboard", rng.uniform(0.15, 0.25), 0.3)
    else:
        _box_around(rng, p, "polyethylene", 0.008, 0.2)
    return _thing(rng, p, "ferrite magnets")


def ceramic_tableware(rng: np.random.Generator) -> Thing:
    """Glazed porcelain (zircon or lead glaze): 1-4 mugs, 2-6 stacked plates or 1-3 bowls."""
    p = _Parts("ceramic tableware")
    glaze, g = str(rng.choice(["zircon_glaze", "lead_glaze"], p=[0.65, 0.35])), rng.uniform(0.01, 0.02)
    kind = str(rng.choice(["mugs", "plates", "bowls"]))
    if kind == "plates":
        r, t, rim, z = rng.uniform(9.5, 14), rng.uniform(0.4, 0.7), rng.uniform(0.5, 1.0), 0.0
        for _ in range(int(rng.integers(2, 7))):
            rho = _rho(rng, "porcelain")
            p.add(Cylinder(_v(0, 0, z + g / 2), r, g / 2), glaze)
            p.add(Cylinder(_v(0, 0, z + g + t / 2), r, t / 2), "porcelain", rho)
            z += g + t
            p.add(Cylinder(_v(0, 0, z + g / 2), r - 1.5, g / 2), glaze)
            p.add(_tube(_v(0, 0, z + rim / 2), r, r - 1.5, rim / 2), "porcelain", rho)  # raised rim
            z += rim
    else:
        mug = kind == "mugs"
        r, hl = _v(*rng.uniform([3.8, 4.5], [4.5, 5.5]) if mug else rng.uniform([6, 2.5], [9, 4.5]))
        wall, base = rng.uniform(0.3, 0.5), rng.uniform(0.5, 0.8)
        for k in range(int(rng.integers(1, 5 if mug else 4))):
            x = k * (2 * r + (3.5 if mug else 0.5))
            _glazed_cup(rng, p, _v(x, 0, hl), r, hl, wall, base, glaze, g)
            if mug:  # C-shaped handle of three bars
                hz = 0.7 * hl
                for zc in (hl + hz, hl - hz):
                    p.add(Box(_v(x + r + g + 0.8, 0, zc), _v(0.8, 0.35, 0.3)), "porcelain", 2.3)
                p.add(Box(_v(x + r + g + 1.9, 0, hl), _v(0.3, 0.35, hz + 0.3)), "porcelain", 2.3)
    if rng.random() < 0.5:
        _box_around(rng, p, "cardboard", rng.uniform(0.15, 0.3), 1.5)
    return _thing(rng, p, "ceramic tableware")


def ceramic_tiles(rng: np.random.Generator) -> Thing:
    """A small box of 2-6 glazed porcelain tiles (10-20 cm), stacked face to face."""
    p, z = _Parts("ceramic tiles"), 0.0
    a, t, rho = rng.uniform(10, 20), rng.uniform(0.6, 1.0), _rho(rng, "porcelain")
    b = a if rng.random() < 0.7 else rng.uniform(10, 20)
    glaze, g = str(rng.choice(["zircon_glaze", "lead_glaze"], p=[0.8, 0.2])), rng.uniform(0.02, 0.05)
    spacer = rng.uniform(0.1, 0.3) if rng.random() < 0.4 else 0.0
    for _ in range(int(rng.integers(2, 7))):
        p.add(Box(_v(0, 0, z + (t - g) / 2), _v(a / 2, b / 2, (t - g) / 2)), "porcelain", rho)
        p.add(Box(_v(0, 0, z + t - g / 2), _v(a / 2, b / 2, g / 2)), glaze)
        z += t
        if spacer:
            layer = Box(_v(0, 0, z + spacer / 2), _v(a / 2, b / 2, spacer / 2))
            p.add(layer, "foam", rng.uniform(0.02, 0.05))
            z += spacer
    if rng.random() < 0.8:
        _box_around(rng, p, "cardboard", rng.uniform(0.2, 0.35), 0.2)
    return _thing(rng, p, "ceramic tiles")


def batteries_pack(rng: np.random.Generator) -> Thing:
    """4-24 AA alkaline cells lying in rows, in a PVC blister or a cardboard box."""
    p = _Parts("batteries pack")
    n = int(rng.choice([4, 8, 10, 12, 16, 20, 24]))
    per = -(-n // (1 if n <= 10 else 2 if n <= 16 else 3))
    for k in range(n):
        _aa_cell(p, _v((k % per) * 1.5, (k // per) * 5.4, 0.725), _Y)
    if rng.random() < 0.5:
        _box_around(rng, p, "PVC", 0.025, 0.1)
    else:
        _box_around(rng, p, "cardboard", rng.uniform(0.05, 0.1), 0.2)
    return _thing(rng, p, "batteries")


def door_lock(rng: np.random.Generator) -> Thing:
    """A mortice sashlock (steel case, brass and steel bolts, levers) with a brass euro cylinder, or a
    brass padlock with a steel shackle; with 2-3 brass keys."""
    p = _Parts("door lock")
    if rng.random() < 0.6:
        w, h, t, wall = rng.uniform(7, 9), rng.uniform(13, 17), rng.uniform(1.3, 1.7), rng.uniform(0.1, 0.15)
        q, inner = p.at(_I, _v(0, 0, t / 2)), t / 2 - wall - 0.02
        q.add(_hbox(_O, _v(w / 2, h / 2, t / 2), wall), "steel", _rho(rng, "steel"))
        q.add(Box(_v(w / 2 + 0.15, 0, 0), _v(0.15, h / 2 + 2.5, 1.25)), "steel")  # forend
        q.add(Box(_v(w / 2 - 1.5, h / 4, 0), _v(1.4, 0.9, inner)), "brass")  # latch
        q.add(Box(_v(w / 2 - 1.5, -h / 4, 0), _v(1.4, 1.0, inner)), "steel")  # deadbolt
        q.add(Box(_v(-w / 4, -h / 4, 0), _v(w / 4 - 0.3, 1.5, 0.8 * inner)), "brass")  # lever pack
        q.add(Cylinder(_v(-w / 4, h / 4, 0), 0.9, inner), "Zn")  # follower
        lc, c = rng.uniform(3, 4), _v(0, -h / 2 - 2.5, 2.41)
        p.add(Cylinder(c, 0.85, lc, _X), "brass")  # euro cylinder: round body over a fin
        p.add(Box(c - _v(0, 0, 1.63), _v(lc, 0.5, 0.78)), "brass")
        ky = -h / 2 - 5.0
    else:
        w, h, t, rs = rng.uniform(4, 7), rng.uniform(4, 6), rng.uniform(2, 3), rng.uniform(0.35, 0.55)
        p.add(Box(_v(0, 0, t / 2), _v(w / 2, h / 2, t / 2)), "brass")
        for x in (-w / 2 + 1.0, w / 2 - 1.0):
            p.add(Cylinder(_v(x, h / 2 + 1.5, t / 2), rs, 1.5, _Y), "steel")  # shackle
        p.add(Box(_v(0, h / 2 + 3.0 + rs, t / 2), _v(w / 2 - 1.0 + rs, rs, rs)), "steel")
        ky = -h / 2 - 1.5
    for k in range(int(rng.integers(2, 4))):  # keys: bow and blade
        p.add(Box(_v(k * 2.6, ky, 0.1), _v(1.2, 1.0, 0.1)), "brass")
        p.add(Box(_v(k * 2.6, ky - 2.8, 0.1), _v(0.45, 1.8, 0.1)), "brass")
    return _thing(rng, p, "door lock")


def power_drill(rng: np.random.Generator) -> Thing:
    """A cordless drill: ABS body with a magnet motor, steel planetary gears, spindle and chuck, and
    a pack of 18650 cells under the handle."""
    p = _Parts("power drill")
    rb, hlb, w = rng.uniform(2.8, 3.3), rng.uniform(9, 11), rng.uniform(0.2, 0.3)
    p.add(_can(_O, rb, hlb, w, _X), "ABS", _rho(rng, "ABS"))
    rm, lm = min(rng.uniform(1.8, 2.2), rb - w - 0.1), rng.uniform(5, 6.5)
    xm = -hlb + w + 0.3 + lm / 2
    _motor(rng, p.at(_X, _v(xm, 0, 0)), rm, lm, str(rng.choice(["ferrite", "NdFeB"], p=[0.6, 0.4])), 0.6)
    rr, hg = rb - w - 0.55, rng.uniform(1.0, 1.5)
    xg = xm + lm / 2 + 0.8 + hg
    q = p.at(_X, _v(xg, 0, 0))
    q.add(_tube(_O, rr + 0.4, rr, hg), "steel")  # ring gear and three planets
    for a in (0, 2 * np.pi / 3, 4 * np.pi / 3):
        q.add(Cylinder(_v(np.cos(a), np.sin(a), 0) * 0.5 * rr, 0.32 * rr, 0.8 * hg), "steel")
    x_s, hc = xg + hg, rng.uniform(2.5, 3.5)
    p.add(Cylinder(_v((x_s + hlb + 0.5) / 2, 0, 0), 0.45, (hlb + 0.5 - x_s) / 2, _X), "steel")  # spindle
    p.add(Cylinder(_v(hlb + 0.5 + hc, 0, 0), 1.2, hc, _X), "steel")  # chuck in its sleeve
    p.add(_tube(_v(hlb + 0.5 + hc, 0, 0), 1.9, 1.2, hc, _X), "ABS")
    hh, xh = rng.uniform(9, 11), -0.2 * hlb
    p.add(_hbox(_v(xh, 0, -rb - hh / 2), _v(2.0, 1.6, hh / 2), w), "ABS")  # handle with trigger switch
    contacts = Box(_v(xh + 0.5, 0, -rb - 1.5), _v(0.5, 0.4, 0.5))
    p.add(Shell(Box(_v(xh + 0.5, 0, -rb - 1.5), _v(1.0, 0.8, 1.0)), contacts), "ABS")
    p.add(contacts, "Cu", 4.0)
    rows = int(rng.integers(1, 3))
    ph = _v(3.25 + 0.5, 5 * 0.9 + 0.4, rows * 0.9 + 0.3) + w
    pc = _v(xh + 1.0, 0, -rb - hh - ph[2])
    p.add(_hbox(pc, ph, w), "ABS")
    for y in _row(5, 1.8):
        for z in _row(rows, 1.8):
            _cell_18650(p, pc + _v(0, y, z), _X)
    return _thing(rng, p, "cordless drill")


BENIGN: dict[str, Callable[[np.random.Generator], Thing]] = {
    f.__name__: f
    for f in (
        garment_stack, jeans, shoes, towel, book, magazine_stack, plastic_toy, plush_toy,
        laptop, smartphone, power_bank, charger, headphones,
        wrench, hammer, screwdriver_set, cutlery_set, bolts_and_nuts, solder_reel, carbide_drill_bits,
        food_can, drinks_cans, glass_bottle, pet_bottle, cosmetics,
        nickel_powder_jar, ceria_polishing_powder, barium_sulfate_powder, lanthanum_oxide_powder,
        loudspeaker, electric_motor, ferrite_magnets, ceramic_tableware, ceramic_tiles,
        batteries_pack, door_lock, power_drill,
    )
}  # fmt: skip

# Dense, metallic or rare-earth-bearing goods that a dense-mass or colour rule would flag.
LOOKALIKES: tuple[str, ...] = (
    "wrench", "hammer", "screwdriver_set", "cutlery_set", "bolts_and_nuts", "solder_reel",
    "carbide_drill_bits", "food_can", "power_bank", "nickel_powder_jar", "ceria_polishing_powder",
    "barium_sulfate_powder", "lanthanum_oxide_powder", "loudspeaker", "electric_motor",
    "ferrite_magnets", "ceramic_tableware", "ceramic_tiles", "batteries_pack", "door_lock", "power_drill",
)  # fmt: skip
