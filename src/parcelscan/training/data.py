"""Training data: generated datasets preprocessed once, then random tiles with physical augmentation.

Every parcel of a dataset directory (``parcelscan simulate`` layout, or a user's scans with masks in
the same format) goes through the same :class:`~parcelscan.preprocess.Preprocessor` as inference, and
its ground-truth mask is brought to the model grid as a coverage fraction. Tiles are then cut around
concealed masses (40 %), on dense innocent matter (25 %: the metal, powders and tiles a mass could be
mistaken for, so the network sees its hard negatives often) or anywhere (the rest), flipped and
turned by multiples of 90 degrees. No intensity jitter: attenuation values are physical quantities.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .._workers import one_thread_each
from ..io.npz import read_npz
from ..preprocess import PreprocessConfig, Preprocessor
from ..preprocess.tiling import resample
from ..sim.dataset import dataset_problem

__all__ = ["DatasetParcels", "EpochIndices", "Example", "TileSampler", "load_dataset", "load_datasets"]


@dataclass
class Example:
    """One parcel at model resolution: image (3, H, W) float16, target (H, W) float16 coverage."""

    image: np.ndarray
    target: np.ndarray
    positive: bool
    centres: list[tuple[int, int]]  # (row, column) of each concealed mass on the model grid (for cropping)
    meta: dict
    dense: np.ndarray | None = None  # (K, 2) rows, columns of dense pixels outside any mass (for cropping)
    # (K, 2) pixels outside any mass where a model alarmed (mined hard negatives, for cropping)
    hard: np.ndarray | None = None


#: Scaled high-energy attenuation (x 4 = a_high 2, 13 % transmission) above which a pixel is "dense".
DENSE_SCALED = 0.5
#: At most this many dense pixels are kept per parcel as tile centres.
DENSE_KEEP = 256


def _dense_pixels(image: np.ndarray, target: np.ndarray, seed: int) -> np.ndarray:
    ys, xs = np.nonzero((image[1] > DENSE_SCALED) & (target < 0.01))
    pick = np.random.default_rng(seed).permutation(ys.size)[:DENSE_KEEP]
    return np.stack([ys[pick], xs[pick]], 1).astype(np.int32)


def _example(scan_path: Path, label: dict, pre: Preprocessor) -> Example:
    scan, extras = read_npz(scan_path, with_extras=True)
    p = pre(scan)
    mask = (extras["mask"] > 0).astype(np.float32)[None]
    cover, _, _ = resample(mask, scan.line_mm, scan.pixel_mm, pre.config.target_mm)
    cover = cover[0]
    centres = []
    for m in label["masses"]:
        x0, y0, x1, y1 = m["bbox_px"]
        if x1 > x0:
            centres.append((int((y0 + y1) / 2 * p.scale_lines), int((x0 + x1) / 2 * p.scale_pixels)))
    meta = {k: label.get(k) for k in ("id", "category", "positive")}
    seed = sum(ord(c) for c in str(label.get("id", "")))
    return Example(
        p.image.astype(np.float16),
        cover.astype(np.float16),
        bool(label["positive"]),
        centres,
        meta,
        _dense_pixels(p.image, cover, seed),
    )


class DatasetParcels(Sequence):
    """The parcels of dataset folders (``index.json`` order, at most ``limit`` from each), each
    preprocessed into an :class:`Example` when indexed, so a caller that needs a few pays for a few."""

    def __init__(self, roots: list[str | Path], config: PreprocessConfig, limit: int | None = None):
        self.items: list[tuple[Path, dict]] = []
        for root in map(Path, roots):
            problem = dataset_problem(root)
            if problem is not None:  # missing, or an index.json that lists no parcels
                raise (ValueError if (root / "index.json").is_file() else FileNotFoundError)(problem)
            self.items += [
                (root, e) for e in json.loads((root / "index.json").read_text())["parcels"][:limit]
            ]
        self.pre = Preprocessor(config)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Example:
        root, entry = self.items[i]
        label = json.loads((root / entry["label"]).read_text())
        return _example(root / entry["scan"], label, self.pre)


def load_dataset(
    root: str | Path,
    config: PreprocessConfig,
    limit: int | None = None,
    progress: bool = True,
    workers: int = 1,
) -> list[Example]:
    """Preprocess every parcel listed in ``root/index.json`` (at most ``limit``), in ``workers``
    processes; the examples do not depend on the number of workers."""
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    parcels = DatasetParcels([root], config, limit)
    bar = {"total": len(parcels), "desc": f"preprocessing {Path(root).name}", "unit": "parcel"}
    if workers == 1 or len(parcels) < 2:
        return list(tqdm(map(parcels.__getitem__, range(len(parcels))), disable=not progress, **bar))
    workers = min(workers, len(parcels))
    with ProcessPoolExecutor(workers, initializer=_set_parcels, initargs=(parcels,)) as pool:
        return list(tqdm(pool.map(_parcel, range(len(parcels)), chunksize=4), disable=not progress, **bar))


_worker_parcels: DatasetParcels | None = None  # a preprocessing worker's dataset (sent once, not per parcel)


def _set_parcels(parcels: DatasetParcels) -> None:
    global _worker_parcels
    one_thread_each()
    _worker_parcels = parcels


def _parcel(i: int) -> Example:
    return _worker_parcels[i]


def load_datasets(
    roots: list[str | Path],
    config: PreprocessConfig,
    limit: int | None = None,
    progress: bool = True,
    workers: int = 1,
) -> list[Example]:
    """:func:`load_dataset` of each folder in turn (at most ``limit`` parcels from each), concatenated."""
    return [ex for root in roots for ex in load_dataset(root, config, limit, progress, workers)]


class TileSampler(torch.utils.data.Dataset):
    """Random training tiles of ``size`` pixels; ``length`` tiles make an epoch.

    40 % of the tiles are centred (with jitter) on a concealed mass of a positive parcel, 25 % on a
    dense pixel outside any mass, the rest are cut anywhere in any parcel; out-of-image parts are air
    (attenuation 0, target 0). When examples carry mined hard negatives (``Example.hard``, see
    :func:`~parcelscan.training.loop.mine_hard_negatives`), 15 % of the tiles are centred on those
    instead, taken half from the dense and half from the random share (40 / 15 / 17.5 / 27.5 %).

    Within each share a parcel is drawn uniformly, or, with ``category_weights`` ({category: weight},
    the ``category`` of the parcels' labels, e.g. ``{"misdeclared_powder": 2.0}``), in proportion to
    its category's weight (1 for categories not named; 0 leaves a category out). This rebalances the
    data without repeating parcels in an index, which would also repeat their preprocessing.

    Every tile is drawn from (seed, epoch, index) alone, the epoch being ``index // length``: index
    ``epoch * length + i`` is tile i of that epoch (:class:`EpochIndices` lists an epoch's), so
    DataLoader workers can live for the whole run without being told the epoch.
    """

    POSITIVE_SHARE = 0.4
    DENSE_SHARE = 0.25
    HARD_SHARE = 0.15

    def __init__(
        self,
        examples: list[Example],
        size: int,
        length: int,
        seed: int,
        augment: bool = True,
        category_weights: Mapping[str, float] | None = None,
    ):
        if not examples:
            raise ValueError("no training examples")
        self.examples, self.size, self.length, self.seed, self.augment = examples, size, length, seed, augment
        weights = _example_weights(examples, category_weights)
        if weights is not None and not weights.any():
            raise ValueError("category_weights leave no training parcel to draw (every weight is 0)")
        kept = [i for i in range(len(examples)) if weights is None or weights[i] > 0]
        self.anywhere = _Pool(kept, weights)
        self.positives = _Pool([i for i in kept if examples[i].centres], weights)
        self.dense = _Pool([i for i in kept if _has(examples[i].dense)], weights)
        self.hard = _Pool([i for i in kept if _has(examples[i].hard)], weights)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        if idx < 0:
            raise IndexError(f"tile index {idx} < 0")
        epoch, idx = divmod(idx, self.length)
        rng = np.random.default_rng([self.seed, epoch, idx])
        s = self.size
        u, centre = rng.random(), None
        hard = self.HARD_SHARE if self.hard else 0.0
        dense = self.DENSE_SHARE - hard / 2
        if self.positives and u < self.POSITIVE_SHARE:
            ex = self.examples[self.positives.draw(rng)]
            centre = ex.centres[int(rng.integers(len(ex.centres)))]
        elif hard and u < self.POSITIVE_SHARE + hard:
            ex = self.examples[self.hard.draw(rng)]
            centre = ex.hard[int(rng.integers(len(ex.hard)))]
        elif self.dense and u < self.POSITIVE_SHARE + hard + dense:
            ex = self.examples[self.dense.draw(rng)]
            centre = ex.dense[int(rng.integers(len(ex.dense)))]
        else:
            ex = self.examples[self.anywhere.draw(rng)]
        if centre is not None:  # centred with jitter, so the object is not always mid-tile
            y0 = int(centre[0]) - s // 2 + int(rng.integers(-s // 3, s // 3 + 1))
            x0 = int(centre[1]) - s // 2 + int(rng.integers(-s // 3, s // 3 + 1))
        else:
            _, h, w = ex.image.shape
            y0 = int(rng.integers(min(0, h - s), max(h - s, 0) + 1))
            x0 = int(rng.integers(min(0, w - s), max(w - s, 0) + 1))
        image, target = _crop(ex.image, y0, x0, s), _crop(ex.target[None], y0, x0, s)
        if self.augment:
            k = int(rng.integers(4))
            image, target = np.rot90(image, k, axes=(1, 2)), np.rot90(target, k, axes=(1, 2))
            if rng.random() < 0.5:
                image, target = image[:, :, ::-1], target[:, :, ::-1]
        return (
            torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(target, dtype=np.float32)),
        )


def _has(points: np.ndarray | None) -> bool:
    return points is not None and len(points) > 0


def _example_weights(
    examples: list[Example], category_weights: Mapping[str, float] | None
) -> np.ndarray | None:
    """Each example's draw weight from its label's category, or None (uniform) without weights."""
    if not category_weights:
        return None
    present = sorted({str(e.meta.get("category")) for e in examples})
    for name, w in category_weights.items():
        if not isinstance(w, (int, float)) or isinstance(w, bool) or not np.isfinite(w) or w < 0:
            raise ValueError(f"category weight for {name!r} must be a finite number >= 0, got {w!r}")
        if name not in present:
            raise ValueError(
                f"category_weights name {name!r}, which no training parcel has (their categories: "
                f"{', '.join(present)})"
            )
    return np.array([float(category_weights.get(str(e.meta.get("category")), 1.0)) for e in examples])


class _Pool:
    """Indices of examples to draw from, uniformly or in proportion to their weights."""

    def __init__(self, indices: list[int], weights: np.ndarray | None):
        self.indices = indices
        self.cumulative = None if weights is None else np.cumsum(weights[indices])

    def __len__(self) -> int:
        return len(self.indices)

    def draw(self, rng: np.random.Generator) -> int:
        if self.cumulative is None:  # uniform: the draw earlier versions made, so old runs repeat
            return self.indices[int(rng.integers(len(self.indices)))]
        return self.indices[
            int(np.searchsorted(self.cumulative, rng.random() * self.cumulative[-1], "right"))
        ]


class EpochIndices(torch.utils.data.Sampler):
    """The tile indices of one epoch, ``epoch * length`` to ``(epoch + 1) * length``, for a
    :class:`TileSampler` of that length: set ``epoch`` here, in the training process, and persistent
    loader workers cut that epoch's tiles (the sampler runs in the training process, the workers
    only receive indices)."""

    def __init__(self, length: int):
        self.length, self.epoch = length, 0

    def __iter__(self):
        return iter(range(self.epoch * self.length, (self.epoch + 1) * self.length))

    def __len__(self) -> int:
        return self.length


def _crop(a: np.ndarray, y0: int, x0: int, s: int) -> np.ndarray:
    """(C, s, s) window at (y0, x0) of a (C, H, W) array, zero (air) outside it."""
    c, h, w = a.shape
    out = np.zeros((c, s, s), dtype=a.dtype)
    ys, xs = max(y0, 0), max(x0, 0)
    ye, xe = min(y0 + s, h), min(x0 + s, w)
    if ye > ys and xe > xs:
        out[:, ys - y0 : ye - y0, xs - x0 : xe - x0] = a[:, ys:ye, xs:xe]
    return out
