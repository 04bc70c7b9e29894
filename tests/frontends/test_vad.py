"""silero-vad through onnxruntime (realtime.frontends.vad) against the package's TorchScript model on
real speech, and the voice front-end without torch.

Measured on 24 RAVDESS clips, 13 Opus clips (TESS, nEMO, TurEV-DB, URDU) and the demo, 4239 chunks:
speech probabilities within 3.5e-5 of TorchScript's, speech / non-speech (> 0.5) identical for every
chunk. The tests allow 1e-4.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers.imports import modules_after
from helpers.paths import DATA

from realtime.capture.audio_source import SAMPLE_RATE, FileAudioSource
from realtime.core.files import sha256
from realtime.core.resources import shipped
from realtime.frontends.vad import MODEL_PATH, VAD_CHUNK, SileroVad

PROB_TOL = 1e-4
THRESHOLD = 0.5  # silero-vad's default speech threshold
DEMO = shipped("media/demo.mp4")
SPEECH = [DATA / "ravdess_speech_16k" / f"Actor_{a}" / f"03-01-{e}-02-01-01-{a}.flac"
          for a, e in (("01", "05"), ("08", "03"), ("15", "04"), ("22", "06"))]
SPEECH += [DATA / "speech" / "tess" / "audio" / "OAF" / "OAF_back_angry.opus",  # Opus: decoded at 48 kHz, resampled
           DATA / "speech" / "urdu" / "audio" / "Angry" / "SM1_F10_A010.opus"]


def _audio(path: Path) -> np.ndarray:
    with FileAudioSource(path) as source:
        return np.concatenate([c.samples for c in source])


def _chunks(x: np.ndarray) -> list[np.ndarray]:
    return [x[a:a + VAD_CHUNK] for a in range(0, len(x) - VAD_CHUNK + 1, VAD_CHUNK)]


def _onnx_probs(x: np.ndarray, vad: SileroVad) -> np.ndarray:
    vad.reset()
    return np.array([vad(c) for c in _chunks(x)])


def _torchscript_probs(x: np.ndarray) -> np.ndarray:
    torch = pytest.importorskip("torch", reason="the TorchScript model is the reference: the comparison needs torch")
    threads = torch.get_num_threads()
    from silero_vad import load_silero_vad  # importing it sets torch to one thread: restore it after

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = load_silero_vad()
    torch.set_num_threads(threads)
    with torch.inference_mode():
        return np.array([float(model(torch.from_numpy(c.copy()).unsqueeze(0), SAMPLE_RATE)) for c in _chunks(x)])


def _check(x: np.ndarray) -> None:
    ours, ref = _onnx_probs(x, SileroVad()), _torchscript_probs(x)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=PROB_TOL)
    np.testing.assert_array_equal(ours > THRESHOLD, ref > THRESHOLD)
    assert (ref > THRESHOLD).any() and (ref <= THRESHOLD).any()  # speech and pauses both tested


def test_onnx_vad_equals_torchscript_on_the_demo():
    _check(_audio(DEMO))


@pytest.mark.needs_data
@pytest.mark.parametrize("path", SPEECH, ids=lambda p: p.name)
def test_onnx_vad_equals_torchscript_on_speech(path):
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    _check(_audio(path))


def test_the_shipped_model_is_the_silero_vad_packages():
    spec = importlib.util.find_spec("silero_vad")
    if spec is None:
        pytest.skip("silero-vad (the train extra) is not installed")
    packaged = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
    assert sha256(MODEL_PATH) == sha256(packaged)


def test_streaming_state_and_reset():
    x = _audio(DEMO)[:SAMPLE_RATE * 4]
    vad = SileroVad()
    first = _onnx_probs(x, vad)
    np.testing.assert_array_equal(_onnx_probs(x, vad), first)  # reset: the same stream gives the same numbers
    vad.reset()
    vad(x[VAD_CHUNK:2 * VAD_CHUNK])  # a different history changes the next answer (state and context carried)
    assert vad(x[:VAD_CHUNK]) != first[0]
    with pytest.raises(ValueError, match="512"):
        vad(x[:100])


def test_the_voice_front_end_imports_no_torch():
    loaded = modules_after("import numpy as np\n"
                           "from realtime.frontends.voice import VoiceFrontEnd, voice_features\n"
                           "t, f = voice_features(np.random.default_rng(0).normal(0, 0.1, 48000).astype(np.float32), 48000)\n"
                           "assert f.shape == (25, 323), f.shape\n"
                           "VoiceFrontEnd()\n")
    assert [m for m in loaded if m.split(".")[0] in ("torch", "torchaudio", "silero_vad")] == []
