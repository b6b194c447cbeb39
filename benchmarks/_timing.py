"""Timing helpers shared by the benchmarks.

- :func:`timed` wraps a function so its wall time adds up in a dict (stage breakdowns);
- :func:`interleave` runs several candidates in alternating rounds, so that a noisy neighbour (a
  training job, another engineer's tests) slows all of them alike and their ratios survive;
- :func:`speedup` is the median over rounds of the paired ratio of two candidates.

Times are in seconds unless a name says otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def timed(totals: dict[str, float], name: str, fn: Callable) -> Callable:
    """``fn`` wrapped so that each call adds its wall time (s) to ``totals[name]``."""

    def inner(*args, **kw):
        t = time.perf_counter()
        try:
            return fn(*args, **kw)
        finally:
            totals[name] += time.perf_counter() - t

    return inner


def interleave(
    candidates: dict[str, Callable[[], object]],
    duration_s: float,
    min_rounds: int = 3,
    max_rounds: int = 10_000,
    warmup: int = 1,
    progress: Callable[[float, float], None] | None = None,
) -> dict[str, list[float]]:
    """Wall time of each candidate per round, after ``warmup`` untimed calls of each.

    Every round calls every candidate once, starting one further along the list each round so no
    candidate always follows the same neighbour (ONNX Runtime's spinning threads, a cache flushed by a
    bigger model). Rounds continue until ``duration_s`` has passed and ``min_rounds`` are done.
    ``progress(elapsed_s, duration_s)`` is called after each round.
    Returns ``{name: [seconds per round]}``, rounds in order, so that ratios can be paired by round.
    """
    names = list(candidates)
    for _ in range(warmup):
        for name in names:
            candidates[name]()
    times: dict[str, list[float]] = {n: [] for n in names}
    start = time.perf_counter()
    for r in range(max_rounds):
        for k in range(len(names)):
            name = names[(r + k) % len(names)]
            t = time.perf_counter()
            candidates[name]()
            times[name].append(time.perf_counter() - t)
        elapsed = time.perf_counter() - start
        if progress:
            progress(min(elapsed, duration_s), duration_s)
        if r + 1 >= min_rounds and elapsed >= duration_s:
            break
    return times


def median(xs: list[float]) -> float:
    return float(np.median(xs))


def speedup(fast: list[float], slow: list[float], per_fast: float = 1.0, per_slow: float = 1.0) -> float:
    """How many times faster ``fast`` is than ``slow``: median over rounds of the paired ratio.

    fast, slow : seconds per round of two candidates from the same :func:`interleave` run.
    per_fast, per_slow : units of work per call (tiles, scans), so that candidates run at different
    batch sizes compare per unit. Pairing by round cancels slow phases of a shared machine that a
    ratio of two medians would not.
    """
    ratios = [(s / per_slow) / (f / per_fast) for f, s in zip(fast, slow, strict=True)]
    return float(np.median(ratios))
