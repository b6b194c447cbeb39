"""Carriers of the threat scenario, with or without a concealed mass.

Each builder returns a :class:`Carried`: the carrier as a :class:`Thing` in its own frame and
the concealed masses inside it (item indices relative to the thing). With ``payload=None`` the
same builder makes the innocent version (an empty mannequin, a plain tile stack, a genuine jar),
so that positives and negatives differ only by what was hidden.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..physics.materials import Material, get_material, mixture
from .geometry import Box, Cylinder, Ellipsoid, Shell, rotation_matrix
from .scene import ConcealedMass, Item, Thing

__all__ = ["Carried", "Payload", "mannequin", "other_carrier", "powder_container", "tile_stack"]

_I = np.eye(3)


@dataclass(frozen=True)
class Payload:
    """What to hide: material name, mass in g, and form ("block", "powder" or "layer")."""

    material: str
    mass_g: float
    form: str = "block"


@dataclass
class Carried:
    thing: Thing
    masses: list[ConcealedMass] = field(default_factory=list)


def _v(*xs: float) -> np.ndarray:
    return np.array(xs, dtype=np.float64)


def _density(rng: np.random.Generator, payload: Payload) -> float:
    lo, hi = get_material(payload.material).density_range_g_cm3
    if payload.form == "block":  # sintered or cast: 85-100 % of full density
        return float(rng.uniform(0.85, 1.0) * hi)
    return float(rng.uniform(max(lo, 1.5), min(4.0, hi)))  # packed powder


def _mass_shape(rng: np.random.Generator, payload: Payload, fit: np.ndarray):
    """A solid of the payload's mass: (shape at origin, density, half-extent (3,)).

    fit : (3,) half-extents available; the mass is shrunk (and made denser first) if needed.
    """
    rho = _density(rng, payload)
    volume = payload.mass_g / rho
    ratios = np.sort(rng.uniform([1.0, 0.5, 0.25], [1.0, 1.0, 0.7]))[::-1]
    if payload.form == "powder":  # a bag: flattened ellipsoid
        k = (volume / (4 / 3 * np.pi * np.prod(ratios))) ** (1 / 3)
        semi = np.minimum(ratios * k, fit * 0.95)
        return Ellipsoid(np.zeros(3), semi), rho, semi
    if rng.random() < 0.35:  # a slug: cylinder lying along x
        r_over_l = rng.uniform(0.25, 0.6)
        half_len = (volume / (2 * np.pi * r_over_l**2)) ** (1 / 3)
        r = min(r_over_l * half_len, fit[1] * 0.95, fit[2] * 0.95)
        half_len = min(half_len, fit[0] * 0.95)
        return Cylinder(np.zeros(3), r, half_len, rotation_matrix(0, np.pi / 2, 0)), rho, _v(half_len, r, r)
    k = (volume / (8 * np.prod(ratios))) ** (1 / 3)
    half = np.minimum(ratios * k, fit * 0.95)
    return Box(np.zeros(3), half), rho, half


def _moved(shape, offset: np.ndarray, rotation: np.ndarray = _I):
    from .scene import transform

    return transform(shape, rotation, offset)


def _hide(
    rng,
    payload: Payload,
    fit: np.ndarray,
    at: np.ndarray,
    concealment: str,
    carrier: str,
    items: list[Item],
    slack: np.ndarray | None = None,
    innocent: Material | None = None,
) -> ConcealedMass:
    """Add the payload as an item near ``at`` (random offset within ``slack``) and label it.

    innocent : what the carrier could innocently hold there (``ConcealedMass.innocent_material``).
    """
    shape, rho, half = _mass_shape(rng, payload, fit)
    room = np.maximum((fit - half) if slack is None else slack, 0)
    pos = at + rng.uniform(-1, 1, 3) * room
    items.append(
        Item(
            _moved(
                shape, pos, rotation_matrix(rng.uniform(0, np.pi), 0, 0) if payload.form == "powder" else _I
            ),
            get_material(payload.material),
            rho,
            group=f"concealed {payload.material}",
            texture=(0.1, 1.5) if payload.form == "powder" else None,
        )
    )
    mass = items[-1].mass_g
    return ConcealedMass(
        [len(items) - 1],
        payload.material,
        mass,
        concealment,
        carrier,
        payload.form,
        innocent_material=innocent,
    )


def mannequin(rng: np.random.Generator, payload: Payload | None = None, max_len_cm: float = 95.0) -> Carried:
    """A disassembled hollow mannequin (GFRP or plastic shell) lying in its box."""
    wall = rng.uniform(0.2, 0.5)
    shell_mat = get_material(str(rng.choice(["GFRP", "polyethylene", "ABS"])))
    rho = float(np.mean(shell_mat.density_range_g_cm3))
    torso_len = min(rng.uniform(55, 75), max_len_cm - 5)
    torso = _v(rng.uniform(14, 19), torso_len / 2, rng.uniform(9.5, 12.5))  # semi-axes, lying on its back
    items: list[Item] = []
    parts: list[tuple[str, np.ndarray, np.ndarray]] = []  # (name, centre, inner half-extent for hiding)

    def ellipsoid_part(name: str, center: np.ndarray, semi: np.ndarray) -> None:
        items.append(
            Item(
                Shell(Ellipsoid(center, semi), Ellipsoid(center, semi - wall)),
                shell_mat,
                rho,
                group="mannequin",
            )
        )
        parts.append((name, center, (semi - wall) / np.sqrt(3)))

    def limb(name: str, center: np.ndarray, radius: float, half_len: float) -> None:
        rot = rotation_matrix(0, 0, np.pi / 2)  # lying along y
        items.append(
            Item(
                Shell(
                    Cylinder(center, radius, half_len, rot),
                    Cylinder(center, radius - wall, half_len - wall, rot),
                ),
                shell_mat,
                rho,
                group="mannequin",
            )
        )
        parts.append(
            (name, center, _v((radius - wall) / np.sqrt(2), half_len - wall, (radius - wall) / np.sqrt(2)))
        )

    ellipsoid_part("torso", _v(0, 0, torso[2]), torso)
    width = 2 * torso[0]
    height = 2 * torso[2]
    if rng.random() < 0.7:  # head beside the torso
        head = _v(rng.uniform(8, 9.5), rng.uniform(10, 12), rng.uniform(8.5, 10))
        x = torso[0] + head[0] + 1
        ellipsoid_part("head", _v(x, -torso[1] + head[1] + rng.uniform(0, 10), head[2]), head)
        width = max(width, torso[0] + x + head[0])
        height = max(height, 2 * head[2])
    if rng.random() < 0.5:  # arms on the other side
        r, half = rng.uniform(3.5, 5), min(rng.uniform(26, 34), torso[1])
        limb("arm", _v(-torso[0] - r - 1, 0, r), r, half)
        width = max(width, 2 * torso[0] + 2 * r + 2 + (width - 2 * torso[0]))
    size = _v(width + 2, 2 * torso[1] + 2, height + 1)
    # Centre the bounding box on the origin.
    offset = -0.5 * (
        np.array([max(it.shape.bounds()[1][0] for it in items), 0, 0])
        + np.array([min(it.shape.bounds()[0][0] for it in items), 0, 0])
    ) - _v(0, 0, height / 2)
    items = [Item(_moved(it.shape, offset), it.material, it.density_g_cm3, it.group) for it in items]
    parts = [(n, c + offset, h) for n, c, h in parts]
    masses: list[ConcealedMass] = []
    if payload is not None:
        # Big masses go in the torso; small ones anywhere.
        choices = [p for p in parts if p[0] == "torso" or payload.mass_g < 300]
        name, center, fit = choices[int(rng.integers(len(choices)))]
        masses.append(_hide(rng, payload, fit, center, "mannequin", f"mannequin {name}", items))
        if rng.random() < 0.5:  # wrapped in foam to stop it rattling
            sh = items[-1].shape
            lo, hi = sh.bounds()
            pad = rng.uniform(0.5, 2.0)
            half = np.minimum((hi - lo) / 2 + pad, fit)
            items.append(
                Item(Box((lo + hi) / 2, half), get_material("foam"), rng.uniform(0.02, 0.08), group="foam")
            )
    declared = ("mannequin", sum(it.mass_g for it in items if it.group == "mannequin"))
    return Carried(Thing("mannequin", items, size, declared), masses)


def _tile(
    center: np.ndarray,
    half: np.ndarray,
    body,
    glaze,
    glaze_cm: float,
    rho: float,
    hole: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[Item]:
    """One tile (body + glaze on top); with ``hole`` = (centre, half) in x-y, a rectangular cut-out."""
    body_half = _v(half[0], half[1], half[2] - glaze_cm / 2)
    body_c = center - _v(0, 0, glaze_cm / 2)
    out = []
    if hole is None:
        out.append(Item(Box(body_c, body_half), body, rho, group="tile"))
    else:  # four boxes around the hole
        hc, hh = hole
        x0, x1 = body_c[0] - body_half[0], body_c[0] + body_half[0]
        y0, y1 = body_c[1] - body_half[1], body_c[1] + body_half[1]
        hx0, hx1, hy0, hy1 = hc[0] - hh[0], hc[0] + hh[0], hc[1] - hh[1], hc[1] + hh[1]
        for ax0, ax1, ay0, ay1 in (
            (x0, hx0, y0, y1),
            (hx1, x1, y0, y1),
            (hx0, hx1, y0, hy0),
            (hx0, hx1, hy1, y1),
        ):
            if ax1 - ax0 > 1e-3 and ay1 - ay0 > 1e-3:
                out.append(
                    Item(
                        Box(
                            _v((ax0 + ax1) / 2, (ay0 + ay1) / 2, body_c[2]),
                            _v((ax1 - ax0) / 2, (ay1 - ay0) / 2, body_half[2]),
                        ),
                        body,
                        rho,
                        group="tile",
                    )
                )
    out.append(
        Item(
            Box(center + _v(0, 0, half[2] - glaze_cm / 2), _v(half[0], half[1], glaze_cm / 2)),
            glaze,
            2.6,
            group="glaze",
        )
    )
    return out


def tile_stack(
    rng: np.random.Generator,
    payload: Payload | None = None,
    blend: bool = False,
    max_size_cm: np.ndarray | None = None,
) -> Carried:
    """A stack of glazed porcelain tiles, flat or on edge, with card separators.

    payload with blend=False: a layer between two tiles or a block in a cut-out of one tile;
    payload with blend=True: the payload's oxide blended (5-30 wt %) into the body of some tiles.
    """
    max_size = _v(60, 95, 45) if max_size_cm is None else max_size_cm
    sizes = [s for s in ((15, 15), (20, 20), (30, 30), (30, 60), (20, 40)) if s[1] <= max_size[1] - 4]
    w, tl = sizes[int(rng.integers(len(sizes)))]
    t = rng.uniform(0.7, 1.0)
    body = get_material("porcelain")
    glaze = get_material("lead_glaze" if rng.random() < 0.15 else "zircon_glaze")
    glaze_cm = rng.uniform(0.02, 0.05)
    rho = rng.uniform(2.3, 2.45)
    tile_mass = w * tl * t * rho
    n = int(np.clip(rng.integers(3, 13), 2, 28_000 / tile_mass))
    sep = rng.uniform(0.1, 0.3)
    on_edge = rng.random() < 0.3
    if on_edge:
        n = int(min(n, (max_size[0] - 4) / (t + sep)))
    n = max(n, 2)
    layer_at = (
        int(rng.integers(1, n)) if payload is not None and not blend and payload.form == "layer" else -1
    )
    hole_in = int(rng.integers(n)) if payload is not None and not blend and payload.form != "layer" else -1
    blend_w = rng.uniform(0.05, 0.30)
    n_blend = 0
    if payload is not None and blend:
        n_blend = int(np.clip(round(payload.mass_g / (blend_w * tile_mass)), 1, n))
    blended_idx = set(rng.choice(n, n_blend, replace=False).tolist()) if n_blend else set()
    items: list[Item] = []
    masses: list[ConcealedMass] = []
    z = 0.0
    layer_t = 0.0
    for i in range(n):
        if i == layer_at:  # a thin layer of packed powder between tiles i-1 and i
            layer_rho = _density(rng, Payload(payload.material, payload.mass_g, "powder"))
            area = min(payload.mass_g / (layer_rho * 0.2), 0.8 * w * tl)
            layer_t = payload.mass_g / (layer_rho * area)
            aspect = rng.uniform(0.6, 1.0)
            lw, ll = min(np.sqrt(area * aspect), 0.9 * w), min(np.sqrt(area / aspect), 0.9 * tl)
            layer_t = payload.mass_g / (layer_rho * lw * ll)
            c = _v(rng.uniform(-1, 1) * (w - lw) / 2, rng.uniform(-1, 1) * (tl - ll) / 2, z + layer_t / 2)
            items.append(
                Item(
                    Box(c, _v(lw / 2, ll / 2, layer_t / 2)),
                    get_material(payload.material),
                    layer_rho,
                    group=f"concealed {payload.material}",
                    texture=(0.1, 2.0),
                )
            )
            masses.append(
                ConcealedMass(
                    [len(items) - 1],
                    payload.material,
                    items[-1].mass_g,
                    "tile_stack_layer",
                    "tile stack",
                    "layer",
                    innocent_material=body,
                )
            )
            z += layer_t
        center = _v(0, 0, z + t / 2)
        if i in blended_idx:
            mat = get_material(payload.material)
            mix_rho = 1 / (blend_w / mat.density_g_cm3 + (1 - blend_w) / rho)
            mix = mixture(
                f"porcelain+{blend_w * 100:.0f}%{payload.material}",
                [(body, 1 - blend_w), (mat, blend_w)],
                mix_rho,
            )
            tile_items = _tile(center, _v(w / 2, tl / 2, t / 2), mix, glaze, glaze_cm, mix_rho)
            items += tile_items
            # All blended tiles are one concealment: one label, one mask region, their total oxide.
            if not masses:
                masses.append(
                    ConcealedMass(
                        [],
                        payload.material,
                        0.0,
                        "tile_blend",
                        "tile stack",
                        f"blend {blend_w * 100:.0f} wt% in {n_blend} of {n} tiles",
                        benign_material=body,
                        benign_fraction=rho / mix_rho,
                        innocent_material=body,
                    )
                )
            masses[0].items.append(len(items) - 2)
            masses[0].mass_g += blend_w * tile_items[0].mass_g
        elif i == hole_in:
            _, b_rho, half = _mass_shape(rng, payload, _v(w / 2 - 1.5, tl / 2 - 1.5, 50))
            if half[2] * 2 > t:  # fits the tile's thickness: a wider, thinner block of the same mass
                scale = np.sqrt(half[2] * 2 / (t * 0.9))
                half = np.minimum(
                    _v(half[0] * scale, half[1] * scale, t * 0.45), _v(w / 2 - 1, tl / 2 - 1, t * 0.45)
                )
            hc = _v(
                rng.uniform(-1, 1) * (w / 2 - half[0] - 1), rng.uniform(-1, 1) * (tl / 2 - half[1] - 1), 0
            )
            items += _tile(center, _v(w / 2, tl / 2, t / 2), body, glaze, glaze_cm, rho, hole=(hc, half))
            block = Box(
                _v(hc[0], hc[1], z + t / 2 - glaze_cm / 2),
                _v(half[0], half[1], min(half[2], t / 2 - glaze_cm)),
            )
            items.append(
                Item(block, get_material(payload.material), b_rho, group=f"concealed {payload.material}")
            )
            masses.append(
                ConcealedMass(
                    [len(items) - 1],
                    payload.material,
                    items[-1].mass_g,
                    "tile_stack_layer",
                    "tile stack",
                    "block in tile",
                    innocent_material=body,
                )
            )
        else:
            items += _tile(center, _v(w / 2, tl / 2, t / 2), body, glaze, glaze_cm, rho)
        z += t
        if i < n - 1:
            items.append(
                Item(
                    Box(_v(0, 0, z + sep / 2), _v(w / 2, tl / 2, sep / 2)),
                    get_material("cardboard"),
                    0.7,
                    group="separator",
                )
            )
            z += sep
    # Centre on the origin; stand on edge by turning the stack about the belt axis.
    rot = rotation_matrix(0, 0, 0) if not on_edge else np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]], float)
    items = [
        Item(
            _moved(it.shape, rot @ _v(0, 0, -z / 2), rot), it.material, it.density_g_cm3, it.group, it.texture
        )
        for it in items
    ]
    size = rot @ _v(w, tl, z)
    declared_mass = sum(it.mass_g for it in items if not it.group.startswith("concealed"))
    return Carried(
        Thing("ceramic tiles", items, np.abs(size) + 0.2, ("ceramic tiles", declared_mass)), masses
    )


def powder_container(rng: np.random.Generator, material: str, mass_g: float, concealment: bool) -> Carried:
    """A jar or bag declared as nickel powder, built exactly as the genuine one in ``objects``.

    With concealment=True it is labelled as a mis-declared powder.
    """
    from .objects import powder_package

    rho = float(rng.uniform(*np.clip(get_material(material).density_range_g_cm3, 1.5, 4.5)))
    thing = powder_package(rng, "nickel powder jar", material, mass_g, rho, "nickel powder")
    masses = []
    if concealment:
        carrier = "powder jar" if len(thing.items) > 1 else "powder bag"
        masses.append(
            ConcealedMass(
                [len(thing.items) - 1],
                material,
                thing.items[-1].mass_g,
                "misdeclared_powder",
                carrier,
                "powder",
                innocent_material=get_material("Ni"),
            )
        )
    return Carried(thing, masses)


def other_carrier(rng: np.random.Generator, payload: Payload | None = None) -> Carried:
    """Rare earth (or another dense mass) hidden in a book, an electronics housing, a toy or a can."""
    kind = str(rng.choice(["book", "electronics", "toy", "can"]))
    items: list[Item] = []
    if kind == "book":
        half = _v(rng.uniform(7, 12), rng.uniform(10, 15), rng.uniform(1.5, 3.5))
        items.append(
            Item(
                Box(_v(0, 0, 0), half),
                get_material("paper"),
                rng.uniform(0.7, 1.0),
                group="book",
                texture=(0.05, 3.0),
            )
        )
        fit, at = half * _v(0.7, 0.7, 0.8), _v(0, 0, 0)
        declared = "books"
    elif kind == "electronics":
        half = _v(rng.uniform(8, 20), rng.uniform(8, 15), rng.uniform(2, 6))
        wall = rng.uniform(0.15, 0.3)
        items.append(
            Item(
                Shell(Box(_v(0, 0, 0), half), Box(_v(0, 0, 0), half - wall)),
                get_material("ABS"),
                1.05,
                group="housing",
            )
        )
        items.append(
            Item(
                Box(_v(0, 0, -half[2] + wall + 0.2), _v(half[0] - 1, half[1] - 1, 0.08)),
                get_material("pcb"),
                1.9,
                group="pcb",
            )
        )
        items.append(
            Item(
                Cylinder(_v(half[0] * 0.5, 0, 0), rng.uniform(1.5, 3), min(half[2] - wall, 2.5) * 0.9),
                get_material("ferrite"),
                4.8,
                group="transformer",
            )
        )
        fit, at = _v(half[0] * 0.4, half[1] - 1.5, half[2] - wall - 0.5), _v(-half[0] * 0.45, 0, 0.2)
        declared = "electronics"
    elif kind == "toy":
        semi = _v(rng.uniform(6, 12), rng.uniform(6, 12), rng.uniform(5, 9))
        wall = rng.uniform(0.15, 0.3)
        items.append(
            Item(
                Shell(Ellipsoid(_v(0, 0, 0), semi), Ellipsoid(_v(0, 0, 0), semi - wall)),
                get_material("ABS"),
                1.05,
                group="toy",
            )
        )
        half = semi
        fit, at = (semi - wall) / np.sqrt(3), _v(0, 0, 0)
        declared = "toys"
    else:
        r, hh = rng.uniform(3.5, 5.5), rng.uniform(4.5, 7)
        items.append(
            Item(
                Shell(Cylinder(_v(0, 0, 0), r, hh), Cylinder(_v(0, 0, 0), r - 0.02, hh - 0.03)),
                get_material("steel"),
                7.85,
                group="can",
            )
        )
        items.append(
            Item(Cylinder(_v(0, 0, 0), r - 0.03, hh - 0.05), get_material("water"), 1.0, group="food")
        )
        half = _v(r, r, hh)
        fit, at = _v((r - 0.1) / np.sqrt(2), (r - 0.1) / np.sqrt(2), hh - 0.2), _v(0, 0, 0)
        declared = "canned food"
    masses = []
    if payload is not None:
        # a book or a can is uniform (more paper, more food could sit there); a housing or toy is hollow
        innocent = {"book": get_material("paper"), "can": get_material("water")}.get(kind)
        masses.append(
            _hide(rng, payload, fit, at, "other_carrier", kind, items, slack=fit * 0.2, innocent=innocent)
        )
    mass = sum(it.mass_g for i, it in enumerate(items) if not masses or i not in masses[0].items)
    return Carried(Thing(kind, items, 2 * half + 0.1, (declared, mass)), masses)
