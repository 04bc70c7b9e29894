"""Reduced-precision variants of an FP32 ONNX export: INT8 by explicit Q/DQ, and FP16.

INT8 (what TensorRT 10.x / 11.x build from, precision living in the file): onnxruntime's static
QDQ quantizer after its pre-processing (shape inference, constant folding), calibrated on real
windows; activation ranges cover ``PERCENTILE`` % of the values seen.
- weights: int8, symmetric, per output channel (Conv axis 0, MatMul axis 1), zero point 0;
- activations: int8, symmetric per tensor, zero point 0;
- quantized: Conv, Gemm and the MatMuls with a weight (the projections; the recognizer: its MatMuls
  only, ``RECOGNIZER_OPS``); kept in float: every
  LayerNormalization, Softmax, the attention matrix products (a MatMul of two activations: q k^T
  and attention x v), the embedding gathers, the biases (TensorRT's DequantizeLinear takes
  8-bit inputs, not int32 biases) and a layer that reads a graph input directly (the CNN's first
  conv, see ``input_layers``).
FP16: weights and activations in float16 with float32 inputs and outputs; LayerNormalization,
Softmax, LogSoftmax, CumSum and the square root / exponential ops stay float32, where float16's
range or precision is known to hurt (sums of many squares, running sums over the window).
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx

QUANTIZED_OPS = ("Conv", "Gemm", "MatMul")
# The recognizer's convolutions (the voice encoder's trunk, DMD's modality projections) read the
# windows almost directly; quantized, they flipped 2.2 % of its labels (agreement 0.978 on 720
# held-out windows). Its Gemms (the heads and the per-window projections, run for the window with and
# without its voice) quantized flipped 1.4-1.9 % of the labels of the checkpoints
# trained for valence (0.981-0.986 on 1,414 held-out windows); with both in float, 1.000.
RECOGNIZER_OPS = ("MatMul",)
PERCENTILE = 99.99  # activation range: min-max let a few outliers cost 2 points of agreement on the CNN
FP16_KEEP_FLOAT = ("LayerNormalization", "Softmax", "LogSoftmax", "CumSum", "Sqrt", "Pow", "Exp", "Reciprocal",
                   "Sin", "Cos", "Range")


def _constants(graph: onnx.GraphProto) -> set[str]:
    return {t.name for t in graph.initializer} | {o for n in graph.node if n.op_type == "Constant" for o in n.output}


def input_layers(model: onnx.ModelProto) -> list[str]:
    """Names of the Conv / Gemm / MatMul nodes that read a graph input directly (the CNN's first
    conv on raw pixels: quantized alone it flips 1.8 % of FER2013 labels, the most of any layer,
    for 3 % of the CNN's multiply-adds)."""
    inputs = {i.name for i in model.graph.input}
    return [n.name for n in model.graph.node if n.op_type in QUANTIZED_OPS and inputs & set(n.input)]


def attention_matmuls(model: onnx.ModelProto) -> list[str]:
    """Names of the MatMul nodes whose two inputs are both activations (attention products); a
    weight is a constant, or a constant's DequantizeLinear in a quantized graph."""
    graph = model.graph
    constants = _constants(graph)
    weights = constants | {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in constants}
    return [n.name for n in graph.node if n.op_type == "MatMul" and not weights & set(n.input)]


class FeedReader:
    """onnxruntime's CalibrationDataReader over named arrays (N, ...), ``batch`` at a time, cast to
    the model's dtypes. Every batch has the same size (the last is completed from the start):
    the percentile calibrator stacks what it collects and needs equal shapes."""

    def __init__(self, data: dict[str, np.ndarray], dtypes: dict[str, type], batch: int = 32) -> None:
        n = len(next(iter(data.values())))
        batch = min(batch, n)
        order = np.resize(np.arange(n), -(-n // batch) * batch).reshape(-1, batch)  # (batches, batch)
        self._batches = iter([{k: np.asarray(v[rows], dtypes.get(k)) for k, v in data.items()} for rows in order])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def _input_dtypes(model: onnx.ModelProto) -> dict[str, type]:
    return {i.name: onnx.helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type) for i in model.graph.input}


def quantize_int8(fp32: Path, out: Path, data: dict[str, np.ndarray], op_types: tuple[str, ...] = QUANTIZED_OPS) -> dict:
    """Write the INT8 Q/DQ model of ``fp32`` at ``out``, calibrated on ``data`` (named inputs (N, ...)),
    quantizing the layers of ``op_types``; returns what was done, for the manifest's ``quantization`` block."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        model = onnx.load(str(prepared))
        keep = attention_matmuls(model)
        first = input_layers(model)
        quantize_static(str(prepared), str(out), FeedReader(data, _input_dtypes(model)),
                        quant_format=QuantFormat.QDQ, op_types_to_quantize=list(op_types), per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, nodes_to_exclude=keep + first,
                        calibrate_method=CalibrationMethod.Percentile,
                        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
                                       "CalibPercentile": PERCENTILE})
    onnx.checker.check_model(str(out), full_check=True)
    quantized = onnx.load(str(out))
    dequantized = {o for n in quantized.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    consumers = Counter(n.op_type for n in quantized.graph.node
                        if n.op_type in QUANTIZED_OPS and dequantized & set(n.input))
    ops = Counter(n.op_type for n in model.graph.node)
    tables = sum(n.op_type == "Gather" and n.input[0] in _constants(model.graph) for n in model.graph.node)
    kept = [f"{ops[op]} {op}" for op in ("LayerNormalization", "Softmax") if ops[op]]
    kept += [f"{tables} embedding Gather"] if tables else []
    kept += [f"{ops[op]} {op}" for op in QUANTIZED_OPS if op not in op_types and ops[op]]
    return {"method": "static, explicit QuantizeLinear/DequantizeLinear (QDQ)", "calibrate_method": f"percentile {PERCENTILE}",
            "weights": "int8 symmetric per-channel, zero point 0", "activations": "int8 symmetric per-tensor, zero point 0",
            "quantized_nodes": dict(consumers),
            "kept_float": [*kept, f"{len(keep)} attention MatMul", "biases", *(f"{n} (reads the input)" for n in first)]}


def convert_fp16(fp32: Path, out: Path) -> dict:
    """Write the FP16 model of ``fp32`` at ``out`` (float32 inputs and outputs); returns what was done."""
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True, op_block_list=list(FP16_KEEP_FLOAT))
    OnnxModel(model).topological_sort()  # the converter appends the casts it inserts at the end
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    onnx.checker.check_model(str(out), full_check=True)
    return {"method": "float16 weights and activations, float32 inputs and outputs",
            "kept_float": list(FP16_KEEP_FLOAT)}
