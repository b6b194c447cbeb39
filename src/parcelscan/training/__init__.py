"""Training parts (PyTorch): network, data, loss, export. Needs the ``test``/``train`` extra.

Nothing on the inference path imports this package: a station runs the exported ONNX model with
ONNX Runtime. ``scripts/train.py`` and ``scripts/evaluate.py`` drive these parts.
"""
