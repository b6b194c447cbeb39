"""parcelscan: finds dense masses hidden in postal parcels from their X-ray scans."""

from .scan import Scan, ScanError

__all__ = ["Scan", "ScanError"]
__version__ = "0.1.0"
