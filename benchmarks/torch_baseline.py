"""The same network in PyTorch eager mode: the baseline most users would otherwise run.

:func:`shipped_net` rebuilds :class:`DetectorNet` with the shipped weights. The fp32 ONNX file holds
each convolution with its batch norm folded in (weight and bias), named after the module in the node's
output (``/enc2/enc2.3/Conv_output_0`` is ``enc2.3``, ``/context/context.1/body/body.3/Conv_output_0``
is ``context.1.body.3``); the network's shape comes from the card embedded in the file (its
``network.config``); the batch norm after each convolution is set to the identity
plus that bias, so the eager model computes what the ONNX model computes while still running its
batch-norm layers, as an unexported model does. :func:`agreement` checks that on real tiles.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np


def _module_name(output: str) -> str:
    """The module path in a Conv node's output scope: ``/a/a.0/b/b.3/Conv_output_0`` -> ``a.0.b.3``
    (a scope ``x.i`` right after the scope ``x`` is child ``i`` of ``x``)."""
    path: list[str] = []
    previous = None
    for scope in output.strip("/").split("/")[:-1]:
        if previous is not None and scope.startswith(previous + "."):
            path[-1] = scope
        else:
            path.append(scope)
        previous = scope
    return ".".join(path)


def shipped_net(onnx_path: str | Path):
    """DetectorNet in eval mode carrying the weights of the fp32 ONNX model at ``onnx_path``."""
    import onnx
    import torch
    from onnx import numpy_helper

    from parcelscan.training.export import META_KEY
    from parcelscan.training.network import DetectorNet

    proto = onnx.load(str(onnx_path))
    meta = {p.key: p.value for p in proto.metadata_props}
    card = json.loads(meta.get(META_KEY, "{}"))
    graph = proto.graph
    weights = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:  # the exporter shares equal initialisers through Identity nodes
        if node.op_type == "Identity" and node.input[0] in weights:
            weights[node.output[0]] = weights[node.input[0]]
    net = DetectorNet.from_card(card).eval()
    modules = dict(net.named_modules())
    loaded = set()
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        name = _module_name(node.output[0])
        conv = modules[name]
        w, b = weights[node.input[1]], weights[node.input[2]]
        if tuple(conv.weight.shape) != w.shape:
            raise ValueError(
                f"{onnx_path}: {name} has weight {w.shape}, DetectorNet expects {tuple(conv.weight.shape)}"
            )
        with torch.no_grad():
            conv.weight.copy_(torch.tensor(w))
            if conv.bias is not None:
                conv.bias.copy_(torch.tensor(b))
            else:  # the folded batch norm: identity scale, the ONNX bias as its shift
                parent, index = name.rsplit(".", 1)
                bn = modules[f"{parent}.{int(index) + 1}"]
                bn.weight.fill_(1.0)
                bn.bias.copy_(torch.tensor(b))
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
        loaded.add(name)
    convs = {n for n, m in modules.items() if isinstance(m, torch.nn.Conv2d)}
    if loaded != convs:
        raise ValueError(f"{onnx_path}: no weights for {sorted(convs - loaded)}")
    return net


def runner(
    net,
    batch: np.ndarray,
    channels_last: bool = False,
    device: str = "cpu",
    half: bool = False,
    threads: int | None = None,
) -> Callable[[], object]:
    """A zero-argument callable running ``net`` on ``batch`` (N, 3, H, W) in inference mode.

    threads : PyTorch intra-op threads, set before every call (other candidates of an interleaved
    run may change them); None leaves them alone.
    The input stays on ``device`` (as IOBinding keeps it for ONNX Runtime on a GPU); CUDA calls
    synchronise so the wall time is the computation's.
    """
    import torch

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    dtype = torch.float16 if half else torch.float32
    model = net.to(device=device, dtype=dtype, memory_format=fmt)
    x = torch.from_numpy(batch).to(device=device, dtype=dtype).contiguous(memory_format=fmt)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def call():
        if threads is not None and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        with torch.inference_mode():
            out = model(x)
        sync()
        return out

    return call


def agreement(net, batch: np.ndarray, heatmap_onnx: np.ndarray) -> float:
    """Largest absolute difference between the eager heatmap and ONNX Runtime's on ``batch``."""
    import torch

    with torch.inference_mode():
        heatmap = (
            net.float().to("cpu", memory_format=torch.contiguous_format)(torch.from_numpy(batch)).heatmap
        )
    return float(np.abs(heatmap.numpy() - heatmap_onnx).max())
