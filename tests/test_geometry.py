"""Tests of the analytic line-scan ray geometry against hand-checkable answers and dense sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from parcelscan.sim.geometry import (
    Box,
    Cylinder,
    Ellipsoid,
    ScanGeometry,
    Shell,
    chord_map,
    random_rotation,
    rotation_matrix,
)

D_S, H_D = 50.0, 80.0  # source below belt, detector height (cm)


def _geometry(**kw: float) -> ScanGeometry:
    args = dict(
        pixel_mm=1.0, line_mm=2.0, n_pixels=37, n_lines=11, source_below_belt_cm=D_S, detector_height_cm=H_D
    )
    return ScanGeometry(**{**args, **kw})


def _make(kind: str, center, size: np.ndarray, rot: np.ndarray):
    """A primitive of the given kind; a cylinder takes radius size[0] and half-length size[1]."""
    if kind == "box":
        return Box(center, size, rot)
    if kind == "ellipsoid":
        return Ellipsoid(center, size, rot)
    return Cylinder(center, size[0], size[1], rot)


def _full_chords(prim, geometry: ScanGeometry) -> np.ndarray:
    """(n_lines, n_pixels) chords pasted from chord_map into a zero scan."""
    out = np.zeros((geometry.n_lines, geometry.n_pixels), dtype=np.float32)
    lines, pixels, chords = chord_map(prim, geometry)
    out[lines, pixels] = chords
    return out


def _inside(prim, points: np.ndarray) -> np.ndarray:
    """Brute-force points-inside test, (N, 3) world cm -> (N,) bool."""
    local = (points - prim.center) @ prim.rotation
    if isinstance(prim, Box):
        return np.all(np.abs(local) <= prim.half_size, axis=-1)
    if isinstance(prim, Ellipsoid):
        return ((local / prim.semi_axes) ** 2).sum(-1) <= 1.0
    radial = local[:, 0] ** 2 + local[:, 1] ** 2 <= prim.radius**2
    return radial & (np.abs(local[:, 2]) <= prim.half_length)


def test_rays_are_unit_and_end_on_detector_pixels():
    g = _geometry(x_source_cm=1.5, x_detector_centre_cm=-0.7)
    origins, dirs = g.rays(slice(2, 9), slice(3, 30))
    assert origins.shape == (7, 1, 3) and dirs.shape == (1, 27, 3)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=-1), 1.0)
    np.testing.assert_allclose(origins[:, 0], np.c_[np.full(7, 1.5), g.line_y_cm[2:9], np.full(7, -D_S)])
    length = (D_S + H_D) / dirs[..., 2]  # z grows by D_S + H_D from source to detector
    ends = origins + length[..., None] * dirs
    np.testing.assert_allclose(ends[..., 0], np.broadcast_to(g.pixel_x_cm[3:30], (7, 27)))
    np.testing.assert_allclose(ends[..., 2], H_D)
    # Every point along a pixel-centre ray projects onto that (line, pixel).
    for t in (10.0, 60.0, 100.0):
        line, pixel = g.project_point(origins + t * dirs)
        np.testing.assert_allclose(line, np.broadcast_to(np.arange(2, 9)[:, None], (7, 27)), atol=1e-9)
        np.testing.assert_allclose(pixel, np.broadcast_to(np.arange(3, 30), (7, 27)), atol=1e-9)


def test_belt_plane_pitch_is_pixel_mm():
    g = _geometry(pixel_mm=0.8)
    pixel = g.pixel_of_x_at_height(np.array([0.0, 0.08, -0.8]), 0.0)
    np.testing.assert_allclose(pixel, [18.0, 19.0, 8.0])
    assert g.magnification == pytest.approx((D_S + H_D) / D_S)


def test_central_ray_through_box_on_belt_gives_its_height():
    g = _geometry()
    height = 7.3
    box = Box(center=[0.0, g.line_y_cm[5], height / 2], half_size=[0.5, 0.5, height / 2])
    full = _full_chords(box, g)
    assert full[5, 18] == pytest.approx(height, rel=1e-6)  # pixel 18 of 37 is the vertical ray


@pytest.mark.parametrize("kind", ["box", "ellipsoid", "cylinder"])
def test_chords_match_dense_sampling_for_random_poses(kind):
    rng = np.random.default_rng(7)
    g = _geometry(pixel_mm=2.0, line_mm=3.0, x_source_cm=2.0)
    step = 2e-3
    for _ in range(6):
        center = [rng.uniform(-1, 1), rng.uniform(1.0, 2.3), rng.uniform(4, 20)]
        size = rng.uniform(0.3, 2.5, 3)
        rot = random_rotation(rng)
        prim = _make(kind, center, size, rot)
        lines, pixels, chords = chord_map(prim, g)
        assert chords.size > 0 and chords.max() > 0
        origins, dirs = g.rays(lines, pixels)
        t_centre = (center[2] + D_S) / dirs[0, :, 2]
        t = np.arange(-6.0, 6.0, step)
        hit_i, hit_j = np.nonzero(chords)
        pick = rng.integers(0, hit_i.size, 8)  # rays that hit, plus any rays of the window
        rows = np.r_[hit_i[pick], rng.integers(0, chords.shape[0], 8)]
        cols = np.r_[hit_j[pick], rng.integers(0, chords.shape[1], 8)]
        for i, j in zip(rows, cols, strict=True):
            pts = origins[i, 0] + (t_centre[j] + t)[:, None] * dirs[0, j]
            assert chords[i, j] == pytest.approx(_inside(prim, pts).sum() * step, abs=2 * step)


def test_ellipsoid_chord_through_centre_is_twice_the_semi_axis_along_the_ray():
    g = _geometry()
    _, dirs = g.rays(slice(4, 5), slice(30, 31))
    d = dirs[0, 0]
    # Local x axis along the ray: the chord through the centre is 2 * semi_axes[0].
    e1 = np.cross(d, [0.0, 1.0, 0.0])
    rot = np.c_[d, e1 / np.linalg.norm(e1), np.cross(d, e1 / np.linalg.norm(e1))]
    centre = [0.0, g.line_y_cm[4], 0.0] + d * (D_S + 12.0) / d[2] - [0.0, 0.0, D_S]
    ell = Ellipsoid(centre, [1.7, 0.4, 0.9], rot)
    assert _full_chords(ell, g)[4, 30] == pytest.approx(3.4, rel=1e-6)
    upright = Ellipsoid([0.0, g.line_y_cm[4], 12.0], [0.4, 0.9, 1.7])
    assert _full_chords(upright, g)[4, 18] == pytest.approx(3.4, rel=1e-6)


def test_cylinder_side_on_and_end_on():
    g = _geometry()
    y = g.line_y_cm[6]
    side_on = Cylinder(
        [0.0, y, 10.0], radius=1.2, half_length=1.5, rotation=rotation_matrix(0.0, np.pi / 2, 0.0)
    )
    assert _full_chords(side_on, g)[6, 18] == pytest.approx(2.4, rel=1e-6)
    along_belt = Cylinder(
        [0.0, y, 10.0], radius=1.2, half_length=1.5, rotation=rotation_matrix(0.0, 0.0, np.pi / 2)
    )
    assert _full_chords(along_belt, g)[6, 18] == pytest.approx(2.4, rel=1e-6)
    u = 0.7  # axis along x, passing the vertical ray at lateral distance u
    offset = Cylinder([0.0, y - u, 10.0], 1.2, 1.5, rotation_matrix(0.0, np.pi / 2, 0.0))
    assert _full_chords(offset, g)[6, 18] == pytest.approx(2 * math.sqrt(1.2**2 - u**2), rel=1e-6)
    end_on = Cylinder([0.0, y, 10.0], radius=1.2, half_length=1.5)
    full = _full_chords(end_on, g)
    assert full[6, 18] == pytest.approx(3.0, rel=1e-6)  # ray exactly parallel to the axis
    # A ray parallel to the axis but outside the radius misses: move the cylinder sideways.
    assert _full_chords(Cylinder([0.0, y + 1.3, 10.0], 1.2, 1.5), g)[6, 18] == 0.0


def test_shell_is_outer_minus_inner():
    g = _geometry()
    rot = rotation_matrix(0.3, -0.2, 0.5)
    outer = Ellipsoid([0.2, 1.1, 9.0], [1.5, 1.0, 2.0], rot)
    inner = Ellipsoid([0.2, 1.1, 9.0], [1.3, 0.8, 1.8], rot)
    shell = _full_chords(Shell(outer, inner), g)
    expected = _full_chords(outer, g) - _full_chords(inner, g)
    np.testing.assert_allclose(shell, expected, atol=1e-5)
    assert shell.max() > 0 and shell.min() >= 0
    # A cavity posed independently of the outer part (a mannequin torso with an insert-shaped void).
    cavity = Cylinder([0.4, 1.0, 8.6], 0.5, 0.7, rotation_matrix(1.0, 0.4, -0.3))
    hollow = _full_chords(Shell(outer, cavity), g)
    np.testing.assert_allclose(hollow, _full_chords(outer, g) - _full_chords(cavity, g), atol=1e-5)
    assert np.count_nonzero(_full_chords(cavity, g)) > 20
    boxes = Shell(Box([0, 1, 9], [1.5, 1.0, 2.0]), Box([0, 1, 9], [1.4, 0.9, 1.9]))
    assert _full_chords(boxes, g)[5, 18] == pytest.approx(0.2, rel=1e-5)  # lid + bottom, 0.1 cm each
    with pytest.raises(ValueError, match="inner"):
        Shell(inner, outer)


def test_chords_are_zero_outside_the_footprint_and_window_is_tight():
    g = _geometry(n_lines=41, line_mm=1.0, pixel_mm=0.5, n_pixels=101)
    box = Box([0.3, 2.0, 10.0], [0.6, 0.45, 2.0], rotation_matrix(0.4, 0.3, 0.2))
    lines, pixels, chords = chord_map(box, g)
    origins, dirs = g.rays()
    full = box.chord(origins, dirs)
    assert full.shape == (41, 101)
    outside = np.ones_like(full, dtype=bool)
    outside[lines, pixels] = False
    assert np.all(full[outside] == 0) and full.max() > 0
    np.testing.assert_allclose(chords, full[lines, pixels], rtol=1e-6)
    hit_lines, hit_pixels = np.nonzero(chords)
    assert hit_lines.min() <= 2 and hit_lines.max() >= chords.shape[0] - 3
    assert hit_pixels.min() <= 3 and hit_pixels.max() >= chords.shape[1] - 4


def test_primitive_outside_scan_gives_empty_map():
    g = _geometry()
    for centre in ([0.0, -5.0, 5.0], [0.0, 30.0, 5.0], [40.0, 1.0, 5.0]):
        lines, pixels, chords = chord_map(Box(centre, [1.0, 1.0, 1.0]), g)
        assert chords.shape == (0, 0) and chords.dtype == np.float32
        assert lines == slice(0, 0) and pixels == slice(0, 0)


def test_small_primitive_only_traces_its_window():
    g = _geometry(pixel_mm=0.8, line_mm=0.8, n_pixels=1024, n_lines=1000)
    lines, pixels, chords = chord_map(Box([5.0, 30.0, 10.0], [0.5, 0.5, 0.5]), g)
    assert chords.shape == (lines.stop - lines.start, pixels.stop - pixels.start)
    assert chords.shape[0] <= 14 and chords.shape[1] <= 14 and chords.dtype == np.float32


@pytest.mark.parametrize("z", [0.5, 30.0])
def test_projected_width_follows_magnification(z):
    g = _geometry(pixel_mm=0.8, n_pixels=301)
    width = 10.0
    slab = Box([1.0, g.line_y_cm[3], z], [width / 2, 0.5, 0.025])
    row = _full_chords(slab, g)[3]
    expected = width * D_S / (D_S + z) / 0.08  # in belt-plane pixels
    assert np.count_nonzero(row) == pytest.approx(expected, abs=1.0)


def test_thin_tilted_slab_chord_is_thickness_over_cosine():
    g = _geometry(pixel_mm=0.8, n_pixels=301)
    tilt = 0.5
    rot = rotation_matrix(0.0, tilt, 0.0)  # slab normal (local z) tilted in the x-z plane
    slab = Box([0.0, g.line_y_cm[5], 20.0], [10.0, 3.0, 0.025], rot)
    lines, pixels, chords = chord_map(slab, g)
    _, dirs = g.rays(lines, pixels)
    cos = np.abs(dirs[0] @ rot[:, 2])
    centre = np.abs(np.arange(pixels.start, pixels.stop) - 150) < 60  # well inside the slab's edges
    np.testing.assert_allclose(chords[5 - lines.start, centre], 0.05 / cos[centre], rtol=1e-5)


@pytest.mark.parametrize("kind", ["box", "ellipsoid", "cylinder"])
def test_sum_of_chords_gives_volume(kind):
    g = _geometry(pixel_mm=0.8, line_mm=0.8, n_pixels=257, n_lines=101)
    z, rot = 12.0, rotation_matrix(0.3, 0.5, -0.4)
    centre = [1.0, 4.0, z]
    prim, volume = {
        "box": (Box(centre, [1.5, 1.0, 0.7], rot), 8 * 1.5 * 1.0 * 0.7),
        "ellipsoid": (Ellipsoid(centre, [2.0, 1.5, 1.0], rot), 4 / 3 * np.pi * 2.0 * 1.5 * 1.0),
        "cylinder": (Cylinder(centre, 1.0, 1.5, rot), np.pi * 1.0 * 3.0),
    }[kind]
    footprint = 0.08 * (D_S + z) / D_S  # pixel width at the object's height (cm)
    total = chord_map(prim, g).chords.sum(dtype=np.float64) * footprint * 0.08
    assert total == pytest.approx(volume, rel=0.03)


@pytest.mark.parametrize("kind", ["box", "ellipsoid", "cylinder"])
def test_bounds_are_tight_and_conservative(kind):
    rng = np.random.default_rng(3)
    rot = random_rotation(rng)
    prim = _make(kind, [1, 2, 3], np.array([1.0, 2.0, 0.5]), rot)
    lo, hi = prim.bounds()
    pts = rng.uniform(lo - 0.5, hi + 0.5, (400_000, 3))
    inside = pts[_inside(prim, pts)]
    assert np.all(inside >= lo) and np.all(inside <= hi)
    np.testing.assert_allclose(inside.min(0), lo, atol=0.15)
    np.testing.assert_allclose(inside.max(0), hi, atol=0.15)


def test_rotations_are_proper_and_seeded():
    r = rotation_matrix(np.pi / 2, 0.0, 0.0)
    np.testing.assert_allclose(r @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12)
    for rot in (rotation_matrix(0.3, -1.1, 2.0), random_rotation(np.random.default_rng(1))):
        np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-12)
        assert np.linalg.det(rot) == pytest.approx(1.0)
    again = random_rotation(np.random.default_rng(5))
    np.testing.assert_array_equal(random_rotation(np.random.default_rng(5)), again)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pixel_mm", 0.0),
        ("pixel_mm", float("nan")),
        ("line_mm", -1.0),
        ("n_pixels", 1),
        ("n_pixels", 37.0),
        ("n_lines", True),
        ("n_lines", 50_000),
        ("source_below_belt_cm", 5.0),
        ("detector_height_cm", float("inf")),
        ("x_source_cm", float("nan")),
    ],
)
def test_bad_geometry_raises_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        _geometry(**{field: value})


def test_bad_primitives_raise_naming_the_field():
    with pytest.raises(ValueError, match="half_size"):
        Box([0, 0, 1], [1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="center"):
        Ellipsoid([0, 1], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="rotation"):
        Box([0, 0, 1], [1.0, 1.0, 1.0], np.diag([1.0, 1.0, -1.0]))
    with pytest.raises(ValueError, match="radius"):
        Cylinder([0, 0, 1], 0.0, 1.0)
    with pytest.raises(ValueError, match="z range"):
        chord_map(Box([0, 1, 70], [1.0, 1.0, 20.0]), _geometry())


def test_chord_accepts_single_rays_and_batches():
    box = Box([0.0, 0.0, 5.0], [1.0, 1.0, 1.0])
    source = np.array([0.0, 0.0, -D_S])
    single = box.chord(source, [0.0, 0.0, 1.0])
    assert single.shape == () and float(single) == pytest.approx(2.0)
    batch = box.chord(source, np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.6, 0.8]]))
    np.testing.assert_allclose(batch, [2.0, 0.0, 0.0])
    shell = Shell(box, Ellipsoid([0.0, 0.0, 5.0], [0.5, 0.5, 0.5]))
    assert float(shell.chord(source, [0.0, 0.0, 1.0])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        box.chord(source[:2], [0.0, 1.0])


def test_large_window_is_traced_in_blocks_without_seams():
    # ~150 pixels wide: chord_map traces ~430-line blocks, so 680 lines take two, the last one partial.
    g = _geometry(n_lines=700, n_pixels=211, line_mm=0.5, pixel_mm=0.5)
    box = Box([0.0, 17.5, 10.0], [4.0, 17.0, 3.0], rotation_matrix(0.02, 0.1, 0.0))
    lines, pixels, chords = chord_map(box, g)
    assert chords.shape[0] > 600
    origins, dirs = g.rays()
    np.testing.assert_allclose(chords, box.chord(origins, dirs)[lines, pixels], rtol=1e-6)
