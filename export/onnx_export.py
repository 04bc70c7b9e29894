"""PyTorch -> ONNX for the three deployed graphs: the recognizer, the face expression CNN and the text
front-end's model.

Only inference graphs: ``Recognizer.forward`` (encoders + DMD-lite, no decoders, per-modality heads
or losses), the CNN's mirror-averaged embedding and probabilities, and ``UtteranceEncoder`` (sentence
and text encoders of one utterance). Opset 17 by default (TensorRT 10.3 on JetPack 6 reads it and
LayerNorm stays one ``LayerNormalization`` node), fixed window shapes from the FeatureSpec and one
dynamic axis, ``batch`` (the text model also has ``words`` and ``pieces``). The TorchScript
exporter (``dynamo=False``) is used: torch 2.11's dynamo exporter writes opset 18 and its graph cannot be converted down to 17 (no Pad
adapter in onnx's version converter); the shape arithmetic the tracer leaves in the graph is
folded by onnxruntime and TensorRT when they load it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from torch import Tensor, nn

from dmd_lite.recognizer import Recognizer
from realtime.core.backends import INPUTS, OUTPUTS
from realtime.core.tokens import PIECES_PER_WORD, UTTERANCE_INPUTS, UTTERANCE_OUTPUTS
from realtime.core.wordpiece import CLS_ID, SEP_ID
from realtime.engines.artifact import BATCH_AXIS
from realtime.nets.expression import MirrorAveraged
from realtime.nets.face_crop import CROP_SIZE
from realtime.nets.text_encoder import UtteranceEncoder

OPSET = 17
EXPRESSION_INPUTS = ("crops",)
EXPRESSION_OUTPUTS = ("embedding", "probabilities")


def recognizer_example(model: Recognizer, batch: int = 2) -> tuple[Tensor, ...]:
    """Inputs of the window shapes (values do not matter to the trace, shapes and dtypes do)."""
    s = model.spec
    g = torch.Generator().manual_seed(0)
    present = lambda n: torch.ones(batch, n, dtype=torch.bool)  # noqa: E731
    return (torch.randn(batch, s.visual_steps, s.visual_dim, generator=g), present(s.visual_steps),
            torch.randn(batch, s.audio_steps, s.audio_dim, generator=g), present(s.audio_steps),
            torch.randn(batch, s.max_words, s.text_dim, generator=g), present(s.max_words))


def _export(model: nn.Module, args: tuple[Tensor, ...], path: Path, inputs: tuple[str, ...],
            outputs: tuple[str, ...], opset: int, dynamic_axes: dict[str, dict[int, str]] | None = None) -> Path:
    """Trace ``model`` on ``args`` into ``path``; every input and output's axis 0 is ``batch`` unless
    ``dynamic_axes`` says otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(model.eval(), args, str(path), input_names=list(inputs), output_names=list(outputs),
                          opset_version=opset,
                          dynamic_axes=dynamic_axes or {n: {0: BATCH_AXIS} for n in (*inputs, *outputs)},
                          do_constant_folding=True, dynamo=False)
    onnx.checker.check_model(str(path), full_check=True)
    return path


def export_recognizer(model: Recognizer, path: Path, opset: int = OPSET) -> Path:
    """Write ``model`` as ONNX at ``path`` (inputs ``INPUTS``, outputs ``OUTPUTS``); checked."""
    return _export(model, recognizer_example(model), path, INPUTS, OUTPUTS, opset)


def export_expression(model: MirrorAveraged, path: Path, opset: int = OPSET) -> Path:
    """Write the deployed expression CNN (``ExpressionEncoder.model``) as ONNX at ``path``; checked."""
    example = torch.randn(2, 1, CROP_SIZE, CROP_SIZE, generator=torch.Generator().manual_seed(0))
    return _export(model, (example,), path, EXPRESSION_INPUTS, EXPRESSION_OUTPUTS, opset)


WORD_TABLE = "sentences.word.weight"  # the sentence encoder's word-piece embedding in the traced graph


def export_text(model: UtteranceEncoder, path: Path, word_pieces: tuple[np.ndarray, np.ndarray],
                opset: int = OPSET) -> Path:
    """Write the text front-end's model at ``path`` (inputs ``UTTERANCE_INPUTS``, axes batch, words and
    pieces), its word-piece table stored as the shipped int8 rows and their scales (``word_pieces``:
    (V, H) int8, (V,) float32), gathered and then scaled: the same float32 values, a third of the bytes."""
    g = torch.Generator().manual_seed(0)
    words = torch.randint(1, 1000, (1, 3, PIECES_PER_WORD), generator=g)
    pieces = torch.tensor([[CLS_ID, 2000, 2001, 2002, SEP_ID]])
    axes = {"word_ids": {0: BATCH_AXIS, 1: "words"}, "piece_ids": {0: BATCH_AXIS, 1: "pieces"},
            "piece_mask": {0: BATCH_AXIS, 1: "pieces"}, "features": {0: BATCH_AXIS, 1: "words"}}
    _export(model, (words, pieces, torch.ones_like(pieces, dtype=torch.bool)), path, UTTERANCE_INPUTS,
            UTTERANCE_OUTPUTS, opset, axes)
    graph = onnx.load(str(path))
    _gather_int8(graph.graph, WORD_TABLE, *word_pieces)
    onnx.save(graph, str(path))
    onnx.checker.check_model(str(path), full_check=True)
    return path


def _gather_int8(graph: onnx.GraphProto, table: str, rows: np.ndarray, scales: np.ndarray) -> None:
    """Replace the float initializer ``table`` (read by Gather nodes only) with ``rows`` int8 and
    ``scales``: Gather(rows) -> Cast -> Mul by Gather(scales), unsqueezed. Refuses when rows x scales is
    not exactly the table."""
    init = next(i for i in graph.initializer if i.name == table)
    if not np.array_equal(numpy_helper.to_array(init), rows.astype(np.float32) * scales[:, None]):
        raise ValueError(f"{table}: the int8 rows and scales given are not the exported table")
    graph.initializer.remove(init)
    graph.initializer.extend([numpy_helper.from_array(rows, f"{table}.int8"),
                              numpy_helper.from_array(scales.astype(np.float32), f"{table}.scale"),
                              numpy_helper.from_array(np.array([-1], np.int64), f"{table}.last_axis")])
    nodes = []
    for node in graph.node:
        if node.op_type != "Gather" or node.input[0] != table:
            nodes.append(node)
            continue
        ids, out = node.input[1], node.output[0]
        nodes += [helper.make_node("Gather", [f"{table}.int8", ids], [f"{out}.int8"]),
                  helper.make_node("Cast", [f"{out}.int8"], [f"{out}.float"], to=onnx.TensorProto.FLOAT),
                  helper.make_node("Gather", [f"{table}.scale", ids], [f"{out}.scale"]),
                  helper.make_node("Unsqueeze", [f"{out}.scale", f"{table}.last_axis"], [f"{out}.scale_column"]),
                  helper.make_node("Mul", [f"{out}.float", f"{out}.scale_column"], [out])]
    del graph.node[:]
    graph.node.extend(nodes)


def io_shapes(path: Path) -> dict[str, dict[str, dict]]:
    """{"inputs"|"outputs": {name: {"shape": [dims, "batch" for the batch axis], "dtype": ...}}} of an ONNX file."""
    graph = onnx.load(str(path), load_external_data=False).graph

    def describe(values) -> dict[str, dict]:
        out = {}
        for v in values:
            t = v.type.tensor_type
            out[v.name] = {"shape": [d.dim_param or d.dim_value for d in t.shape.dim],
                           "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name}
        return out

    return {"inputs": describe(graph.input), "outputs": describe(graph.output)}
