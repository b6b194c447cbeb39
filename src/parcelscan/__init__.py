"""parcelscan: finds dense masses hidden in postal parcels from their X-ray scans.

The public surface a scanning station needs is small: :class:`Detector` (``from_pretrained``,
``detect``, ``stream``) and its results :class:`Detection` / :class:`Region` / :class:`FailedScan`,
:func:`load_scan`, :func:`save_scan`, the :class:`Scan` type and :class:`ScanError`. The simulator
lives in :mod:`parcelscan.sim`.
"""

from .detector import Detector, ModelIntegrityError
from .io import load_scan, save_scan
from .manifest import DeclaredItem, Manifest, ManifestCheck, Reason, check_manifest, load_manifest
from .result import Detection, FailedScan, ImpenetrableArea, Region
from .scan import Scan, ScanError

__all__ = [
    "DeclaredItem",
    "Detection",
    "Detector",
    "FailedScan",
    "ImpenetrableArea",
    "Manifest",
    "ManifestCheck",
    "ModelIntegrityError",
    "Reason",
    "Region",
    "Scan",
    "ScanError",
    "check_manifest",
    "load_manifest",
    "load_scan",
    "save_scan",
]
__version__ = "0.1.0"
