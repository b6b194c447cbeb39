"""Re-export trained weights: ONNX fp32, int8, fp16, thresholds and card, keeping the training record.

For when the export step improves after a model was trained (the training itself is not redone)::

    python scripts/export.py --weights out/train_run/best.pt --card models/parcelscan.json \\
        --data out/train --val out/val

The card keeps its ``training`` section (command, seed, data, history) and gains an ``export``
entry with this command. ``--val`` takes several folders: the thresholds are chosen on all of their
parcels. Only the parcels drawn for the int8 calibration are preprocessed from ``--data``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from parcelscan.preprocess import PreprocessConfig
from parcelscan.training.data import DatasetParcels
from parcelscan.training.network import DetectorNet
from train import check_dataset_args, export_all, save_weights


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", type=Path, required=True, help="state dict saved by train.py (best.pt)")
    p.add_argument("--card", type=Path, required=True, help="the model card written by train.py")
    p.add_argument(
        "--data", type=Path, nargs="+", required=True, help="training data (int8 calibration tiles)"
    )
    p.add_argument(
        "--val", type=Path, nargs="+", required=True, help="validation data: the thresholds are chosen on it"
    )
    p.add_argument(
        "--val-single",
        type=Path,
        nargs="+",
        default=None,
        help="single-energy validation data (its threshold is chosen on all of it)",
    )
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--seed", type=int, default=None, help="calibration sampling seed (default: the card's)")
    args = p.parse_args(argv)
    for flag, path in (("--weights", args.weights), ("--card", args.card)):
        if not path.is_file():
            p.error(f"{flag} {path}: no such file")
    named = [("--data", d) for d in args.data] + [("--val", d) for d in args.val]
    named += [("--val-single", d) for d in args.val_single or []]
    check_dataset_args(p, named)
    card = json.loads(args.card.read_text())
    card.pop("evaluation", None)  # the files change: evaluate again
    command = "python scripts/export.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    card["export"] = {"command": command}
    model = DetectorNet.from_card(card)
    model.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
    pre = PreprocessConfig.from_dict(card["preprocess"])
    train_ex = DatasetParcels(args.data, pre, limit=args.limit)  # only the calibration draw is preprocessed
    seed = card["training"]["seed"] if args.seed is None else args.seed
    card.pop("single_energy_threshold", None)  # chosen again, or not at all without --val-single
    card["training"]["weights"] = save_weights(model, args.card.parent, args.card.stem)
    export_all(
        model,
        card,
        train_ex,
        args.val,
        args.card.parent,
        args.card.stem,
        seed,
        args.limit,
        val_single=args.val_single,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
