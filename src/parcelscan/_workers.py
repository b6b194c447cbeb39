"""Worker processes that do not fight over the cores.

NumPy's BLAS (OpenBLAS) starts a thread per core in every process. A pool of N processes on N cores then
runs N x N threads, and OpenBLAS's spinning threads make that far slower than one thread each:
``parcelscan simulate --workers 16`` on a 16-core GPU machine made 3.6 parcels a second (2 workers on 2
cores make 8), and on 2 cores one thread per worker is 1.8 times faster. Pools of this package start
their workers with :func:`one_thread_each`; the parallelism is the processes'. A serial simulation runs
one thread too: the threads gained it nothing, and with one thread everywhere BLAS sums in one order, so
a scan does not depend on the number of workers or of cores (with more threads, a rare pixel could
differ by a count; another processor's BLAS kernels may still round differently).
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits

__all__ = ["one_thread_each"]


def one_thread_each() -> None:
    """Limit this process's BLAS and OpenMP pools to one thread (a pool worker's initializer).

    OpenCV is left alone: ``cv2.setNumThreads`` in a forked child whose parent has used OpenCV's
    thread pool waits for threads that were not forked, and hangs."""
    threadpool_limits(limits=1)
