"""Making an artifact: export (and quantize), run the parity gate, write the manifest.

``make_artifacts`` is what ``python -m export onnx`` and ``quantize`` run, for the recognizer
(held-out windows, ``calibration.windows``), the expression CNN (held-out face crops,
``calibration.crops``) and the text front-end's model (utterances, ``calibration.utterances``;
always FP32: it runs once an utterance, and its tables are gathers, not arithmetic worth
quantizing). A manifest is written whether or not the gate passed (so the figures can be read); a
failed gate then raises ``ParityError`` naming every artifact that drifted.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from calibration.coverage import coverage
from calibration.crops import face_crops
from calibration.utterances import utterances
from calibration.windows import read_windows
from dmd_lite.checkpoint import WEIGHTS, read_config
from dmd_lite.recognizer import resolve_checkpoint
from realtime.core.backends import OUTPUTS
from realtime.core.feature_spec import LABELS
from realtime.core.tokens import UTTERANCE_OUTPUTS, utterance_inputs
from realtime.core.wordpiece import vocab_path
from realtime.engines.artifact import ARTIFACTS, EXPRESSION, MODEL_FILE, RECOGNIZER, TEXT, VOCAB_FILE
from realtime.engines.onnx_engine import make_session
from realtime.engines.torch_engine import TorchEngine
from realtime.nets.expression import WEIGHTS_PATH, ExpressionEncoder, crops_to_tensor
from realtime.nets.sentence_encoder import WEIGHTS_PATH as SENTENCE_WEIGHTS
from realtime.nets.sentence_encoder import word_pieces
from realtime.nets.text_encoder import WEIGHTS_PATH as TEXT_WEIGHTS
from realtime.nets.text_encoder import ShippedTextModel, own_answer

from .manifest import sha256, write_manifest
from .onnx_export import (EXPRESSION_INPUTS, EXPRESSION_OUTPUTS, OPSET, export_expression, export_recognizer,
                          export_text, io_shapes)
from .parity import CNN_MIN_AGREEMENT, Parity, ParityError, compare, probabilities
from .quantize import QUANTIZED_OPS, RECOGNIZER_OPS, convert_fp16, quantize_int8

PRECISIONS = ("fp32", "int8", "fp16")
BATCH = 32  # windows per call in gates and calibration
CROPS = 400  # face crops in the CNN's gate and in its calibration (with 100, INT8 agreement fell to 0.96)


def session_runner(path: Path, outputs: tuple[str, ...]) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """A CPU onnxruntime session of ``path`` as a function of named inputs."""
    session = make_session(path, ["CPUExecutionProvider"])
    return lambda feed: dict(zip(outputs, session.run(list(outputs), feed)))


def _lower(fp32: Path, target: Path, precision: str, calibration: Callable[[], object],
           int8_ops: tuple[str, ...] = QUANTIZED_OPS) -> dict | None:
    """Quantize ``fp32`` into ``target`` (None for fp32, which is already there)."""
    if precision == "int8":
        return quantize_int8(fp32, target, calibration(), int8_ops)
    if precision == "fp16":
        return convert_fp16(fp32, target)
    return None


def recognizer_artifact(checkpoint: str | Path, directory: Path, precision: str, windows: Path | None,
                        calibration: Path | None, limit: int, work: Path, progress: tqdm) -> Parity:
    """Export the recognizer of ``checkpoint`` into ``directory`` at ``precision`` and gate it."""
    reference = TorchEngine(checkpoint)
    model, spec = reference.model, reference.spec
    progress.set_description("recognizer: reading held-out windows")
    heldout = read_windows(windows, spec, "heldout", limit)
    progress.set_description("recognizer: exporting")
    fp32 = export_recognizer(model, (directory if precision == "fp32" else work / RECOGNIZER) / MODEL_FILE)
    target = directory / MODEL_FILE
    calib = None
    if precision == "int8":
        progress.set_description("recognizer: reading calibration windows")
        calib = read_windows(calibration, spec, "calibration", limit)
    progress.set_description(f"recognizer: {precision}")
    quantization = _lower(fp32, target, precision, lambda: calib.arrays, RECOGNIZER_OPS)
    if quantization is not None and calib is not None:
        quantization["calibration"] = coverage(calib, spec.labels)
    progress.set_description("recognizer: parity")
    parity = compare(probabilities(reference.run, heldout.batches(BATCH)),
                     probabilities(session_runner(target, OUTPUTS), heldout.batches(BATCH)),
                     heldout.labels, precision, heldout.origin)
    source = resolve_checkpoint(checkpoint)
    write_manifest(directory, [target], artifact=RECOGNIZER, precision=precision, opset=OPSET,
                   **io_shapes(target), labels=list(spec.labels), feature_spec=spec.to_dict(),
                   source={"checkpoint": str(source), "weights_sha256": sha256(source / WEIGHTS)},
                   parity=parity.to_dict(), parity_windows=coverage(heldout, spec.labels),
                   **({"quantization": quantization} if quantization else {}))
    return parity


def expression_artifact(directory: Path, precision: str, crops: int, work: Path, progress: tqdm) -> Parity:
    """Export the shipped expression CNN into ``directory`` at ``precision`` and gate it on real crops."""
    encoder = ExpressionEncoder()
    progress.set_description("expression: reading face crops")
    heldout, labels, origin = face_crops("heldout", crops)
    fp32 = export_expression(encoder.model, (directory if precision == "fp32" else work / EXPRESSION) / MODEL_FILE)
    target = directory / MODEL_FILE
    name = EXPRESSION_INPUTS[0]
    progress.set_description(f"expression: {precision}")
    quantization = _lower(fp32, target, precision,
                          lambda: {name: crops_to_tensor(face_crops("calibration", crops)[0]).numpy()})
    reference = encoder(heldout)[1]  # the app's own path: standardised crops, CNN, softmax
    x = crops_to_tensor(heldout)  # (n, 1, S, S), what the exported graph takes
    progress.set_description("expression: parity")
    candidate = probabilities(session_runner(target, EXPRESSION_OUTPUTS),
                              ({name: x[i:i + BATCH].numpy()} for i in range(0, len(x), BATCH)))
    parity = compare(reference, candidate, labels, precision, origin, min_agreement=CNN_MIN_AGREEMENT)
    write_manifest(directory, [target], artifact=EXPRESSION, precision=precision, opset=OPSET,
                   **io_shapes(target), labels=list(LABELS), input=dict(encoder.meta["input"]),
                   source={"weights": str(WEIGHTS_PATH), "weights_sha256": sha256(WEIGHTS_PATH)},
                   parity=parity.to_dict(), **({"quantization": quantization} if quantization else {}))
    return parity


def text_artifact(directory: Path, limit: int, progress: tqdm) -> Parity:
    """Export the shipped text front-end model (sentence + text encoder) with its vocabulary into
    ``directory`` (FP32) and gate every word's emotion probabilities on real utterances."""
    model = ShippedTextModel()
    progress.set_description("text: reading utterances")
    heldout, labels, origin = utterances(limit)
    progress.set_description("text: exporting")
    target = export_text(model.model, directory / MODEL_FILE, word_pieces(SENTENCE_WEIGHTS))
    vocab = shutil.copyfile(vocab_path(SENTENCE_WEIGHTS), directory / VOCAB_FILE)
    session = make_session(target, ["CPUExecutionProvider"])
    progress.set_description("text: parity")
    reference, candidate, row_labels = [], [], []
    for tokens, label in zip(heldout, labels):
        (exported,) = session.run(list(UTTERANCE_OUTPUTS), utterance_inputs(tokens, model.vocab))
        reference.append(np.exp(own_answer(model(tokens))[0]))
        candidate.append(np.exp(own_answer(exported[0])[0]))
        row_labels.append(np.r_[np.full(len(tokens) - 1, -1), label])  # the utterance's label is its last word's
    parity = compare(np.concatenate(reference), np.concatenate(candidate), np.concatenate(row_labels), "fp32", origin)
    write_manifest(directory, [target, Path(vocab)], artifact=TEXT, precision="fp32", opset=OPSET, **io_shapes(target),
                   labels=list(LABELS), source={"text_weights": str(TEXT_WEIGHTS), "text_sha256": sha256(TEXT_WEIGHTS),
                                                "sentence_weights": str(SENTENCE_WEIGHTS),
                                                "sentence_sha256": sha256(SENTENCE_WEIGHTS)},
                   parity=parity.to_dict())
    return parity


def make_artifacts(checkpoint: str | Path, out: Path, precision: str = "fp32", windows: Path | None = None,
                   calibration: Path | None = None, limit: int = 200, crops: int = CROPS,
                   artifacts: tuple[str, ...] = ARTIFACTS) -> dict[str, Parity]:
    """Export, gate and describe each artifact under ``out/<artifact>/``: ``limit`` items per
    extraction for the recognizer and utterances for the text model, ``crops`` face crops (held-out,
    and again for calibration) for the CNN. Raises ``ParityError`` (after writing every manifest) when a gate fails."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    read_config(resolve_checkpoint(checkpoint))  # a missing checkpoint fails here, before any work
    for source in (windows, calibration):
        if source is not None and not Path(source).exists():
            raise FileNotFoundError(f"window source {source} does not exist")
    results: dict[str, Parity] = {}
    with tempfile.TemporaryDirectory() as tmp, tqdm(total=len(artifacts), unit="artifact", file=sys.stderr) as bar:
        for name in artifacts:
            if name == RECOGNIZER:
                results[name] = recognizer_artifact(checkpoint, out / name, precision, windows, calibration, limit,
                                                    Path(tmp), bar)
            elif name == EXPRESSION:
                results[name] = expression_artifact(out / name, precision, crops, Path(tmp), bar)
            else:
                results[name] = text_artifact(out / name, limit, bar)
            bar.update()
    failed = {k: p for k, p in results.items() if not p.passed}
    if failed:
        raise ParityError("; ".join(f"{k}: {p.summary()}" for k, p in failed.items()))
    return results
