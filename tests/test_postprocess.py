"""Post-processing on hand-drawn heatmaps with exact boxes (odd, unequal sizes so x/y mix-ups fail)."""

import numpy as np
import pytest

from parcelscan.postprocess import RegionPx, alarm_regions, parcel_score, regions_from_heatmap


def _map(rows: list[str]) -> np.ndarray:
    """Heatmap from strings: '.' = 0, a digit d = d / 10 (so '9' = 0.9)."""
    return np.array([[0.0 if c == "." else int(c) / 10 for c in r] for r in rows], np.float32)


# 7 rows (y) x 11 columns (x)
TWO_BLOBS = _map(
    [
        "...........",
        ".55........",
        ".59.....3..",
        "........73.",
        "........66.",
        "...........",
        "...........",
    ]
)


def test_two_blobs_give_exact_boxes_scores_and_centroids():
    regions = regions_from_heatmap(TWO_BLOBS, 0.5)
    assert [r.box for r in regions] == [(1, 1, 3, 3), (8, 3, 10, 5)]
    top, second = regions
    assert top.score == pytest.approx(0.9)
    assert top.area_px == 4
    assert top.mean_prob == pytest.approx((0.5 + 0.5 + 0.5 + 0.9) / 4)
    assert top.centroid == pytest.approx((2.0, 2.0))  # edge coordinates: pixels 1..2 -> centre 2.0
    # The 0.3 pixels are below threshold: the second region is 3 pixels (x 8..9, y 3..4).
    assert second.score == pytest.approx(0.7)
    assert second.area_px == 3
    assert second.centroid == pytest.approx(((8.5 + 8.5 + 9.5) / 3, (3.5 + 4.5 + 4.5) / 3))
    assert isinstance(top, RegionPx)
    assert all(isinstance(v, int) for r in regions for v in r.box)


def test_lower_threshold_grows_the_region_and_a_transposed_map_transposes_boxes():
    regions = regions_from_heatmap(TWO_BLOBS, 0.3)
    assert [r.box for r in regions] == [(1, 1, 3, 3), (8, 2, 10, 5)]
    assert regions[1].area_px == 5
    transposed = regions_from_heatmap(np.ascontiguousarray(TWO_BLOBS.T), 0.3)
    assert [r.box for r in transposed] == [(1, 1, 3, 3), (2, 8, 5, 10)]


def test_diagonal_touching_pixels_are_one_region_with_8_connectivity():
    heat = _map(
        [
            "........",
            ".6......",
            "..7.....",
            "...8....",
            "......4.",
            ".....4..",
            "........",
            "........",
        ]
    )
    regions = regions_from_heatmap(heat, 0.4)
    assert [r.box for r in regions] == [(1, 1, 4, 4), (5, 4, 7, 6)]
    assert [r.area_px for r in regions] == [3, 2]
    assert regions[0].score == pytest.approx(0.8)


def test_empty_and_threshold_edges():
    assert regions_from_heatmap(np.zeros((7, 11), np.float32), 0.5) == []
    heat = np.zeros((7, 11), np.float64)
    heat[2, 9] = 0.5
    heat[5, 0] = 1.0
    # A pixel exactly at the threshold belongs to a region (>=).
    assert [r.box for r in regions_from_heatmap(heat, 0.5)] == [(0, 5, 1, 6), (9, 2, 10, 3)]
    assert [r.box for r in regions_from_heatmap(heat, np.nextafter(0.5, 1))] == [(0, 5, 1, 6)]
    assert [r.box for r in regions_from_heatmap(heat, 1.0)] == [(0, 5, 1, 6)]
    assert regions_from_heatmap(heat * 0.9, 1.0) == []
    full = regions_from_heatmap(np.ones((7, 11)), 1.0)
    assert [(r.box, r.area_px) for r in full] == [((0, 0, 11, 7), 77)]


def test_min_area_and_max_regions():
    assert [r.box for r in regions_from_heatmap(TWO_BLOBS, 0.5, min_area_px=4)] == [(1, 1, 3, 3)]
    assert regions_from_heatmap(TWO_BLOBS, 0.5, min_area_px=5) == []
    assert [r.box for r in regions_from_heatmap(TWO_BLOBS, 0.5, max_regions=1)] == [(1, 1, 3, 3)]
    # Equal scores: the larger region first, then by position.
    heat = np.zeros((7, 11), np.float32)
    heat[0, 10] = 0.6
    heat[4:6, 2:4] = 0.6
    heat[6, 0] = 0.6
    assert [r.box for r in regions_from_heatmap(heat, 0.5)] == [(2, 4, 4, 6), (10, 0, 11, 1), (0, 6, 1, 7)]


def test_parcel_score_is_the_maximum():
    assert parcel_score(TWO_BLOBS) == pytest.approx(0.9)
    assert parcel_score(np.zeros((8, 8))) == 0.0


@pytest.mark.parametrize(
    ("heatmap", "match"),
    [
        ([[0.1, 0.2]], "heatmap must be a numpy array"),
        (np.zeros((2, 3, 4)), r"heatmap must have shape \(H, W\)"),
        (np.zeros((0, 3)), "must not be empty"),
        (np.array([[0.1, np.nan]]), "finite"),
        (np.array([[0.1, 1.5]]), r"probabilities in \[0, 1\]"),
        (np.array([[-0.1, 0.5]]), r"probabilities in \[0, 1\]"),
        (np.array([["a"]]), "dtype"),
    ],
)
def test_bad_heatmaps_raise(heatmap, match):
    with pytest.raises(ValueError, match=match):
        regions_from_heatmap(heatmap, 0.5)
    with pytest.raises(ValueError, match=match):
        parcel_score(heatmap)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": 1.1}, "threshold"),
        ({"threshold": float("nan")}, "threshold"),
        ({"threshold": True}, "threshold"),
        ({"threshold": 0.5, "min_area_px": 0}, "min_area_px"),
        ({"threshold": 0.5, "max_regions": 2.0}, "max_regions"),
        ({"threshold": 0.5, "grow_threshold": 0.0}, "grow_threshold"),
        ({"threshold": 0.5, "grow_threshold": float("nan")}, "grow_threshold"),
        ({"threshold": 0.5, "grow_threshold": True}, "grow_threshold"),
    ],
)
def test_bad_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        regions_from_heatmap(TWO_BLOBS, **kwargs)


# One object lit at 0.5-0.9 with a single confident pixel, and a lesser blob that never reaches 0.9.
GROW = _map(
    [
        "...........",
        ".5566......",
        ".5966...4..",
        "........5..",
        "...........",
    ]
)
PEAK = float(GROW.max())  # 0.9 in float32


def test_regions_grow_from_confident_pixels_over_the_lit_object():
    assert [r.box for r in regions_from_heatmap(GROW, PEAK)] == [(2, 2, 3, 3)]  # the peak alone
    grown = regions_from_heatmap(GROW, PEAK, grow_threshold=0.5)
    assert [r.box for r in grown] == [(1, 1, 5, 3)]  # the whole object; the 0.5 blob has no 0.9 pixel
    assert grown[0].area_px == 8 and grown[0].score == pytest.approx(0.9)
    assert grown[0].mean_prob == pytest.approx((0.5 * 3 + 0.6 * 4 + 0.9) / 8)
    lower = regions_from_heatmap(GROW, 0.5, grow_threshold=0.4)
    assert [r.box for r in lower] == [(1, 1, 5, 3), (8, 2, 9, 4)]
    # a grow level above the threshold is the threshold: growing never shrinks a region
    assert regions_from_heatmap(GROW, 0.6, grow_threshold=0.9) == regions_from_heatmap(GROW, 0.6)


def test_alarm_regions_grow_and_an_alarm_always_points_somewhere():
    # no alarm, nothing at the region threshold: no region
    assert alarm_regions(GROW, PEAK, 0.95, 0.95) == ([], 0.95)
    # alarm at a one-pixel peak: regions need 2 pixels, so the peak itself is the region ...
    found, level = alarm_regions(GROW, PEAK, 0.8, 0.85)
    assert [r.box for r in found] == [(2, 2, 3, 3)] and level == 0.85
    # ... or, growing, the object around it, measured down to the grow level
    found, level = alarm_regions(GROW, PEAK, 0.8, 0.85, grow_threshold=0.5)
    assert [r.box for r in found] == [(1, 1, 5, 3)] and level == 0.5
    # a threshold lowered by hand below the region threshold: the peak region, grown or not
    found, level = alarm_regions(GROW, PEAK, 0.3, 0.95, grow_threshold=0.5)
    assert [r.box for r in found] == [(1, 1, 5, 3)] and level == 0.5
    found, level = alarm_regions(GROW, PEAK, 0.3, 0.95)
    assert [r.box for r in found] == [(2, 2, 3, 3)] and level == PEAK
