"""The scanning-station API: :class:`Detector` turns scans into :class:`~parcelscan.result.Detection`.

    from parcelscan import Detector

    detector = Detector.from_pretrained()            # the shipped model, sha256-checked, CPU
    detection = detector.detect("parcel_000123.npz")  # or a Scan, or a list of either
    if detection.alarm:
        for region in detection.regions:
            print(region.box_mm, region.score, region.mass_g, region.material_class)

Data flow (pre_process -> run -> post_process): each scan is read (paths, via :mod:`parcelscan.io`)
and validated, preprocessed with the configuration in the model's card, cut into tiles; the tiles of
all scans of a call go through ONNX Runtime in shared batches (:class:`~parcelscan.engine.OnnxModel`),
are stitched back per scan, then thresholded into regions that :mod:`parcelscan.regions` measures.
A scan that fails anywhere becomes a :class:`~parcelscan.result.FailedScan` in a list result and
never affects the others; a single scan passed alone raises instead.

Threads: a Detector is safe to call from several threads (ONNX Runtime sessions are, and every other
step is a pure function). For a steady stream of scans use :meth:`Detector.stream`, which batches
concurrent submissions itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from .engine import OnnxModel, operating_thresholds
from .io import load_scan
from .postprocess import alarm_regions
from .preprocess.mass import scanner_model
from .regions import describe_region, impenetrable_areas
from .result import Detection, FailedScan
from .scan import Scan
from .viz import scan_curves

__all__ = ["PROVIDERS", "Detector", "ModelIntegrityError", "default_model_path"]

PRECISIONS = ("fp32", "int8", "fp16")
PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
# performance.md: EXHAUSTIVE re-searches cuDNN algorithms for every new shape (hundreds of ms).
CUDA_OPTIONS = {"cudnn_conv_algo_search": "HEURISTIC", "prefer_nhwc": "1", "do_copy_in_default_stream": "1"}
GPU_BUCKETS = (1, 4, 16, 64)


class ModelIntegrityError(ValueError):
    """The model file does not match its card (sha256), or it has no card to check against."""


def default_model_path(precision: str = "fp32") -> Path:
    """The shipped model: ``$PARCELSCAN_MODEL`` if set, else the one installed with the package
    (``parcelscan/models/``), else ``models/`` of a source checkout."""
    env = os.environ.get("PARCELSCAN_MODEL")
    if env:
        return Path(env)
    name = _file_name(precision)
    here = Path(__file__).resolve().parent
    for folder in (here / "models", here.parents[1] / "models"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"no shipped model {name} in {here / 'models'} or {here.parents[1] / 'models'}; "
        "pass path= or set PARCELSCAN_MODEL"
    )


def _card_for(model: Path) -> tuple[Path, dict]:
    """The JSON card beside ``model``: ``<first part of the name>.json`` (parcelscan.int8.onnx ->
    parcelscan.json), else any card whose ``files`` lists the model."""
    candidates = [model.with_name(model.name.split(".")[0] + ".json"), *sorted(model.parent.glob("*.json"))]
    for path in candidates:
        if not path.is_file():
            continue
        try:
            card = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        files = card.get("files") if isinstance(card, dict) else None
        if isinstance(files, dict) and any(
            isinstance(f, dict) and f.get("file") == model.name for f in files.values()
        ):
            return path, card
    raise ModelIntegrityError(
        f"no model card listing {model.name} beside it in {model.parent}; the card holds the "
        "sha256 the file is checked against (pass verify=False to load an unchecked model)"
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _providers(requested: Sequence[str] | str | None, precision: str) -> list:
    """Short names (cpu, cuda, tensorrt) or full provider names -> ORT (name, options) pairs."""
    if requested is None:
        requested = ["cpu"]
    if isinstance(requested, str):
        requested = [requested]
    out = []
    for r in requested:
        if not isinstance(r, str):
            raise ValueError(f"providers must be names such as 'cpu', 'cuda', 'tensorrt', got {r!r}")
        name = PROVIDERS.get(r.lower(), r)
        if name == "CUDAExecutionProvider":
            out.append((name, dict(CUDA_OPTIONS)))
        elif name == "TensorrtExecutionProvider":
            cache = os.environ.get("PARCELSCAN_TRT_CACHE", str(Path.home() / ".cache" / "parcelscan" / "trt"))
            out.append(
                (
                    name,
                    {
                        "trt_fp16_enable": "1" if precision == "fp16" else "0",
                        "trt_engine_cache_enable": "1",
                        "trt_engine_cache_path": cache,
                        "trt_timing_cache_enable": "1",
                    },
                )
            )
        else:
            out.append(name)
    names = [p[0] if isinstance(p, tuple) else p for p in out]
    if "TensorrtExecutionProvider" in names and "CUDAExecutionProvider" not in names:
        out.append(("CUDAExecutionProvider", dict(CUDA_OPTIONS)))  # TensorRT hands unsupported ops to CUDA
    if "CPUExecutionProvider" not in names:
        out.append("CPUExecutionProvider")
    return out


def _source(item: Any, i: int) -> str | None:
    if isinstance(item, (str, os.PathLike)):
        return os.fspath(item)
    if isinstance(item, Scan):
        src = item.metadata.get("source") if isinstance(item.metadata, dict) else None
        return str(src) if src else None
    return f"item {i}"


class Detector:
    """A loaded model plus everything needed to turn scans into detections.

    Build it with :meth:`from_pretrained`. Attributes: ``threshold`` (parcel alarm: score >
    threshold), ``region_threshold`` (heatmap pixels >= it seed regions), ``region_grow_threshold``
    (regions grow over the connected pixels >= it; None: no growing), ``single_energy_threshold``
    (parcel and region threshold for single-energy scans), ``card`` (the JSON model
    card, or the ONNX metadata when loaded unverified), ``info`` (name, version, precision, sha256,
    file, providers really active), ``model`` (the :class:`~parcelscan.engine.OnnxModel`).
    """

    def __init__(
        self,
        model: OnnxModel,
        info: dict[str, Any],
        card: dict[str, Any],
        min_impenetrable_cm2: float = 2.0,
        height_cm: float = 10.0,
    ) -> None:
        self.model = model
        self.info = info
        self.card = card
        self.threshold = model.threshold
        self.region_threshold = model.region_threshold
        self.region_grow_threshold = model.region_grow_threshold
        self.single_energy_threshold = model.single_energy_threshold
        self.min_impenetrable_cm2 = float(min_impenetrable_cm2)
        self.height_cm = float(height_cm)
        self._closed = False

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike | None = None,
        *,
        precision: str = "fp32",
        providers: Sequence[str] | str | None = None,
        threads: int | None = None,
        max_batch: int | None = None,
        io_binding: bool | None = None,
        verify: bool = True,
        min_impenetrable_cm2: float = 2.0,
        height_cm: float = 10.0,
    ) -> Detector:
        """Load a detector.

        path : an .onnx file, or a folder holding ``parcelscan[.int8|.fp16].onnx`` and its card;
            None for the shipped model. precision : which file of the folder ("fp32", "int8" for
            CPUs with VNNI, "fp16" for GPUs); ignored when ``path`` is a file.
        providers : "cpu" (default), "cuda", "tensorrt" or ORT provider names, in order of
            preference. A requested GPU provider that does not load raises RuntimeError instead of
            ONNX Runtime's silent fall-back to the CPU. CUDA gets HEURISTIC cuDNN algorithm search,
            NHWC, IOBinding and fixed batch buckets with a warm-up; TensorRT fp16 with engine caches
            (``$PARCELSCAN_TRT_CACHE``).
        threads : ONNX Runtime intra-op threads (None: one per core). max_batch : tiles per run
            (default 8 on CPU, buckets up to 64 on GPU). io_binding : None chooses (on for GPU).
        verify : check the file's sha256 against the card beside it (:class:`ModelIntegrityError`).
        min_impenetrable_cm2 : smallest opaque area reported as able to hide a mass.
        height_cm : assumed height of a mass above the belt for mass estimates (a single view
            cannot measure it; see :func:`parcelscan.preprocess.mass.estimate_mass`).
        """
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if path is None:
            file = default_model_path(precision)
        else:
            file = Path(path)
            if file.is_dir():
                file = file / _file_name(precision)
        if not file.is_file():
            raise FileNotFoundError(f"no model file at {file}")
        precision = _precision_of(file)  # what the file is, whichever way it was chosen
        card: dict[str, Any] = {}
        digest = None
        if verify:
            card_path, card = _card_for(file)
            entry = next(
                f for f in card["files"].values() if isinstance(f, dict) and f.get("file") == file.name
            )
            digest = _sha256(file)
            if digest != entry.get("sha256"):
                raise ModelIntegrityError(
                    f"{file}: sha256 {digest[:16]}... does not match {entry.get('sha256', '?')[:16]}... in "
                    f"{card_path.name}; the file was changed or corrupted after export"
                )
        plist = _providers(providers, precision)
        gpu = any((p[0] if isinstance(p, tuple) else p) != "CPUExecutionProvider" for p in plist)
        if gpu and hasattr(ort, "preload_dlls"):
            try:
                ort.preload_dlls()  # CUDA/cuDNN from pip wheels; harmless when absent
            except Exception:
                pass
        model = OnnxModel(
            file,
            providers=plist,
            threads=threads,
            max_batch=max_batch or 8,
            io_binding=gpu if io_binding is None else io_binding,
            batch_buckets=GPU_BUCKETS if gpu and max_batch is None else None,
        )
        if gpu:
            model.warm_up()
        if not card:
            card = dict(model.card)
        info = {
            "name": file.name.split(".")[0],
            "file": str(file),
            "version": model.version,
            "precision": precision,
            "sha256": digest,
            "providers": model.session.get_providers(),
        }
        return cls(model, info, card, min_impenetrable_cm2, height_cm)

    def __repr__(self) -> str:
        return (
            f"Detector({self.info['file']!r}, version={self.info['version']!r}, "
            f"precision={self.info['precision']!r}, providers={self.info['providers']})"
        )

    # ------------------------------------------------------------------ detection
    def detect(
        self,
        scans: Scan | str | os.PathLike | Sequence[Scan | str | os.PathLike],
        *,
        threshold: float | None = None,
        manifest: Any = None,
    ) -> Detection | list[Detection | FailedScan]:
        """Detect concealed dense masses.

        scans : a :class:`Scan`, a path to a scan file, or a list of those. For one scan the result
            is a :class:`Detection` and errors raise (:class:`ScanError` for unreadable or invalid
            scans); for a list it is a list in the same order where a scan that failed is a
            :class:`FailedScan` naming what was wrong.
        threshold : parcel alarm threshold overriding the card's (alarm when score > threshold).
            The card's is ``threshold`` for dual-energy scans and ``single_energy_threshold`` (also
            the region threshold there) for single-energy ones.
        manifest : declared contents (a :class:`parcelscan.manifest.Manifest`, a dict or a path to
            its JSON; a list of them for a list of scans): each Detection then carries the
            declared-contents check in ``.manifest``.
        """
        if self._closed:
            raise RuntimeError("this Detector was closed")
        thr = None if threshold is None else _check_threshold(threshold)
        single = isinstance(scans, (Scan, str, os.PathLike))
        items = [scans] if single else scans
        if not isinstance(items, Sequence):
            raise ValueError(f"scans must be a Scan, a path or a list of them, got {type(scans).__name__}")
        manifests = _spread(manifest, len(items), single)
        results = self._detect_many(list(items), thr, manifests)
        if single and isinstance(results[0], FailedScan):
            raise results[0].exception
        return results[0] if single else results

    def _thresholds(self, scan: Scan, thr: float | None) -> tuple[float, float]:
        """(parcel, region) thresholds for ``scan``: the card's for its kind of scanner unless given."""
        if thr is not None:
            return thr, self.region_threshold
        return operating_thresholds(self, scan.dual_energy)

    def _detect_many(self, items: list, thr: float | None, manifests: list) -> list[Detection | FailedScan]:
        results: list[Detection | FailedScan | None] = [None] * len(items)
        work = []  # (index, source, scan, preprocessed, tiles, origins, timings)
        for i, item in enumerate(items):
            source = _source(item, i)
            t0 = time.perf_counter()
            try:
                scan = load_scan(item) if isinstance(item, (str, os.PathLike)) else item
                if not isinstance(scan, Scan):
                    raise ValueError(f"expected a Scan or a path to a scan file, got {type(item).__name__}")
                t1 = time.perf_counter()
                pre = self.model.preprocessor(scan)
                batch, origins = self.model.preprocessor.tiles(pre)
            except Exception as exc:
                results[i] = _failed(source, exc)
                continue
            t2 = time.perf_counter()
            timings = {"load_ms": 1e3 * (t1 - t0), "preprocess_ms": 1e3 * (t2 - t1)}
            work.append((i, source, scan, pre, batch, origins, timings))
        if work:
            heatmaps = self._infer(work, results)
            for (i, source, scan, pre, _, origins, timings), maps in zip(work, heatmaps, strict=True):
                if maps is None:
                    continue
                try:
                    results[i] = self._postprocess(
                        source, scan, pre, maps, origins, timings, thr, manifests[i]
                    )
                except Exception as exc:
                    results[i] = _failed(source, exc)
        return results  # type: ignore[return-value]

    def _infer(self, work: list, results: list) -> list[np.ndarray | None]:
        """Run every scan's tiles in shared batches; if that fails, scan by scan so only the
        scan that breaks the model fails."""
        counts = [len(w[4]) for w in work]
        t0 = time.perf_counter()
        try:
            maps, _ = self.model.run(np.concatenate([w[4] for w in work]))
            per_scan = np.split(maps, np.cumsum(counts)[:-1])
        except Exception:
            per_scan = []
            for w in work:
                try:
                    per_scan.append(self.model.run(w[4])[0])
                except Exception as exc:
                    results[w[0]] = _failed(w[1], exc)
                    per_scan.append(None)
        ms = 1e3 * (time.perf_counter() - t0)
        for w, n in zip(work, counts, strict=True):
            w[6]["inference_ms"] = ms * n / sum(counts)
        return per_scan

    def _postprocess(
        self, source, scan: Scan, pre, maps: np.ndarray, origins, timings: dict, thr: float | None, manifest
    ) -> Detection:
        t0 = time.perf_counter()
        heatmap, score = self.model.stitch(maps, origins, pre)
        thr, region_thr = self._thresholds(scan, thr)
        found, level = alarm_regions(heatmap, score, thr, region_thr, self.region_grow_threshold)
        regions: tuple = ()
        if found:  # the scanner's spectral model and R-curves only when there is something to measure
            spectral = scanner_model(scan)
            curves = scan_curves(scan) if scan.dual_energy else None
            regions = tuple(
                describe_region(r, heatmap, level, pre, spectral, curves, self.height_cm) for r in found
            )
        opaque = tuple(impenetrable_areas(pre, self.min_impenetrable_cm2))
        timings["postprocess_ms"] = 1e3 * (time.perf_counter() - t0)
        detection = Detection(
            source=source,
            score=score,
            alarm=score > thr,
            threshold=thr,
            regions=regions,
            impenetrable=opaque,
            heatmap=heatmap,
            heatmap_scales=pre.scales,
            scan_shape=tuple(pre.scan_shape),
            line_mm=pre.line_mm,
            pixel_mm=pre.pixel_mm,
            timings_ms=timings,
            model=self.info,
        )
        if manifest is not None:
            from .manifest import check_manifest

            t1 = time.perf_counter()
            check = check_manifest(scan, detection, manifest)
            timings["manifest_ms"] = 1e3 * (time.perf_counter() - t1)
            object.__setattr__(detection, "manifest", check)
        timings["total_ms"] = sum(v for k, v in timings.items() if k != "total_ms")
        return detection

    # ------------------------------------------------------------------ streaming
    def stream(self, max_batch: int = 8, max_latency_ms: float = 10.0, max_queue: int = 64):
        """A micro-batching stream for conveyor stations; see :class:`parcelscan.stream.DetectorStream`."""
        from .stream import DetectorStream

        return DetectorStream(self, max_batch=max_batch, max_latency_ms=max_latency_ms, max_queue=max_queue)

    def close(self) -> None:
        """Release the ONNX Runtime session; later calls raise RuntimeError."""
        self._closed = True
        self.model.session = None  # type: ignore[assignment]

    def __enter__(self) -> Detector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _file_name(precision: str) -> str:
    """The shipped file of a precision: parcelscan.onnx, parcelscan.int8.onnx, parcelscan.fp16.onnx."""
    return "parcelscan.onnx" if precision == "fp32" else f"parcelscan.{precision}.onnx"


def _precision_of(file: Path) -> str:
    parts = file.name.split(".")
    return parts[-2] if len(parts) > 2 and parts[-2] in PRECISIONS else "fp32"


def _check_threshold(v: object) -> float:
    ok = isinstance(v, (int, float, np.floating)) and not isinstance(v, bool)
    if not ok or not 0 <= float(v) <= 1:
        raise ValueError(f"threshold must be a number in [0, 1], got {v!r}")
    return float(v)


def _spread(manifest: Any, n: int, single: bool) -> list:
    if manifest is None:
        return [None] * n
    if single:
        return [manifest]
    if not isinstance(manifest, (list, tuple)) or len(manifest) != n:
        raise ValueError(f"for a list of {n} scans, manifest must be a list of {n} manifests (or None)")
    return list(manifest)


def _failed(source: str | None, exc: BaseException) -> FailedScan:
    return FailedScan(source, str(exc) or type(exc).__name__, type(exc).__name__, exc)
