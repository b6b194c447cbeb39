"""Stage timing shared by the benchmarks: wrap a function so its wall time adds up in ``totals``."""

from __future__ import annotations

import time
from collections.abc import Callable


def timed(totals: dict[str, float], name: str, fn: Callable) -> Callable:
    """``fn`` wrapped so that each call adds its wall time (s) to ``totals[name]``."""

    def inner(*args, **kw):
        t = time.perf_counter()
        try:
            return fn(*args, **kw)
        finally:
            totals[name] += time.perf_counter() - t

    return inner
