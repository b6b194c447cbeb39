"""Scene catalogue: whole parcels with carriers, concealments, clutter and a declared manifest.

:func:`random_parcel` draws a scanner and a parcel from a :class:`SceneConfig`: a cardboard box of
realistic size holding one main carrier (a mannequin, a tile stack, a powder jar, a book, a
housing, a toy or a can; with a concealed mass for positives, innocent for negatives) among benign
clutter and look-alikes, and the customs declaration the sender made, honest or false.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..physics.materials import get_material
from . import objects
from .carriers import Carried, Payload, mannequin, other_carrier, powder_container, tile_stack
from .geometry import Box, Shell, rotation_matrix
from .scanner import ScannerConfig, random_scanner
from .scene import CONCEALMENT_TYPES, Item, ManifestItem, Scene, Thing

__all__ = ["SceneConfig", "build_scene", "random_parcel"]

RARE_EARTHS = ("Dy2O3", "Tb4O7", "Nd2O3", "NdFeB")
OTHER_DENSE = ("steel", "W", "Pb")
_RARE_EARTH_WEIGHTS = (0.4, 0.3, 0.15, 0.15)


@dataclass(frozen=True)
class SceneConfig:
    """What kind of parcels to draw. Masses in g, sizes in cm.

    positive_fraction : share of parcels with a concealed mass.
    concealment_weights : relative frequency of each concealment type among positives.
    mass_range_g : concealed mass, drawn log-uniformly.
    rare_earth_share : share of rare earth (vs steel, tungsten, lead) among masses hidden in carriers.
    lookalike_share : share of negatives whose main item is an innocent carrier (empty mannequin,
        plain tile stack, genuine nickel powder, ordinary book/housing/toy/can).
    clutter : (min, max) number of other items.
    false_manifest_rate : share of negative parcels whose declaration is nonetheless false.
    single_energy_share : share of scans from single-energy scanners.
    """

    positive_fraction: float = 0.5
    concealment_weights: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(CONCEALMENT_TYPES, 1.0)
    )
    mass_range_g: tuple[float, float] = (5.0, 2000.0)
    rare_earth_share: float = 0.75
    lookalike_share: float = 0.6
    clutter: tuple[int, int] = (1, 8)
    false_manifest_rate: float = 0.1
    max_parcel_cm: tuple[float, float, float] = (100.0, 60.0, 50.0)
    single_energy_share: float = 0.0

    def __post_init__(self) -> None:
        for name in (
            "positive_fraction",
            "rare_earth_share",
            "lookalike_share",
            "false_manifest_rate",
            "single_energy_share",
        ):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise ValueError(f"SceneConfig.{name} must be a fraction in [0, 1], got {v!r}")
        unknown = set(self.concealment_weights) - set(CONCEALMENT_TYPES)
        if (
            unknown
            or any(w < 0 for w in self.concealment_weights.values())
            or not any(w > 0 for w in self.concealment_weights.values())
        ):
            raise ValueError(
                f"SceneConfig.concealment_weights must map {CONCEALMENT_TYPES} to weights >= 0 "
                f"(not all zero), got {self.concealment_weights}"
            )
        lo, hi = self.mass_range_g
        if not 1 <= lo <= hi <= 20_000:
            raise ValueError(
                f"SceneConfig.mass_range_g must satisfy 1 <= low <= high <= 20000 g, got {self.mass_range_g}"
            )
        lo, hi = self.clutter
        if not 0 <= lo <= hi <= 40:
            raise ValueError(f"SceneConfig.clutter must satisfy 0 <= min <= max <= 40, got {self.clutter}")
        if len(self.max_parcel_cm) != 3 or min(self.max_parcel_cm) < 20 or max(self.max_parcel_cm) > 150:
            raise ValueError(
                f"SceneConfig.max_parcel_cm must be 3 sizes in [20, 150] cm, got {self.max_parcel_cm}"
            )


def _payload(rng: np.random.Generator, config: SceneConfig, concealment: str) -> Payload:
    lo, hi = config.mass_range_g
    mass = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    if concealment in ("tile_blend", "misdeclared_powder"):
        material = str(rng.choice(["Dy2O3", "Tb4O7", "Nd2O3"], p=[0.45, 0.45, 0.1]))
        return Payload(material, mass, "powder")
    if rng.random() < config.rare_earth_share:
        material = str(rng.choice(RARE_EARTHS, p=_RARE_EARTH_WEIGHTS))
        form = "block" if material == "NdFeB" else str(rng.choice(["block", "powder"]))
    else:
        material, form = str(rng.choice(OTHER_DENSE)), "block"
    if concealment == "tile_stack_layer" and form == "powder":
        form = "layer"
    return Payload(material, mass, form)


def _carrier(
    rng: np.random.Generator, config: SceneConfig, kind: str, payload: Payload | None, room: np.ndarray
) -> Carried:
    if kind == "mannequin":
        return mannequin(rng, payload, max_len_cm=float(room[1]))
    if kind in ("tile_stack_layer", "tile_blend", "tiles"):
        return tile_stack(rng, payload, blend=kind == "tile_blend", max_size_cm=room)
    if kind in ("misdeclared_powder", "nickel"):
        if payload is None:
            return Carried(objects.BENIGN["nickel_powder_jar"](rng))
        return powder_container(rng, payload.material, payload.mass_g, concealment=True)
    return other_carrier(rng, payload)


def _aabb_half(thing: Thing, rot: np.ndarray) -> np.ndarray:
    return np.abs(rot) @ (thing.size_cm / 2)


def _box_items(center: np.ndarray, half: np.ndarray, rng: np.random.Generator) -> list[Item]:
    """The corrugated box and, in most parcels, loose fill (crumpled paper or foam) around the goods."""
    wall = rng.uniform(0.3, 0.7)
    board = get_material("corrugated_board")
    shell = Shell(Box(center, half), Box(center, half - wall))
    items = [Item(shell, board, float(rng.uniform(*board.density_range_g_cm3)), group="parcel box")]
    if rng.random() < 0.6:
        fill = get_material(str(rng.choice(["packing_paper", "foam"])))
        inner = half - wall - 0.05
        items.append(
            Item(
                Box(center, inner),
                fill,
                float(rng.uniform(0.02, 0.06)),
                group="packing fill",
                texture=(float(rng.uniform(0.3, 0.6)), float(rng.uniform(2.0, 6.0))),
            )
        )
    return items


def build_scene(rng: np.random.Generator, config: SceneConfig, scanner: ScannerConfig) -> Scene:
    """Draw one parcel for a given scanner (its tunnel bounds the parcel)."""
    positive = rng.random() < config.positive_fraction
    kinds = [k for k, w in config.concealment_weights.items() if w > 0]
    weights = np.array([config.concealment_weights[k] for k in kinds], float)
    limit = np.minimum(
        np.array(config.max_parcel_cm, float)[[1, 0, 2]],
        [scanner.tunnel_width_cm - 5, 150, scanner.tunnel_height_cm - 3],
    )  # (x, y, z)
    room = limit - 3
    main: Carried | None = None
    category = "benign"
    if positive:
        category = str(rng.choice(kinds, p=weights / weights.sum()))
        main = _carrier(rng, config, category, _payload(rng, config, category), room)
    elif rng.random() < config.lookalike_share:
        kind = str(rng.choice(["mannequin", "tiles", "nickel", "other"], p=[0.3, 0.3, 0.2, 0.2]))
        main = _carrier(rng, config, kind, None, room)
        category = f"benign_{kind}"
    things: list[tuple[Thing, bool]] = [(main.thing, True)] if main is not None else []
    n_clutter = int(rng.integers(config.clutter[0], config.clutter[1] + 1))
    names = list(objects.BENIGN)
    for _ in range(n_clutter):
        pool = objects.LOOKALIKES if rng.random() < 0.35 else names
        things.append((objects.BENIGN[str(rng.choice(pool))](rng), False))

    # Box: big enough for the main item plus some room for the rest, within the tunnel.
    need = np.max([t.size_cm[[0, 1, 2]] for t, _ in things], axis=0) if things else np.array([20.0, 25, 10])
    volume = sum(float(np.prod(t.size_cm)) for t, _ in things)
    inner = np.maximum(need + rng.uniform(1, 6, 3), [15, 20, 8])
    while np.prod(inner) < 1.6 * volume and np.any(inner < limit - 2):
        inner = np.minimum(inner * 1.08, limit - 2)
    inner = np.minimum(inner, limit - 2)
    margin_front = rng.uniform(5, 15)
    length = inner[1] + 2 + margin_front + rng.uniform(5, 15)
    x_off = rng.uniform(-1, 1) * max(scanner.tunnel_width_cm / 2 - inner[0] / 2 - 3, 0)
    box_center = np.array([x_off, margin_front + inner[1] / 2 + 1, inner[2] / 2 + 1])
    scene = Scene(length_cm=float(length), category=category)
    for it in _box_items(box_center, inner / 2 + 1, rng):
        scene.add(it)

    lo_box, hi_box = box_center - inner / 2, box_center + inner / 2
    placed: list[tuple[np.ndarray, np.ndarray]] = []
    manifest: list[ManifestItem] = []
    for thing, is_main in things:
        spot = _place(rng, thing, lo_box, hi_box, placed, force=is_main)
        if spot is None:
            continue
        rot, offset = spot
        base = len(scene.items)
        scene.items += thing.posed(rot, offset)
        if is_main and main is not None:
            for m in main.masses:
                m.items = [base + i for i in m.items]
                scene.masses.append(m)
        if thing.declared is not None:
            manifest.append(ManifestItem(*thing.declared))
    scene.manifest = manifest
    scene.manifest_honest = not scene.masses
    if not positive and manifest and rng.random() < config.false_manifest_rate:
        _falsify(rng, scene)
    scene.description = ", ".join(m.description for m in scene.manifest)
    return scene


def _place(rng, thing: Thing, lo: np.ndarray, hi: np.ndarray, placed: list, force: bool):
    """Random pose inside [lo, hi] not overlapping earlier items (their AABBs); None if no room."""
    for attempt in range(40):
        if force or rng.random() < 0.5:  # packed square to the box, as big items are
            yaw = float(rng.choice([0.0, np.pi / 2])) + rng.normal(0, 0.08)
        else:
            yaw = float(rng.uniform(0, 2 * np.pi))
        rot = rotation_matrix(yaw, 0, 0)
        if not force and rng.random() < 0.25:  # lying on a side
            rot = (
                rot @ rotation_matrix(0, 0, np.pi / 2)
                if rng.random() < 0.5
                else rot @ rotation_matrix(0, np.pi / 2, 0)
            )
        half = _aabb_half(thing, rot)
        room = (hi - lo) / 2 - half
        if np.any(room < 0):
            if attempt < 20:
                continue
            rot = np.eye(3)
            half = _aabb_half(thing, rot)
            room = np.maximum((hi - lo) / 2 - half, 0)
            if not force and np.any((hi - lo) / 2 - half < -0.5):
                return None
        center = (lo + hi) / 2 + rng.uniform(-1, 1, 3) * room
        center[2] = lo[2] + half[2] + rng.uniform(0, 1) * room[2] * 2 if room[2] > 0 else (lo[2] + hi[2]) / 2
        box = (center - half, center + half)
        overlaps = any(np.all(box[0] < q[1] - 0.2) and np.all(q[0] + 0.2 < box[1]) for q in placed)
        if not overlaps or (force and attempt == 39):
            placed.append(box)
            return rot, center
    return None


_CHEAP = ("clothing", "books", "toys", "plastic goods", "gift")


def _falsify(rng: np.random.Generator, scene: Scene) -> None:
    """Make an innocent parcel's declaration false: a wrong description or understated mass."""
    k = int(rng.integers(len(scene.manifest)))
    item = scene.manifest[k]
    if rng.random() < 0.5:
        item.description = str(rng.choice([c for c in _CHEAP if c != item.description]))
    else:
        item.declared_mass_g = round(item.declared_mass_g / rng.uniform(2.5, 5), 0)
    scene.manifest_honest = False


def random_parcel(rng: np.random.Generator, config: SceneConfig | None = None) -> tuple[Scene, ScannerConfig]:
    """A random scanner and a random parcel for it."""
    config = config or SceneConfig()
    scanner = random_scanner(rng, single_energy=rng.random() < config.single_energy_share).calibrated()
    return build_scene(rng, config, scanner), scanner
