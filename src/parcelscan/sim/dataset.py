"""Labelled dataset generation: one scan file, one JSON label and optionally a preview per parcel.

Layout of a dataset directory (documented in ``datasets/README.md``)::

    index.json              dataset description and one entry per parcel
    scans/<id>.npz          native scan file; ground-truth maps stored as extras
                            ``extra_mask`` (L, P) uint8 and ``extra_class_map`` (L, P) uint8
    labels/<id>.json        masses, manifest, scanner configuration, parcel category
    previews/<id>.png       operator-style pseudo-colour image (with --preview)

Parcel ``i`` of a dataset with seed ``S`` is drawn from ``np.random.default_rng([S, i])`` alone, so
the output is identical whatever the number of worker processes.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from .._workers import one_thread_each
from ..io.npz import read_npz, write_npz
from .catalogue import SceneConfig, random_parcel
from .render import Rendered, render_scene

__all__ = [
    "LABEL_FORMAT_VERSION",
    "dataset_problem",
    "generate_dataset",
    "label_dict",
    "load_example",
    "simulate_parcel",
]

LABEL_FORMAT_VERSION = 1


def simulate_parcel(seed: int, index: int, config: SceneConfig | None = None) -> tuple[Rendered, dict]:
    """Simulate parcel ``index`` of the dataset with ``seed``: the rendered scan and its label."""
    rng = np.random.default_rng([seed, index])
    scene, scanner = random_parcel(rng, config)
    rendered = render_scene(scene, scanner, rng)
    return rendered, label_dict(f"{index:06d}", [seed, index], scene, rendered)


def label_dict(parcel_id: str, seed: list[int], scene, rendered: Rendered) -> dict:
    """The JSON label of a rendered parcel."""
    return {
        "format": "parcelscan-label",
        "format_version": LABEL_FORMAT_VERSION,
        "id": parcel_id,
        "seed": seed,
        "positive": bool(rendered.masses),
        "category": scene.category,
        "masses": [m.to_dict() for m in rendered.masses],
        "manifest": {"items": [m.to_dict() for m in scene.manifest], "honest": scene.manifest_honest},
        "contents": sorted({it.group for it in scene.items if it.group}),
        "scan_shape": list(rendered.scan.shape),
        "scanner": rendered.scan.metadata["scanner"],
    }


def _entry(label: dict, preview: bool) -> dict:
    pid = label["id"]
    return {
        "id": pid,
        "scan": f"scans/{pid}.npz",
        "label": f"labels/{pid}.json",
        "preview": f"previews/{pid}.png" if preview else None,
        "positive": label["positive"],
        "category": label["category"],
        "n_masses": len(label["masses"]),
        "scan_shape": label["scan_shape"],
    }


def _write_one(args: tuple[int, int, SceneConfig, str, bool, bool]) -> dict:
    seed, index, config, out, preview, skip_existing = args
    out_dir = Path(out)
    pid = f"{index:06d}"
    label_path = out_dir / "labels" / f"{pid}.json"
    if skip_existing and label_path.is_file() and (out_dir / "scans" / f"{pid}.npz").is_file():
        label = json.loads(label_path.read_text())
        if label.get("seed") == [seed, index] and (
            not preview or (out_dir / "previews" / f"{pid}.png").is_file()
        ):
            return _entry(label, preview)
    rendered, label = simulate_parcel(seed, index, config)
    write_npz(
        rendered.scan,
        out_dir / "scans" / f"{pid}.npz",
        extras={"mask": rendered.mask, "class_map": rendered.class_map},
    )
    if preview:
        from ..viz import pseudo_colour, write_png

        write_png(out_dir / "previews" / f"{pid}.png", pseudo_colour(rendered.scan))
    # The label goes last: a parcel counts as written once its label exists (see skip_existing).
    label_path.write_text(json.dumps(label, indent=1))
    return _entry(label, preview)


def generate_dataset(
    out: str | os.PathLike,
    count: int,
    seed: int,
    workers: int = 1,
    preview: bool = False,
    config: SceneConfig | None = None,
    start: int = 0,
    progress: bool = True,
    skip_existing: bool = False,
) -> dict:
    """Simulate ``count`` parcels into ``out`` and write ``index.json``; returns the index.

    skip_existing : keep parcels already written by an earlier run with the same seed (an
        interrupted generation resumes; the result is the same as an uninterrupted one).
    """
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    config = config or SceneConfig()
    out_dir = Path(out)
    for sub in ("scans", "labels") + (("previews",) if preview else ()):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    jobs = [(seed, i, config, str(out_dir), preview, skip_existing) for i in range(start, start + count)]
    bar = tqdm(total=count, desc="simulating parcels", unit="parcel", disable=not progress)
    entries = []
    if workers == 1:
        with threadpool_limits(limits=1):  # as in a worker (_workers.py): same sums, so the same scans
            for job in jobs:
                entries.append(_write_one(job))
                bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers, initializer=one_thread_each) as pool:
            for entry in pool.map(_write_one, jobs, chunksize=1):
                entries.append(entry)
                bar.update()
    bar.close()
    index = {
        "format": "parcelscan-dataset",
        "format_version": LABEL_FORMAT_VERSION,
        "seed": seed,
        "count": count,
        "start": start,
        "config": asdict(config),
        "positives": sum(e["positive"] for e in entries),
        "parcels": entries,
    }
    (out_dir / "index.json").write_text(json.dumps(index, indent=1))
    return index


def dataset_problem(root: str | os.PathLike) -> str | None:
    """Why ``root`` cannot be read as a dataset folder (one line naming it), or None when it can.

    Checks what a reader needs first: the folder and its ``index.json`` listing parcels; the scans
    and labels it names are checked when they are read."""
    root = Path(root)
    if not root.is_dir():
        return f"{root}: no such dataset folder"
    index = root / "index.json"
    if not index.is_file():
        return f"{root}: no index.json, not a dataset folder (make one: `parcelscan simulate --out {root}`)"
    try:
        parcels = json.loads(index.read_text())["parcels"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        return f"{index}: not a dataset index with a 'parcels' list ({type(e).__name__}: {e})"
    if not isinstance(parcels, list):
        return f"{index}: 'parcels' must be a list, got {type(parcels).__name__}"
    return None


def load_example(dataset_dir: str | os.PathLike, parcel_id: str):
    """(scan, label dict, mask (L, P) uint8, class_map (L, P) uint8) of one parcel of a dataset."""
    root = Path(dataset_dir)
    scan, extras = read_npz(root / "scans" / f"{parcel_id}.npz", with_extras=True)
    label = json.loads((root / "labels" / f"{parcel_id}.json").read_text())
    return scan, label, extras["mask"], extras["class_map"]
