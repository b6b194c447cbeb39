"""Streaming micro-batches: thread safety, per-scan errors, back-pressure, shutdown that loses nothing."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from parcelscan import Detector, Scan, ScanError
from parcelscan.stream import DetectorStream, StreamFull


def _scan(seed: int, lines: int = 90, pixels: int = 110) -> Scan:
    """A small dual-energy scan: random clutter-like transmission with a dense block."""
    rng = np.random.default_rng(seed)
    t_high = np.clip(rng.uniform(0.3, 1.0, (lines, pixels)), 0, 1)
    t_high[20:40, 30 + seed % 40 : 45 + seed % 40] = 0.02
    t = np.stack([t_high**1.5, t_high])
    dark = np.full((2, pixels), 1000.0, np.float32)
    air = dark + 30000.0
    raw = np.rint(dark[:, None, :] + t * (air - dark)[:, None, :]).astype(np.uint16)
    return Scan(raw, air, dark, ("low", "high"), 0.8, 0.8, 140.0)


@pytest.fixture(scope="module")
def detector():
    return Detector.from_pretrained(threads=1)


@pytest.fixture(scope="module")
def scans():
    return [_scan(i) for i in range(12)]


@pytest.fixture(scope="module")
def sequential(detector, scans):
    return [detector.detect(s) for s in scans]


def test_many_threads_submitting_get_the_sequential_results(detector, scans, sequential):
    with detector.stream(max_batch=5, max_latency_ms=20) as stream:

        def worker(k):
            futures = [(i, stream.submit(scans[i])) for i in range(k, len(scans), 4)]
            return [(i, f.result(timeout=60)) for i, f in futures]

        with ThreadPoolExecutor(4) as pool:
            got = dict(pair for chunk in pool.map(worker, range(4)) for pair in chunk)
    assert sorted(got) == list(range(len(scans)))
    for i, d in got.items():
        assert d.score == pytest.approx(sequential[i].score, abs=1e-5)
        np.testing.assert_allclose(d.heatmap, sequential[i].heatmap, atol=1e-5)
    assert stream.completed == len(scans) and stream.failed == 0
    assert stream.batches < len(scans)  # concurrent submissions were batched together


def test_a_corrupt_scan_fails_only_its_own_future(detector, scans, sequential):
    bad_air = _scan(0)
    bad_air.air[0, 7] = np.nan  # changed in place after construction: caught when it is processed
    with detector.stream(max_batch=8, max_latency_ms=200) as stream:
        futures = [stream.submit(scans[0]), stream.submit(bad_air), stream.submit("no/such/file.npz")]
        futures.append(stream.submit(scans[1]))
    assert futures[0].result().score == pytest.approx(sequential[0].score, abs=1e-5)
    assert futures[3].result().score == pytest.approx(sequential[1].score, abs=1e-5)
    with pytest.raises(ScanError, match="air"):
        futures[1].result()
    with pytest.raises((ScanError, FileNotFoundError), match=r"no/such/file\.npz"):
        futures[2].result()
    assert stream.completed == 2 and stream.failed == 2


def test_close_finishes_everything_already_submitted(detector, scans):
    stream = detector.stream(max_batch=3, max_latency_ms=1000)
    futures = [stream.submit(s) for s in scans]
    stream.close()  # long latency: close must not wait for it, nor drop the queue
    assert all(f.done() and f.exception() is None for f in futures)
    with pytest.raises(RuntimeError, match="closed"):
        stream.submit(scans[0])


class _Gate:
    """A stand-in detector whose batches wait for a gate: makes back-pressure deterministic."""

    threshold = 0.5

    def __init__(self):
        self.gate = threading.Event()
        self.batches = []

    def _detect_many(self, items, thr, manifests):
        self.gate.wait(10)
        self.batches.append(list(items))
        return [type("R", (), {"ok": True})() for _ in items]


def test_full_queue_pushes_back_then_drains():
    gate = _Gate()
    stream = DetectorStream(gate, max_batch=2, max_latency_ms=0, max_queue=2)
    first = stream.submit("a")  # taken by the worker, which then waits at the gate
    deadline = time.time() + 5
    while stream._queue.qsize() and time.time() < deadline:
        time.sleep(0.01)
    queued = [stream.submit("b"), stream.submit("c")]  # fills the queue
    with pytest.raises(StreamFull, match="full"):
        stream.submit("d", timeout=0.05)
    gate.gate.set()
    stream.close()
    assert all(f.done() for f in [first, *queued])
    assert [x for b in gate.batches for x in b] == ["a", "b", "c"]


def test_stream_arguments_are_checked(detector):
    with pytest.raises(ValueError, match="max_batch"):
        detector.stream(max_batch=0)
    with pytest.raises(ValueError, match="max_latency_ms"):
        detector.stream(max_latency_ms=-1)


def test_detect_called_from_many_threads_at_once(detector, scans, sequential):
    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(detector.detect, scans))
    for d, s in zip(got, sequential, strict=True):
        np.testing.assert_allclose(d.heatmap, s.heatmap, atol=1e-5)
