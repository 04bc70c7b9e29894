"""The onnxruntime back-end: ``--backend onnx``.

Execution providers are chosen explicitly (``providers``) or, for ``device="cuda"``, by preference
TensorRT > CUDA among those this onnxruntime build has, with CPU behind them for any node they do
not take; ``device="cpu"`` uses the CPU provider alone. The TensorRT provider keeps the engines it
builds in ``trt_cache/`` beside the model, which it keys by GPU and TensorRT version itself.

An artifact is a folder holding ``model.onnx`` and its ``manifest.json`` (see ``artifact``);
the engine takes the FeatureSpec and labels from the manifest and checks the file's inputs and
outputs against the recognizer's names. Where the export also holds the expression CNN
(``OUT/expression``) and the text front-end's model (``OUT/text``), the engine gives the face and text
front-ends those files to run (``expression_encoder``, ``text_model``), so the app's models all come
from the export and the app needs no PyTorch.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

import numpy as np

from realtime.core.backends import INPUTS, OUTPUTS
from realtime.core.errors import ModelUnavailableError, loaded_model, one_line
from realtime.core.feature_spec import LABELS, FeatureSpec
from realtime.core.tokens import UTTERANCE_INPUTS, UTTERANCE_OUTPUTS, utterance_inputs
from realtime.core.wordpiece import read_vocab
from realtime.engines.artifact import (BATCH_AXIS, EXPRESSION, MODEL_FILE, RECOGNIZER, REEXPORT, TEXT, VOCAB_FILE,
                                       artifact_dir, read_manifest)
from realtime.engines.base import Engine
from realtime.nets.face_crop import standardise

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

M = TypeVar("M")  # a front-end model class of an export
PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
_NUMPY = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(bool)": np.bool_,
          "tensor(int64)": np.int64, "tensor(int32)": np.int32}


def choose_providers(device: str, available: Sequence[str]) -> list[str]:
    """The providers for ``device`` ("cpu" | "cuda"), in preference order, from ``available``."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    gpu = [p for p in PREFERENCE[:2] if p in available]
    if not gpu:
        raise RuntimeError(f"--device {device}: this onnxruntime has no GPU provider (it has "
                           f"{', '.join(available)}); install onnxruntime-gpu or use --device cpu")
    return [*gpu, "CPUExecutionProvider"]


def make_session(model: Path, providers: Sequence[str], threads: int | None = None, batch: int | None = None):
    """An onnxruntime session; ``threads`` pins the intra-op thread count (CPU); ``batch`` fixes the
    batch axis (named ``batch`` by the export), so that onnxruntime folds the graph's shape arithmetic.
    A file onnxruntime cannot load as a model is a one-line ``ValueError``."""
    import onnxruntime as ort
    from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument, InvalidGraph, InvalidProtobuf

    options = ort.SessionOptions()
    # An INT8 (Q/DQ) graph is run as written: int8 values multiplied exactly in float, as TensorRT's
    # int8 kernels accumulate them. onnxruntime's fused int8 CPU kernels saturate on CPUs without VNNI
    # (AVX2's 16-bit pair sums): on an AVX2-only EPYC they cost the expression CNN's INT8 export 4.5
    # points of label agreement with PyTorch (0.955), against 1.000 run as written.
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if batch is not None:
        options.add_free_dimension_override_by_name(BATCH_AXIS, batch)
    cache = model.parent / "trt_cache"
    provider_options = [{"trt_engine_cache_enable": "True", "trt_engine_cache_path": str(cache),
                         "trt_timing_cache_enable": "True"} if p == "TensorrtExecutionProvider" else {}
                        for p in providers]
    try:
        return ort.InferenceSession(str(model), options, providers=list(providers), provider_options=provider_options)
    except (InvalidProtobuf, InvalidGraph, InvalidArgument) as e:
        reason = one_line(e).rsplit("failed:", 1)[-1].strip()  # onnxruntime's reason, without its prefix and path
        raise ValueError(f"{model} is not a valid ONNX model ({reason}): {REEXPORT}") from e


def open_artifact(path: str | Path, artifact: str, device: str = "cpu", threads: int | None = None,
                  providers: Sequence[str] | None = None) -> tuple[Path, dict, InferenceSession]:
    """An export's ``artifact`` (``path``: the export, the artifact folder or its ONNX file): its folder,
    its checked manifest and an onnxruntime session of it (``providers``, else those for ``device``).
    A folder holding another artifact is a one-line ``ValueError``."""
    import onnxruntime as ort

    directory = artifact_dir(Path(path), artifact)
    manifest = read_manifest(directory)
    if manifest.get("artifact") != artifact:
        raise ValueError(f"{directory} holds a {manifest.get('artifact')} export, not the {artifact}")
    providers = list(providers) if providers else choose_providers(device, ort.get_available_providers())
    return directory, manifest, make_session(directory / MODEL_FILE, providers, threads)


class OnnxEngine(Engine):
    """An exported recognizer run by onnxruntime.

    On the CPU provider a second session has the batch axis fixed at 1 and answers every batch of
    one (each live window): without the shape arithmetic of a free batch it runs fewer kernels, and at
    batch 1 the model is bound by per-kernel overhead (the figures are in MODEL_CARD.md)."""

    name = "onnx"

    def __init__(self, model: str | Path, device: str = "cpu", threads: int | None = None,
                 providers: Sequence[str] | None = None) -> None:
        directory, manifest, self.session = open_artifact(model, RECOGNIZER, device, threads, providers)
        super().__init__(FeatureSpec.from_dict(manifest["feature_spec"]))
        names_in = tuple(i.name for i in self.session.get_inputs())
        names_out = tuple(o.name for o in self.session.get_outputs())
        if set(names_in) != set(INPUTS) or set(names_out) != set(OUTPUTS):
            raise ValueError(f"{directory / MODEL_FILE}: inputs {names_in} / outputs {names_out} are not the "
                             f"recognizer's {INPUTS} / {OUTPUTS}")
        self._dtypes = {i.name: _NUMPY[i.type] for i in self.session.get_inputs()}
        cpu = ["CPUExecutionProvider"]
        on_cpu = self.session.get_providers() == cpu
        self.single = make_session(directory / MODEL_FILE, cpu, threads, batch=1) if on_cpu else None
        self._export, self._device, self._threads = directory.parent, device, threads

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {n: np.ascontiguousarray(inputs[n], dtype=self._dtypes[n]) for n in INPUTS}
        session = self.single if self.single is not None and len(feed[INPUTS[0]]) == 1 else self.session
        values = session.run(list(OUTPUTS), feed)
        return {n: np.asarray(v, dtype=np.float32) for n, v in zip(OUTPUTS, values)}

    def expression_encoder(self) -> OnnxExpressionEncoder | Literal["shipped"]:
        return exported_expression(self._export, self._device, self._threads)

    def text_model(self) -> OnnxTextModel | Literal["shipped"]:
        return exported_text_model(self._export, self._device, self._threads)


class OnnxExpressionEncoder:
    """An exported expression CNN with ``realtime.nets.expression.ExpressionEncoder``'s contract:
    aligned (S, S) or (n, S, S) uint8 crops -> embedding (.., E), probabilities (.., 7)."""

    def __init__(self, model: str | Path, device: str = "cpu", threads: int | None = None) -> None:
        directory, manifest, self.session = open_artifact(model, EXPRESSION, device, threads)
        if tuple(manifest.get("labels", ())) != LABELS:
            raise ValueError(f"{directory} is an expression-CNN export with labels {manifest.get('labels')}, not {LABELS}")
        self._input = self.session.get_inputs()[0]

    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        single = crops.ndim == 2
        x = standardise(crops[None] if single else crops).astype(_NUMPY[self._input.type])
        e, p = (np.asarray(v, dtype=np.float32) for v in self.session.run(None, {self._input.name: x}))
        return (e[0], p[0]) if single else (e, p)


class OnnxTextModel:
    """An exported text front-end model (``realtime.nets.text_encoder.UtteranceEncoder``) with its
    vocabulary: an utterance's tokens -> (n, text_dim) float32, as ``ShippedTextModel``."""

    def __init__(self, model: str | Path, device: str = "cpu", threads: int | None = None) -> None:
        directory, _, self.session = open_artifact(model, TEXT, device, threads)
        self.vocab = read_vocab(directory / VOCAB_FILE)
        names = tuple(i.name for i in self.session.get_inputs())
        if set(names) != set(UTTERANCE_INPUTS):
            raise ValueError(f"{directory / MODEL_FILE}: inputs {names} are not the text model's {UTTERANCE_INPUTS}")

    def __call__(self, tokens: Sequence[str]) -> np.ndarray:
        (features,) = self.session.run(list(UTTERANCE_OUTPUTS), utterance_inputs(tokens, self.vocab))
        return np.asarray(features[0], np.float32)


def exported_expression(export: Path, device: str = "cpu", threads: int | None = None
                        ) -> OnnxExpressionEncoder | Literal["shipped"]:
    """The expression CNN of the export ``export`` (OUT) when it holds one, else the shipped PyTorch CNN;
    a file that does not load is a ``ModelUnavailableError`` (the app turns the modality off)."""
    return _front_end_model(OnnxExpressionEncoder, export / EXPRESSION, device, threads)


def exported_text_model(export: Path, device: str = "cpu", threads: int | None = None
                        ) -> OnnxTextModel | Literal["shipped"]:
    """The text front-end model of the export ``export`` (OUT) when it holds one, else the shipped
    PyTorch encoders; a file that does not load is a ``ModelUnavailableError``."""
    return _front_end_model(OnnxTextModel, export / TEXT, device, threads)


def _front_end_model(model: Callable[[Path, str, int | None], M], directory: Path, device: str,
                     threads: int | None) -> M | Literal["shipped"]:
    if not (directory / MODEL_FILE).is_file():
        if importlib.util.find_spec("torch") is None:  # the runtime install: no shipped PyTorch model to fall back on
            raise ModelUnavailableError(f"{directory / MODEL_FILE} is missing and this install has no PyTorch for "
                                        f"the shipped model: {REEXPORT}")
        return "shipped"
    return loaded_model(lambda: model(directory, device, threads))
