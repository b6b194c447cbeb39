"""Export the trained network to ONNX (fp32, int8 static QDQ, fp16) with its card in the metadata.

The card (preprocessing parameters, output names, operating threshold, model version, training
command and data) is embedded as the ``parcelscan`` metadata entry of every ONNX file and written
beside them as JSON with each file's sha256, so the detector reads everything it needs at load time
and no script retypes a constant.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import torch

from .network import DetectorNet

__all__ = ["INPUT_NAME", "OUTPUT_NAMES", "embed_card", "export_fp16", "export_int8", "export_onnx", "sha256"]

INPUT_NAME = "image"
OUTPUT_NAMES = ("heatmap", "score")
OPSET = 17
META_KEY = "parcelscan"


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def embed_card(path: str | Path, card: dict) -> None:
    """Write ``card`` as JSON into the model's ``parcelscan`` metadata entry (replacing any earlier one)."""
    model = onnx.load(str(path))
    for prop in list(model.metadata_props):
        if prop.key == META_KEY:
            model.metadata_props.remove(prop)
    model.metadata_props.add(key=META_KEY, value=json.dumps(card, sort_keys=True))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def export_onnx(model: DetectorNet, path: str | Path, card: dict, example_size: int = 256) -> None:
    """fp32 ONNX with dynamic batch and spatial axes, checked by onnx.checker, card embedded."""
    model = model.eval().cpu()
    x = torch.zeros(2, model.in_channels, example_size, example_size)
    axes = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.export(
        model,
        (x,),
        str(path),
        input_names=[INPUT_NAME],
        output_names=list(OUTPUT_NAMES),
        opset_version=OPSET,
        dynamo=False,
        dynamic_axes={INPUT_NAME: axes, "heatmap": axes, "score": {0: "batch"}},
    )
    onnx.checker.check_model(onnx.load(str(path)))
    embed_card(path, card)


class _Reader:
    """Calibration tiles for ONNX Runtime's static quantisation."""

    def __init__(self, batches: list[np.ndarray]):
        self._it = iter([{INPUT_NAME: b.astype(np.float32)} for b in batches])

    def get_next(self):
        return next(self._it, None)


def export_int8(
    fp32_path: str | Path, int8_path: str | Path, calibration: list[np.ndarray], card: dict
) -> None:
    """Static QDQ int8 (per-channel signed weights, unsigned activations, percentile calibration),
    all convolutions but the first and the last.

    performance.md: symmetric activations erased the speed-up and percentile calibration agreed best
    with fp32; ``calibration`` is a list of (N, K, H, W) training tile batches.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = Path(int8_path).with_suffix(".prep.onnx")
    quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
    # Only the convolutions are quantised, and not the 1x1 head: quantising its logits (or the sigmoid
    # after them) leaves the probabilities near 1 on a coarse grid, so high scores tie and the 1 % FPR
    # threshold of a parcel decision no longer separates anything. Nor the first convolution: its input
    # holds the attenuations and their logarithms (-3.9..2.3) on one uint8 scale, steps of 0.03 that
    # blur the dual-energy ratio; model 0.4.0 lost 0.010 AUROC that way (4 % of the FLOPs stay fp32).
    convs = [n.name for n in onnx.load(str(prepared)).graph.node if n.op_type == "Conv"]
    try:
        quantize_static(
            str(prepared),
            str(int8_path),
            _Reader(calibration),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            calibrate_method=CalibrationMethod.Percentile,
            op_types_to_quantize=["Conv"],
            nodes_to_exclude=convs[:1] + convs[-1:],
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
    finally:
        prepared.unlink(missing_ok=True)
    embed_card(int8_path, card)


def _float32_outputs(model: onnx.ModelProto) -> None:
    """Cast any float16 graph output back to float32 (the converter leaves some despite keep_io_types)."""
    f16, f32 = onnx.TensorProto.FLOAT16, onnx.TensorProto.FLOAT
    for out in model.graph.output:
        if out.type.tensor_type.elem_type != f16:
            continue
        inner = f"{out.name}_float16"
        for node in model.graph.node:
            node.output[:] = [inner if o == out.name else o for o in node.output]
            node.input[:] = [inner if i == out.name else i for i in node.input]
        model.graph.node.append(
            onnx.helper.make_node("Cast", [inner], [out.name], to=f32, name=f"{out.name}_to_float32")
        )
        out.type.tensor_type.elem_type = f32


def export_fp16(fp32_path: str | Path, fp16_path: str | Path, card: dict) -> None:
    """fp16 weights and compute with float32 inputs and outputs (for GPUs; slower on CPU)."""
    from onnxconverter_common import float16

    # The converter mistypes a graph output that a ReduceMax produces directly; the tile maximum is
    # cheap, so it stays in float32.
    block = [*float16.DEFAULT_OP_BLOCK_LIST, "ReduceMax"]
    model = float16.convert_float_to_float16(
        onnx.load(str(fp32_path)), keep_io_types=True, op_block_list=block
    )
    _float32_outputs(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(fp16_path))
    embed_card(fp16_path, card)
