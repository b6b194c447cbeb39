"""The training loop: epochs of random tiles, validation on whole parcels, early stopping, resume."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, update_bn
from tqdm import tqdm

from ..evaluation import auroc
from ..preprocess import PreprocessConfig
from ..preprocess.tiling import stitch, tiles
from .data import EpochIndices, Example, TileSampler
from .loss import detection_loss
from .network import DEFAULT_WIDTHS, DetectorNet, NetOutput, load_grown, widths_of

__all__ = [
    "PRECISIONS",
    "TrainConfig",
    "forward_train",
    "mine_hard_negatives",
    "native_bf16",
    "predict_examples",
    "train",
    "train_step",
]

#: Arithmetic of the training passes: float32 throughout, or the convolutions in bfloat16 (autocast).
PRECISIONS = ("fp32", "bf16")


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
    mine_hard: bool = False  # with init weights: mine the init model's false alarms before training
    context: int = 3  # dilated residual blocks at 1/16 (DetectorNet); init weights may have fewer
    # DetectorNet widths; init weights may be narrower. None: those of the init weights, else the default
    widths: tuple[int, int, int, int] | None = None
    loader_workers: int = 0  # processes cutting training tiles (0: in the training process)
    average_epochs: int = 0  # > 0: the result averages the weights after each of the last N epochs
    freeze_bn: bool = False  # with init weights: batch norm keeps and uses their statistics
    fit_epochs: bool = False  # with a budget: after the 2nd epoch, fewer epochs if they would not fit
    deadline: float | None = None  # training ends by this time.time() too (preprocessing took what it took)
    precision: str = "fp32"  # "bf16": convolutions in bfloat16 under autocast (forward_train)
    # {label category: weight} for drawing training parcels (TileSampler); unnamed categories weigh 1
    category_weights: dict[str, float] = field(default_factory=dict)


def _check_precision(precision: object) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


def native_bf16(device: str) -> bool:
    """Whether ``device`` ("cpu", "cuda", ...) has bfloat16 arithmetic in hardware: a CUDA GPU that
    torch supports it on, or a CPU for which oneDNN has bfloat16 kernels (AVX-512 BF16 or AMX).
    Elsewhere autocast emulates it, slower than float32."""
    if str(device).startswith("cuda"):
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)  # torch's own test helper
    try:
        return bool(check()) if check is not None else False
    except RuntimeError:
        return False


def forward_train(model: DetectorNet, x: torch.Tensor, precision: str = "fp32") -> NetOutput:
    """The network's outputs for a training step, at ``precision`` (one of :data:`PRECISIONS`).

    ``"bf16"`` runs the network body under ``torch.autocast`` in bfloat16: the convolutions in
    bfloat16, and the batch norms and activations on their bfloat16 outputs, with float32 weights,
    optimiser and gradients (mixed precision, as
    Micikevicius et al. 2018 with bfloat16's float32 range, so no loss scaling). The log-attenuation
    features before the first convolution stay float32 (autocast leaves ``log`` alone), and the
    logits are upsampled, squashed and compared with the target in float32 (:meth:`DetectorNet.from_logits`):
    bfloat16 keeps 8 bits of mantissa, too few for probabilities near 1. On a CPU with AVX-512 BF16
    (this machine's AMD EPYC) a step measured 1.5x the float32 one, both channels-last
    (``python -m benchmarks --suite training``). The exported
    network is float32 either way."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=_check_precision(precision) == "bf16"):
        low = model.logits(x)
    return model.from_logits(low.float())


def train_step(
    model: DetectorNet, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, precision: str
) -> torch.Tensor:
    """One optimiser step on a batch of tiles ``x`` (channels-last, on the model's device) and targets
    ``y``: :func:`forward_train`, the detection loss, backward, ``optimizer.step()``. Returns the loss.
    The training loop and ``benchmarks/training.py`` both run this, so the benchmark times what trains."""
    out = forward_train(model, x, precision)
    loss, _ = detection_loss(out.heatmap, out.score, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


@torch.no_grad()
def predict_examples(
    model: DetectorNet,
    examples: list[Example],
    config: PreprocessConfig,
    device: str,
    batch_size: int | None = None,
    join: bool | None = None,
) -> list[tuple[float, np.ndarray]]:
    """Whole-parcel (score, heatmap (H, W)) for each example, tiled and stitched as at inference.

    Forward passes take up to ``batch_size`` tiles (default 64 on CUDA, 16 on the CPU). With
    ``join`` (default: on CUDA, where a parcel's few tiles would leave most of a pass to launch
    overhead) the tiles of consecutive parcels share passes; on the CPU that measured about 10 %
    slower than a parcel at a time (120 validation parcels, 2 threads), with the same scores."""
    model.eval()
    cuda = str(device).startswith("cuda")
    batch_size = batch_size or (64 if cuda else 16)
    join = cuda if join is None else join
    out: list[tuple[float, np.ndarray]] = []

    def run(group: list[tuple[Example, np.ndarray, list]]) -> None:
        batch = np.concatenate([b for _, b, _ in group])
        maps = np.concatenate(
            [
                model(_channels_last(torch.from_numpy(batch[i : i + batch_size]).to(device)))
                .heatmap.float()
                .cpu()
                .numpy()
                for i in range(0, len(batch), batch_size)
            ]
        )
        first = 0
        for ex, b, origins in group:
            heat = stitch(maps[first : first + len(b)], origins, ex.image.shape[1:], config.overlap)[0]
            out.append((float(heat.max()), heat))
            first += len(b)

    group, count = [], 0
    for ex in examples:
        batch, origins = tiles(ex.image.astype(np.float32), config.tile, config.overlap)
        if group and (not join or count + len(batch) > batch_size):
            run(group)
            group, count = [], 0
        group.append((ex, batch, origins))
        count += len(batch)
    if group:
        run(group)
    return out


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) in channels-last memory order, the order the training network's weights use."""
    return x.contiguous(memory_format=torch.channels_last)


#: The one-cycle schedule starts (and the timing epochs of fit_epochs run) at lr / ONE_CYCLE_DIV.
ONE_CYCLE_DIV = 25.0

#: Heatmap value above which a pixel outside every mass counts as a false alarm when mining.
HARD_HEAT = 0.5
#: At most this many mined pixels are kept per parcel as tile centres.
HARD_KEEP = 64
#: Parcels whose heatmaps are computed (and held) at a time when mining.
MINE_CHUNK = 32


def mine_hard_negatives(
    model: DetectorNet, examples: list[Example], config: PreprocessConfig, device: str, seed: int = 0
) -> dict:
    """Store in each example's ``hard`` the pixels outside any mass that ``model`` scores above
    ``HARD_HEAT`` (at most ``HARD_KEEP``, drawn at random), so the sampler can cut tiles around the
    model's own false alarms. Returns counts: parcels with such pixels, pixels kept, negatives whose
    parcel score is above ``HARD_HEAT``."""
    rng = np.random.default_rng(seed)
    parcels = kept = alarmed = 0
    bar = tqdm(total=len(examples), desc="mining hard negatives", unit="parcel")
    for start in range(0, len(examples), MINE_CHUNK):  # heatmaps of a chunk of parcels at a time, batched
        chunk = examples[start : start + MINE_CHUNK]
        for ex, (score, heat) in zip(chunk, predict_examples(model, chunk, config, device), strict=True):
            alarmed += int(not ex.positive and score > HARD_HEAT)
            ys, xs = np.nonzero((heat > HARD_HEAT) & (ex.target.astype(np.float32) < 0.01))
            pick = rng.permutation(ys.size)[:HARD_KEEP]
            ex.hard = np.stack([ys[pick], xs[pick]], 1).astype(np.int32) if pick.size else None
            parcels += int(pick.size > 0)
            kept += int(pick.size)
        bar.update(len(chunk))
    bar.close()
    return {"parcels": parcels, "pixels": kept, "negatives_alarmed": alarmed, "heat": HARD_HEAT}


def _save(
    path: Path,
    model,
    optimizer,
    epoch: int,
    best: float,
    history: list,
    average: AveragedModel | None,
    fitted: tuple[int, int] | None,
) -> None:
    _save_whole(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "best": best,
            "history": json.dumps(history),
            "average": {} if average is None else average.state_dict(),
            "averaged": _averaged(average),
            # fit_epochs: (epochs in all, epoch the one-cycle schedule began after); None: not fitted
            "epochs_fitted": None if fitted is None else fitted[0],
            "cycle_from": None if fitted is None else fitted[1],
        },
        path,
    )


def _save_whole(obj, path: Path) -> None:
    """``torch.save`` to ``path`` whole or not at all (a copy taken meanwhile is never torn)."""
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def _averaged(average: AveragedModel | None) -> int:
    return 0 if average is None else int(average.n_averaged)


def train(
    train_examples: list[Example],
    val_examples: list[Example],
    pre: PreprocessConfig,
    cfg: TrainConfig,
    out_dir: Path,
    resume: Path | None = None,
    log=print,
    init: Path | None = None,
) -> tuple[DetectorNet, list[dict]]:
    """Train, validating (parcel AUROC) after every epoch; returns the best model and the history.

    ``init`` (weights only, e.g. the shipped ``models/parcelscan.pt``) starts from a trained network
    with a fresh optimiser and learning-rate cycle: fine-tuning, or a second training stage; it may
    have fewer context blocks than ``cfg.context`` and narrower stages than ``cfg.widths`` (which
    defaults to theirs), and lack the kV plane that ``pre.channels`` adds (:func:`~.network.load_grown`). With
    ``cfg.mine_hard`` that network's false alarms on the training parcels are mined first
    (:func:`mine_hard_negatives`). ``resume`` instead continues an interrupted run exactly.

    With ``cfg.average_epochs`` = N the result is instead the average of the weights after each of
    the last N epochs of the schedule (those reached, should the run stop early): stochastic weight
    averaging (Izmailov et al. 2018; torch's ``AveragedModel``), whose average of points along a low
    learning-rate trajectory tends to lie in a flatter part of the loss surface than any one of them
    and is not a choice among noisy validation scores. Its batch-norm statistics are measured again on
    a fresh epoch of training tiles (averaged statistics would not describe the averaged weights). It
    is saved as ``averaged.pt`` and validated as the last history entry ``epoch: "average"``;
    ``best.pt`` still holds the best single epoch.

    With ``cfg.freeze_bn`` every batch-norm layer normalises with the running statistics of the
    ``init`` weights and never updates them (its scale and shift still train), as detection
    fine-tuning does when its batches are small: a batch of 16 tiles, most of them background,
    estimates the statistics of a network trained at batch 64 poorly. An average then keeps those
    statistics too, since every averaged epoch was trained against them.

    ``cfg.deadline`` (a ``time.time()`` value) caps the budget like ``max_minutes``, but counted
    from outside: a caller with a fixed wall-clock allowance need not guess how long preprocessing
    and mining take. With ``cfg.fit_epochs`` (and either budget) the first two epochs train at the one-cycle
    schedule's starting rate (``cfg.lr`` / 25) while the second is timed; then the epochs that fit in
    the budget at that pace (at most ``cfg.epochs`` in all; ``epochs_fitted`` in that epoch's history
    entry) run one whole one-cycle schedule, so the learning rate anneals to its floor before the time
    is up instead of the budget cutting the cycle short. The average of ``cfg.average_epochs`` then
    takes only epochs of that schedule. ``last.pt`` keeps the fit, and a resumed run follows it."""
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    if device.type == "cuda":  # fixed tile shapes: let cuDNN pick its fastest convolutions once
        torch.backends.cudnn.benchmark = True
    _check_precision(cfg.precision)
    # Channels-last (NHWC) weights and inputs: oneDNN's and cuDNN's fast convolution layout; a float32
    # training step on this 2-core CPU measured 1.3x the default layout's. The result is returned
    # in the default layout (the weights mean the same either way).
    init_state = None if init is None else torch.load(init, map_location=device, weights_only=True)
    state = None if resume is None else torch.load(resume, map_location=device, weights_only=True)
    widths = cfg.widths
    if widths is None and state is not None:
        widths = widths_of(state["model"])
    elif widths is None:
        widths = DEFAULT_WIDTHS if init_state is None else widths_of(init_state)
    model = DetectorNet(in_channels=len(pre.channels), widths=widths, context=cfg.context)
    model = model.to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start, best, history = 0, -1.0, []
    if not 0 <= cfg.average_epochs <= cfg.epochs:
        raise ValueError(f"average_epochs must be 0 to epochs ({cfg.epochs}), got {cfg.average_epochs}")
    if cfg.fit_epochs and not (cfg.max_minutes or cfg.deadline):
        raise ValueError("fit_epochs fits the schedule to a time budget: give max_minutes or deadline")
    average = AveragedModel(model) if cfg.average_epochs else None  # parameters only: BN is re-measured
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = np.array([ex.positive for ex in val_examples])

    def validate() -> float:
        scores = np.array([s for s, _ in predict_examples(model, val_examples, pre, cfg.device)])
        return auroc(scores, labels) if labels.any() and (~labels).any() else float("nan")

    if cfg.mine_hard and init is None:  # a resumed mining run mines again with its init: same tiles
        raise ValueError("mine_hard needs trained weights to mine with: give init")
    if cfg.freeze_bn and init is None:
        raise ValueError("freeze_bn needs trained weights whose statistics to keep: give init")
    if init is not None:
        grown = load_grown(model, init_state)
        if grown and cfg.freeze_bn:
            raise ValueError(
                f"freeze_bn: {init} lacks context blocks or channels, whose statistics cannot be kept"
            )
        if grown:
            log(
                f"grown from {init}: {len(grown)} new or widened tensors (context blocks and channels "
                "that start computing what the init weights computed)"
            )
        if resume is None:  # the starting point is the one to beat: fine-tuning never ends worse
            best = validate()
            _save_whole(model.state_dict(), out_dir / "best.pt")
            history.append({"epoch": 0, "loss": None, "val_auroc": best, "minutes": 0.0})
            log(json.dumps(history[-1]))
        log(f"initialised from {init}")
        if cfg.mine_hard:
            mined = mine_hard_negatives(model, train_examples, pre, cfg.device, cfg.seed)
            log(f"hard negatives: {json.dumps(mined)}")
    sampler = TileSampler(
        train_examples, cfg.tile, cfg.tiles_per_epoch, cfg.seed, category_weights=cfg.category_weights
    )
    # The epoch travels in the tile indices (EpochIndices), so loader workers are started once and
    # kept for the run; every tile's draw depends only on (seed, epoch, index), so the batches do not
    # depend on the number of workers.
    indices = EpochIndices(cfg.tiles_per_epoch)
    loader = torch.utils.data.DataLoader(
        sampler,
        batch_size=cfg.batch_size,
        sampler=indices,
        num_workers=cfg.loader_workers,
        persistent_workers=cfg.loader_workers > 0,
        pin_memory=device.type == "cuda",
    )
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, best, history = int(state["epoch"]) + 1, float(state["best"]), json.loads(state["history"])
        if average is not None and state.get("average"):
            average.load_state_dict(state["average"])
        log(f"resumed from {resume} at epoch {start} (best val AUROC {best:.4f})")
    # The one-cycle schedule runs over epochs cycle_from .. epochs - 1 (all of them, unless fitted).
    epochs, cycle_from, fitted = cfg.epochs, 0, None
    if resume is not None and state.get("epochs_fitted"):  # as fitted before the interruption
        fitted = (int(state["epochs_fitted"]), int(state["cycle_from"]))
        epochs, cycle_from = fitted
    elif cfg.fit_epochs:
        cycle_from = None  # not yet fitted: the timing epochs run at the cycle's starting rate
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr / ONE_CYCLE_DIV

    def one_cycle(done_steps: int) -> torch.optim.lr_scheduler.OneCycleLR | None:
        steps = (epochs - cycle_from) * len(loader)
        if steps < 1:
            return None
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=cfg.lr,
            total_steps=steps,
            pct_start=0.15,
            div_factor=ONE_CYCLE_DIV,
            last_epoch=done_steps - 1,
        )

    schedule = None if cycle_from is None else one_cycle((start - cycle_from) * len(loader))
    t_start, stale = time.time(), 0
    budgets = [m for m in (cfg.max_minutes, cfg.deadline and (cfg.deadline - t_start) / 60) if m]
    limit = min(budgets) if budgets else None  # minutes of training from here
    epoch = start - 1
    while epoch + 1 < epochs:
        epoch += 1
        model.train()
        if cfg.freeze_bn:
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.eval()
        indices.epoch = epoch
        losses = []
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", unit="batch", leave=False)
        for x, y in bar:
            lr = optimizer.param_groups[0]["lr"]  # the step's rate: the schedule moves it after
            loss = train_step(model, optimizer, _channels_last(x.to(device)), y.to(device), cfg.precision)
            if schedule is not None:
                schedule.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        val_auc = validate()
        record = {
            "epoch": epoch + 1,
            "loss": float(np.mean(losses)),
            "lr": lr,  # the learning rate of the epoch's last step
            "val_auroc": val_auc,
            "minutes": (time.time() - t_start) / 60,
        }
        if cycle_from is None and epoch == start + 1:
            # The second epoch's time, validation included (the first also starts the loader
            # workers and tunes cuDNN), decides how many epochs the budget holds; a whole one-cycle
            # schedule then runs over those, starting from the rate the timing epochs used.
            per_epoch = record["minutes"] - history[-1]["minutes"]
            fit = epoch + 1 + int(0.95 * (limit - record["minutes"]) / max(per_epoch, 1e-9))
            epochs, cycle_from = max(epoch + 1, min(cfg.epochs, fit)), epoch + 1
            fitted = (epochs, cycle_from)
            schedule = one_cycle(0)
            record["epochs_fitted"] = epochs
            if average is not None and epochs - cycle_from < cfg.average_epochs:
                log(f"fit: the schedule's {epochs - cycle_from} epochs are all averaged")
        history.append(record)
        log(json.dumps(record))
        in_cycle = cycle_from is not None and epoch >= cycle_from
        if average is not None and in_cycle and epoch >= epochs - cfg.average_epochs:
            average.update_parameters(model)
        if val_auc > best:
            best, stale = val_auc, 0
            _save_whole(model.state_dict(), out_dir / "best.pt")
        else:
            stale += 1
        _save(out_dir / "last.pt", model, optimizer, epoch, best, history, average, fitted)
        if epoch + 1 == epochs:  # the schedule's end: neither rule below stops anything
            break
        if stale >= cfg.patience:
            log(f"early stop: no better validation AUROC for {cfg.patience} epochs")
            break
        if limit is not None and (time.time() - t_start) / 60 > limit:
            log(f"stopping: time budget of {limit:.2f} min reached")
            break
    if _averaged(average):
        with torch.no_grad():  # parameters only: the copy's buffers are those of the untrained network
            for p, q in zip(model.parameters(), average.module.parameters(), strict=True):
                p.copy_(q)
        if not cfg.freeze_bn:
            indices.epoch = epochs  # tiles of no training epoch measure the statistics
            update_bn(loader, model, device)
        torch.save(model.state_dict(), out_dir / "averaged.pt")
        record = {
            "epoch": "average",
            "epochs_averaged": _averaged(average),
            "val_auroc": validate(),
            "minutes": (time.time() - t_start) / 60,
        }
        history.append(record)
        log(json.dumps(record))
    else:
        if cfg.average_epochs:
            log("no epoch of the averaging window was reached: the best single epoch is the result")
        model.load_state_dict(torch.load(out_dir / "best.pt", map_location=device, weights_only=True))
    (out_dir / "history.json").write_text(json.dumps({"config": asdict(cfg), "history": history}, indent=1))
    return model.to(memory_format=torch.contiguous_format), history
