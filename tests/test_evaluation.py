"""Metrics: exact AUROC cases, ROC shape, thresholds at a false-alarm rate, strata on hand-made records."""

import math

import cv2
import numpy as np
import pytest

from parcelscan.evaluation import (
    auroc,
    expected_tpr,
    localisation_hit,
    metric_intervals,
    paired_intervals,
    quality_targets,
    roc_curve,
    stratify,
    summary,
    threshold_at_fpr,
    tpr_at_fpr,
    write_roc_png,
)
from parcelscan.physics.observer import detection_probability


def _random_set(seed=0, n=300):
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.3
    # Rounded to one decimal: many ties, within and across classes.
    scores = np.round(np.clip(rng.normal(0.4 + 0.2 * labels, 0.2), 0, 1), 1)
    return scores, labels


def test_auroc_exact_cases():
    assert auroc([0.1, 0.2, 0.8, 0.9], [False, False, True, True]) == 1.0
    assert auroc([0.1, 0.2, 0.8, 0.9], [True, True, False, False]) == 0.0
    assert auroc([0.5] * 6, [1, 0, 1, 0, 0, 1]) == 0.5
    # pos {0.5, 0.7} against neg {0.5, 0.3}: 0.5 + 1 + 1 + 1 of 4 pairs
    assert auroc([0.5, 0.7, 0.5, 0.3], [1, 1, 0, 0]) == 0.875


def test_auroc_equals_pairwise_count_and_roc_area():
    scores, labels = _random_set()
    pos, neg = scores[labels], scores[~labels]
    diff = pos[:, None] - neg[None, :]
    brute = (np.sum(diff > 0) + 0.5 * np.sum(diff == 0)) / diff.size
    assert auroc(scores, labels) == pytest.approx(brute, abs=1e-12)
    fpr, tpr, _ = roc_curve(scores, labels)
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert area == pytest.approx(brute, abs=1e-12)


def test_roc_curve_is_monotone_and_each_point_is_its_threshold():
    scores, labels = _random_set(1)
    fpr, tpr, thr = roc_curve(scores, labels)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.all(np.diff(thr) < 0) and thr[-1] == -np.inf
    assert thr.size == np.unique(scores).size + 1
    for f, t, th in zip(fpr, tpr, thr, strict=True):  # alarm when score > threshold
        assert f == np.mean(scores[~labels] > th) and t == np.mean(scores[labels] > th)


def test_roc_curve_of_a_tie_is_one_diagonal_step():
    fpr, tpr, thr = roc_curve([0.3, 0.3, 0.9], [True, False, True])
    np.testing.assert_array_equal(fpr, [0, 0, 1])
    np.testing.assert_array_equal(tpr, [0, 0.5, 1])
    np.testing.assert_array_equal(thr, [0.9, 0.3, -np.inf])


def test_threshold_at_fpr_with_100_negatives():
    neg = np.random.default_rng(2).permutation(100) / 100  # 0.00 .. 0.99, shuffled
    t = threshold_at_fpr(neg, 0.01)
    assert t == 0.98  # the 99th smallest = second largest: exactly one negative (0.99) above it
    assert np.sum(neg > t) == 1
    assert threshold_at_fpr(neg, 0.001) == 0.99 and np.sum(neg > 0.99) == 0
    assert threshold_at_fpr(neg, 0.0) == 0.99
    assert threshold_at_fpr(neg, 0.05) == 0.94
    assert threshold_at_fpr(neg, 0.29) == 0.70  # 0.29 * 100 = 28.999999999999996 in floating point
    assert threshold_at_fpr(neg, 1.0) == -math.inf
    # Tied top negatives: allowing one alarm cannot split the tie, so neither may alarm.
    tied = np.r_[np.arange(98) / 100, 0.99, 0.99]
    assert threshold_at_fpr(tied, 0.01) == 0.99
    assert threshold_at_fpr(tied, 0.02) == 0.97


def test_tpr_at_fpr_hand_made_and_against_the_roc_curve():
    neg = np.arange(1, 11) / 10  # 0.1 .. 1.0
    pos = np.array([0.95, 0.85, 0.5, 0.05])
    scores, labels = np.r_[neg, pos], np.r_[np.zeros(10, bool), np.ones(4, bool)]
    assert tpr_at_fpr(scores, labels, 0.1) == 0.25  # threshold 0.9: only 0.95 alarms
    assert tpr_at_fpr(scores, labels, 0.15) == 0.25
    assert tpr_at_fpr(scores, labels, 0.2) == 0.5  # threshold 0.8
    assert tpr_at_fpr(scores, labels, 0.0) == 0.0
    assert tpr_at_fpr(scores, labels, 1.0) == 1.0
    scores, labels = _random_set(3)
    fpr, tpr, _ = roc_curve(scores, labels)
    for f in (0.0, 0.001, 0.01, 0.1, 0.33, 1.0):
        assert tpr_at_fpr(scores, labels, f) == tpr[fpr <= f].max()


def test_bad_metric_inputs_raise():
    with pytest.raises(ValueError, match="both classes"):
        auroc([0.1, 0.2], [True, True])
    with pytest.raises(ValueError, match="labels must have the shape"):
        roc_curve([0.1, 0.2], [True])
    with pytest.raises(ValueError, match="finite"):
        auroc([0.1, np.nan], [True, False])
    with pytest.raises(ValueError, match="labels must be bool"):
        auroc([0.1, 0.2], [2, 0])
    with pytest.raises(ValueError, match="fpr must be in"):
        threshold_at_fpr([0.1], 1.5)
    with pytest.raises(ValueError, match="negative_scores"):
        threshold_at_fpr([], 0.1)


def test_localisation_hit_uses_half_open_boxes():
    centres = [(1, 2), (3, 2), (2, 4), (2.5, 3.9), (9, 9)]
    assert localisation_hit(centres, [(1, 2, 3, 4)]) == [True, False, False, True, False]
    assert localisation_hit(centres, [(1, 2, 3, 4), (8, 8, 10, 10)]) == [True, False, False, True, True]
    assert localisation_hit(centres, []) == [False] * 5
    with pytest.raises(ValueError, match=r"region_boxes\[0\]"):
        localisation_hit(centres, [(1, 2, 3)])


def _mass(centre, concealment, mass_g):
    return {"centre": centre, "concealment": concealment, "material": "steel", "mass_g": mass_g, "dprime": 3}


RECORDS = [
    {"score": 0.1, "positive": False, "masses": [], "regions": [], "carrier": "box"},
    {"score": 0.2, "positive": False, "masses": [], "regions": [(0, 0, 2, 2)], "carrier": "bag"},
    {"score": 0.3, "positive": False, "masses": [], "regions": [], "carrier": "box"},
    {"score": 0.4, "positive": False, "masses": [], "regions": [], "carrier": "bag"},
    {
        "score": 0.9,
        "positive": True,
        "masses": [_mass((5, 5), "laptop", 50.0)],
        "regions": [(4, 4, 6, 6)],
        "carrier": "box",
    },
    {
        "score": 0.35,
        "positive": True,
        "masses": [_mass((2, 2), "laptop", 500.0), _mass((8, 8), "book", 2000.0)],
        "regions": [(1, 1, 3, 3), (10, 10, 12, 12)],
        "carrier": "bag",
    },
    {
        "score": 0.25,
        "positive": True,
        "masses": [_mass((3, 3), "book", 100.0)],
        "regions": [],
        "carrier": "box",
    },
]


def test_summary_on_hand_made_records():
    s = summary(RECORDS, threshold=0.3)
    assert (s["n_parcels"], s["n_positive"], s["n_negative"], s["n_masses"]) == (7, 3, 4, 4)
    assert s["auroc"] == 0.75  # 0.9 beats 4 negatives, 0.35 beats 3, 0.25 beats 2: 9 / 12
    # 4 negatives: no alarm is allowed at 1 % or 0.1 %, so both thresholds are the top negative.
    assert s["threshold_at_1pct"] == s["threshold_at_0.1pct"] == 0.4
    assert s["tpr_at_1pct"] == s["tpr_at_0.1pct"] == pytest.approx(1 / 3)
    assert s["fpr_at_1pct"] == 0.0
    assert s["tpr_at_threshold"] == pytest.approx(2 / 3) and s["fpr_at_threshold"] == 0.25
    assert s["hit_rate"] == 0.5  # laptop in parcel 6 and the mass of parcel 5 of 4 masses
    assert s["false_regions_per_parcel"] == pytest.approx(2 / 7)
    with pytest.raises(ValueError, match="threshold"):
        summary(RECORDS, threshold=float("nan"))


def test_stratify_by_a_mass_key_ranks_against_all_negatives():
    strata = stratify(RECORDS, "concealment")
    assert list(strata) == ["book", "laptop"]
    laptop, book = strata["laptop"], strata["book"]
    assert (laptop["n_parcels"], laptop["n_positive"], laptop["n_negative"], laptop["n_masses"]) == (
        2,
        2,
        0,
        2,
    )
    assert laptop["auroc"] == 0.875  # (4 + 3) / 8
    assert laptop["tpr_at_1pct"] == 0.5 and math.isnan(laptop["fpr_at_1pct"])
    assert laptop["hit_rate"] == 1.0 and laptop["false_regions_per_parcel"] == 0.5
    assert book["auroc"] == 0.625  # (3 + 2) / 8
    assert book["tpr_at_1pct"] == 0.0 and book["hit_rate"] == 0.0
    # Thresholds from elsewhere (e.g. a validation set) are applied as given.
    assert stratify(RECORDS, "concealment", thresholds={0.01: 0.3})["laptop"]["tpr_at_1pct"] == 1.0


def test_quality_targets_judge_each_target_and_count_only_detectable_masses_per_concealment():
    records = [{**r, "masses": [dict(m) for m in r["masses"]]} for r in RECORDS]
    for r in records[4:6]:  # the laptops and parcel 6's book: d' 10; parcel 7's book keeps d' 3
        for m in r["masses"]:
            m["dprime"] = 10.0
    rows = quality_targets(records, auroc_drop={"int8": 0.004, "fp16": -0.002}, strata_above_ideal=0)
    by = {r["target"]: r for r in rows}
    assert list(by) == [
        "parcel AUROC",
        "TPR at 1 % FPR",
        "TPR at 1 % FPR, book, masses with d' >= 5.55",
        "TPR at 1 % FPR, laptop, masses with d' >= 5.55",
        "localisation hit rate",
        "int8 AUROC within fp32's",
        "fp16 AUROC within fp32's",
        "strata above the ideal observer",
    ]
    assert by["parcel AUROC"]["measured"] == 0.75 and not by["parcel AUROC"]["met"]
    assert (
        by["TPR at 1 % FPR"]["measured"] == pytest.approx(1 / 3) and by["TPR at 1 % FPR"]["n_positive"] == 3
    )
    # at the 1 % point of the negatives (0.4): laptops 0.9 and 0.35, one of two; parcel 7's book
    # (d' 3) is left out, so the book row holds parcel 6 alone
    laptop = by["TPR at 1 % FPR, laptop, masses with d' >= 5.55"]
    book = by["TPR at 1 % FPR, book, masses with d' >= 5.55"]
    assert (laptop["measured"], laptop["n_positive"], book["measured"], book["n_positive"]) == (
        0.5,
        2,
        0.0,
        1,
    )
    assert by["localisation hit rate"]["measured"] == 0.5
    assert by["int8 AUROC within fp32's"]["met"] and not by["fp16 AUROC within fp32's"]["met"]
    assert by["strata above the ideal observer"]["met"]
    assert quality_targets(records, strata_above_ideal=2)[-1]["met"] is False

    separated = [{**r, "score": 0.95} if r["positive"] else r for r in records]
    by = {r["target"]: r for r in quality_targets(separated)}
    assert by["parcel AUROC"]["met"] and by["TPR at 1 % FPR"]["met"] and len(by) == 5
    assert by["TPR at 1 % FPR, book, masses with d' >= 5.55"]["met"]
    assert not by["localisation hit rate"]["met"]  # the regions did not move
    with pytest.raises(ValueError, match="unknown variant"):
        quality_targets(records, auroc_drop={"int4": 0.0})
    undetectable = [{**r, "masses": [{**m, "dprime": 1.0} for m in r["masses"]]} for r in records]
    assert [r["target"] for r in quality_targets(undetectable)] == [
        "parcel AUROC",
        "TPR at 1 % FPR",
        "localisation hit rate",
    ]


def test_quality_targets_set_the_tpr_rows_beside_the_discrimination_bound():
    records = [{**r, "masses": [dict(m) for m in r["masses"]]} for r in RECORDS]
    # d' for finding each mass (10: found; 3: parcel 7's book, left out of its row) and for telling
    # it from its carrier's innocent filling: parcel 5's laptop 10, parcel 6's laptop 0 and book 10
    for r, found, told in zip(records[4:], (10.0, 10.0, 3.0), ([10.0], [0.0, 10.0], [3.0]), strict=True):
        for m, d in zip(r["masses"], told, strict=True):
            m["dprime"], m["dprime_discrimination"] = found, d
    p10, p0, p3 = (detection_probability(d) for d in (10.0, 0.0, 3.0))
    by = {r["target"]: r for r in quality_targets(records, auroc_drop={"int8": 0.0})}
    # each parcel is found when any of its masses is: 1 - (1 - p0)(1 - p10) for parcel 6
    overall = (p10 + (1 - (1 - p0) * (1 - p10)) + p3) / 3
    assert by["TPR at 1 % FPR"]["discrimination_bound"] == pytest.approx(overall)
    assert 0.69 < overall < 0.71  # parcel 7's book (d' 3) is found one time in ten
    # the laptop row counts parcels 5 and 6 by their laptops alone; the book row parcel 6's book
    laptop = by["TPR at 1 % FPR, laptop, masses with d' >= 5.55"]["discrimination_bound"]
    assert laptop == pytest.approx((p10 + p0) / 2) and laptop == pytest.approx(0.5, abs=1e-4)
    assert by["TPR at 1 % FPR, book, masses with d' >= 5.55"]["discrimination_bound"] == pytest.approx(p10)
    for other in ("parcel AUROC", "localisation hit rate", "int8 AUROC within fp32's"):
        assert by[other]["discrimination_bound"] is None
    # a dataset without the discrimination d' (simulated before it was labelled): no bound
    del records[5]["masses"][1]["dprime_discrimination"]
    by = {r["target"]: r for r in quality_targets(records)}
    assert by["TPR at 1 % FPR"]["discrimination_bound"] is None
    assert by["TPR at 1 % FPR, book, masses with d' >= 5.55"]["discrimination_bound"] is None
    laptop_row = by["TPR at 1 % FPR, laptop, masses with d' >= 5.55"]
    assert laptop_row["discrimination_bound"] == pytest.approx(laptop)


def test_expected_tpr_counts_a_parcel_found_when_any_mass_is():
    assert expected_tpr([[0.5, 0.5], [0.0], [1.0, 0.0]]) == pytest.approx((0.75 + 0.0 + 1.0) / 3)
    assert math.isnan(expected_tpr([]))


def _scored(scores, labels):
    """Records of scores and labels; a positive's one mass is hit when its score exceeds 0.5."""
    return [
        {
            "score": float(s),
            "positive": bool(y),
            "masses": [{"centre": (1, 1)}] if y else [],
            "regions": [(0, 0, 2, 2)] if s > 0.5 else [],
        }
        for s, y in zip(scores, labels, strict=True)
    ]


def test_metric_intervals_hold_the_estimate_and_narrow_with_more_parcels():
    small = _scored(*_random_set(seed=1, n=300))
    large = _scored(*_random_set(seed=1, n=3000))
    a, b = metric_intervals(small), metric_intervals(large)
    assert list(a) == ["auroc", "tpr_at_1pct", "tpr_at_0.1pct", "hit_rate"]
    for records, iv in ((small, a), (large, b)):
        point = summary(records, 0.5)
        for k in ("auroc", "tpr_at_1pct", "hit_rate"):
            assert iv[k][0] <= point[k] <= iv[k][1]
    # ten times the parcels: about sqrt(10) = 3.2 times narrower
    ratio = (a["auroc"][1] - a["auroc"][0]) / (b["auroc"][1] - b["auroc"][0])
    assert 2.3 < ratio < 4.3
    assert metric_intervals(small, seed=0) == a  # reproducible
    assert metric_intervals(small, seed=5) != a
    narrow = metric_intervals(small, level=0.5)
    assert a["auroc"][0] < narrow["auroc"][0] < narrow["auroc"][1] < a["auroc"][1]


def test_paired_intervals_see_a_difference_the_separate_ones_cannot():
    scores, labels = _random_set(seed=2, n=400)
    base = _scored(scores, labels)
    # a slightly better model: every positive scores 0.03 higher, on the same parcels
    better = _scored(np.where(labels, scores + 0.03, scores), labels)
    lo, hi = paired_intervals(base, better)["auroc"]
    assert 0 < lo < hi  # the paired difference excludes 0
    sep_base, sep_better = metric_intervals(base)["auroc"], metric_intervals(better)["auroc"]
    assert sep_better[0] < sep_base[1]  # the separate intervals overlap
    assert paired_intervals(base, base) == {
        k: [0.0, 0.0] for k in ("auroc", "tpr_at_1pct", "tpr_at_0.1pct", "hit_rate")
    }


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda r: paired_intervals(r, r[1:]), "same parcels"),
        (lambda r: paired_intervals(r, r[::-1]), "same parcels"),  # same count, other order
        (lambda r: metric_intervals([x for x in r if x["positive"]]), "both positive and negative"),
        (lambda r: metric_intervals(r, n_resamples=10), "n_resamples"),
        (lambda r: metric_intervals(r, n_resamples=True), "n_resamples"),
        (lambda r: metric_intervals(r, level=1.0), "level"),
        (lambda r: metric_intervals(r, level="0.95"), "level"),
    ],
)
def test_bad_interval_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call(_scored(*_random_set(seed=3, n=50)))


def test_stratify_by_a_record_key_and_by_bins():
    strata = stratify(RECORDS, "carrier")
    box, bag = strata["box"], strata["bag"]
    assert (box["n_parcels"], box["n_positive"], box["n_negative"]) == (4, 2, 2)
    assert box["auroc"] == 0.75  # 0.9 and 0.25 against all four negatives: (4 + 2) / 8
    assert box["fpr_at_1pct"] == 0.0 and box["hit_rate"] == 0.5 and box["false_regions_per_parcel"] == 0.0
    assert bag["auroc"] == 0.75 and bag["tpr_at_1pct"] == 0.0
    assert bag["false_regions_per_parcel"] == pytest.approx(2 / 3)
    binned = stratify(RECORDS, "mass_g", bins=[0, 100, 1000])
    assert list(binned) == ["[0, 100)", "[100, 1000)", ">= 1000"]
    assert [v["n_parcels"] for v in binned.values()] == [1, 2, 1]
    assert [v["n_masses"] for v in binned.values()] == [1, 2, 1]
    lanes = stratify([{**r, "lane": 10 if i % 2 else 9} for i, r in enumerate(RECORDS)], "lane")
    assert list(lanes) == [9, 10]  # numeric order, not "10" < "9"
    assert sum(v["n_parcels"] for v in lanes.values()) == 7


@pytest.mark.parametrize(
    ("records", "key", "match"),
    [
        ([{**RECORDS[0], "positive": True}], "carrier", "needs at least one mass"),
        ([{"score": 0.1, "positive": False}], "carrier", "lacks key"),
        ([{**RECORDS[0], "score": float("nan")}], "carrier", "finite"),
        (RECORDS, "colour", "no record or mass has the key"),
        (RECORDS, "score", "key must be"),
        (RECORDS[4:], "carrier", "no negative parcel"),
    ],
)
def test_bad_records_raise(records, key, match):
    with pytest.raises(ValueError, match=match):
        stratify(records, key)


def test_roc_png_is_written_and_readable(tmp_path):
    scores, labels = _random_set(4)
    fpr, tpr, _ = roc_curve(scores, labels)
    curves = {"model A (AUROC 0.77)": (fpr, tpr), "chance": ([0, 1], [0, 1])}
    images = []
    for log in (False, True):
        path = tmp_path / f"roc_{log}.png"
        write_roc_png(path, curves, log_fpr=log, title="test set")
        img = cv2.imread(str(path))
        assert img is not None and img.shape == (600, 720, 3)
        first_colour = np.all(np.abs(img.astype(int) - (178, 114, 0)) < 30, axis=2)
        assert first_colour.sum() > 200  # the first curve and its legend swatch are drawn
        images.append(img)
    assert not np.array_equal(*images)
    with pytest.raises(OSError, match="could not write"):
        write_roc_png(tmp_path / "missing" / "roc.png", curves)
    with pytest.raises(ValueError, match="must lie in"):
        write_roc_png(tmp_path / "bad.png", {"x": ([0, 2], [0, 1])})
