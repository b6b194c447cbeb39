"""End to end through the station API: :meth:`Detector.detect` throughput and streaming latency.

- :func:`detect_throughput`: lists of ``scans_per_call`` realistic dual-energy scans (a few distinct
  simulated parcels, rendered once per run and reused) through ``Detector.detect``, one detector per
  precision, interleaved by round. Scans/s is the list length over the median call time; the stage
  split is the median of each ``Detection.timings_ms`` entry. Detectors are built as a station would
  (``Detector.from_pretrained(precision=, providers=, threads=)``, their own batch and binding choices).
- :func:`stream_latency`: scans submitted to ``detector.stream`` at a fixed arrival rate (open loop:
  arrival ``i`` is due at ``i / rate`` whatever happened before), latency from each scan's due time to
  its result, so time spent blocked in a full queue counts. p50 / p90 / p99 / max in ms.
"""

from __future__ import annotations

import functools
import threading
import time

import numpy as np

from ._inputs import FULL, MODELS, simulated_scans
from ._timing import interleave, median, speedup


def _detector(precision: str, provider: str, threads: int):
    from parcelscan.detector import Detector

    # the checkout's models/, as the model section uses, whatever PARCELSCAN_MODEL or the install says
    return Detector.from_pretrained(MODELS, precision=precision, providers=[provider], threads=threads)


def _detect(detector, scans: list, log: list) -> None:
    results = detector.detect(scans)
    failed = [r for r in results if not r.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(scans)} scans failed: {failed[0].error}")
    log.append([(r.timings_ms, bool(r.alarm)) for r in results])


#: The share of scans a station's threshold lets alarm (it is chosen at 1 % false alarms).
STATION_ALARM_SHARE = 0.01


def _alarm_costs(calls: list, ms_per_scan: float) -> dict:
    """Which share of the benchmark scans alarm, what post-processing costs with and without an alarm
    (an alarm's regions are measured and described), and the scans/s the same detector would reach
    at a station's alarm share, so runs whose few scans alarm differently still compare."""
    marks = [alarm for _, alarm in calls[0]]  # every call detects the same scans
    post = {
        alarm: float(np.median([t["postprocess_ms"] for call in calls for t, a in call if a == alarm]))
        for alarm in (False, True)
        if alarm in marks
    }
    share = float(np.mean(marks))
    measured = share * post.get(True, 0.0) + (1 - share) * post.get(False, 0.0)
    at_station = None
    if len(post) == 2:  # both costs seen: swap the sample's mix for the station's
        mix = STATION_ALARM_SHARE * post[True] + (1 - STATION_ALARM_SHARE) * post[False]
        at_station = 1e3 / (ms_per_scan - measured + mix)
    return {
        "alarm_share": share,
        "postprocess_ms_clear": post.get(False),
        "postprocess_ms_alarm": post.get(True),
        "scans_per_s_at_station_alarm_share": at_station,
    }


def detect_throughput(
    precisions=("fp32", "int8", "fp16"),
    provider: str = "cpu",
    threads: int = 2,
    duration_s: float = 20.0,
    size: int = FULL,
    scans_per_call: int = 8,
    unique: int = 4,
    progress=None,
) -> dict:
    detectors, errors, logs = {}, {}, {}
    for p in precisions:
        try:
            detectors[p] = _detector(p, provider, threads)
        except (RuntimeError, ValueError, OSError) as e:
            errors[p] = str(e)
        logs[p] = []
    if not detectors:
        raise RuntimeError(f"no detector could be built: {errors}")
    sample = simulated_scans(unique, size)
    scans = [sample[i % len(sample)] for i in range(scans_per_call)]
    try:
        times = interleave(
            {p: functools.partial(_detect, d, scans, logs[p]) for p, d in detectors.items()},
            duration_s,
            progress=progress,
        )
        variants = []
        for p, d in detectors.items():
            calls = logs[p][1:]  # [0] is the warm-up call
            timings = [t for call in calls for t, _ in call]
            stage_ms = {k: float(np.median([t[k] for t in timings])) for k in timings[0]}
            per_s = scans_per_call / median(times[p])
            alarmed = _alarm_costs(calls, 1e3 / per_s)
            variants.append(
                {
                    "precision": p,
                    "scans_per_s": per_s,
                    "ms_per_scan": 1e3 / per_s,
                    **alarmed,
                    "megapixels_per_s": per_s * size * size / 1e6,
                    "median_stage_ms": stage_ms,
                    "providers_active": d.info["providers"],
                    "max_batch": d.model.max_batch,
                    "io_binding": d.model.io_binding,
                }
            )
    finally:
        for d in detectors.values():
            d.close()
    ratios = {}
    for p in ("int8", "fp16"):
        if p in times and "fp32" in times:
            ratios[f"{p}_over_fp32"] = speedup(times[p], times["fp32"])
    return {
        "name": "e2e",
        "provider": provider,
        "threads": threads,
        "scan": f"2 x {size} x {size}",
        "scans_per_call": scans_per_call,
        "distinct_scans": len(sample),
        "rounds": len(next(iter(times.values()))),
        "variants": variants,
        "ratios": ratios,
        "errors": errors,
    }


def stream_latency(
    precision: str = "fp32",
    provider: str = "cpu",
    threads: int = 2,
    rate: float = 20.0,
    duration_s: float = 15.0,
    size: int = FULL,
    unique: int = 4,
    max_batch: int = 8,
    max_latency_ms: float = 10.0,
    max_queue: int = 64,
    progress=None,
) -> dict:
    """Latency percentiles of ``rate`` scans/s for ``duration_s`` through ``detector.stream``.

    Submission stops early (``not_submitted``) if arrivals fall more than ``duration_s`` behind,
    which only a machine far below the offered rate does; the scans submitted still finish.
    """
    n = max(1, round(rate * duration_s))
    latency = np.full(n, np.nan)
    ok = np.zeros(n, bool)
    lock = threading.Lock()
    detector = _detector(precision, provider, threads)
    try:
        sample = simulated_scans(unique, size)
        detector.detect(list(sample))  # warm-up outside the timing

        def done(i: int, due: float, future) -> None:
            with lock:
                latency[i] = time.perf_counter() - due
                ok[i] = future.exception() is None

        submitted = 0
        with detector.stream(
            max_batch=max_batch, max_latency_ms=max_latency_ms, max_queue=max_queue
        ) as stream:
            t0 = time.perf_counter() + 0.05
            for i in range(n):
                due = t0 + i / rate
                now = time.perf_counter()
                if now < due:
                    time.sleep(due - now)
                elif now - due > duration_s:
                    break
                stream.submit(sample[i % len(sample)]).add_done_callback(functools.partial(done, i, due))
                submitted += 1
                if progress:
                    progress(i + 1, n)
        end = time.perf_counter()  # closing the stream waited for the last result
        batches = stream.batches or 1
    finally:
        detector.close()
    lat_ms = 1e3 * latency[:submitted]
    return {
        "name": "stream",
        "precision": precision,
        "provider": provider,
        "threads": threads,
        "scan": f"2 x {size} x {size}",
        "rate_per_s": rate,
        "duration_s": duration_s,
        "max_batch": max_batch,
        "max_latency_ms": max_latency_ms,
        "max_queue": max_queue,
        "submitted": submitted,
        "not_submitted": n - submitted,
        "failed": int(submitted - ok[:submitted].sum()),
        "mean_batch": submitted / batches,
        "completed_per_s": submitted / (end - t0),
        # arrivals faster than the detector: the queue grows for the whole run and latency with it
        "saturated": submitted / (end - t0) < 0.95 * rate,
        "p50_ms": float(np.percentile(lat_ms, 50)),
        "p90_ms": float(np.percentile(lat_ms, 90)),
        "p99_ms": float(np.percentile(lat_ms, 99)),
        "max_ms": float(lat_ms.max()),
    }
