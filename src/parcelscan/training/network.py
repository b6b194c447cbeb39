"""The detector network: a small fully convolutional U-Net over the preprocessed channels.

Input (B, 3, H, W): a_low, a_high (scaled attenuation) and the impenetrable mask at the model's
fixed physical resolution (``PreprocessConfig.target_mm``, 2 mm), or (B, 4, H, W) with the tube-voltage
plane of :data:`~parcelscan.preprocess.KVP_CHANNELS` as well. The graph first appends the
logarithms of the two attenuations (:class:`LogAttenuation`): a material's dual-energy ratio
R = a_low / a_high is then a *difference* of input channels, which a convolution computes exactly,
where from the raw channels it would have to learn a division. With the kV plane it appends the
tube voltage too, centred, as one value per tile (the plane's maximum, so padding does not dilute
it): a first-layer unit then thresholds log R at a kV-dependent level, which is what telling a
lanthanide oxide from nickel or ceria across scanners takes. A stride-2 stem, four encoder
stages down to 1/16, then ``context`` dilated residual blocks at 1/16 (dilations 1, 2, 4, ...: each
widens what a pixel's decision sees by 4 x dilation pixels of 32 mm, about 90 cm for the three, so it
weighs a dense spot against the object around it: the hollow mannequin, the tile stack, the jar), a
decoder back to 1/4 with skip connections, a 1x1 head, and an in-graph x4 bilinear upsampling (by
scale factor, which ONNX Runtime optimises better than a shape-dependent resize). Outputs, named as
the ONNX outputs:

- ``heatmap`` (B, 1, H, W): probability that a concealed dense mass covers the pixel;
- ``score`` (B,): the tile's maximum probability (the parcel score is the maximum over tiles).

With the default widths, about 16 kFLOP per input pixel with 3 context blocks (13 kFLOP without):
1.1 GFLOP for a 256 x 256 tile; 0.13.0 and the shipped 0.14.0 (widths 24 32 64 96) 1.6 GFLOP
(see :func:`gflops`).

A context block's last batch norm starts at zero scale, so a block added to a trained network is
the identity: :func:`load_grown` starts a network with more blocks from weights with fewer, computing
exactly what they computed, and training then uses the new capacity (the shipped model grew this
way from a network without context blocks; see the model card's ``network.config``). Wider stages
grow the same way (:func:`widen_state`): 0.13.0 is 0.12.0 widened at 1/8 and 1/16.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "DEFAULT_WIDTHS",
    "ContextBlock",
    "DetectorNet",
    "LogAttenuation",
    "NetOutput",
    "gflops",
    "in_channels_of",
    "load_grown",
    "widen_state",
    "widths_of",
]

#: Floor added before the logarithm, in scaled attenuation units (x 4 = 0.08 nepers): about five
#: times the noise of a thin organic layer, so the log of near-air pixels stays quiet.
LOG_FLOOR = 0.02

#: Tube-voltage feature: (plane maximum - KVP_CENTRE) / KVP_SPAN, clipped to +-KVP_CLIP (the plane holds
#: kV / 100, so 1.3 is 130 kV, the middle of the simulator's 100-160 kV; the clip spans 70-190 kV).
KVP_CENTRE, KVP_SPAN, KVP_CLIP = 1.3, 0.3, 2.0

#: Channels at 1/2, 1/4, 1/8 and 1/16 resolution of a network trained from scratch.
DEFAULT_WIDTHS = (24, 32, 48, 64)


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
    """(B, 3, H, W) -> (B, 5, H, W): the input plus log(max(a, 0) + LOG_FLOOR) of a_low and a_high.
    (B, 4, H, W) -> (B, 6, H, W): the same five, then the tube voltage of the kV plane (its maximum
    over the tile, centred and clipped: ``KVP_*``) spread over the tile."""

    def __init__(self, in_channels: int = 3):
        super().__init__()
        self.kvp = in_channels > 3  # fixed per network, so the exported graph has no branch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [x[:, :3], torch.log(x[:, :2].clamp(min=0.0) + LOG_FLOOR)]
        if self.kvp:
            kvp = x[:, 3:4].amax(dim=(2, 3), keepdim=True)
            kvp = ((kvp - KVP_CENTRE) / KVP_SPAN).clamp(-KVP_CLIP, KVP_CLIP)
            parts.append(kvp.expand_as(x[:, 3:4]))
        return torch.cat(parts, 1)


class ContextBlock(nn.Module):
    """Residual block of two dilated 3x3 convolutions (c -> 2c -> c); the identity when created."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 2 * channels, 3, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(2 * channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(2 * channels, channels, 3, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(channels),
        )
        nn.init.zeros_(self.body[4].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x is a ReLU output (>= 0), so relu(x + 0) = x: a new block changes nothing
        return torch.relu(x + self.body(x))


class DetectorNet(nn.Module):
    """U-Net-lite detector; ``widths`` are the channels at 1/2, 1/4, 1/8 and 1/16 resolution,
    ``context`` the number of dilated residual blocks at 1/16 (dilation 2 ** k for block k)."""

    def __init__(
        self, in_channels: int = 3, widths: tuple[int, int, int, int] = DEFAULT_WIDTHS, context: int = 3
    ):
        super().__init__()
        if in_channels not in (3, 4):
            raise ValueError(
                f"in_channels must be 3 (a_low, a_high, impenetrable) or 4 (and the kV plane), "
                f"got {in_channels}"
            )
        if len(widths) != 4 or min(widths) < 1:
            raise ValueError(f"widths must be 4 positive channel counts, got {widths}")
        if not 0 <= context <= 4:
            raise ValueError(f"context must be 0 to 4 blocks, got {context}")
        self.in_channels, self.widths, self.context_blocks = in_channels, tuple(widths), context
        w1, w2, w3, w4 = widths
        self.features = LogAttenuation(in_channels)
        self.stem = _block(in_channels + 2, w1, stride=2)  # 1/2
        self.enc2 = _block(w1, w2, stride=2)  # 1/4
        self.enc3 = _block(w2, w3, stride=2)  # 1/8
        self.enc4 = _block(w3, w4, stride=2)  # 1/16
        self.context = nn.Sequential(*(ContextBlock(w4, 2**k) for k in range(context)))
        self.dec3 = _block(w4 + w3, w3)
        self.dec2 = _block(w3 + w2, w2)
        self.head = nn.Conv2d(w2, 1, 1)
        nn.init.constant_(self.head.bias, -4.0)  # start near "nothing here": masses are rare pixels

    def config(self) -> dict:
        """The constructor arguments, as the model card's ``network.config`` records them."""
        return {"in_channels": self.in_channels, "widths": list(self.widths), "context": self.context_blocks}

    @classmethod
    def from_config(cls, config: dict | None) -> DetectorNet:
        """The network a card's ``network.config`` describes; cards before 0.6.0 have none and
        describe the network without context blocks."""
        config = dict(config or {})
        unknown = set(config) - {"in_channels", "widths", "context"}
        if unknown:
            raise ValueError(f"network config has unknown keys {sorted(unknown)}")
        return cls(
            in_channels=int(config.get("in_channels", 3)),
            widths=tuple(int(w) for w in config.get("widths", DEFAULT_WIDTHS)),
            context=int(config.get("context", 0)),
        )

    @classmethod
    def from_card(cls, card: dict) -> DetectorNet:
        """The network a model card describes (its ``network.config``, see :meth:`from_config`)."""
        return cls.from_config(card.get("network", {}).get("config"))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Heatmap logits (B, 1, H/4, W/4)."""
        s1 = self.stem(self.features(x))
        s2 = self.enc2(s1)
        s3 = self.enc3(s2)
        s4 = self.context(self.enc4(s3))
        d3 = self.dec3(torch.cat([F.interpolate(s4, scale_factor=2.0, mode="nearest"), s3], 1))
        d2 = self.dec2(torch.cat([F.interpolate(d3, scale_factor=2.0, mode="nearest"), s2], 1))
        return self.head(d2)

    @staticmethod
    def from_logits(low: torch.Tensor) -> NetOutput:
        """The outputs from :meth:`logits`: heatmap probabilities at full resolution and the tile score
        (their maximum). Mixed-precision training passes the logits here in float32, so that
        probabilities near 1, which the parcel decision and the focal loss hinge on, keep their digits."""
        heatmap = torch.sigmoid(F.interpolate(low, scale_factor=4.0, mode="bilinear", align_corners=False))
        return NetOutput(heatmap, heatmap.amax(dim=(1, 2, 3)))

    def forward(self, x: torch.Tensor) -> NetOutput:
        """x : (B, in_channels, H, W) with H, W multiples of 16."""
        return self.from_logits(self.logits(x))


def widths_of(state: dict) -> tuple[int, ...]:
    """The widths of the network that saved ``state`` (its stages' first convolutions' outputs)."""
    try:
        return tuple(int(state[f"{stage}.0.weight"].shape[0]) for stage in ("stem", "enc2", "enc3", "enc4"))
    except KeyError as exc:
        raise ValueError(f"weights do not fit this network: no {exc.args[0]}") from None


def in_channels_of(state: dict) -> int:
    """The input channels of the network that saved ``state`` (its stem reads them and two logs)."""
    try:
        return int(state["stem.0.weight"].shape[1]) - 2
    except KeyError:
        raise ValueError("weights do not fit this network: no stem.0.weight") from None


def _conv_plan(
    model: DetectorNet, old: tuple[int, ...], blocks: int, old_in: int
) -> dict[str, tuple[list, tuple]]:
    """For each convolution (by module name): the (old, new) sizes of the segments of its input
    channels, in concatenation order, and the (old, new) number of its output channels."""
    o1, o2, o3, o4 = old
    n1, n2, n3, n4 = model.widths
    plan = {
        "stem.0": ([(old_in + 2, model.in_channels + 2)], (o1, n1)),  # an added kV feature comes last
        "stem.3": ([(o1, n1)], (o1, n1)),
        "enc2.0": ([(o1, n1)], (o2, n2)),
        "enc2.3": ([(o2, n2)], (o2, n2)),
        "enc3.0": ([(o2, n2)], (o3, n3)),
        "enc3.3": ([(o3, n3)], (o3, n3)),
        "enc4.0": ([(o3, n3)], (o4, n4)),
        "enc4.3": ([(o4, n4)], (o4, n4)),
        "dec3.0": ([(o4, n4), (o3, n3)], (o3, n3)),  # cat(upsampled 1/16, skip from 1/8)
        "dec3.3": ([(o3, n3)], (o3, n3)),
        "dec2.0": ([(o3, n3), (o2, n2)], (o2, n2)),
        "dec2.3": ([(o2, n2)], (o2, n2)),
        "head": ([(o2, n2)], (1, 1)),
    }
    for i in range(blocks):
        plan[f"context.{i}.body.0"] = ([(o4, n4)], (2 * o4, 2 * n4))
        plan[f"context.{i}.body.3"] = ([(2 * o4, 2 * n4)], (o4, n4))
    return plan


def widen_state(model: DetectorNet, state: dict) -> tuple[dict, list[str]]:
    """``state`` (saved by a network with the same or smaller widths) fitted to ``model``'s widths so
    that ``model`` computes exactly what the saved network computed (function-preserving widening, as
    Net2Net's: Chen et al. 2016). Each new channel keeps ``model``'s own random start on its inputs,
    and every old channel reads it with weight zero; a new channel's batch norm starts at ``model``'s
    (a context block's last one at zero scale). Training then gives the new channels their use.
    A 3-channel state grows to a 4-channel ``model`` the same way: the stem reads the added kV
    feature with weight zero. Returns the widened state and the names of the tensors that grew."""
    old, old_in = widths_of(state), in_channels_of(state)
    if old == model.widths and old_in == model.in_channels:
        return state, []
    if any(o > n for o, n in zip(old, model.widths, strict=True)):
        raise ValueError(f"weights of widths {list(old)} do not fit narrower widths {list(model.widths)}")
    if old_in > model.in_channels:
        raise ValueError(f"weights for {old_in} input channels do not fit {model.in_channels}")
    own = model.state_dict()
    blocks = len({k.split(".")[1] for k in state if k.startswith("context.")})
    out, grown = dict(state), []
    for conv, (segments, (o_out, n_out)) in _conv_plan(model, old, blocks, old_in).items():
        key = f"{conv}.weight"
        w = own[key].clone()
        if tuple(state[key].shape) != (o_out, sum(o for o, _ in segments), *w.shape[2:]):
            raise ValueError(f"weights do not fit this network: shape mismatch at {key}")
        w[:o_out] = 0.0  # old outputs read nothing from the new channels
        at_old = at_new = 0
        for o_in, n_in in segments:
            w[:o_out, at_new : at_new + o_in] = state[key][:, at_old : at_old + o_in]
            at_old, at_new = at_old + o_in, at_new + n_in
        out[key] = w
        if w.shape != state[key].shape:
            grown.append(key)
        if conv == "head":
            continue
        norm = conv[:-1] + str(int(conv[-1]) + 1)  # the batch norm after the convolution
        for name in ("weight", "bias", "running_mean", "running_var"):
            t = own[f"{norm}.{name}"].clone()
            t[:o_out] = state[f"{norm}.{name}"]
            out[f"{norm}.{name}"] = t
            if o_out != n_out:
                grown.append(f"{norm}.{name}")
    return out, grown


def load_grown(model: DetectorNet, state: dict) -> list[str]:
    """Load ``state`` (a state dict) into ``model``, which may have more context blocks than the
    network that saved it (the extra blocks keep their identity start) and wider stages
    (:func:`widen_state`). Returns the names of the parameters and buffers that the state did not
    hold or held narrower (or, for a 4-channel ``model``, with 3 input channels). Any other mismatch
    (more input channels, a state with more blocks or wider stages than ``model``) raises ValueError
    naming the keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    grown = {f"context.{i}." for i in range(model.context_blocks)}
    foreign = [k for k in missing if not any(k.startswith(g) for g in grown)]
    if unexpected or foreign:
        raise ValueError(
            f"weights do not fit this network: unexpected keys {unexpected[:5]}, missing keys {foreign[:5]}"
        )
    # a block absent from the state is added whole, never half-loaded
    blocks = {k.split(".")[1] for k in missing}
    partial = [k for k in state if k.startswith("context.") and k.split(".")[1] in blocks]
    if partial:
        raise ValueError(f"weights hold part of a context block: {partial[:5]}")
    state, widened = widen_state(model, state)
    shapes = [k for k in state if tuple(state[k].shape) != tuple(own[k].shape)]
    if shapes:
        raise ValueError(f"weights do not fit this network: shape mismatch at {shapes[:5]}")
    model.load_state_dict(state, strict=False)
    return missing + widened


def gflops(model: nn.Module, size: int = 256) -> float:
    """Multiply-adds x 2 of the convolutions for one (in_channels, size, size) input, in GFLOP."""
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        total += 2 * out.numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, getattr(model, "in_channels", 3), size, size))
    model.train(was_training)
    for h in handles:
        h.remove()
    return total / 1e9
