"""The training loop: epochs of random tiles, validation on whole parcels, early stopping, resume."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..evaluation import auroc
from ..preprocess import PreprocessConfig
from ..preprocess.tiling import stitch, tiles
from .data import Example, TileSampler
from .loss import detection_loss
from .network import DetectorNet

__all__ = ["TrainConfig", "predict_examples", "train"]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    tiles_per_epoch: int = 2048
    batch_size: int = 16
    tile: int = 192
    lr: float = 2e-3
    weight_decay: float = 1e-4
    patience: int = 5
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    max_minutes: float | None = None


@torch.no_grad()
def predict_examples(
    model: DetectorNet, examples: list[Example], config: PreprocessConfig, device: str, batch_size: int = 16
) -> list[tuple[float, np.ndarray]]:
    """Whole-parcel (score, heatmap (H, W)) for each example, tiled and stitched as at inference."""
    model.eval()
    out = []
    for ex in examples:
        batch, origins = tiles(ex.image.astype(np.float32), config.tile, config.overlap)
        maps = []
        for i in range(0, len(batch), batch_size):
            maps.append(
                model(torch.from_numpy(batch[i : i + batch_size]).to(device)).heatmap.float().cpu().numpy()
            )
        heat = stitch(np.concatenate(maps), origins, ex.image.shape[1:], config.overlap)[0]
        out.append((float(heat.max()), heat))
    return out


def _save(path: Path, model, optimizer, epoch: int, best: float, history: list) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "best": best,
            "history": json.dumps(history),
        },
        tmp,
    )
    tmp.replace(path)


def train(
    train_examples: list[Example],
    val_examples: list[Example],
    pre: PreprocessConfig,
    cfg: TrainConfig,
    out_dir: Path,
    resume: Path | None = None,
    log=print,
) -> tuple[DetectorNet, list[dict]]:
    """Train, validating (parcel AUROC) after every epoch; returns the best model and the history."""
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    model = DetectorNet().to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sampler = TileSampler(train_examples, cfg.tile, cfg.tiles_per_epoch, cfg.seed)
    loader = torch.utils.data.DataLoader(sampler, batch_size=cfg.batch_size, shuffle=False, num_workers=0)
    start, best, history = 0, -1.0, []
    out_dir.mkdir(parents=True, exist_ok=True)
    if resume is not None:
        state = torch.load(resume, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, best, history = int(state["epoch"]) + 1, float(state["best"]), json.loads(state["history"])
        log(f"resumed from {resume} at epoch {start} (best val AUROC {best:.4f})")
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=cfg.lr,
        total_steps=cfg.epochs * len(loader),
        pct_start=0.15,
        last_epoch=start * len(loader) - 1,
    )
    labels = np.array([ex.positive for ex in val_examples])
    t_start, stale = time.time(), 0
    for epoch in range(start, cfg.epochs):
        model.train()
        sampler.set_epoch(epoch)
        losses = []
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False)
        for x, y in bar:
            out = model(x.to(device))
            loss, _ = detection_loss(out.heatmap, out.score, y.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(float(loss))
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        scores = np.array([s for s, _ in predict_examples(model, val_examples, pre, cfg.device)])
        val_auc = auroc(scores, labels) if labels.any() and (~labels).any() else float("nan")
        record = {
            "epoch": epoch + 1,
            "loss": float(np.mean(losses)),
            "val_auroc": val_auc,
            "minutes": (time.time() - t_start) / 60,
        }
        history.append(record)
        log(json.dumps(record))
        if val_auc > best:
            best, stale = val_auc, 0
            torch.save(model.state_dict(), out_dir / "best.pt")
        else:
            stale += 1
        _save(out_dir / "last.pt", model, optimizer, epoch, best, history)
        if stale >= cfg.patience:
            log(f"early stop: no better validation AUROC for {cfg.patience} epochs")
            break
        if cfg.max_minutes and (time.time() - t_start) / 60 > cfg.max_minutes:
            log(f"stopping: time budget of {cfg.max_minutes} min reached")
            break
    model.load_state_dict(torch.load(out_dir / "best.pt", map_location=device, weights_only=True))
    (out_dir / "history.json").write_text(json.dumps({"config": asdict(cfg), "history": history}, indent=1))
    return model, history
