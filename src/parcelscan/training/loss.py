"""Losses for small targets: focal BCE on pixels, soft Dice on positives, BCE on the tile score."""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["detection_loss"]


def detection_loss(
    heatmap: torch.Tensor, score: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, alpha: float = 0.75
) -> tuple[torch.Tensor, dict[str, float]]:
    """heatmap (B, 1, H, W) probabilities, score (B,), target (B, 1, H, W) coverage in [0, 1].

    A concealed mass covers a few hundred of 37,000 tile pixels, so plain BCE would learn "nothing
    anywhere": the focal term down-weights easy background pixels, Dice counts the mass pixels as a
    set, and the tile term trains the maximum that the parcel decision uses.
    """
    p = heatmap.clamp(1e-6, 1 - 1e-6)
    bce = F.binary_cross_entropy(p, target, reduction="none")
    pt = torch.where(target > 0.5, p, 1 - p)
    weight = torch.where(target > 0.5, alpha, 1 - alpha) * (1 - pt) ** gamma
    focal = (weight * bce).sum() / target.gt(0.5).sum().clamp(min=1.0)
    has = target.flatten(1).amax(1) > 0.5
    inter = (p * target).flatten(1).sum(1)
    dice = 1 - (2 * inter + 1) / (p.flatten(1).sum(1) + target.flatten(1).sum(1) + 1)
    dice = dice[has].mean() if has.any() else heatmap.new_zeros(())
    tile = F.binary_cross_entropy(score.clamp(1e-6, 1 - 1e-6), has.float())
    total = focal + dice + tile
    parts = {"focal": focal, "dice": dice, "tile": tile}
    return total, {k: float(v.detach()) for k, v in parts.items()}
