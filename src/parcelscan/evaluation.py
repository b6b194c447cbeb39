"""Detection metrics for parcels: ROC, AUROC, TPR at a fixed false-alarm rate, localisation, strata.

Alarm convention, used everywhere here and by the ``threshold`` of a model card: a parcel ALARMS
when ``score > threshold`` (strictly). :func:`threshold_at_fpr` then returns an actual negative
score (the highest one allowed to stay silent), and a threshold of ``-inf`` alarms on everything.
(Pixel regions use ``heatmap >= region_threshold``, see :mod:`parcelscan.postprocess`.)

Record format (one dict per parcel) for :func:`summary` and :func:`stratify`::

    {"score": float,                      # parcel score from the model
     "positive": bool,                    # ground truth: holds at least one concealed mass
     "masses": [{"centre": (x, y),        # true mass centre, same grid and edge coordinates as regions
                 "concealment": str, "material": str, "mass_g": float, "dprime": float, ...}, ...],
     "regions": [(x0, y0, x1, y1), ...],  # reported boxes, half-open pixel-edge coordinates
     ...}                                 # any further keys, e.g. "carrier", "scanner", to stratify by

``masses`` is empty exactly when ``positive`` is False. Coordinates follow
:mod:`parcelscan.preprocess.tiling`: x across the belt (columns), y along it (rows); a centre
``(x, y)`` lies in a box when ``x0 <= x < x1`` and ``y0 <= y < y1``. ``regions`` should be what the
station shows: if it shows none for a parcel that does not alarm, record none.

Pure numpy; :func:`write_roc_png` draws with OpenCV (no matplotlib on a station).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

__all__ = [
    "FPR_TARGETS",
    "VARIANT_AUROC_TOLERANCE",
    "auroc",
    "expected_tpr",
    "localisation_hit",
    "metric_intervals",
    "paired_intervals",
    "quality_targets",
    "roc_curve",
    "stratify",
    "summary",
    "threshold_at_fpr",
    "tpr_at_fpr",
    "write_roc_png",
]

FPR_TARGETS = (0.01, 0.001)  # false-alarm rates reported as "tpr_at_1pct", "tpr_at_0.1pct"
_RECORD_KEYS = ("score", "positive", "masses", "regions")
#: How far a quantised model's AUROC may lie from the fp32 model's (the model's quality targets).
VARIANT_AUROC_TOLERANCE = {"int8": 0.005, "fp16": 0.001}


def _scores_labels(scores: object, labels: object) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"scores must be a non-empty 1-D sequence (N,), got shape {s.shape}")
    if y.shape != s.shape:
        raise ValueError(f"labels must have the shape of scores {s.shape}, got {y.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite, but they contain NaN or Inf")
    if y.dtype != bool:
        if not np.issubdtype(y.dtype, np.number) or not np.all((y == 0) | (y == 1)):
            raise ValueError(f"labels must be bool or 0/1, got dtype {y.dtype}")
        y = y.astype(bool)
    if y.all() or not y.any():
        raise ValueError(f"labels must contain both classes, got {int(y.sum())} positive of {y.size}")
    return s, y


def _check_fpr(fpr: object) -> float:
    if isinstance(fpr, (bool, np.bool_)) or not isinstance(fpr, (int, float, np.integer, np.floating)):
        raise ValueError(f"fpr must be a number in [0, 1], got {fpr!r}")
    if not 0 <= float(fpr) <= 1:
        raise ValueError(f"fpr must be in [0, 1], got {fpr!r}")
    return float(fpr)


def roc_curve(scores: Sequence[float], labels: Sequence[bool]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve of (N,) scores against (N,) bool labels (True = positive).

    Returns ``(fpr, tpr, thresholds)``, float64 arrays of length (distinct scores + 1): point i is the
    operating point ``score > thresholds[i]``. thresholds run from the highest score (nothing alarms:
    (0, 0)) down through every distinct score to ``-inf`` (everything alarms: (1, 1)). Tied scores
    form one step, so a tie between a positive and a negative is a diagonal segment.
    """
    s, y = _scores_labels(scores, labels)
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last_of_group = np.r_[s[1:] != s[:-1], True]  # s is descending: groups of equal scores
    tp = np.cumsum(y)[last_of_group]
    fp = np.cumsum(~y)[last_of_group]
    fpr = np.r_[0.0, fp / fp[-1]]
    tpr = np.r_[0.0, tp / tp[-1]]
    thresholds = np.r_[s[last_of_group], -np.inf]
    return fpr, tpr, thresholds


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve = P(score of a random positive > that of a random negative).

    Equals the Mann-Whitney U statistic / (n_pos * n_neg), a tie counting 1/2; computed exactly
    from per-score counts (no trapezoid rounding beyond one division).
    """
    s, y = _scores_labels(scores, labels)
    _, inverse = np.unique(s, return_inverse=True)
    pos = np.bincount(inverse[y], minlength=inverse.max() + 1).astype(np.float64)
    neg = np.bincount(inverse[~y], minlength=inverse.max() + 1).astype(np.float64)
    neg_below = np.cumsum(neg) - neg
    return float(np.sum(pos * (neg_below + 0.5 * neg)) / (pos.sum() * neg.sum()))


def threshold_at_fpr(negative_scores: Sequence[float], fpr: float) -> float:
    """Smallest threshold t with FPR = #{negatives > t} / N <= ``fpr`` on these (N,) negative scores.

    With k = floor(fpr * N) negatives allowed to alarm, t is the (k + 1)-th largest negative score
    (ties counted), so exactly the k highest at most alarm; with 100 negatives and fpr = 1 %, t is the
    second largest (the 99th smallest). Returns ``-inf`` when fpr * N >= N (all may alarm).
    """
    neg = np.asarray(negative_scores, dtype=np.float64)
    if neg.ndim != 1 or neg.size == 0:
        raise ValueError(f"negative_scores must be a non-empty 1-D sequence (N,), got shape {neg.shape}")
    if not np.all(np.isfinite(neg)):
        raise ValueError("negative_scores must be finite, but they contain NaN or Inf")
    fpr = _check_fpr(fpr)
    # Relative slack so that e.g. 0.29 * 100 = 28.999999999999996 counts as 29 allowed alarms.
    k = math.floor(fpr * neg.size * (1 + 1e-12))
    if k >= neg.size:
        return -math.inf
    return float(np.sort(neg)[::-1][k])


def tpr_at_fpr(scores: Sequence[float], labels: Sequence[bool], fpr: float) -> float:
    """Highest TPR with FPR <= ``fpr``, the threshold being chosen on these same negatives.

    The threshold is :func:`threshold_at_fpr` of the negatives, the smallest allowed, so the TPR is
    the largest any ROC point with FPR <= fpr reaches. Optimistic for small N: the threshold is fitted
    to the data it is tested on; use :func:`summary` thresholds from one set on another to avoid that.
    """
    s, y = _scores_labels(scores, labels)
    t = threshold_at_fpr(s[~y], fpr)
    return float(np.mean(s[y] > t))


def _check_box(box: object, where: str) -> tuple[float, float, float, float]:
    b = np.asarray(box, dtype=np.float64)
    if b.shape != (4,) or not np.all(np.isfinite(b)):
        raise ValueError(f"{where} must be a finite box (x0, y0, x1, y1), got {box!r}")
    return tuple(b)  # type: ignore[return-value]


def localisation_hit(
    true_centres: Sequence[Sequence[float]], region_boxes: Sequence[Sequence[float]]
) -> list[bool]:
    """For each true mass centre (x, y): does it lie in any box (x0, y0, x1, y1) (half-open)?"""
    boxes = [_check_box(b, f"region_boxes[{i}]") for i, b in enumerate(region_boxes)]
    hits = []
    for i, c in enumerate(true_centres):
        p = np.asarray(c, dtype=np.float64)
        if p.shape != (2,) or not np.all(np.isfinite(p)):
            raise ValueError(f"true_centres[{i}] must be a finite point (x, y), got {c!r}")
        x, y = p
        hits.append(any(x0 <= x < x1 and y0 <= y < y1 for x0, y0, x1, y1 in boxes))
    return hits


def _false_regions(true_centres: Sequence[Sequence[float]], region_boxes: Sequence[Sequence[float]]) -> int:
    """Reported boxes that contain no true mass centre."""
    return sum(not any(localisation_hit(true_centres, [b])) for b in region_boxes)


def _check_records(records: object) -> list[dict]:
    if not isinstance(records, (list, tuple)) or not records:
        raise ValueError(f"records must be a non-empty list of dicts, got {type(records).__name__}")
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise ValueError(f"records[{i}] must be a dict, got {type(r).__name__}")
        missing = [k for k in _RECORD_KEYS if k not in r]
        if missing:
            raise ValueError(
                f"records[{i}] lacks key(s) {missing}; see parcelscan.evaluation's record format"
            )
        sc = r["score"]
        if isinstance(sc, (bool, np.bool_)) or not isinstance(sc, (int, float, np.integer, np.floating)):
            raise ValueError(f"records[{i}]['score'] must be a number, got {sc!r}")
        if not math.isfinite(float(sc)):
            raise ValueError(f"records[{i}]['score'] must be finite, got {sc!r}")
        if not isinstance(r["positive"], (bool, np.bool_)):
            raise ValueError(f"records[{i}]['positive'] must be a bool, got {r['positive']!r}")
        if bool(r["positive"]) != bool(r["masses"]):
            raise ValueError(
                f"records[{i}] is positive={r['positive']} with {len(r['masses'])} masses: "
                "a positive parcel needs at least one mass, a negative one none"
            )
        if any(not isinstance(m, dict) or "centre" not in m for m in r["masses"]):
            raise ValueError(f"records[{i}]['masses'] must be dicts with a 'centre' (x, y)")
    return list(records)


def _metrics(
    groups: Sequence[tuple[dict, list[dict]]], negatives: np.ndarray, thresholds: Mapping[float, float]
) -> dict[str, Any]:
    """Metrics of (record, its masses of interest) pairs, positives ranked against ``negatives``."""
    pos = np.array([r["score"] for r, _ in groups if r["positive"]], np.float64)
    own_neg = np.array([r["score"] for r, _ in groups if not r["positive"]], np.float64)
    out: dict[str, Any] = {"n_parcels": len(groups), "n_positive": pos.size, "n_negative": own_neg.size}
    out["n_masses"] = sum(len(ms) for _, ms in groups)
    if pos.size and negatives.size:
        labels = np.r_[np.ones(pos.size, bool), np.zeros(negatives.size, bool)]
        out["auroc"] = auroc(np.r_[pos, negatives], labels)
    else:
        out["auroc"] = math.nan
    for f, t in thresholds.items():
        out[f"tpr_at_{100 * f:g}pct"] = float(np.mean(pos > t)) if pos.size else math.nan
        out[f"fpr_at_{100 * f:g}pct"] = float(np.mean(own_neg > t)) if own_neg.size else math.nan
    hits = [h for r, ms in groups for h in localisation_hit([m["centre"] for m in ms], r["regions"])]
    out["hit_rate"] = float(np.mean(hits)) if hits else math.nan
    false = [_false_regions([m["centre"] for m in r["masses"]], r["regions"]) for r, _ in groups]
    out["false_regions_per_parcel"] = float(np.mean(false))
    return out


def _global_thresholds(records: Sequence[dict]) -> dict[float, float]:
    neg = [r["score"] for r in records if not r["positive"]]
    if not neg:
        raise ValueError("records hold no negative parcel: no false-alarm threshold can be chosen")
    return {f: threshold_at_fpr(neg, f) for f in FPR_TARGETS}


def summary(records: Sequence[dict], threshold: float) -> dict[str, Any]:
    """Overall table for ``records`` (see the module's record format) at operating ``threshold``.

    Keys: n_parcels, n_positive, n_negative, n_masses, auroc; for each of :data:`FPR_TARGETS`
    ``threshold_at_1pct`` (chosen on these negatives), ``tpr_at_1pct`` and ``fpr_at_1pct`` at it
    (likewise 0.1pct); at the given operating threshold (alarm when score > threshold) ``threshold``,
    ``tpr_at_threshold``, ``fpr_at_threshold``; hit_rate (fraction of all masses whose centre lies
    in a reported region) and false_regions_per_parcel (regions holding no mass centre, per parcel).
    """
    records = _check_records(records)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)):
        raise ValueError(f"threshold must be a number (alarm when score > threshold), got {threshold!r}")
    if math.isnan(threshold):
        raise ValueError("threshold must not be NaN")
    thresholds = _global_thresholds(records)
    neg = np.array([r["score"] for r in records if not r["positive"]], np.float64)
    out = _metrics([(r, r["masses"]) for r in records], neg, thresholds)
    for f, t in thresholds.items():
        out[f"threshold_at_{100 * f:g}pct"] = t
    pos = np.array([r["score"] for r in records if r["positive"]], np.float64)
    out["threshold"] = float(threshold)
    out["tpr_at_threshold"] = float(np.mean(pos > threshold)) if pos.size else math.nan
    out["fpr_at_threshold"] = float(np.mean(neg > threshold))
    return out


#: The metrics that :func:`metric_intervals` and :func:`paired_intervals` resample.
INTERVAL_METRICS = ("auroc", "tpr_at_1pct", "tpr_at_0.1pct", "hit_rate")


def _check_resampling(n_resamples: object, level: object) -> tuple[int, float]:
    if isinstance(n_resamples, (bool, np.bool_)) or not isinstance(n_resamples, (int, np.integer)):
        raise ValueError(f"n_resamples must be an integer >= 100, got {n_resamples!r}")
    if n_resamples < 100:
        raise ValueError(f"n_resamples must be an integer >= 100, got {n_resamples!r}")
    ok = isinstance(level, (int, float, np.integer, np.floating)) and not isinstance(level, bool)
    if not ok or not 0.5 <= float(level) < 1:
        raise ValueError(f"level must be a probability in [0.5, 1), got {level!r}")
    return int(n_resamples), float(level)


def _resampled_metrics(record_sets: Sequence[Sequence[dict]], n_resamples: int, seed: int) -> np.ndarray:
    """(sets, n_resamples, len(INTERVAL_METRICS)) metrics of the sets on the same resampled parcels.

    Positives and negatives are drawn with replacement separately (a stratified bootstrap: each
    resample keeps the set's class counts), the same draws for every set, so differences between
    sets are paired. The false-alarm thresholds are chosen again on each resample's negatives,
    as :func:`summary` chooses them on the set's.
    """
    sets = [_check_records(r) for r in record_sets]
    labels = [np.array([bool(r["positive"]) for r in rs]) for rs in sets]
    if any(y.shape != labels[0].shape or np.any(y != labels[0]) for y in labels[1:]):
        raise ValueError("paired record sets must hold the same parcels in the same order (positives differ)")
    y = labels[0]
    if y.all() or not y.any():
        raise ValueError("records need both positive and negative parcels to resample ROC metrics")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    rng = np.random.default_rng(seed)
    draws = [(rng.integers(n_pos, size=n_pos), rng.integers(n_neg, size=n_neg)) for _ in range(n_resamples)]
    out = np.empty((len(sets), n_resamples, len(INTERVAL_METRICS)))
    for k, rs in enumerate(sets):
        scores = np.array([r["score"] for r in rs], np.float64)
        pos, neg = scores[y], scores[~y]
        positives = [r for r in rs if r["positive"]]
        hits = np.array(
            [sum(localisation_hit([m["centre"] for m in r["masses"]], r["regions"])) for r in positives]
        )
        masses = np.array([len(r["masses"]) for r in positives])
        both = np.r_[np.ones(n_pos, bool), np.zeros(n_neg, bool)]
        for i, (ip, ineg) in enumerate(draws):
            p, n = pos[ip], neg[ineg]
            out[k, i, 0] = auroc(np.r_[p, n], both)
            out[k, i, 1] = np.mean(p > threshold_at_fpr(n, 0.01))
            out[k, i, 2] = np.mean(p > threshold_at_fpr(n, 0.001))
            out[k, i, 3] = hits[ip].sum() / masses[ip].sum()
    return out


def _interval(values: np.ndarray, level: float) -> list[float]:
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return [float(lo), float(hi)]


def metric_intervals(
    records: Sequence[dict], n_resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> dict[str, list[float]]:
    """Bootstrap confidence intervals {metric: [low, high]} of :data:`INTERVAL_METRICS` on ``records``.

    Percentile intervals over ``n_resamples`` stratified resamples (positives and negatives drawn
    with replacement separately), at ``level`` (0.95: 2.5 % and 97.5 % points), reproducible by
    ``seed``. They measure how far the figures could move on another held-out set of the same size
    from the same simulator: with 1,000 negatives, "TPR at 0.1 % FPR" rests on the top one or two.
    """
    n_resamples, level = _check_resampling(n_resamples, level)
    draws = _resampled_metrics([records], n_resamples, seed)[0]
    return {m: _interval(draws[:, j], level) for j, m in enumerate(INTERVAL_METRICS)}


def paired_intervals(
    reference: Sequence[dict],
    other: Sequence[dict],
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Bootstrap intervals {metric: [low, high]} of ``other``'s metric minus ``reference``'s, both
    scored on the same parcels (same order), each resample drawing the same parcels for both.

    Pairing removes the parcels' shared luck, so two models (fp32 and int8, or two training stages)
    are compared far more tightly than their separate intervals suggest: an interval that excludes
    0 is a real difference on this simulator's parcels.
    """
    n_resamples, level = _check_resampling(n_resamples, level)
    draws = _resampled_metrics([reference, other], n_resamples, seed)
    diff = draws[1] - draws[0]
    return {m: _interval(diff[:, j], level) for j, m in enumerate(INTERVAL_METRICS)}


def _stratum_label(v: Any, bins: np.ndarray | None) -> tuple[Any, Any]:
    """(sort key, label) of value ``v``, binned into [lo, hi) intervals when ``bins`` are given."""
    if bins is None:  # numbers in numeric order, then anything else by its text
        number = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
        return ((0, float(v), "") if number else (1, 0.0, str(v)), v)
    i = int(np.searchsorted(bins, float(v), side="right")) - 1
    if i < 0:
        return (i, f"< {bins[0]:g}")
    if i >= bins.size - 1:
        return (i, f">= {bins[-1]:g}")
    return (i, f"[{bins[i]:g}, {bins[i + 1]:g})")


def stratify(
    records: Sequence[dict],
    key: str,
    thresholds: Mapping[float, float] | None = None,
    bins: Sequence[float] | None = None,
) -> dict[Any, dict[str, Any]]:
    """Metrics per value of ``key``: {stratum: {n_parcels, n_positive, auroc, tpr_at_1pct, ...}}.

    key : a record key (e.g. "carrier": every parcel, negatives included, has one value) or, if the
    record lacks it, a mass key (e.g. "concealment", "material", "dprime"): a positive parcel then
    falls in the stratum of each distinct value among its masses, and negatives in none.
    thresholds : {fpr: threshold}, global thresholds chosen on ALL negatives (default: those of
    :data:`FPR_TARGETS` on the negatives in ``records``), so every stratum is judged at the one
    operating point a station would use. ``tpr_at_1pct`` is the stratum's TPR there; ``fpr_at_1pct``
    its own false-alarm rate (NaN if it has no negatives).
    bins : edges for a numeric key (e.g. mass_g, dprime): strata "[lo, hi)", "< first", ">= last".

    auroc compares the stratum's positives against ALL negatives, not its own: strata of a mass key
    hold no negatives at all, and one rule for every key keeps the column comparable across strata.
    hit_rate counts the stratum's masses; false_regions_per_parcel counts boxes holding no mass
    centre (of any mass) over the stratum's parcels.
    """
    records = _check_records(records)
    if not isinstance(key, str) or key in _RECORD_KEYS:
        raise ValueError(f"key must be a stratification key other than {_RECORD_KEYS}, got {key!r}")
    if thresholds is None:
        thresholds = _global_thresholds(records)
    edges = None if bins is None else np.asarray(bins, dtype=np.float64)
    if edges is not None and (edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0)):
        raise ValueError(f"bins must be at least 2 increasing edges, got {bins!r}")
    neg = np.array([r["score"] for r in records if not r["positive"]], np.float64)

    strata: dict[tuple[Any, Any], list[tuple[dict, list[dict]]]] = {}
    for r in records:
        if key in r:
            strata.setdefault(_stratum_label(r[key], edges), []).append((r, r["masses"]))
            continue
        by_value: dict[tuple[Any, Any], list[dict]] = {}
        for m in r["masses"]:
            if key in m:
                by_value.setdefault(_stratum_label(m[key], edges), []).append(m)
        for label, ms in by_value.items():
            strata.setdefault(label, []).append((r, ms))
    if not strata:
        raise ValueError(f"no record or mass has the key {key!r}")
    ordered = sorted(strata.items(), key=lambda kv: kv[0][0])
    return {label: _metrics(groups, neg, thresholds) for (_, label), groups in ordered}


def expected_tpr(probabilities: Sequence[Sequence[float]]) -> float:
    """An observer's expected TPR over positive parcels, given for each parcel the probabilities that
    it finds each of its masses: the mean over parcels of 1 - prod(1 - p) (a parcel is found when any
    of its masses is). NaN for no parcels."""
    if not probabilities:
        return float("nan")
    return float(np.mean([1 - np.prod([1 - float(p) for p in ps]) for ps in probabilities]))


def quality_targets(
    records: Sequence[dict],
    auroc_drop: Mapping[str, float] | None = None,
    strata_above_ideal: int | None = None,
) -> list[dict[str, Any]]:
    """Each quality target of the detector, measured on held-out ``records`` and judged met or not.

    The targets: parcel AUROC >= 0.99; TPR >= 0.95 at 1 % FPR; for every concealment type, TPR >=
    0.90 at 1 % FPR among masses the ideal observer finds (d' >= :func:`required_dprime`, 5.55: 90 %
    found among 1000 locations at 1 % false alarms); localisation hit rate >= 0.95; and, when given,
    ``auroc_drop`` {variant: fp32 AUROC - variant AUROC} within :data:`VARIANT_AUROC_TOLERANCE` either
    way, and no ``strata_above_ideal`` (a stratum whose TPR the ideal observer's cannot explain: a
    label leak).
    "At 1 % FPR" is the 1 % false-alarm point of these records' negatives, as ``tpr_at_1pct`` of
    :func:`summary` (not a card's threshold, which validation data chose); the hit rate is
    ``summary``'s, so it counts the regions in ``records``.

    Returns rows {"target", "measured", "rule" (">=": measured >= required; "<=": measured <= required;
    "within": |measured| <= required), "required", "met", "n_positive" (None where no positives are
    counted), "discrimination_bound"}. ``discrimination_bound`` (TPR rows only, where every counted
    mass has a ``dprime_discrimination``, else None) is the TPR the discrimination observer would
    reach on the same masses (:func:`expected_tpr` of
    :func:`~parcelscan.physics.observer.detection_probability`): finding the mass and telling it from
    the carrier's innocent filling in any amount. Below a target, it says the target needs more than
    the rays hold: that innocent carriers never hold that much more filling just there.
    """
    from .physics.observer import detection_probability, required_dprime

    def bound(recs: list[dict], kind: str | None = None) -> float | None:
        groups = [[m for m in r["masses"] if kind is None or m.get("concealment") == kind] for r in recs]
        groups = [ms for ms, r in zip(groups, recs, strict=True) if r["positive"] and ms]
        if not groups or any(m.get("dprime_discrimination") is None for ms in groups for m in ms):
            return None
        probabilities = [[detection_probability(m["dprime_discrimination"]) for m in ms] for ms in groups]
        return expected_tpr(probabilities)

    overall = summary(records, math.inf)  # checks the records; its threshold is not used here
    n_pos, at_1pct = overall["n_positive"], overall["threshold_at_1pct"]
    rows = [
        ("parcel AUROC", overall["auroc"], ">=", 0.99, n_pos, None),
        ("TPR at 1 % FPR", overall["tpr_at_1pct"], ">=", 0.95, n_pos, bound(list(records))),
    ]
    detectable = required_dprime()
    kept = []
    for r in records:
        ms = [m for m in r["masses"] if m.get("dprime", -math.inf) >= detectable]
        if ms or not r["positive"]:
            kept.append({**r, "masses": ms})
    if any(r["positive"] for r in kept):
        for kind, row in stratify(kept, "concealment", thresholds={0.01: at_1pct}).items():
            text = f"TPR at 1 % FPR, {kind}, masses with d' >= {detectable:.2f}"
            rows.append((text, row["tpr_at_1pct"], ">=", 0.90, row["n_positive"], bound(kept, kind)))
    rows.append(("localisation hit rate", overall["hit_rate"], ">=", 0.95, n_pos, None))
    for variant, drop in (auroc_drop or {}).items():
        if variant not in VARIANT_AUROC_TOLERANCE:
            raise ValueError(
                f"auroc_drop: unknown variant {variant!r}, not one of {list(VARIANT_AUROC_TOLERANCE)}"
            )
        rows.append(
            (
                f"{variant} AUROC within fp32's",
                float(drop),
                "within",
                VARIANT_AUROC_TOLERANCE[variant],
                None,
                None,
            )
        )
    if strata_above_ideal is not None:
        rows.append(("strata above the ideal observer", strata_above_ideal, "<=", 0, None, None))
    out = []
    for text, measured, rule, required, n, limit in rows:
        met = {">=": measured >= required, "<=": measured <= required, "within": abs(measured) <= required}
        out.append(
            {
                "target": text,
                "measured": measured,
                "rule": rule,
                "required": required,
                "met": bool(met[rule]) and math.isfinite(measured),
                "n_positive": n,
                "discrimination_bound": limit,
            }
        )
    return out


# Plot layout in pixels, and BGR colours that stay distinct for colour-blind readers (Okabe-Ito).
_MARGIN = (80, 24, 44, 64)  # left, right, top, bottom
_COLOURS = [(178, 114, 0), (0, 94, 213), (115, 158, 0), (167, 121, 204), (233, 180, 86), (66, 228, 240)]
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_LOG_MIN = 1e-3  # left edge of the log FPR axis (the first tick below)


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")  # Hershey fonts draw ASCII only


def write_roc_png(
    path: str | os.PathLike,
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    log_fpr: bool = False,
    title: str = "ROC",
    size: tuple[int, int] = (720, 600),
) -> None:
    """Draw ROC curves {legend name: (fpr, tpr)} into a PNG at ``path`` (OpenCV only).

    log_fpr : FPR axis logarithmic over [1e-3, 1] (the operating region of a screening station);
    FPR values below 1e-3 are drawn at the left edge. size : (width, height) in pixels.
    Draws axes with ticks and labels, a grid, the chance line (TPR = FPR) and a legend.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves must be a non-empty dict {name: (fpr, tpr)}")
    checked = {}
    for name, curve in curves.items():
        try:
            fpr, tpr = (np.asarray(c, dtype=np.float64) for c in curve)
        except (TypeError, ValueError):
            raise ValueError(f"curves[{name!r}] must be a pair (fpr, tpr) of number sequences") from None
        if fpr.ndim != 1 or fpr.shape != tpr.shape or fpr.size < 2:
            raise ValueError(f"curves[{name!r}]: fpr and tpr must be 1-D, equal length >= 2")
        if not (np.all(np.isfinite(fpr)) and np.all(np.isfinite(tpr))):
            raise ValueError(f"curves[{name!r}] must be finite")
        if fpr.min() < 0 or fpr.max() > 1 or tpr.min() < 0 or tpr.max() > 1:
            raise ValueError(f"curves[{name!r}]: fpr and tpr must lie in [0, 1]")
        checked[str(name)] = (fpr, tpr)
    width, height = (int(v) for v in size)
    if width < 200 or height < 200:
        raise ValueError(f"size must be at least (200, 200) pixels, got {size!r}")

    img = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = _MARGIN
    x0, x1, y0, y1 = left, width - right, height - bottom, top  # plot corners; image y grows downwards

    def px_x(fpr: np.ndarray) -> np.ndarray:
        if log_fpr:
            fpr = (np.log10(np.clip(fpr, _LOG_MIN, 1.0)) - np.log10(_LOG_MIN)) / -np.log10(_LOG_MIN)
        return np.round(x0 + np.asarray(fpr) * (x1 - x0)).astype(np.int32)

    def px_y(tpr: np.ndarray) -> np.ndarray:
        return np.round(y0 + np.asarray(tpr) * (y1 - y0)).astype(np.int32)

    def text(s: str, org: tuple[int, int], scale: float = 0.45, anchor: str = "left", bold: bool = False):
        (tw, th), _ = cv2.getTextSize(s, _FONT, scale, 1 + bold)
        dx = {"left": 0, "centre": -tw // 2, "right": -tw}[anchor]
        cv2.putText(img, s, (org[0] + dx, org[1] + th // 2), _FONT, scale, ink, 1 + bold, cv2.LINE_AA)

    grid, ink = (225, 225, 225), (40, 40, 40)
    if log_fpr:
        x_ticks = np.array([1e-3, 1e-2, 1e-1, 1.0])
        for x in px_x(np.outer(x_ticks[:-1], np.arange(2, 10)).ravel()):
            cv2.line(img, (int(x), y0), (int(x), y1), (242, 242, 242), 1)
    else:
        x_ticks = np.linspace(0, 1, 6)
    for v, x in zip(x_ticks, px_x(x_ticks), strict=True):
        cv2.line(img, (int(x), y0), (int(x), y1), grid, 1)
        cv2.line(img, (int(x), y0), (int(x), y0 + 5), ink, 1)
        text(f"{v:g}", (int(x), y0 + 16), anchor="centre")
    for v, y in zip(np.linspace(0, 1, 6), px_y(np.linspace(0, 1, 6)), strict=True):
        cv2.line(img, (x0, int(y)), (x1, int(y)), grid, 1)
        cv2.line(img, (x0 - 5, int(y)), (x0, int(y)), ink, 1)
        text(f"{v:g}", (x0 - 9, int(y)), anchor="right")

    chance = np.geomspace(_LOG_MIN, 1, 64) if log_fpr else np.linspace(0, 1, 40)
    cx, cy = px_x(chance), px_y(chance)
    for k in range(0, chance.size - 1, 2):  # dashed: every other segment
        cv2.line(img, (int(cx[k]), int(cy[k])), (int(cx[k + 1]), int(cy[k + 1])), (150, 150, 150), 1)
    for i, (fpr, tpr) in enumerate(checked.values()):
        pts = np.stack([px_x(fpr), px_y(tpr)], axis=1).reshape(-1, 1, 2)
        cv2.polylines(img, [pts], False, _COLOURS[i % len(_COLOURS)], 2, cv2.LINE_AA)
    cv2.rectangle(img, (x0, y1), (x1, y0), ink, 1)

    text(
        "false positive rate" + (" (log scale)" if log_fpr else ""),
        ((x0 + x1) // 2, height - 18),
        0.55,
        "centre",
    )
    text(_ascii(title), (width // 2, top // 2), 0.65, "centre", bold=True)
    label = "true positive rate"  # drawn on a strip, then turned upright along the y axis
    (tw, th), _ = cv2.getTextSize(label, _FONT, 0.55, 1)
    strip = np.full((th + 8, tw + 4, 3), 255, np.uint8)
    cv2.putText(strip, label, (2, th + 2), _FONT, 0.55, ink, 1, cv2.LINE_AA)
    strip = cv2.rotate(strip, cv2.ROTATE_90_COUNTERCLOCKWISE)[: height - top]
    sy = max(0, (y0 + y1 - strip.shape[0]) // 2)
    img[sy : sy + strip.shape[0], 8 : 8 + strip.shape[1]] = strip

    # Legend in the lower right of the plot, where ROC curves rarely are.
    names = [_ascii(n) for n in checked]
    line_h = 20
    text_w = max(cv2.getTextSize(n, _FONT, 0.45, 1)[0][0] for n in names)
    box_w, box_h = text_w + 44, line_h * len(names) + 8
    bx1, by1 = x1 - 8, y0 - 8
    bx0, by0 = bx1 - box_w, by1 - box_h
    cv2.rectangle(img, (bx0, by0), (bx1, by1), (255, 255, 255), -1)
    cv2.rectangle(img, (bx0, by0), (bx1, by1), (180, 180, 180), 1)
    for i, n in enumerate(names):
        yy = by0 + 4 + line_h * i + line_h // 2
        cv2.line(img, (bx0 + 6, yy), (bx0 + 32, yy), _COLOURS[i % len(_COLOURS)], 2, cv2.LINE_AA)
        text(n, (bx0 + 38, yy))

    path = os.fspath(path)
    if not cv2.imwrite(path, img):
        raise OSError(f"could not write the ROC plot to {path!r} (does its folder exist, is it a .png?)")
