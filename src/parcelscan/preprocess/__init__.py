"""Preprocessing shared by training and inference (no torch anywhere below this package).

scan -> :class:`Preprocessor` (calibration, log attenuation, impenetrable mask, resampling to the
model's fixed mm per pixel, tiling) -> model input; :func:`stitch` and :func:`to_scan_coords` bring
per-tile maps back to scan coordinates. :mod:`.material` and :mod:`.mass` hold the dual-energy
material analysis (R-curves, apparent Z, areal density, mass).
"""

from .mass import MassEstimate, areal_density, estimate_mass, scanner_model
from .material import OperatorClass, RCurves, apparent_z, operator_class, r_curves
from .pipeline import (
    INPUT_CHANNELS,
    INPUT_LAYOUTS,
    KVP_CHANNELS,
    KVP_PLANE_UNIT,
    PreprocessConfig,
    Preprocessed,
    Preprocessor,
    denoise,
    impenetrable_mask,
    log_attenuation,
    model_input,
    transmission,
)
from .tiling import box_to_mm, box_to_model, box_to_scan, resample, stitch, tile_starts, tiles, to_scan_coords

__all__ = [
    "INPUT_CHANNELS",
    "INPUT_LAYOUTS",
    "KVP_CHANNELS",
    "KVP_PLANE_UNIT",
    "MassEstimate",
    "OperatorClass",
    "PreprocessConfig",
    "Preprocessed",
    "Preprocessor",
    "RCurves",
    "apparent_z",
    "areal_density",
    "box_to_mm",
    "box_to_model",
    "box_to_scan",
    "denoise",
    "estimate_mass",
    "impenetrable_mask",
    "log_attenuation",
    "model_input",
    "operator_class",
    "r_curves",
    "resample",
    "scanner_model",
    "stitch",
    "tile_starts",
    "tiles",
    "to_scan_coords",
    "transmission",
]
