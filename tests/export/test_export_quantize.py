"""INT8 (explicit Q/DQ) and FP16 exports of the shipped model pass their gates against PyTorch, and
the INT8 file is what TensorRT's explicit quantization wants: symmetric (zero point 0), per-channel
weights, LayerNorm, Softmax and the attention products left in float. The text model stays FP32."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from export.artifacts import make_artifacts
from export.quantize import attention_matmuls
from realtime.engines.artifact import ARTIFACTS, MODEL_FILE, RECOGNIZER, TEXT, read_manifest

LIMIT = 16
CROPS = {"int8": 200, "fp16": 64}  # the CNN's INT8 calibration needs a few hundred crops


@pytest.fixture(scope="module", params=["int8", "fp16"])
def quantized(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    make_artifacts("default", out, request.param, limit=LIMIT, crops=CROPS[request.param])
    return request.param, out


def test_quantized_exports_pass_their_gates(quantized):
    precision, out = quantized
    text = read_manifest(out / TEXT)
    assert text["precision"] == "fp32" and text["parity"]["passed"] is True
    for artifact in set(ARTIFACTS) - {TEXT}:
        manifest = read_manifest(out / artifact)
        parity = manifest["parity"]
        assert manifest["precision"] == precision and parity["passed"] is True
        assert parity["label_agreement"] >= parity["tolerance"]["min_label_agreement"] >= 0.97
        assert parity["metric_drop"] is None or parity["metric_drop"] <= 0.01
        assert "quantization" in manifest
    if precision == "int8":
        assert read_manifest(out / RECOGNIZER)["quantization"]["calibration"]["n_windows"] > 0


@pytest.mark.parametrize("quantized", ["int8"], indirect=True)
def test_int8_is_symmetric_per_channel_qdq_with_float_attention_and_norms(quantized):
    _, out = quantized
    model = onnx.load(str(out / RECOGNIZER / MODEL_FILE))
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes = model.graph.node
    dq = [n for n in nodes if n.op_type == "DequantizeLinear"]
    assert dq and any(n.op_type == "QuantizeLinear" for n in nodes)
    for n in (*dq, *(n for n in nodes if n.op_type == "QuantizeLinear")):
        zero_point = init[n.input[2]]
        assert zero_point.dtype == np.int8 and not zero_point.any()  # symmetric
    weights = [n for n in dq if n.input[0] in init and init[n.input[0]].ndim >= 2]
    assert weights and all(init[n.input[1]].size == init[n.input[0]].shape[
        next((a.i for a in n.attribute if a.name == "axis"), 1)] for n in weights)  # one scale per channel
    dequantized = {o for n in dq for o in n.output}
    for n in nodes:
        if n.op_type in ("Softmax", "LayerNormalization"):
            assert not dequantized & set(n.input), f"{n.name} reads int8 values"
    names = set(attention_matmuls(model))
    assert names and all(not dequantized & set(n.input) for n in nodes if n.name in names)
