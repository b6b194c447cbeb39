"""The detector network: a small fully convolutional U-Net over the preprocessed channels.

Input (B, 3, H, W): a_low, a_high (scaled attenuation) and the impenetrable mask at the model's
fixed physical resolution (``PreprocessConfig.target_mm``, 2 mm). The graph first appends the
logarithms of the two attenuations (:class:`LogAttenuation`): a material's dual-energy ratio
R = a_low / a_high is then a *difference* of input channels, which a convolution computes exactly,
where from the raw channels it would have to learn a division. A stride-2 stem, four encoder
stages down to 1/16 (a 256-pixel tile sees 51 cm, enough to tell a compact mass from the hollow
mannequin or the tile stack around it), a decoder back to 1/4 with skip connections, a 1x1 head,
and an in-graph x4 bilinear upsampling (by scale factor, which ONNX Runtime optimises better than a
shape-dependent resize). Outputs, named as the ONNX outputs:

- ``heatmap`` (B, 1, H, W): probability that a concealed dense mass covers the pixel;
- ``score`` (B,): the tile's maximum probability (the parcel score is the maximum over tiles).

About 11 kFLOP per input pixel: 0.7 GFLOP for a 256 x 256 tile (see :func:`gflops`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["DetectorNet", "LogAttenuation", "NetOutput", "gflops"]

#: Floor added before the logarithm, in scaled attenuation units (x 4 = 0.08 nepers): about five
#: times the noise of a thin organic layer, so the log of near-air pixels stays quiet.
LOG_FLOOR = 0.02


class NetOutput(NamedTuple):
    heatmap: torch.Tensor
    score: torch.Tensor


def _block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class LogAttenuation(nn.Module):
    """(B, 3, H, W) -> (B, 5, H, W): the input plus log(max(a, 0) + LOG_FLOOR) of a_low and a_high."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, torch.log(x[:, :2].clamp(min=0.0) + LOG_FLOOR)], 1)


class DetectorNet(nn.Module):
    """U-Net-lite detector; ``widths`` are the channels at 1/2, 1/4, 1/8 and 1/16 resolution."""

    def __init__(self, in_channels: int = 3, widths: tuple[int, int, int, int] = (24, 32, 48, 64)):
        super().__init__()
        w1, w2, w3, w4 = widths
        if in_channels < 2:
            raise ValueError(f"in_channels must include a_low and a_high, got {in_channels}")
        self.features = LogAttenuation()
        self.stem = _block(in_channels + 2, w1, stride=2)  # 1/2
        self.enc2 = _block(w1, w2, stride=2)  # 1/4
        self.enc3 = _block(w2, w3, stride=2)  # 1/8
        self.enc4 = _block(w3, w4, stride=2)  # 1/16
        self.dec3 = _block(w4 + w3, w3)
        self.dec2 = _block(w3 + w2, w2)
        self.head = nn.Conv2d(w2, 1, 1)
        nn.init.constant_(self.head.bias, -4.0)  # start near "nothing here": masses are rare pixels

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Heatmap logits (B, 1, H/4, W/4)."""
        s1 = self.stem(self.features(x))
        s2 = self.enc2(s1)
        s3 = self.enc3(s2)
        s4 = self.enc4(s3)
        d3 = self.dec3(torch.cat([F.interpolate(s4, scale_factor=2.0, mode="nearest"), s3], 1))
        d2 = self.dec2(torch.cat([F.interpolate(d3, scale_factor=2.0, mode="nearest"), s2], 1))
        return self.head(d2)

    def forward(self, x: torch.Tensor) -> NetOutput:
        """x : (B, 3, H, W) with H, W multiples of 16."""
        low = self.logits(x)
        heatmap = torch.sigmoid(F.interpolate(low, scale_factor=4.0, mode="bilinear", align_corners=False))
        return NetOutput(heatmap, heatmap.amax(dim=(1, 2, 3)))


def gflops(model: nn.Module, size: int = 256) -> float:
    """Multiply-adds x 2 of the convolutions for one (3, size, size) input, in GFLOP."""
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        total += 2 * out.numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    model.train(was_training)
    for h in handles:
        h.remove()
    return total / 1e9
