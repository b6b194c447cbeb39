"""parcelscan: finds dense masses hidden in postal parcels from their X-ray scans.

The public surface a scanning station needs is small: :func:`load_scan`, :func:`save_scan`,
the :class:`Scan` type and :class:`ScanError`. The simulator lives in :mod:`parcelscan.sim`.
"""

from .io import load_scan, save_scan
from .scan import Scan, ScanError

__all__ = ["Scan", "ScanError", "load_scan", "save_scan"]
__version__ = "0.1.0"
