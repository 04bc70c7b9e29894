"""The pretrained GE2E speaker encoder's states (realtime.nets.ge2e, realtime.frontends.ge2e) and their
conversion (realtime.offline.ge2e), on the demo clip's real speech.

The numpy LSTM and mel filters are checked against PyTorch and torchaudio (skipped without torch); the
level normalisation is checked by hearing the same speech 20 dB quieter.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers.paths import ROOT

from realtime.capture.audio_source import FileAudioSource
from realtime.core.resources import shipped
from realtime.frontends.ge2e import frame_speech, running_gain, utterance_states
from realtime.frontends.vad import SileroVad
from realtime.nets.ge2e import HIDDEN, N_MELS, TARGET_DBFS, WEIGHTS_PATH, Ge2eLstm, frame_power, mel_filters, mel_power


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """Four seconds of the demo clip's voice (16 kHz mono), from its first speech on."""
    with FileAudioSource(shipped("media/demo.mp4")) as source:
        samples = np.concatenate([c.samples for c in source])
    speaking = np.flatnonzero(frame_speech(samples, SileroVad()))
    assert len(speaking) > 100, "the demo clip should hold speech"
    start = int(speaking[0]) * 160
    return samples[start:start + 64000]


def test_states_equal_pytorchs_lstm_on_the_shipped_weights(speech):
    torch = pytest.importorskip("torch", reason="PyTorch's LSTM is the reference")
    from safetensors.torch import load_file

    lstm = torch.nn.LSTM(N_MELS, HIDDEN, 2, batch_first=True)
    lstm.load_state_dict(load_file(WEIGHTS_PATH))
    mels = mel_power(speech, 4.0)
    with torch.inference_mode():
        want = lstm(torch.from_numpy(mels)[None])[0][0].numpy()
    got = Ge2eLstm()(mels)
    assert got.shape == (len(mels), HIDDEN)
    assert np.abs(got - want).max() < 1e-4
    assert got.std() > 0.05  # the states move with the speech


def test_mel_filters_are_torchaudios_slaney_filters():
    torchaudio = pytest.importorskip("torchaudio", reason="torchaudio is the reference")
    want = torchaudio.functional.melscale_fbanks(201, 0.0, 8000.0, N_MELS, 16000, norm="slaney",
                                                 mel_scale="slaney").numpy()
    assert np.abs(mel_filters() - want).max() < 1e-6


def test_the_level_is_measured_on_speech_so_a_quieter_voice_gives_the_same_states(speech):
    lstm, vad = Ge2eLstm(), SileroVad()
    loud, quiet = utterance_states(speech, lstm, vad), utterance_states(speech * 0.1, lstm, vad)
    assert loud.shape == quiet.shape
    assert np.abs(loud[50:] - quiet[50:]).max() < 0.1  # after the first half second of speech
    raw = lstm(mel_power(speech * 0.1, 1.0))  # without the level: the network hears another voice
    assert np.abs(raw[50:] - quiet[50:]).max() > 0.3


def test_running_gain_brings_the_speech_frames_to_the_target_level():
    power = np.array([1e-8, 1e-4, 1e-2, 1e-4, 1e-2])
    speech = np.array([False, True, True, False, True])
    gain = running_gain(power, speech)
    assert gain[0] == 1.0  # before any speech
    assert 10 * np.log10(power[1] * gain[1] ** 2) == pytest.approx(TARGET_DBFS)
    mean_db = (-40 - 20 - 20) / 3
    assert 20 * np.log10(gain[4]) == pytest.approx(TARGET_DBFS - mean_db)
    assert len(frame_power(np.zeros(399))) == 0 and mel_power(np.zeros(399), 1.0).shape == (0, N_MELS)


def test_conversion_writes_weights_that_load_and_refuses_another_file(tmp_path):
    torch = pytest.importorskip("torch", reason="the conversion reads a PyTorch file")
    from realtime.offline.ge2e import convert

    torch.manual_seed(0)
    reference = torch.nn.LSTM(N_MELS, HIDDEN, 3, batch_first=True)
    source = tmp_path / "pretrained.pt"
    torch.save({"model_state": {f"lstm.{k}": v for k, v in reference.state_dict().items()}}, source)
    out = tmp_path / "ge2e.safetensors"
    convert(source, out)
    first_two = torch.nn.LSTM(N_MELS, HIDDEN, 2, batch_first=True)
    first_two.load_state_dict({k: v for k, v in reference.state_dict().items() if not k.endswith("_l2")})
    mels = np.random.default_rng(0).gamma(1.0, 1.0, (30, N_MELS)).astype(np.float32)
    with torch.inference_mode():
        want = first_two(torch.from_numpy(mels)[None])[0][0].numpy()
    assert np.abs(Ge2eLstm(out)(mels) - want).max() < 1e-4

    other = tmp_path / "other.pt"
    torch.save({"model_state": {"linear.weight": torch.zeros(2, 2)}}, other)
    with pytest.raises(ValueError, match="lstm.weight_ih_l0 is missing"):
        convert(other, tmp_path / "x.safetensors")
    for junk in (b"", b"not a PyTorch file"):
        (tmp_path / "junk.pt").write_bytes(junk)
        with pytest.raises(ValueError, match="is not Resemblyzer's pretrained.pt"):
            convert(tmp_path / "junk.pt", tmp_path / "x.safetensors")
    sidecar = out.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "layers": 3}))  # made for other code
    with pytest.raises(ValueError, match="layers is 3, this code needs 2"):
        Ge2eLstm(out)
    sidecar.write_text(json.dumps(meta))
    out.write_bytes(out.read_bytes()[:-8] + b"\0" * 8)  # damaged after it was written
    with pytest.raises(ValueError, match="does not match the sha256"):
        Ge2eLstm(out)


def test_convert_without_its_source_exits_2_with_one_line(tmp_path):
    pytest.importorskip("torch", reason="the conversion reads a PyTorch file")
    run = subprocess.run([sys.executable, "-m", "realtime.ge2e", "convert", "--source", str(tmp_path / "no.pt"),
                          "--out", str(tmp_path / "ge2e.safetensors")], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and "pretrained.pt" in run.stderr


def test_missing_weights_say_how_to_make_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m realtime.ge2e convert"):
        Ge2eLstm(tmp_path / "ge2e.safetensors")
