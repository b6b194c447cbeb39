"""Training steps side by side: float32 in the default layout, channels-last, and channels-last in bfloat16.

One step is what ``train.py`` runs per batch (:func:`~parcelscan.training.loop.train_step`: the
forward pass, the detection loss, the backward pass and an AdamW update), on a batch of random tiles
(train.py's default batch of 16 tiles of 192 pixels), half of them with a mass-sized target. The three
candidates run in interleaved rounds, so their ratios, paired by round, survive a noisy shared machine.
bfloat16 pays only where the processor has it (AVX-512 BF16 or AMX on a CPU; ``native_bf16`` in the
result): elsewhere autocast emulates it, slower than float32.
"""

from __future__ import annotations

from collections.abc import Callable

from ._timing import interleave, median, speedup

#: Candidate name -> (channels-last, precision).
VARIANTS = {
    "fp32": (False, "fp32"),
    "fp32 channels_last": (True, "fp32"),
    "bf16 channels_last": (True, "bf16"),
}


def run(
    device: str = "cpu",
    threads: int | None = None,
    duration_s: float = 20.0,
    batch: int = 16,
    tile: int = 192,
    progress: Callable[[float, float], None] | None = None,
) -> dict:
    import torch

    from parcelscan.training.loop import native_bf16, train_step
    from parcelscan.training.network import DetectorNet

    if threads:
        torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    x = (2 * torch.rand(batch, 3, tile, tile, generator=g)).to(device)
    y = torch.zeros(batch, 1, tile, tile)
    c = tile // 2
    y[: batch // 2, :, c - 8 : c + 8, c - 8 : c + 8] = 1.0
    y = y.to(device)

    def step_of(channels_last: bool, precision: str) -> Callable[[], None]:
        torch.manual_seed(0)
        net = DetectorNet().to(device).train()
        layout = torch.channels_last if channels_last else torch.contiguous_format
        net = net.to(memory_format=layout)
        xin = x.contiguous(memory_format=layout)
        optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)

        def step() -> None:
            train_step(net, optimizer, xin, y, precision)
            if device.startswith("cuda"):
                torch.cuda.synchronize()

        return step

    times = interleave({k: step_of(*v) for k, v in VARIANTS.items()}, duration_s, progress=progress)
    return {
        "name": "training_step",
        "device": device,
        "threads": torch.get_num_threads(),
        "batch": batch,
        "tile": tile,
        "native_bf16": native_bf16(device),
        "rounds": len(times["fp32"]),
        "tiles_per_s": {k: batch / median(v) for k, v in times.items()},
        "ratios": {
            "channels_last_over_default": speedup(times["fp32 channels_last"], times["fp32"]),
            "bf16_over_fp32_channels_last": speedup(times["bf16 channels_last"], times["fp32 channels_last"]),
            "bf16_channels_last_over_default": speedup(times["bf16 channels_last"], times["fp32"]),
        },
    }
