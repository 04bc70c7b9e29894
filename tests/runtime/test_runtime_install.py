"""The runtime install (``scripts/venv.sh runtime``: the package and its base dependencies, no PyTorch)
runs the live app from an ONNX export made where PyTorch is, and answers as the PyTorch app does; it
is at most 600 MB on disk, and so is its window variant (``--window``), whose overlay opens under Xvfb.

The venv is ``.venv-runtime`` at the repository root (ignored by git), kept between runs: its
dependencies install once (from pip's cache after the main install), the package every time. The
window variant is made in a temporary folder and removed after the module's tests."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers.display import xvfb
from helpers.mainrun import MAIN, inference_events, read_events
from helpers.paths import ROOT
from helpers.wheel import outside_the_checkout, run

from realtime.core.tokens import tokenize
from realtime.nets.text_encoder import ShippedTextModel

pytestmark = pytest.mark.slow

VENV = ROOT / ".venv-runtime"
HEAVY = ("torch", "torchaudio", "silero_vad", "dmd_lite", "export", "calibration")
MAX_PROB_DIFF = 1e-3
# Run the app from the installed package as ``python -m realtime`` does, then say which of HEAVY it imported.
RUNNER = ("import json, runpy, sys\n"
          "sys.argv = ['realtime', *sys.argv[1:]]\n"
          "try:\n"
          "    runpy.run_module('realtime', run_name='__main__', alter_sys=True)\n"
          "except SystemExit as e:\n"
          "    code = e.code\n"
          f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
          "print('HEAVY ' + json.dumps(heavy))\n"
          "sys.exit(code)\n")
MAX_MB = 600  # issue 19: the runtime install on disk, headless or with a window
UTTERANCES = ["I can't believe you did that to me!", "thank you so much this is wonderful", "what",
              "Oh wow, really? You got the job?", "we lost everything in the fire " * 8]


@pytest.fixture(scope="module")
def runtime() -> Path:
    """The runtime venv's python, with this checkout's package installed."""
    made = run(["bash", str(ROOT / "scripts" / "venv.sh"), "runtime", str(VENV)], timeout=1800)
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    return VENV / "bin" / "python"


@pytest.fixture(scope="module")
def window_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A runtime venv made with ``--window`` (the window build of OpenCV): its python."""
    venv = tmp_path_factory.mktemp("window") / "venv"
    made = run(["bash", str(ROOT / "scripts" / "venv.sh"), "runtime", "--window", str(venv)], timeout=1800)
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    yield venv / "bin" / "python"
    shutil.rmtree(venv, ignore_errors=True)  # ~590 MB


def megabytes(venv: Path) -> float:
    """The venv's files (links not followed, as bench.runtime's size_mib counts them), in MB."""
    return sum(p.lstat().st_size for p in venv.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


@pytest.fixture
def display() -> Iterator[str]:
    """A private Xvfb (it picks a free display number with -displayfd): its DISPLAY."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb not installed (scripts/setup.sh installs it as root)")
    with xvfb() as number:
        yield number


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ONNX export (recognizer, expression CNN, text model), made by the PyTorch install."""
    out = tmp_path_factory.mktemp("export") / "onnx"
    made = run([sys.executable, "-m", "export", "onnx", "--limit", "16", "--out", str(out)], cwd=ROOT)
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    return out


def test_the_runtime_has_no_torch(runtime: Path) -> None:
    found = run([str(runtime), "-c", "import importlib.util as u; print([m for m in ('torch', 'torchaudio', "
                  "'silero_vad') if u.find_spec(m)])"])
    assert found.returncode == 0 and found.stdout.strip() == "[]", found.stdout + found.stderr


def test_the_runtime_is_at_most_600_mb_without_pytorch_weights(runtime: Path) -> None:
    venv = runtime.parents[1]
    # pruned: only PyTorch code reads them, but for the GE2E network's, which the voice front-end runs in numpy
    assert sorted(p.name for p in venv.rglob("*.safetensors")) == ["ge2e.safetensors"]
    assert megabytes(venv) <= MAX_MB


def test_the_window_runtime_is_at_most_600_mb_and_shows_the_overlay(window_runtime: Path, export: Path, display: str,
                                                                    tmp_path: Path) -> None:
    assert megabytes(window_runtime.parents[1]) <= MAX_MB
    outside, env = outside_the_checkout(tmp_path)
    events = tmp_path / "events.jsonl"
    ran = run([str(window_runtime), "-m", "realtime", "--demo", "--no-asr", "--max-seconds", "2", "--log-level",
               "WARNING", "--backend", "onnx", "--engine", str(export), "--events", str(events)], cwd=outside,
              env={**env, "DISPLAY": display})
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    assert ran.stdout.startswith("demo: demo.mp4 (window)"), ran.stdout
    log = read_events(events)
    assert log[-1]["type"] == "end" and log[-1]["reason"] == "max-seconds" and inference_events(log)


def test_demo_on_onnx_answers_as_the_torch_app(runtime: Path, export: Path, tmp_path: Path) -> None:
    outside, env = outside_the_checkout(tmp_path)
    args = ["--demo", "--headless", "--as-fast-as-possible", "--no-asr", "--log-level", "WARNING"]
    torch_run = run([*MAIN, *args, "--events", str(tmp_path / "torch.jsonl")], cwd=ROOT)
    assert torch_run.returncode == 0, torch_run.stderr[-2000:]
    onnx_run = run([str(runtime), "-c", RUNNER, *args, "--backend", "onnx", "--engine", str(export),
                     "--events", str(tmp_path / "onnx.jsonl")], cwd=outside, env=env)
    assert onnx_run.returncode == 0, onnx_run.stdout[-2000:] + onnx_run.stderr[-2000:]
    heavy = json.loads(onnx_run.stdout.split("HEAVY ", 1)[1].splitlines()[0])
    assert heavy == [], heavy

    expected = inference_events(read_events(tmp_path / "torch.jsonl"))
    got = inference_events(read_events(tmp_path / "onnx.jsonl"))
    assert len(got) == len(expected) > 10
    for e, g in zip(expected, got):
        assert g["t_end"] == e["t_end"] and g["label"] == e["label"], (e, g)
        diff = max(abs(g["probabilities"][k] - p) for k, p in e["probabilities"].items())
        assert diff <= MAX_PROB_DIFF, (e["t_end"], diff)
    assert any(e["present"]["audio"] and e["present"]["visual"] for e in got)


def test_text_model_on_onnx_gives_the_torch_features(runtime: Path, export: Path, tmp_path: Path) -> None:
    outside, env = outside_the_checkout(tmp_path)
    code = ("import json, sys, numpy as np\n"
            "from realtime.core.tokens import tokenize\n"
            "from realtime.engines.onnx_engine import OnnxTextModel\n"
            "model = OnnxTextModel(sys.argv[1])\n"
            "rows = [model(tokenize(u)) for u in json.loads(sys.argv[2])]\n"
            "np.savez(sys.argv[3], *rows)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))\n")
    out = tmp_path / "text.npz"
    ran = run([str(runtime), "-c", code, str(export), json.dumps(UTTERANCES), str(out)], cwd=outside, env=env)
    assert ran.returncode == 0 and ran.stdout.strip() == "[]", ran.stdout + ran.stderr
    shipped = ShippedTextModel()
    with np.load(out) as rows:
        for i, u in enumerate(UTTERANCES):
            np.testing.assert_allclose(rows[f"arr_{i}"], shipped(tokenize(u)), atol=1e-5, rtol=0)


@pytest.mark.parametrize("backend", [["torch"], ["fused", "--device", "cuda"]], ids=["torch", "fused"])
def test_a_pytorch_backend_on_the_runtime_is_a_one_line_error(runtime: Path, tmp_path: Path, backend: list[str]) -> None:
    outside, env = outside_the_checkout(tmp_path)
    ran = run([str(runtime), "-m", "realtime", "--demo", "--headless", "--no-asr", "--backend", *backend],
               cwd=outside, env=env)
    assert ran.returncode == 2
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs PyTorch" in lines[0] and "--backend onnx" in lines[0], ran.stderr


def test_an_export_without_a_front_end_model_turns_that_modality_off(runtime: Path, export: Path,
                                                                     tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(export, partial)
    shutil.rmtree(partial / "expression")  # the runtime has no PyTorch CNN to fall back on
    outside, env = outside_the_checkout(tmp_path)
    ran = run([str(runtime), "-m", "realtime", "--demo", "--headless", "--no-asr", "--as-fast-as-possible",
               "--backend", "onnx", "--engine", str(partial), "--events", str(tmp_path / "e.jsonl")], cwd=outside,
              env=env)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    assert "visual off: " in ran.stderr and "has no PyTorch" in ran.stderr and "re-export" in ran.stderr, ran.stderr
    log = read_events(tmp_path / "e.jsonl")
    assert inference_events(log) and not any(e["present"]["visual"] for e in inference_events(log))
