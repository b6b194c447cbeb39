"""Scene description: the physical contents of one parcel, and what is true about it.

A :class:`Scene` is a list of :class:`Item` (one solid of one material at one density) plus the
labelled concealed masses and the declared manifest. Rendering (``render.py``) turns it into a
scan; the catalogue (``catalogue.py``) builds scenes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..physics.materials import Material
from .geometry import Box, Cylinder, Ellipsoid, Primitive, Shell

__all__ = [
    "CONCEALMENT_TYPES",
    "ConcealedMass",
    "Item",
    "ManifestItem",
    "Scene",
    "Thing",
    "transform",
    "volume_cm3",
]

CONCEALMENT_TYPES = (
    "mannequin",  # compact mass inside a hollow mannequin part
    "tile_stack_layer",  # layer or block between or inside tiles of a stack
    "tile_blend",  # rare-earth oxide blended into the tile body itself
    "misdeclared_powder",  # jar or bag declared as nickel powder, in fact Dy2O3/Tb4O7
    "other_carrier",  # books, electronics housings, toys, cans
)


def volume_cm3(shape: Primitive) -> float:
    """Analytic volume of a primitive in cm^3."""
    if isinstance(shape, Box):
        return float(8 * np.prod(shape.half_size))
    if isinstance(shape, Ellipsoid):
        return float(4 / 3 * np.pi * np.prod(shape.semi_axes))
    if isinstance(shape, Cylinder):
        return float(np.pi * shape.radius**2 * 2 * shape.half_length)
    if isinstance(shape, Shell):
        return volume_cm3(shape.outer) - volume_cm3(shape.inner)
    raise TypeError(f"no volume for {type(shape).__name__}")


@dataclass
class Item:
    """One solid of one material.

    density_g_cm3 : actual density (a powder is lighter than its sintered form).
    texture : (relative amplitude, feature size in cm) of a smooth multiplicative density
        variation across the projection (folded cloth, loose powder), or None.
    group : the object this solid belongs to ("mannequin", "tile stack", "laptop" ...).
    """

    shape: Primitive
    material: Material
    density_g_cm3: float
    group: str = ""
    texture: tuple[float, float] | None = None

    @property
    def mass_g(self) -> float:
        return volume_cm3(self.shape) * self.density_g_cm3


@dataclass
class ConcealedMass:
    """A labelled positive: a dense mass hidden in a carrier.

    items : indices into ``Scene.items`` that make up the mass.
    material : name of the concealed material (e.g. "Dy2O3", "steel").
    mass_g : mass of the concealed material itself (for a blend, only the rare-earth share).
    benign_material, benign_fraction : what the mass's rays would hold if it were innocent, for the
        ideal-observer background: for a blended tile, plain porcelain at (1 - wt fraction) of the
        areal density; for an inserted mass, nothing (benign_material None).
    innocent_material : what the innocent carrier could hold in the mass's place in an unknown
        amount, for the discrimination observer: declared nickel in a powder jar, porcelain in a
        tile stack, paper in a book, food in a can; None where the carrier should be hollow
        (a mannequin shell, a toy, a housing), where detecting the mass is the whole task.
    """

    items: list[int]
    material: str
    mass_g: float
    concealment: str
    carrier: str
    form: str = "block"
    benign_material: Material | None = None
    benign_fraction: float = 0.0
    innocent_material: Material | None = None

    def __post_init__(self) -> None:
        if self.concealment not in CONCEALMENT_TYPES:
            raise ValueError(f"concealment must be one of {CONCEALMENT_TYPES}, got {self.concealment!r}")


@dataclass
class ManifestItem:
    """One line of a customs declaration."""

    description: str
    declared_mass_g: float
    hs_code: str | None = None

    def to_dict(self) -> dict:
        d = {"description": self.description, "declared_mass_g": round(self.declared_mass_g, 1)}
        if self.hs_code:
            d["hs_code"] = self.hs_code
        return d


@dataclass
class Scene:
    """A parcel's contents in the belt frame (cm; x across, y along the belt, z up).

    length_cm : extent along the belt that the scan must cover (parcel plus margins).
    """

    items: list[Item] = field(default_factory=list)
    masses: list[ConcealedMass] = field(default_factory=list)
    manifest: list[ManifestItem] = field(default_factory=list)
    manifest_honest: bool = True
    length_cm: float = 50.0
    description: str = ""
    category: str = "benign"

    def add(self, item: Item) -> int:
        self.items.append(item)
        return len(self.items) - 1


def transform(shape: Primitive, rotation: np.ndarray, offset: np.ndarray) -> Primitive:
    """Pose a primitive built in a local frame: x_new = rotation @ x + offset."""
    rotation = np.asarray(rotation, dtype=np.float64)
    offset = np.asarray(offset, dtype=np.float64)
    if isinstance(shape, Shell):
        return Shell(transform(shape.outer, rotation, offset), transform(shape.inner, rotation, offset))
    return replace(shape, center=rotation @ shape.center + offset, rotation=rotation @ shape.rotation)


@dataclass
class Thing:
    """A physical object built in its own frame (centred on the origin, inside +-size/2).

    name : what it is ("laptop", "nickel powder jar"); size_cm : (3,) extent of its bounding box.
    declared : how an honest sender declares it (description, net mass in g), or None if it is
        packing material. kind : a goods category key for the manifest catalogue.
    """

    name: str
    items: list[Item]
    size_cm: np.ndarray
    declared: tuple[str, float] | None = None

    @property
    def mass_g(self) -> float:
        return sum(it.mass_g for it in self.items)

    def posed(self, rotation: np.ndarray, offset: np.ndarray) -> list[Item]:
        """Its items moved into the parcel frame."""
        return [replace(it, shape=transform(it.shape, rotation, offset)) for it in self.items]
