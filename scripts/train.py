"""Train the parcelscan detector, choose its operating threshold, export ONNX models and the card.

A thin driver over ``parcelscan.training``. Typical use::

    parcelscan simulate --count 1200 --seed 1 --out out/train
    parcelscan simulate --count 400 --seed 2 --out out/val
    python scripts/train.py --data out/train --val out/val --out models --seed 0

``--simulate N`` generates the training set first (seed ``--seed + 1000``) instead of ``--data``.
``--init models/parcelscan.pt`` fine-tunes the shipped model (a fresh learning-rate cycle; the start is
kept unless beaten on validation), and ``--mine-hard`` adds tiles around its false alarms.
Your own scans train the same way: put them in the dataset layout of datasets/README.md (scan
files with an ``extra_mask`` ground-truth map, a JSON label each, an index.json).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from parcelscan.evaluation import auroc, threshold_at_fpr, tpr_at_fpr
from parcelscan.postprocess import DEFAULT_REGION_GROW
from parcelscan.preprocess import INPUT_CHANNELS, KVP_CHANNELS, PreprocessConfig
from parcelscan.preprocess.tiling import tiles
from parcelscan.sim.dataset import dataset_problem
from parcelscan.training.data import load_dataset, load_datasets
from parcelscan.training.export import OUTPUT_NAMES, embed_card, export_fp16, export_int8, export_onnx, sha256
from parcelscan.training.loop import PRECISIONS, TrainConfig, native_bf16, train
from parcelscan.training.network import gflops, in_channels_of

VERSION = "0.15.0"  # the next model; 0.14.0 is shipped


def _dataset_info(root: Path) -> dict:
    index = json.loads((root / "index.json").read_text())
    return {
        "dir": str(root),
        "seed": index.get("seed"),
        "count": index.get("count"),
        "positives": index.get("positives"),
        "scene_config": index.get("config"),
    }


def save_weights(model, out: Path, name: str) -> dict:
    """Write the state dict as ``out/name.pt`` (for fine-tuning with --init; not part of the runtime
    package) and return its card entry."""
    path = out / f"{name}.pt"
    torch.save(model.state_dict(), path)
    return {"file": path.name, "sha256": sha256(path), "bytes": path.stat().st_size}


def _init_info(path: Path) -> dict:
    """Provenance of --init weights: their hash, and the version and command of the card beside them."""
    info = {"weights": str(path), "sha256": sha256(path)}
    card = path.with_suffix(".json")
    if card.is_file():
        previous = json.loads(card.read_text())
        info["version"] = previous.get("version")
        info["command"] = previous.get("training", {}).get("command")
        info["init"] = previous.get("training", {}).get("init")  # earlier stages, if any
    return info


def export_all(
    model,
    card: dict,
    train_ex,
    val_dirs: list[Path],
    out: Path,
    name: str,
    seed: int,
    limit: int | None,
    int8: bool = True,
    fp16: bool = True,
    val_single: list[Path] | None = None,
) -> dict:
    """Export fp32 (+ int8, fp16), choose each file's threshold on the validation set, write the card.

    With ``val_single`` (folders of single-energy scans) each file also gets a
    ``single_energy_threshold`` at 1 % false alarms among them: the network sees R = 1 on such scans
    and its scores there follow another distribution."""
    pre = PreprocessConfig.from_dict(card["preprocess"])
    card["region_grow_threshold"] = DEFAULT_REGION_GROW  # also on cards from before it existed (export.py)
    fp32 = out / f"{name}.onnx"
    export_onnx(model, fp32, card)
    files = {"fp32": fp32}
    if int8:
        rng = np.random.default_rng(seed)
        pool = []
        for i in rng.choice(len(train_ex), size=min(24, len(train_ex)), replace=False):
            batch, _ = tiles(train_ex[int(i)].image.astype(np.float32), pre.tile, pre.overlap)
            pool.extend(batch[:4])
        # equal-sized batches: the percentile calibrator concatenates them
        calib = [np.stack(pool[i : i + 4]) for i in range(0, len(pool) - 3, 4)]
        files["int8"] = out / f"{name}.int8.onnx"
        export_int8(fp32, files["int8"], calib, card)
    if fp16:
        files["fp16"] = out / f"{name}.fp16.onnx"
        export_fp16(fp32, files["fp16"], card)

    # Operating point of each file: 1 % parcel false alarms on the validation parcels, scored by the
    # exported model through ONNX Runtime exactly as a station will score them.
    validation = {}
    for kind, path in files.items():
        validation[kind] = _operating_point(path, val_dirs, limit)
        validation[kind]["dirs"] = [str(d) for d in val_dirs]
        print(f"validation {kind}: {json.dumps(validation[kind])}")
        threshold = validation[kind]["threshold"]
        own = {"threshold": threshold, "region_threshold": threshold, "precision": kind}
        if val_single:
            single = validation[kind]["single_energy"] = _operating_point(path, val_single, limit)
            single["dirs"] = [str(d) for d in val_single]
            print(f"validation {kind}, single-energy: {json.dumps(single)}")
            own["single_energy_threshold"] = single["threshold"]
        embed_card(path, {**card, **own})
    card["threshold"] = card["region_threshold"] = validation["fp32"]["threshold"]
    if val_single:
        card["single_energy_threshold"] = validation["fp32"]["single_energy"]["threshold"]
    card["training"]["validation"] = validation
    card["files"] = {}
    for k, v in files.items():
        entry = {"file": v.name, "sha256": sha256(v), "bytes": v.stat().st_size}
        entry["threshold"] = validation[k]["threshold"]
        if val_single:
            entry["single_energy_threshold"] = validation[k]["single_energy"]["threshold"]
        card["files"][k] = entry
    (out / f"{name}.json").write_text(json.dumps(card, indent=1))
    print(f"wrote {', '.join(str(v) for v in files.values())} and {out / (name + '.json')}")
    return card


def _operating_point(model_path: Path, roots: list[Path], limit: int | None) -> dict:
    """The file's threshold at 1 % parcel false alarms on the parcels of ``roots``, AUROC and TPR there."""
    scores, labels = _validation_scores(model_path, roots, limit)
    return {
        "threshold": threshold_at_fpr(scores[~labels], 0.01),
        "auroc": auroc(scores, labels),
        "tpr_at_1pct_fpr": tpr_at_fpr(scores, labels, 0.01),
        "parcels": int(labels.size),
        "positives": int(labels.sum()),
    }


def _validation_scores(
    model_path: Path, roots: list[Path], limit: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Parcel scores of the validation parcels (at most ``limit`` per folder) by the exported model
    (one ONNX Runtime session for all folders), and the labels."""
    from parcelscan.engine import OnnxModel
    from parcelscan.io.npz import read_npz

    model = OnnxModel(model_path, allow_spinning=False)
    entries = [
        (root, e) for root in roots for e in json.loads((root / "index.json").read_text())["parcels"][:limit]
    ]
    scores = []
    for i in range(0, len(entries), 8):
        scans = [read_npz(root / e["scan"]) for root, e in entries[i : i + 8]]
        scores += [p.score for p in model.predict(scans)]
    return np.array(scores), np.array([bool(e["positive"]) for _, e in entries])


def training_card(
    model,
    pre: PreprocessConfig,
    cfg: TrainConfig,
    *,
    command: str,
    minutes: float,
    history: list[dict],
    weights: dict,
    train_data: list[dict],
    val_data: dict,
    init: dict | None = None,
) -> dict:
    """The model card as training leaves it: network, preprocessing and the training record; the export
    adds the files, thresholds and validation results."""
    tile_gflop = gflops(model, 256)  # one counted forward pass serves both figures
    card = {
        "name": weights["file"].removesuffix(".pt"),
        "version": VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "task": "per-pixel probability of a concealed dense mass; parcel score = max over the parcel",
        "input": {
            "name": "image",
            "shape": ["batch", len(pre.channels), "height", "width"],
            "channels": list(pre.channels),
        },
        "outputs": list(OUTPUT_NAMES),
        "preprocess": pre.to_dict(),
        "threshold": 0.5,
        "region_threshold": 0.5,
        "threshold_rule": "alarm when the parcel score > threshold; chosen at 1 % parcel FPR on validation",
        "network": {
            "architecture": "DetectorNet (U-Net-lite over the input channels and the logarithms of a_low "
            "and a_high, dilated residual context blocks at 1/16)",
            "config": model.config(),
            "parameters": sum(q.numel() for q in model.parameters()),
            "gflop_per_256_tile": round(tile_gflop, 3),
            "gflop_per_megapixel": round(tile_gflop / (256 * 256 / 1e6), 2),
        },
        "training": {
            "command": command,
            "seed": cfg.seed,
            "minutes": round(minutes, 1),
            "train_data": train_data,
            "val_data": val_data,
            "config": dict(cfg.__dict__),
            "history": history,
            "torch": torch.__version__,
            "weights": weights,
        },
    }
    if cfg.device == "cuda" and torch.cuda.is_available():
        card["training"]["gpu"] = torch.cuda.get_device_name()
    if init is not None:
        card["training"]["init"] = init
    return card


def check_dataset_args(p: argparse.ArgumentParser, named: list[tuple[str, Path | None]]) -> None:
    """Stop with a usage error naming the first (flag, folder) that is not a dataset folder; a folder
    of None is a flag not given."""
    for flag, folder in named:
        if folder is not None and (problem := dataset_problem(folder)) is not None:
            p.error(f"{flag} {problem}")


def _input_layout(kvp_input: bool, resume: Path | None, init: Path | None) -> tuple[str, ...]:
    """The model input channels: with the kV plane if asked, else those of the weights training
    continues from (a checkpoint to resume, or init weights), else the 3-channel layout."""
    if kvp_input:
        return KVP_CHANNELS
    if resume is not None or init is not None:
        state = torch.load(resume or init, map_location="cpu", weights_only=True)
        n = in_channels_of(state["model"] if resume is not None else state)
        return KVP_CHANNELS if n == len(KVP_CHANNELS) else INPUT_CHANNELS
    return INPUT_CHANNELS


def _category_weight(text: str) -> tuple[str, float]:
    """argparse type of ``--category-weight``: ``CATEGORY=W`` with W a finite number >= 0."""
    name, sep, value = text.partition("=")
    try:
        weight = float(value)
    except ValueError:
        weight = float("nan")
    if not sep or not name or not math.isfinite(weight) or weight < 0:
        raise argparse.ArgumentTypeError(f"expected CATEGORY=W with W a number >= 0, got {text!r}")
    return name, weight


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data", type=Path, nargs="+", help="training dataset directories (parcelscan simulate layout)"
    )
    p.add_argument("--simulate", type=int, metavar="N", help="simulate N training parcels first instead")
    p.add_argument("--val", type=Path, required=True, help="validation dataset directory (every epoch)")
    p.add_argument(
        "--threshold-data",
        type=Path,
        nargs="+",
        default=None,
        help="dataset directories to choose the operating threshold on (default: --val); more "
        "negatives make the 1 %% false-alarm point steadier",
    )
    p.add_argument(
        "--val-single",
        type=Path,
        nargs="+",
        default=None,
        help="single-energy validation sets: also choose the single-energy threshold on them (more "
        "negatives make it steadier)",
    )
    p.add_argument("--out", type=Path, default=Path("models"), help="where the models and card go")
    p.add_argument("--name", default="parcelscan", help="model file stem")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--tiles-per-epoch", type=int, default=2048)
    p.add_argument("--tile", type=int, default=192, help="training tile size (pixels at target_mm)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--patience", type=int, default=5, help="early stopping patience (epochs)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument(
        "--precision",
        default="fp32",
        choices=list(PRECISIONS),
        help="bf16: train the convolutions in bfloat16 (autocast; 1.5x a step on a CPU with AVX-512 BF16); "
        "the exported model is float32 either way",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument(
        "--workers", type=int, default=1, help="processes preprocessing the parcels (results do not change)"
    )
    p.add_argument(
        "--loader-workers",
        type=int,
        default=0,
        help="processes cutting training tiles (0: the training process; results do not change)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="use at most this many parcels per dataset")
    p.add_argument("--max-minutes", type=float, default=None, help="stop after this much training time")
    p.add_argument(
        "--deadline",
        type=float,
        default=None,
        metavar="UNIX_SECONDS",
        help="training also ends by this wall-clock time (`date +%%s` + seconds), however long "
        "preprocessing and mining took (for a machine lent for a fixed time)",
    )
    p.add_argument(
        "--fit-epochs",
        action="store_true",
        help="with --max-minutes or --deadline: time the second epoch and shorten the schedule to the "
        "epochs that fit in the budget, so the learning rate still anneals (the history records the count)",
    )
    p.add_argument(
        "--no-export",
        action="store_true",
        help="stop after writing the weights and the training card (scripts/export.py exports them)",
    )
    p.add_argument("--resume", type=Path, default=None, help="resume from a last.pt checkpoint")
    p.add_argument(
        "--init",
        type=Path,
        default=None,
        help="start from these weights (e.g. models/parcelscan.pt) with a fresh learning-rate cycle",
    )
    p.add_argument(
        "--mine-hard",
        action="store_true",
        help="with --init: cut extra tiles around that model's false alarms on the training parcels",
    )
    p.add_argument(
        "--context-blocks",
        type=int,
        default=3,
        help="dilated residual blocks at 1/16 resolution (0-4); --init weights may have fewer, the "
        "new blocks start as the identity",
    )
    p.add_argument(
        "--widths",
        type=int,
        nargs=4,
        default=None,
        metavar="C",
        help="channels at 1/2, 1/4, 1/8 and 1/16 resolution (default: those of the --init weights, else "
        "24 32 48 64); --init weights may be narrower, the new channels start unread (the network "
        "computes what the init weights computed)",
    )
    p.add_argument(
        "--kvp-input",
        action="store_true",
        help="give the network the scan's tube voltage as a fourth input plane (preprocess channels "
        "a_low a_high impenetrable kvp); --init weights may lack it, the stem then starts reading it with "
        "weight zero. Default: the layout of the --resume or --init weights, else without",
    )
    p.add_argument(
        "--average-epochs",
        type=int,
        default=0,
        metavar="N",
        help="the model is the average of the weights after each of the last N epochs, batch-norm "
        "statistics measured again (stochastic weight averaging; 0: the best epoch)",
    )
    p.add_argument(
        "--freeze-bn",
        action="store_true",
        help="with --init: batch norm keeps and uses those weights' statistics (fine-tuning with "
        "small batches, e.g. on a CPU)",
    )
    p.add_argument(
        "--category-weight",
        type=_category_weight,
        action="append",
        default=[],
        metavar="CATEGORY=W",
        help="draw training parcels of this label category (e.g. misdeclared_powder, tile_blend, "
        "benign_tiles) W times as often as the others (repeatable; 0 leaves the category out)",
    )
    p.add_argument("--work", type=Path, default=Path("out/train_run"), help="checkpoints and logs")
    p.add_argument("--no-int8", action="store_true")
    p.add_argument("--no-fp16", action="store_true")
    args = p.parse_args(argv)
    if (args.data is None) == (args.simulate is None):
        p.error("give exactly one of --data DIR or --simulate N")
    if not 0 <= args.context_blocks <= 4:
        p.error(f"--context-blocks must be 0 to 4, got {args.context_blocks}")
    if args.widths is not None and min(args.widths) < 1:
        p.error(f"--widths must be positive channel counts, got {args.widths}")
    if args.workers < 1 or args.loader_workers < 0:
        p.error("--workers must be at least 1 and --loader-workers at least 0")
    if args.fit_epochs and not (args.max_minutes or args.deadline):
        p.error("--fit-epochs needs --max-minutes or --deadline to fit the schedule to")
    if args.deadline is not None and args.deadline <= time.time():
        p.error(f"--deadline {args.deadline:.0f} has passed (now {time.time():.0f})")
    if not 0 <= args.average_epochs <= args.epochs:
        p.error(f"--average-epochs must be 0 to --epochs ({args.epochs}), got {args.average_epochs}")
    if args.precision == "bf16" and not native_bf16(args.device):
        print(
            f"warning: this {args.device} has no bfloat16 arithmetic in hardware; --precision bf16 is "
            "emulated there and slower than fp32",
            file=sys.stderr,
        )
    check_dataset_args(
        p,
        [("--data", d) for d in args.data or []]
        + [("--val", args.val)]
        + [("--threshold-data", d) for d in args.threshold_data or []]
        + [("--val-single", d) for d in args.val_single or []],
    )
    category_weights = dict(args.category_weight)
    if len(category_weights) < len(args.category_weight):
        p.error("--category-weight names a category twice")
    if category_weights and args.data:
        present = {
            e.get("category")
            for d in args.data
            for e in json.loads((d / "index.json").read_text())["parcels"]
        }
        unknown = sorted(set(category_weights) - present)
        if unknown:
            p.error(
                f"--category-weight {', '.join(unknown)}: no --data parcel has that category "
                f"(they have {', '.join(sorted(map(str, present)))})"
            )
    if args.resume is not None and not args.resume.is_file():
        p.error(f"--resume {args.resume}: no such checkpoint")
    if args.mine_hard and args.init is None:
        p.error("--mine-hard needs --init WEIGHTS to mine with")
    if args.freeze_bn and args.init is None:
        p.error("--freeze-bn needs --init WEIGHTS whose statistics to keep")
    if args.init is not None and not args.init.is_file():
        p.error(f"--init {args.init}: no such weights file")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda requested but torch sees no CUDA device")
    command = "python scripts/train.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )

    data_dirs = args.data
    if args.simulate is not None:
        from parcelscan.sim.dataset import generate_dataset

        data_dirs = [args.work / "simulated_train"]
        generate_dataset(
            data_dirs[0], args.simulate, seed=args.seed + 1000, workers=args.workers, skip_existing=True
        )
    pre = PreprocessConfig(channels=_input_layout(args.kvp_input, args.resume, args.init))
    train_ex = load_datasets(data_dirs, pre, limit=args.limit, workers=args.workers)
    val_ex = load_dataset(args.val, pre, limit=args.limit, workers=args.workers)
    cfg = TrainConfig(
        epochs=args.epochs,
        tiles_per_epoch=args.tiles_per_epoch,
        batch_size=args.batch_size,
        tile=args.tile,
        lr=args.lr,
        patience=args.patience,
        seed=args.seed,
        device=args.device,
        threads=args.threads,
        max_minutes=args.max_minutes,
        mine_hard=args.mine_hard,
        context=args.context_blocks,
        widths=None if args.widths is None else tuple(args.widths),
        loader_workers=args.loader_workers,
        average_epochs=args.average_epochs,
        freeze_bn=args.freeze_bn,
        fit_epochs=args.fit_epochs,
        deadline=args.deadline,
        precision=args.precision,
        category_weights=category_weights,
    )
    t0 = time.time()
    model, history = train(train_ex, val_ex, pre, cfg, args.work, resume=args.resume, init=args.init)
    minutes = (time.time() - t0) / 60

    model = model.cpu()  # trained on any device; saved, measured and exported on the CPU
    args.out.mkdir(parents=True, exist_ok=True)
    weights = save_weights(model, args.out, args.name)
    card = training_card(
        model,
        pre,
        cfg,
        command=command,
        minutes=minutes,
        history=history,
        weights=weights,
        train_data=[_dataset_info(d) for d in data_dirs],
        val_data=_dataset_info(args.val),
        init=None if args.init is None else _init_info(args.init),
    )
    # The training record before the export: should an export step fail, scripts/export.py redoes it
    # from out/NAME.pt and this card without training again.
    (args.out / f"{args.name}.json").write_text(json.dumps(card, indent=1))
    if args.no_export:
        print(f"wrote {args.out / args.name}.pt and .json; export with scripts/export.py")
        return 0
    export_all(
        model,
        card,
        train_ex,
        args.threshold_data or [args.val],
        args.out,
        args.name,
        args.seed,
        args.limit,
        not args.no_int8,
        not args.no_fp16,
        args.val_single,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
