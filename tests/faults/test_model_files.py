"""Model files are checked before use: damaged weights (a checksum), unreadable safetensors, config
or sidecar JSON that is not JSON, configs that do not fit their weights and ONNX files that are not
ONNX are each refused with one line that names the file; an engine whose output has NaN or
infinity raises ``NonFiniteOutputError``; ``--device cuda --backend onnx`` without a GPU provider
fails before anything else, and without ``--engine`` it names the command that makes an export. All on copies of the shipped files."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from helpers.paths import ROOT
from safetensors.torch import load_file, save_file

from dmd_lite.checkpoint import CONFIG, WEIGHTS, load_checkpoint, save_checkpoint
from dmd_lite.config import preset
from dmd_lite.model import DMD
from dmd_lite.recognizer import DEFAULT_CHECKPOINT, load_recognizer
from export.manifest import write_manifest
from realtime.core.backends import OUTPUTS
from realtime.core.errors import NonFiniteOutputError
from realtime.core.files import sha256
from realtime.core.resources import shipped
from realtime.core.wordpiece import vocab_path
from realtime.engines import make_engine
from realtime.engines.artifact import MODEL_FILE
from realtime.engines.base import Engine
from realtime.engines.onnx_engine import OnnxEngine
from realtime.engines.torch_engine import TorchEngine
from realtime.nets.expression import WEIGHTS_PATH as EXPRESSION_WEIGHTS, ExpressionEncoder
from realtime.nets.model_files import SHA256_KEY, read_tensors
from realtime.nets.sentence_encoder import WEIGHTS_PATH as SENTENCE_WEIGHTS, load_sentence_encoder
from realtime.nets.text_encoder import WEIGHTS_PATH as TEXT_WEIGHTS, load_text_encoder
from realtime.nets.voice_encoder import WEIGHTS_PATH as VOICE_WEIGHTS, load_voice_encoder
from realtime.window import Window

SHIPPED_NETS: dict[str, tuple[Path, Callable[[Path], object]]] = {
    "expression": (EXPRESSION_WEIGHTS, ExpressionEncoder), "voice": (VOICE_WEIGHTS, load_voice_encoder),
    "text": (TEXT_WEIGHTS, load_text_encoder), "sentence": (SENTENCE_WEIGHTS, load_sentence_encoder)}


def one_line_error(error: pytest.ExceptionInfo[BaseException], path: Path, says: str) -> str:
    """The error's message, checked: one line, naming ``path``, saying ``says``."""
    message = str(error.value)
    assert "\n" not in message and str(path) in message and says in message, message
    return message


def copy_default(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DEFAULT_CHECKPOINT, tmp_path / "default"))


def flip_middle_bytes(path: Path, n: int = 4) -> None:
    """Invert ``n`` bytes in the middle of the file: tensor data, so safetensors still parses it."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + n] = bytes(b ^ 0xFF for b in data[middle:middle + n])
    path.write_bytes(bytes(data))


def edit_config(directory: Path, change: Callable[[dict], None], resign: bool = False) -> None:
    """Apply ``change`` to the checkpoint's config.json; ``resign`` records the weights' current sha256."""
    meta = json.loads((directory / CONFIG).read_text())
    change(meta)
    if resign:
        meta[SHA256_KEY] = sha256(directory / WEIGHTS)
    (directory / CONFIG).write_text(json.dumps(meta))


def test_the_shipped_checkpoint_records_its_weights_sha256():
    meta = json.loads((DEFAULT_CHECKPOINT / CONFIG).read_text())
    assert meta[SHA256_KEY] == sha256(DEFAULT_CHECKPOINT / WEIGHTS)
    load_recognizer("default")


def test_flipped_weight_bytes_are_refused(tmp_path):
    copy = copy_default(tmp_path)
    flip_middle_bytes(copy / WEIGHTS)
    read_tensors(copy / WEIGHTS, "")  # still a well-formed safetensors file: only the checksum can tell
    with pytest.raises(ValueError) as error:
        load_recognizer(copy)
    message = one_line_error(error, copy / WEIGHTS, "does not match the sha256 in its config.json")
    assert message.startswith(f"{copy / WEIGHTS} ")


def test_saved_checkpoints_record_the_sha256_and_refuse_changed_weights(tmp_path):
    directory = save_checkpoint(DMD(preset("lite")), tmp_path / "ckpt", note="test")
    assert json.loads((directory / CONFIG).read_text())[SHA256_KEY] == sha256(directory / WEIGHTS)
    load_checkpoint(directory)
    flip_middle_bytes(directory / WEIGHTS)
    with pytest.raises(ValueError) as error:
        load_checkpoint(directory)
    one_line_error(error, directory / WEIGHTS, "does not match the sha256")


def test_a_checkpoint_without_a_sha256_loads_with_a_warning(tmp_path, caplog):
    copy = copy_default(tmp_path)
    edit_config(copy, lambda meta: meta.pop(SHA256_KEY))
    with caplog.at_level(logging.WARNING, logger="realtime.nets.model_files"):
        load_recognizer(copy)
    assert any(SHA256_KEY in r.getMessage() and str(copy / CONFIG) in r.getMessage() for r in caplog.records)


def test_the_cli_refuses_damaged_weights_with_one_stderr_line(tmp_path):
    copy = copy_default(tmp_path)
    flip_middle_bytes(copy / WEIGHTS)
    run = subprocess.run([sys.executable, str(ROOT / "main.py"), "--checkpoint", str(copy), "--no-asr", "--headless",
                          "--video", str(shipped("media/demo.mp4")), "--max-seconds", "2"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1, run.stderr
    assert str(copy / WEIGHTS) in lines[0] and "does not match the sha256" in lines[0]


def test_a_corrupt_safetensors_header_is_one_line(tmp_path):
    copy = copy_default(tmp_path)
    weights = copy / WEIGHTS
    weights.write_bytes(b"\xff" * 8 + weights.read_bytes()[8:])  # header length: absurd
    edit_config(copy, lambda meta: None, resign=True)
    with pytest.raises(ValueError) as error:
        load_recognizer(copy)
    one_line_error(error, weights, "is not a readable safetensors file")


def test_a_config_that_is_not_json_is_one_line(tmp_path):
    copy = copy_default(tmp_path)
    (copy / CONFIG).write_text((copy / CONFIG).read_text()[:-40])  # cut short
    with pytest.raises(ValueError) as error:
        load_recognizer(copy)
    one_line_error(error, copy / CONFIG, "is not valid JSON")


def test_a_wrong_shaped_config_lists_three_mismatches_and_a_count(tmp_path):
    copy = copy_default(tmp_path)
    edit_config(copy, lambda meta: meta["model"].update(d_model=48), resign=True)
    with pytest.raises(ValueError) as error:
        load_recognizer(copy)
    message = one_line_error(error, copy / WEIGHTS, "does not fit Recognizer")
    count = int(re.search(r"\((\d+) mismatches", message)[1])
    assert count > 3 and f"; {count - 3} more)" in message
    assert message.count(" in model") == 3  # three tensors named, the rest counted
    assert len(message.replace(str(copy / WEIGHTS), "")) < 300  # the path is the caller's; the rest is short


def test_missing_tensors_are_named(tmp_path):
    copy = copy_default(tmp_path)
    state = load_file(copy / WEIGHTS)
    dropped = sorted(state)[0]
    save_file({k: v for k, v in state.items() if k != dropped}, copy / WEIGHTS)
    edit_config(copy, lambda meta: None, resign=True)
    with pytest.raises(ValueError) as error:
        load_recognizer(copy)
    message = one_line_error(error, copy / WEIGHTS, f"missing {dropped}")
    assert "(1 mismatch: " in message


def test_a_config_the_model_cannot_be_built_from_is_one_line(tmp_path):
    copy = copy_default(tmp_path)
    edit_config(copy, lambda meta: meta["model"].update(num_heads=5))  # 32 is not divisible by 5
    with pytest.raises(ValueError) as error:
        load_recognizer(copy)
    one_line_error(error, copy / CONFIG, "does not describe a model this code can build")


def copy_net(name: str, tmp_path: Path) -> tuple[Path, Callable[[Path], object]]:
    """A copy of a shipped net's weights, sidecar (and vocabulary), with its loader."""
    source, load = SHIPPED_NETS[name]
    weights = tmp_path / source.name
    for f in (source, source.with_suffix(".json"), vocab_path(source)):
        if f.is_file():
            shutil.copy(f, tmp_path / f.name)
    return weights, load


@pytest.mark.parametrize("name", sorted(SHIPPED_NETS))
def test_shipped_nets_refuse_a_corrupt_header_or_sidecar_in_one_line(name, tmp_path):
    weights, load = copy_net(name, tmp_path)
    load(weights)  # the copy loads
    sidecar = weights.with_suffix(".json")
    sidecar.write_text(sidecar.read_text()[:-5])
    with pytest.raises(ValueError) as error:
        load(weights)
    one_line_error(error, sidecar, "is not valid JSON")
    copy_net(name, tmp_path)
    weights.write_bytes(b"\xff" * 8 + weights.read_bytes()[8:])
    with pytest.raises(ValueError) as error:
        load(weights)
    one_line_error(error, weights, "is not a readable safetensors file")


def test_shipped_nets_name_the_tensors_that_do_not_fit(tmp_path):
    weights, load = copy_net("voice", tmp_path)
    state = load_file(weights)
    state["extra.weight"] = torch.zeros(2)
    save_file(state, weights)
    with pytest.raises(ValueError) as error:
        load(weights)
    message = one_line_error(error, weights, "does not fit VoiceEncoder (1 mismatch: ")
    assert "unexpected extra.weight" in message


def test_garbage_onnx_with_a_matching_manifest_is_one_line(tmp_path):
    artifact = tmp_path / "recognizer"
    artifact.mkdir()
    model = artifact / MODEL_FILE
    model.write_bytes(np.random.default_rng(0).bytes(4096))
    spec = json.loads((DEFAULT_CHECKPOINT / CONFIG).read_text())["feature_spec"]
    write_manifest(artifact, [model], artifact="recognizer", feature_spec=spec)  # the tamper check passes
    for make in (lambda: OnnxEngine(artifact), lambda: make_engine("onnx", engine_file=artifact)):
        with pytest.raises(ValueError) as error:
            make()
        one_line_error(error, model, "is not a valid ONNX model")
        assert "python -m export" in str(error.value)


def test_onnx_on_cuda_without_a_gpu_provider_fails_first(monkeypatch):
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(RuntimeError, match="no GPU provider") as error:
        make_engine("onnx", device="cuda")
    assert "\n" not in str(error.value)


def test_onnx_without_an_export_names_the_command_that_makes_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError) as error:
        make_engine("onnx")
    assert "\n" not in str(error.value)
    assert "python -m export onnx --out DIR" in str(error.value)
    assert not any(tmp_path.iterdir())  # nothing exported


def full_window(engine: Engine) -> Window:
    """A window with every step of every modality present, seeded random features."""
    spec, rng = engine.spec, np.random.default_rng(0)
    streams = {m: rng.standard_normal((spec.steps(m), spec.dim(m))).astype(np.float32) for m in ("visual", "audio")}
    text = rng.standard_normal((spec.max_words, spec.text_dim)).astype(np.float32)
    return Window(t_end=12.5, visual=streams["visual"], visual_mask=np.ones(spec.steps("visual"), bool),
                  audio=streams["audio"], audio_mask=np.ones(spec.steps("audio"), bool),
                  text=text, text_mask=np.ones(spec.max_words, bool))


@pytest.fixture(scope="module")
def torch_engine() -> TorchEngine:
    return TorchEngine("default")


class Poisoned(Engine):
    """The real engine with one output replaced by ``value`` (any back-end's ``run`` could do this)."""

    name = "poisoned"

    def __init__(self, real: Engine, output: str, value: float) -> None:
        super().__init__(real.spec)
        self.real, self.output, self.value = real, output, value

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = self.real.run(inputs)
        out[self.output][..., 0] = self.value
        return out


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("output", OUTPUTS)
def test_non_finite_outputs_are_caught_at_the_engine(torch_engine, output, value):
    window = full_window(torch_engine)
    assert Poisoned(torch_engine, output, 0.0).infer(window).t_end == window.t_end  # finite: an answer
    with pytest.raises(NonFiniteOutputError, match=output) as error:
        Poisoned(torch_engine, output, value).infer(window)
    assert "\n" not in str(error.value) and "12.50 s" in str(error.value)


def test_nan_weights_make_the_torch_engine_raise():
    engine = TorchEngine("default")
    with torch.no_grad():
        for p in engine.model.dmd.parameters():
            p.fill_(float("nan"))
    with pytest.raises(NonFiniteOutputError, match="torch engine") as error:
        engine.infer(full_window(engine))
    assert "\n" not in str(error.value)
