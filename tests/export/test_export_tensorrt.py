"""TensorRT engines: build, cache key, foreign-engine rebuild and the parity gate on the engine.

These need ``tensorrt`` and a CUDA GPU and skip without them (the development machines have
neither); the one test that runs everywhere checks that the command line says so cleanly.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.paths import ROOT


def _trt_ready() -> str | None:
    """Why TensorRT tests cannot run here, or None."""
    if importlib.util.find_spec("tensorrt") is None:
        return "tensorrt is not installed (it needs an NVIDIA GPU machine or JetPack)"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device"
    return None


needs_trt = pytest.mark.skipif(_trt_ready() is not None, reason=f"TensorRT engines: {_trt_ready()}")


@pytest.mark.skipif(_trt_ready() is None, reason="TensorRT is usable here; the refusal path does not apply")
def test_trt_command_refuses_cleanly_without_tensorrt(tmp_path):
    from export.onnx_export import export_expression  # any ONNX will do: the refusal comes first
    from realtime.nets.expression import ExpressionCNN, MirrorAveraged

    onnx_path = export_expression(MirrorAveraged(ExpressionCNN()), tmp_path / "a" / "model.onnx")
    result = subprocess.run([sys.executable, "-m", "export", "trt", "--onnx", str(onnx_path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("export: ") and ("TensorRT is not installed" in result.stderr or "CUDA" in result.stderr)


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory) -> Path:
    from export.artifacts import make_artifacts

    out = tmp_path_factory.mktemp("trt_export")
    make_artifacts("default", out, "fp32", limit=16, artifacts=("recognizer",))
    return out / "recognizer"


@pytest.mark.gpu
@needs_trt
def test_engine_builds_answers_like_torch_and_keys_the_cache(export_dir):
    import numpy as np

    from calibration.windows import read_windows
    from realtime.engines.trt_engine import TrtEngine, device_key, engine_for
    from realtime.engines.torch_engine import TorchEngine

    plan = engine_for(export_dir)
    meta = json.loads(Path(f"{plan}.json").read_text())
    assert meta["key"] == device_key()
    built = plan.stat().st_mtime_ns
    assert engine_for(plan) == plan and plan.stat().st_mtime_ns == built  # reused, not rebuilt
    engine, reference = TrtEngine(plan), TorchEngine("default")
    windows = read_windows(None, reference.spec, "heldout", 16)
    for batch in windows.batches(8):
        want, got = reference.run(batch), engine.run(batch)
        for name in want:
            assert got[name].dtype == np.float32
            np.testing.assert_allclose(got[name], want[name], atol=1e-3, err_msg=name)


@pytest.mark.gpu
@needs_trt
def test_a_foreign_engine_is_rebuilt(export_dir):
    from realtime.engines.trt_engine import device_key, engine_for

    plan = engine_for(export_dir)
    sidecar = Path(f"{plan}.json")
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "key": {**meta["key"], "gpu": "some other GPU"}}))
    rebuilt = engine_for(plan)
    assert json.loads(Path(f"{rebuilt}.json").read_text())["key"] == device_key()


@pytest.mark.gpu
@needs_trt
def test_verify_runs_the_gate_on_the_engine(export_dir):
    result = subprocess.run([sys.executable, "-m", "export", "verify", str(export_dir), "--limit", "16"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "parity passed" in result.stdout
