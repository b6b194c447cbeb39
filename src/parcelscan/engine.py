"""The inference session: the one place that opens a model file. ONNX Runtime, never torch.

Data flow of :meth:`OnnxModel.predict`: scans -> :class:`~parcelscan.preprocess.Preprocessor` (with
the config read from the model's metadata) -> tiles of every scan packed into shared batches ->
:meth:`OnnxModel.run` -> per-tile heatmaps stitched back per scan -> :class:`Prediction`.
Regions and boxes come from :mod:`parcelscan.postprocess`; heatmap pixels map to the scan with
:func:`~parcelscan.preprocess.tiling.box_to_scan` and ``Prediction.preprocessed.scales``.

ONNX contract: input ``"image"`` float32 (N, K, H, W), K = 3 or 4 as the card's
``preprocess.channels`` lists (:data:`~parcelscan.preprocess.INPUT_LAYOUTS`); outputs ``"heatmap"``
float32 (N, 1, H, W), probabilities in [0, 1], and ``"score"`` float32 (N,), each tile's maximum
probability; metadata key ``"parcelscan"`` holding JSON ``{"preprocess": PreprocessConfig.to_dict(),
"outputs": ["heatmap", "score"], "threshold": float, "region_threshold": float, "version": str, ...}``.

Threads: ``threads`` sets ONNX Runtime's intra-op pool only. OpenCV (preprocessing, stitching) keeps
its own pool; a station sets it once with ``cv2.setNumThreads`` next to this choice (performance.md:
on 2 cores one intra-op thread per worker process beat two threads in one process).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from .preprocess.pipeline import PreprocessConfig, Preprocessed, Preprocessor
from .scan import Scan

__all__ = ["METADATA_KEY", "OnnxModel", "Prediction", "operating_thresholds"]

METADATA_KEY = "parcelscan"
INPUT_NAME = "image"
OUTPUT_NAMES = ("heatmap", "score")
_CARD_KEYS = ("preprocess", "outputs", "threshold", "region_threshold", "version")


@dataclass(frozen=True, eq=False)
class Prediction:
    """The model's answer for one scan.

    heatmap : (H, W) float32 probability of a concealed dense mass per model pixel, at the model's
    resolution (``preprocessed.image.shape[1:]``, ``target_mm`` square pixels).
    score : parcel score in [0, 1], the maximum of ``heatmap`` (:func:`parcelscan.postprocess.parcel_score`);
    the parcel alarms when ``score > OnnxModel.threshold``.
    preprocessed : the model input and the scales that map model pixels back to the scan.
    timings : milliseconds: ``preprocess_ms``, ``inference_ms`` (this scan's share of the shared
    batches, in proportion to its tiles), ``stitch_ms``.
    """

    heatmap: np.ndarray
    score: float
    preprocessed: Preprocessed
    timings: dict[str, float]


def _provider_name(p: object) -> str:
    name = p[0] if isinstance(p, tuple) and len(p) == 2 else p
    if not isinstance(name, str):
        raise ValueError(f"providers must be names or (name, options) pairs, got {p!r}")
    return name


def _parse_card(meta: dict[str, str], path: str) -> dict[str, Any]:
    if METADATA_KEY not in meta:
        raise ValueError(
            f"{path}: no {METADATA_KEY!r} entry in the ONNX metadata (found {sorted(meta)}); "
            "export the model with its preprocessing card"
        )
    try:
        card = json.loads(meta[METADATA_KEY])
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: the {METADATA_KEY!r} metadata is not valid JSON ({e})") from None
    if not isinstance(card, dict):
        raise ValueError(
            f"{path}: the {METADATA_KEY!r} metadata must be a JSON object, got {type(card).__name__}"
        )
    missing = [k for k in _CARD_KEYS if k not in card]
    if missing:
        raise ValueError(f"{path}: the {METADATA_KEY!r} metadata lacks key(s) {missing}")
    if list(card["outputs"]) != list(OUTPUT_NAMES):
        raise ValueError(f"{path}: metadata outputs must be {list(OUTPUT_NAMES)}, got {card['outputs']!r}")
    # single_energy_threshold is optional (cards without it use threshold for every scan) and, being
    # also the region threshold of single-energy scans, must be above 0; so is region_grow_threshold
    # (cards without it do not grow regions), a probability level that 0 would spread over every pixel
    for k, above_zero in (
        ("threshold", False),
        ("region_threshold", False),
        ("single_energy_threshold", True),
        ("region_grow_threshold", True),
    ):
        v = card.get(k)
        if v is None and k not in _CARD_KEYS:
            continue
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, float))
            or not (0 < v if above_zero else 0 <= v)
            or v > 1
        ):
            raise ValueError(
                f"{path}: metadata {k} must be a number in {'(0' if above_zero else '[0'}, 1], got {v!r}"
            )
    if card["region_threshold"] == 0:
        raise ValueError(f"{path}: metadata region_threshold must be > 0 (0 marks every pixel)")
    if not isinstance(card["version"], str):
        raise ValueError(f"{path}: metadata version must be a string, got {card['version']!r}")
    return card


def operating_thresholds(holder: Any, dual_energy: bool) -> tuple[float, float]:
    """(parcel, region) thresholds for a dual- or single-energy scan, from the ``threshold``,
    ``region_threshold`` and ``single_energy_threshold`` of ``holder`` (an :class:`OnnxModel` or a
    :class:`~parcelscan.detector.Detector`): single-energy scans use their own for both."""
    if dual_energy:
        return holder.threshold, holder.region_threshold
    return holder.single_energy_threshold, holder.single_energy_threshold


class OnnxModel:
    """An ONNX Runtime session for a parcelscan detector, with its card.

    path : .onnx file exported with the ``"parcelscan"`` metadata (see the module docstring).
    providers : execution providers in order of preference, names or (name, options) pairs. Every
    one requested other than the CPU provider must load, or a RuntimeError says which did not:
    ONNX Runtime would otherwise fall back to the CPU with only a warning.
    threads : intra-op threads of ONNX Runtime; None leaves ORT's default (one per physical core).
    max_batch : tiles per ``session.run`` call (4-8 suffice on a CPU; GPUs want more).
    allow_spinning : whether idle ORT threads spin for work. Spinning helps when ORT has the cores to
    itself and slows whatever runs right after ``run()`` (performance.md): turn it off in a process
    that also preprocesses or trains.
    io_binding : run through an ``IOBinding`` with the input copied once to the execution device and
    the outputs allocated there (``"cuda"`` when a CUDA or TensorRT provider is active, else ``"cpu"``),
    instead of ``session.run``'s per-call host copies.
    batch_buckets : if given, every ``session.run`` gets exactly one of these batch sizes (the last
    chunk is padded with empty tiles), so a GPU provider sees a few fixed shapes it can plan once;
    ``max_batch`` becomes the largest bucket. :meth:`warm_up` runs each bucket once.

    Attributes: ``card`` (the metadata dict), ``preprocess_config``, ``preprocessor``,
    ``threshold`` (parcel alarm: score > threshold), ``region_threshold`` (pixels >= it seed regions),
    ``region_grow_threshold`` (regions grow over connected pixels >= it; None if the card has none),
    ``single_energy_threshold``, ``version``, ``session``.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        providers: Sequence[str | tuple[str, dict]] = ("CPUExecutionProvider",),
        threads: int | None = None,
        max_batch: int = 8,
        allow_spinning: bool = True,
        io_binding: bool = False,
        batch_buckets: Sequence[int] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        if isinstance(providers, str) or not providers:
            raise ValueError(f"providers must be a non-empty list of provider names, got {providers!r}")
        names = [_provider_name(p) for p in providers]
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise ValueError(f"threads must be None or an integer >= 1, got {threads!r}")
        if not isinstance(max_batch, int) or isinstance(max_batch, bool) or max_batch < 1:
            raise ValueError(f"max_batch must be an integer >= 1, got {max_batch!r}")
        self.max_batch = max_batch
        self.buckets: tuple[int, ...] | None = None
        if batch_buckets is not None:
            ok = all(isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in batch_buckets)
            if not batch_buckets or not ok:
                raise ValueError(f"batch_buckets must be integers >= 1, got {batch_buckets!r}")
            self.buckets = tuple(sorted(set(batch_buckets)))
            self.max_batch = self.buckets[-1]
        available = ort.get_available_providers()
        absent = [n for n in names if n not in available]
        if absent:
            raise RuntimeError(
                f"execution provider(s) {absent} requested but this onnxruntime build offers only "
                f"{available} (for CUDA install onnxruntime-gpu, not onnxruntime)"
            )
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"no model file at {self.path!r}")

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
        self.session = ort.InferenceSession(self.path, sess_options=options, providers=list(providers))
        loaded = self.session.get_providers()
        failed = [n for n in names if n != "CPUExecutionProvider" and n not in loaded]
        if failed:
            raise RuntimeError(
                f"execution provider(s) {failed} failed to load for {self.path!r} (session has {loaded}); "
                "check the CUDA/cuDNN libraries (onnxruntime.preload_dlls() may help)"
            )

        self.card = _parse_card(self.session.get_modelmeta().custom_metadata_map, self.path)
        try:
            self.preprocess_config = PreprocessConfig.from_dict(self.card["preprocess"])
        except ValueError as e:
            raise ValueError(f"{self.path}: invalid preprocess card in the metadata: {e}") from None
        self.preprocessor = Preprocessor(self.preprocess_config)
        self.in_channels = len(self.preprocess_config.channels)
        self.threshold = float(self.card["threshold"])
        self.region_threshold = float(self.card["region_threshold"])
        # regions grow from pixels >= region_threshold over those >= this (cards before 0.5.0: no growing)
        grow = self.card.get("region_grow_threshold")
        self.region_grow_threshold = None if grow is None else float(grow)
        # Chosen on single-energy validation scans (the same network sees R = 1 there and scores them
        # differently); cards without it use the dual-energy threshold for every scan.
        self.single_energy_threshold = float(self.card.get("single_energy_threshold") or self.threshold)
        self.version = self.card["version"]
        self._check_signature()
        gpu = {"CUDAExecutionProvider", "TensorrtExecutionProvider"} & set(loaded)
        self.device = "cuda" if gpu else "cpu"
        self.io_binding = bool(io_binding)

    def _check_signature(self) -> None:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if [i.name for i in inputs] != [INPUT_NAME]:
            raise ValueError(
                f"{self.path}: model inputs must be [{INPUT_NAME!r}], got {[i.name for i in inputs]}"
            )
        shape = inputs[0].shape
        c = self.in_channels
        wrong_c = len(shape) == 4 and isinstance(shape[1], int) and shape[1] != c  # a name is dynamic
        if inputs[0].type != "tensor(float)" or len(shape) != 4 or wrong_c:
            raise ValueError(
                f"{self.path}: input {INPUT_NAME!r} must be float32 (N, {c}, H, W) for the card's channels "
                f"{list(self.preprocess_config.channels)}, got {inputs[0].type} {shape}"
            )
        got = {o.name: o for o in outputs}
        missing = [n for n in OUTPUT_NAMES if n not in got]
        if missing:
            raise ValueError(f"{self.path}: model lacks output(s) {missing}; it has {sorted(got)}")
        for n, rank in zip(OUTPUT_NAMES, (4, 1), strict=True):
            if got[n].type != "tensor(float)" or len(got[n].shape) != rank:
                raise ValueError(
                    f"{self.path}: output {n!r} must be float32 of rank {rank}, got {got[n].shape}"
                )

    def __repr__(self) -> str:
        return f"OnnxModel({self.path!r}, version={self.version!r}, providers={self.session.get_providers()})"

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the network on (N, K, H, W) float32 input (K = ``in_channels``), ``max_batch`` tiles per call.

        Returns ``(heatmaps, scores)``: (N, 1, H, W) float32 probabilities and (N,) float32 tile scores.
        """
        c = self.in_channels
        if not isinstance(batch, np.ndarray):
            raise ValueError(f"batch must be a numpy array (N, {c}, H, W), got {type(batch).__name__}")
        if batch.dtype != np.float32:
            raise ValueError(f"batch must be float32 (N, {c}, H, W), got dtype {batch.dtype}")
        if batch.ndim != 4 or batch.shape[1] != c or batch.size == 0:
            raise ValueError(f"batch must have shape (N, {c}, H, W) with N, H, W >= 1, got {batch.shape}")
        lo, hi = float(batch.min()), float(batch.max())  # propagate NaN, cheaper than isfinite().all()
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError("batch must be finite, but it contains NaN or Inf")
        return self._run(batch)

    def warm_up(self, tile: int | None = None) -> None:
        """Run every batch bucket (or ``max_batch``) once on empty tiles of the card's tile size, so
        that per-shape planning (cuDNN algorithm search, TensorRT engines) happens before real scans."""
        tile = tile or self.preprocess_config.tile
        for b in self.buckets or (self.max_batch,):
            self._run(np.zeros((b, self.in_channels, tile, tile), np.float32))

    def _session_run(self, chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.io_binding:
            hm, sc = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: chunk})
            return hm, sc
        binding = self.session.io_binding()
        binding.bind_ortvalue_input(INPUT_NAME, ort.OrtValue.ortvalue_from_numpy(chunk, self.device, 0))
        for name in OUTPUT_NAMES:
            binding.bind_output(name, self.device, 0)
        self.session.run_with_iobinding(binding)
        hm, sc = binding.copy_outputs_to_cpu()
        return hm, sc

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, _, h, w = batch.shape
        heatmaps = np.empty((n, 1, h, w), np.float32)
        scores = np.empty(n, np.float32)
        for start in range(0, n, self.max_batch):
            chunk = np.ascontiguousarray(batch[start : start + self.max_batch])
            k = len(chunk)
            if self.buckets is not None:
                size = next(b for b in self.buckets if b >= k)
                if size > k:
                    chunk = np.concatenate([chunk, np.zeros((size - k, *chunk.shape[1:]), np.float32)])
            hm, sc = self._session_run(chunk)
            if hm.shape != (len(chunk), 1, h, w) or sc.shape != (len(chunk),):
                raise RuntimeError(
                    f"{self.path}: outputs have shapes {hm.shape} and {sc.shape} for input {chunk.shape}; "
                    f"expected {(len(chunk), 1, h, w)} and {(len(chunk),)}"
                )
            heatmaps[start : start + k] = hm[:k]
            scores[start : start + k] = sc[:k]
        return heatmaps, scores

    def stitch(
        self, maps: np.ndarray, origins: list[tuple[int, int]], pre: Preprocessed
    ) -> tuple[np.ndarray, float]:
        """One scan's tile heatmaps (N, 1, tile, tile) -> its (H, W) heatmap and parcel score (the max),
        checked to be probabilities."""
        heatmap = self.preprocessor.stitch(maps, origins, pre)[0]
        lo, score = float(heatmap.min()), float(heatmap.max())
        if not (0 <= lo and score <= 1):  # also catches NaN
            raise RuntimeError(f"{self.path}: the model produced a heatmap outside [0, 1]: [{lo}, {score}]")
        return heatmap, score

    def predict(self, scans: Sequence[Scan]) -> list[Prediction]:
        """Preprocess, tile, infer and stitch a list of scans; one :class:`Prediction` per scan.

        The tiles of all scans are packed into shared batches of ``max_batch``, so results do not
        depend on how scans are grouped into calls.
        """
        if isinstance(scans, Scan) or not isinstance(scans, Sequence):
            raise ValueError(f"scans must be a list of Scan, got {type(scans).__name__}")
        for i, s in enumerate(scans):
            if not isinstance(s, Scan):
                raise ValueError(f"scans[{i}] must be a parcelscan Scan, got {type(s).__name__}")
        if not scans:
            return []
        pre, tile_sets, pre_ms = [], [], []
        for scan in scans:
            t0 = time.perf_counter()
            p = self.preprocessor(scan)
            tile_sets.append(self.preprocessor.tiles(p))
            pre.append(p)
            pre_ms.append(1e3 * (time.perf_counter() - t0))
        counts = [len(origins) for _, origins in tile_sets]
        t0 = time.perf_counter()
        heatmaps, _ = self._run(np.concatenate([t for t, _ in tile_sets]))
        infer_ms = 1e3 * (time.perf_counter() - t0)

        out, start = [], 0
        for p, (_, origins), n, ms in zip(pre, tile_sets, counts, pre_ms, strict=True):
            t0 = time.perf_counter()
            heatmap, score = self.stitch(heatmaps[start : start + n], origins, p)
            start += n
            timings = {
                "preprocess_ms": ms,
                "inference_ms": infer_ms * n / sum(counts),
                "stitch_ms": 1e3 * (time.perf_counter() - t0),
            }
            out.append(Prediction(heatmap, score, p, timings))
        return out
