"""Micro-batching for stations: scans trickle in from conveyors, results come back as futures.

    with detector.stream(max_batch=8, max_latency_ms=10) as stream:
        future = stream.submit(scan)          # returns at once (blocks only when the queue is full)
        detection = future.result()           # raises the scan's own error, e.g. ScanError

One worker thread takes the first waiting scan, then gathers more until ``max_batch`` scans are
waiting or ``max_latency_ms`` has passed since that first scan was submitted, and runs them through
:meth:`Detector.detect` together (their tiles share ONNX Runtime batches). The queue holds at most
``max_queue`` scans: a full queue makes ``submit`` wait (back-pressure on the producer), or raise
:class:`StreamFull` when a ``timeout`` runs out. Closing finishes every scan already submitted.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from typing import Any

__all__ = ["DetectorStream", "StreamFull"]

_STOP = object()


class StreamFull(RuntimeError):
    """The stream's queue stayed full for the whole ``submit`` timeout."""


class DetectorStream:
    """Thread-safe micro-batching front end of a :class:`~parcelscan.detector.Detector`.

    max_batch : most scans run together; max_latency_ms : longest a scan waits for others to join
    its batch. Scans that queue up while a batch runs join the next one anyway, so on a CPU, where
    batching barely helps, a short wait is best: at 20 scans/s on 2 cores 10 ms gave p99 96 ms and
    50 ms gave 177 ms (``python -m benchmarks --suite stream``); a GPU gains from longer waits.
    max_queue : most scans waiting (back-pressure beyond it). threshold : parcel alarm
    threshold for every scan of the stream (None: the card's).
    Counters ``submitted``, ``completed``, ``failed``, ``batches`` are for monitoring.
    """

    def __init__(
        self,
        detector,
        max_batch: int = 8,
        max_latency_ms: float = 10.0,
        max_queue: int = 64,
        threshold: float | None = None,
    ) -> None:
        for name, v, lo in (("max_batch", max_batch, 1), ("max_queue", max_queue, 1)):
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        if (
            isinstance(max_latency_ms, bool)
            or not isinstance(max_latency_ms, (int, float))
            or max_latency_ms < 0
        ):
            raise ValueError(f"max_latency_ms must be a number >= 0, got {max_latency_ms!r}")
        self.detector = detector
        self.max_batch = max_batch
        self.max_latency_s = float(max_latency_ms) / 1e3
        self.threshold = threshold
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()
        self._closed = False
        self.submitted = self.completed = self.failed = self.batches = 0
        self._worker = threading.Thread(target=self._loop, name="parcelscan-stream", daemon=True)
        self._worker.start()

    def submit(self, scan: Any, *, manifest: Any = None, timeout: float | None = None) -> Future:
        """Queue a :class:`~parcelscan.Scan` or a path; returns a Future of its Detection.

        Blocks while the queue is full; with ``timeout`` (seconds) raises :class:`StreamFull` when
        no room came in time. Raises RuntimeError after :meth:`close`.
        """
        future: Future = Future()
        with self._lock:  # no submit can slip in behind the stop marker
            if self._closed:
                raise RuntimeError("submit() on a closed stream")
            try:
                self._queue.put((scan, manifest, future, time.perf_counter()), timeout=timeout)
            except queue.Full:
                raise StreamFull(
                    f"stream queue full ({self._queue.maxsize} scans waiting) for {timeout} s"
                ) from None
            self.submitted += 1
        return future

    def close(self, wait: bool = True) -> None:
        """Stop accepting scans; every scan already submitted is still processed.
        wait : block until the last of them has its result."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(_STOP)
        if wait:
            self._worker.join()

    def __enter__(self) -> DetectorStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _gather(self, first) -> tuple[list, bool]:
        batch, stop = [first], False
        deadline = first[3] + self.max_latency_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.perf_counter()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                stop = True
                break
            batch.append(item)
        return batch, stop

    def _loop(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is _STOP:
                break
            batch, stop = self._gather(first)
            live = [b for b in batch if b[2].set_running_or_notify_cancel()]
            if not live:
                continue
            try:
                results = self.detector._detect_many(
                    [b[0] for b in live],
                    self.threshold,  # None: the card's, for each scan's kind of scanner
                    [b[1] for b in live],
                )
            except BaseException as exc:
                for b in live:
                    b[2].set_exception(exc)
                self.failed += len(live)
                continue
            self.batches += 1
            for b, r in zip(live, results, strict=True):
                if r.ok:
                    b[2].set_result(r)
                    self.completed += 1
                else:
                    b[2].set_exception(r.exception)
                    self.failed += 1
