"""Analytic ray geometry of a line-scan, fan-parallel X-ray parcel scanner.

Coordinate frame, all lengths in cm:
    x  across the belt, 0 at the belt centre;
    y  along the belt, in the direction of travel;
    z  up from the belt surface (the belt is the plane z = 0).

The source is a point below the belt at (x_source_cm, y, -source_below_belt_cm). The detector is a
straight row of ``n_pixels`` elements at z = detector_height_cm, symmetric about x_detector_centre_cm,
with physical pitch ``pixel_mm * magnification`` so that its pitch referred to the belt plane is
``pixel_mm`` (magnification = (d_s + h_d) / d_s). Scan line l images the plane y_l = (l + 0.5) * line_mm / 10:
every ray of line l runs from (x_source, y_l, -d_s) to pixel p at (x_p, y_l, h_d). Magnification is
thus across the belt only and depends on height: an object of width w at height z spans
w * d_s / (d_s + z) / pixel_cm pixels (fewer than on the belt, since it is nearer the detector).

Continuous image coordinates (line, pixel) put integers on line and pixel centres, so the ray of
(l, p) passes through (line, pixel) = (l, p) exactly.

Primitives are posed by ``center`` (3,) cm and ``rotation`` (3, 3), mapping local to world coordinates:
x_world = rotation @ x_local + center. A primitive's chord is the length of the infinite line of a ray
inside it; :func:`chord_map` requires the primitive to lie between source and detector heights, where
that equals the length along the source-detector segment (z grows monotonically along every ray).
Intersections are computed in float64 (thin 0.05 cm slabs at 100 cm range stay exact to ~1e-12 cm);
only the returned chord maps are float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

__all__ = ["Box", "ChordMap", "Cylinder", "Ellipsoid", "Primitive", "ScanGeometry", "Shell"]
__all__ += ["chord_map", "random_rotation", "rotation_matrix"]

_TINY = 1e-30  # stands in for a zero direction component: 1e3 cm / _TINY stays finite in float64
_RAYS_PER_BLOCK = 1 << 16  # float64 temporaries of 512 kB: about 3x faster than one full-size pass
_EPS_INDEX = 1e-9  # widens index windows so rays exactly on a bound are kept


def _check_number(name: str, value: object, lo: float, hi: float, integer: bool = False) -> None:
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds) or not (lo <= value <= hi):  # NaN fails too
        what = "an integer" if integer else "a finite number"
        raise ValueError(f"{name} must be {what} in [{lo}, {hi}], got {value!r}")


@dataclass(frozen=True)
class ScanGeometry:
    """Scanner geometry; see the module docstring for the frame. Lengths in the unit of the field name."""

    pixel_mm: float  # pixel pitch referred to the belt plane
    line_mm: float  # belt advance per scan line
    n_pixels: int
    n_lines: int
    source_below_belt_cm: float
    detector_height_cm: float
    x_source_cm: float = 0.0
    x_detector_centre_cm: float = 0.0

    def __post_init__(self) -> None:
        _check_number("pixel_mm", self.pixel_mm, 0.1, 5.0)
        _check_number("line_mm", self.line_mm, 0.1, 10.0)
        _check_number("n_pixels", self.n_pixels, 2, 4096, integer=True)
        _check_number("n_lines", self.n_lines, 2, 20000, integer=True)
        _check_number("source_below_belt_cm", self.source_below_belt_cm, 10.0, 300.0)
        _check_number("detector_height_cm", self.detector_height_cm, 20.0, 300.0)
        _check_number("x_source_cm", self.x_source_cm, -200.0, 200.0)
        _check_number("x_detector_centre_cm", self.x_detector_centre_cm, -200.0, 200.0)

    @property
    def magnification(self) -> float:
        """Detector-plane over belt-plane scale, (d_s + h_d) / d_s."""
        d_s = self.source_below_belt_cm
        return (d_s + self.detector_height_cm) / d_s

    @property
    def pixel_x_cm(self) -> np.ndarray:
        """(n_pixels,) physical x of the detector pixel centres at z = detector_height_cm."""
        pitch = self.pixel_mm / 10.0 * self.magnification
        return self.x_detector_centre_cm + (np.arange(self.n_pixels) - (self.n_pixels - 1) / 2.0) * pitch

    @property
    def line_y_cm(self) -> np.ndarray:
        """(n_lines,) y of the fan plane of each scan line."""
        return (np.arange(self.n_lines) + 0.5) * (self.line_mm / 10.0)

    def rays(
        self, line_slice: slice = slice(None), pixel_slice: slice = slice(None)
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rays of the selected lines and pixels, as broadcastable float64 arrays in cm.

        Returns origins (Nl, 1, 3) (the source, one per line) and unit directions (1, Np, 3) (one per
        pixel, as direction does not depend on the line); ``origins + t * directions`` broadcasts to
        (Nl, Np, 3) and reaches the detector at t = |detector pixel - source|.
        """
        y = self.line_y_cm[line_slice]
        x_p = self.pixel_x_cm[pixel_slice]
        origins = np.empty((y.size, 1, 3))
        origins[..., 0] = self.x_source_cm
        origins[:, 0, 1] = y
        origins[..., 2] = -self.source_below_belt_cm
        dirs = np.zeros((1, x_p.size, 3))
        dirs[0, :, 0] = x_p - self.x_source_cm
        dirs[..., 2] = self.source_below_belt_cm + self.detector_height_cm
        dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
        return origins, dirs

    def pixel_of_x_at_height(self, x: np.ndarray | float, z: np.ndarray | float) -> np.ndarray:
        """Continuous pixel coordinate of the ray through (x, z) cm; x, z broadcast; needs z > -d_s."""
        x, z = np.asarray(x, dtype=np.float64), np.asarray(z, dtype=np.float64)
        d_s = self.source_below_belt_cm
        if np.any(~np.isfinite(x)) or np.any(~(z > -d_s)):
            raise ValueError(f"x must be finite and z > -source_below_belt_cm = {-d_s}, got z = {z}")
        x_det = self.x_source_cm + (x - self.x_source_cm) * (d_s + self.detector_height_cm) / (d_s + z)
        pitch = self.pixel_mm / 10.0 * self.magnification
        return (x_det - self.x_detector_centre_cm) / pitch + (self.n_pixels - 1) / 2.0

    def project_point(self, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Continuous (line, pixel) coordinates of points ``xyz`` (..., 3) cm; each output has shape (...)."""
        xyz = np.asarray(xyz, dtype=np.float64)
        if xyz.ndim == 0 or xyz.shape[-1] != 3:
            raise ValueError(f"xyz must have shape (..., 3), got {xyz.shape}")
        line = xyz[..., 1] / (self.line_mm / 10.0) - 0.5
        return line, self.pixel_of_x_at_height(xyz[..., 0], xyz[..., 2])


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """(3, 3) rotation Rz(yaw) @ Ry(pitch) @ Rx(roll), angles in radians."""
    cy, sy, cp, sp, cr, sr = (f(a) for a in (yaw, pitch, roll) for f in (math.cos, math.sin))
    r_z = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    r_y = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
    r_x = np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
    return r_z @ r_y @ r_x


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """(3, 3) rotation drawn uniformly (Haar measure) from SO(3)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _frozen(obj: object, name: str, value: object, shape: tuple[int, ...], positive: bool = False) -> None:
    arr = np.array(value, dtype=np.float64)
    if arr.shape != shape or not np.all(np.isfinite(arr)) or (positive and not np.all(arr > 0)):
        need = "positive finite" if positive else "finite"
        raise ValueError(f"{name} must be {need} with shape {shape}, got {value!r}")
    arr.setflags(write=False)
    object.__setattr__(obj, name, arr)


class _Solid:
    """Pose handling shared by the primitives: world <-> local frames, world-space chords."""

    center: np.ndarray
    rotation: np.ndarray

    def _check_pose(self) -> None:
        _frozen(self, "center", self.center, (3,))
        _frozen(self, "rotation", self.rotation, (3, 3))
        r = self.rotation
        if not np.allclose(r.T @ r, np.eye(3), atol=1e-6) or np.linalg.det(r) < 0:
            raise ValueError(f"rotation must be a proper orthonormal (3, 3) matrix, got {r.tolist()}")

    def _local_chord(self, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # origins, dirs: float64 (..., 3) with ndim >= 2, broadcastable

    def local_chord(self, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        """Chord (cm) of local-frame rays: origins, unit dirs (..., 3) broadcastable -> (...) float64."""
        o, d = np.asarray(origins, dtype=np.float64), np.asarray(dirs, dtype=np.float64)
        shape = np.broadcast_shapes(o.shape, d.shape)
        if shape[-1:] != (3,):
            raise ValueError(f"origins and dirs must have shape (..., 3), got {o.shape} and {d.shape}")
        return self._local_chord(np.atleast_2d(o), np.atleast_2d(d)).reshape(shape[:-1])

    def chord(self, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        """Chord (cm) of world rays: origins, unit dirs (..., 3) broadcastable -> (...) float64."""
        o = (np.asarray(origins, dtype=np.float64) - self.center) @ self.rotation
        return self.local_chord(o, np.asarray(dirs, dtype=np.float64) @ self.rotation)


def _slab(o: np.ndarray, d: np.ndarray, half: float) -> tuple[np.ndarray, np.ndarray]:
    """Entry and exit t of the line o + t d through the slab |x| <= half (o, d one coordinate)."""
    inv = 1.0 / np.where(np.abs(d) < _TINY, _TINY, d)
    mid = o * -inv
    w = half * np.abs(inv)
    return mid - w, np.add(mid, w, out=mid)


@dataclass(frozen=True, eq=False)
class Box(_Solid):
    """Rectangular box with half extents ``half_size`` (3,) cm along its local axes."""

    center: np.ndarray
    half_size: np.ndarray
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        self._check_pose()
        _frozen(self, "half_size", self.half_size, (3,), positive=True)

    def _local_chord(self, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        """Slab method: the intersection of the three slabs' [entry, exit] intervals."""
        t_in, t_out = _slab(origins[..., 0], dirs[..., 0], self.half_size[0])
        for k in (1, 2):
            lo, hi = _slab(origins[..., k], dirs[..., k], self.half_size[k])
            np.maximum(t_in, lo, out=t_in)
            np.minimum(t_out, hi, out=t_out)
        return np.maximum(np.subtract(t_out, t_in, out=t_out), 0.0, out=t_out)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact world axis-aligned bounding box: (min xyz, max xyz) cm."""
        ext = np.abs(self.rotation) @ self.half_size
        return self.center - ext, self.center + ext


@dataclass(frozen=True, eq=False)
class Ellipsoid(_Solid):
    """Ellipsoid with semi-axes ``semi_axes`` (3,) cm along its local axes."""

    center: np.ndarray
    semi_axes: np.ndarray
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        self._check_pose()
        _frozen(self, "semi_axes", self.semi_axes, (3,), positive=True)

    def _local_chord(self, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        """Quadratic in the frame scaled to a unit sphere, where the ray parameter t is unchanged."""
        o, d = origins / self.semi_axes, dirs / self.semi_axes
        a = np.einsum("...k,...k->...", d, d)
        c = np.einsum("...k,...k->...", o, o) - 1.0
        b = o[..., 0] * d[..., 0]
        b += o[..., 1] * d[..., 1]
        b += o[..., 2] * d[..., 2]
        disc = np.multiply(b, b, out=b)
        disc -= a * c
        return 2.0 * np.sqrt(np.maximum(disc, 0.0, out=disc), out=disc) / a

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact world axis-aligned bounding box: (min xyz, max xyz) cm."""
        ext = np.sqrt(((self.rotation * self.semi_axes) ** 2).sum(axis=1))
        return self.center - ext, self.center + ext


@dataclass(frozen=True, eq=False)
class Cylinder(_Solid):
    """Solid cylinder of ``radius`` cm about its local z axis, flat caps at local z = +-``half_length`` cm."""

    center: np.ndarray
    radius: float
    half_length: float
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        self._check_pose()
        _check_number("radius", self.radius, 1e-6, 1e4)
        _check_number("half_length", self.half_length, 1e-6, 1e4)

    def _local_chord(self, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        """Side quadratic in local xy, intersected with the cap slab in local z."""
        ox, oy, dx, dy = origins[..., 0], origins[..., 1], dirs[..., 0], dirs[..., 1]
        a = np.maximum(dx * dx + dy * dy, _TINY)  # axis-parallel rays: a huge interval if inside, else none
        c = ox * ox + oy * oy - self.radius**2
        b = ox * dx
        b += oy * dy
        sq = b * b
        sq -= a * c
        np.sqrt(np.maximum(sq, 0.0, out=sq), out=sq)
        t_in, t_out = (-b - sq) / a, (sq - b) / a
        lo, hi = _slab(origins[..., 2], dirs[..., 2], self.half_length)
        t_out = np.minimum(t_out, hi, out=t_out)
        t_out -= np.maximum(t_in, lo, out=t_in)
        return np.maximum(t_out, 0.0, out=t_out)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact world axis-aligned bounding box: (min xyz, max xyz) cm."""
        axis = self.rotation[:, 2]
        ext = self.half_length * np.abs(axis) + self.radius * np.sqrt(np.maximum(1.0 - axis**2, 0.0))
        return self.center - ext, self.center + ext


@dataclass(frozen=True, eq=False)
class Shell(_Solid):
    """Hollow solid: chord(outer) - chord(inner), for an ``inner`` lying inside ``outer``.

    Containment is checked only on the bounding boxes (necessary, not sufficient): a rotated inner
    part can still poke through a curved outer surface. Chords are clipped at 0 so that such a shell
    never yields negative path lengths. Local frame, ``center`` and ``rotation`` are the outer's.
    """

    outer: Primitive
    inner: Primitive

    def __post_init__(self) -> None:
        for name, part in (("outer", self.outer), ("inner", self.inner)):
            if not isinstance(part, _Solid):
                raise ValueError(f"{name} must be a Box, Ellipsoid, Cylinder or Shell, got {part!r}")
        (o_lo, o_hi), (i_lo, i_hi) = self.outer.bounds(), self.inner.bounds()
        if np.any(i_lo < o_lo - 1e-9) or np.any(i_hi > o_hi + 1e-9):
            raise ValueError(f"inner bounds {i_lo}..{i_hi} must lie inside outer bounds {o_lo}..{o_hi}")

    @property
    def center(self) -> np.ndarray:  # type: ignore[override]
        return self.outer.center

    @property
    def rotation(self) -> np.ndarray:  # type: ignore[override]
        return self.outer.rotation

    def _local_chord(self, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        return self.chord(origins @ self.rotation.T + self.center, dirs @ self.rotation.T)

    def chord(self, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        """Chord (cm) of world rays: origins, unit dirs (..., 3) broadcastable -> (...) float64."""
        return np.maximum(self.outer.chord(origins, dirs) - self.inner.chord(origins, dirs), 0.0)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """World axis-aligned bounding box of the outer part: (min xyz, max xyz) cm."""
        return self.outer.bounds()


Primitive = Box | Ellipsoid | Cylinder | Shell


class ChordMap(NamedTuple):
    """Chords of one primitive: ``chords`` (len(lines), len(pixels)) float32 cm on the scan window."""

    lines: slice
    pixels: slice
    chords: np.ndarray


def chord_map(primitive: Primitive, geometry: ScanGeometry) -> ChordMap:
    """Path lengths (cm) of the primitive along the rays of the scan window its bounds can reach.

    Only the rays of that window are traced, so the cost scales with the primitive's projected size.
    Returns empty slices and a (0, 0) array when the primitive projects outside the scan. Raises
    ValueError if the primitive does not lie strictly between source and detector heights.
    """
    lo, hi = primitive.bounds()
    d_s, h_d = geometry.source_below_belt_cm, geometry.detector_height_cm
    if lo[2] <= -d_s or hi[2] >= h_d:
        raise ValueError(f"primitive z range {lo[2]:.3f}..{hi[2]:.3f} cm must lie within (-{d_s}, {h_d})")
    line_cm = geometry.line_mm / 10.0
    l0 = max(math.ceil(lo[1] / line_cm - 0.5 - _EPS_INDEX), 0)
    l1 = min(math.floor(hi[1] / line_cm - 0.5 + _EPS_INDEX) + 1, geometry.n_lines)
    # The fan projection of a box is the hull of its projected corners; only x and z matter.
    pix = geometry.pixel_of_x_at_height([lo[0], lo[0], hi[0], hi[0]], [lo[2], hi[2], lo[2], hi[2]])
    p0 = max(math.ceil(pix.min() - _EPS_INDEX), 0)
    p1 = min(math.floor(pix.max() + _EPS_INDEX) + 1, geometry.n_pixels)
    if l0 >= l1 or p0 >= p1:
        return ChordMap(slice(0, 0), slice(0, 0), np.zeros((0, 0), dtype=np.float32))
    lines, pixels = slice(l0, l1), slice(p0, p1)
    origins, dirs = geometry.rays(lines, pixels)
    chords = np.empty((l1 - l0, p1 - p0), dtype=np.float32)
    step = max(1, _RAYS_PER_BLOCK // (p1 - p0))  # blocks of whole lines keep temporaries in cache
    for start in range(0, l1 - l0, step):
        chords[start : start + step] = primitive.chord(origins[start : start + step], dirs)
    return ChordMap(lines, pixels, chords)
