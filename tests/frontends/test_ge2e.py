"""The pretrained GE2E speaker encoder's states (realtime.nets.ge2e, realtime.frontends.ge2e) and their
conversion (realtime.offline.ge2e), on the demo clip's real speech.

The numpy LSTM and mel filters are checked against PyTorch and torchaudio (skipped without torch); the
level normalisation is checked by hearing the same speech 20 dB quieter, the utterance onsets by
hearing one utterance alone and after another.
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
from realtime.core.feature_spec import GE2E_START, N_MELS as VOICE_MELS
from realtime.frontends.ge2e import ONSET_SILENCE_STEPS, Ge2eTrack, SpeechLevel
from realtime.frontends.voice import FRAMES_PER_STEP, HOP, STEP, WINDOW, VoiceNorm, voice_features
from realtime.nets.ge2e import HIDDEN, N_MELS, TARGET_DBFS, WEIGHTS_PATH, Ge2eLstm, frame_power, mel_filters, mel_power


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """Four seconds of the demo clip's voice (16 kHz mono), from its first speech on."""
    with FileAudioSource(shipped("media/demo.mp4")) as source:
        samples = np.concatenate([c.samples for c in source])
    speaking = np.flatnonzero(voice_features(samples)[1][:, VOICE_MELS] >= 0.5)
    assert len(speaking) > 25, "the demo clip should hold speech"
    start = int(speaking[0]) * STEP
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


def ge2e_columns(samples: np.ndarray, norm: VoiceNorm | None = None) -> np.ndarray:
    return voice_features(samples, norm=norm)[1][:, GE2E_START:]


def test_the_level_is_measured_on_speech_so_a_quieter_voice_gives_the_same_states(speech):
    loud, quiet = ge2e_columns(speech), ge2e_columns(speech * 0.1)
    assert loud.shape == quiet.shape == (100, HIDDEN)
    assert np.abs(loud[13:] - quiet[13:]).max() < 0.15  # after the first half second of speech (the VAD differs a little)
    raw = Ge2eLstm()(mel_power(np.pad(speech * 0.1, (0, 240)), 1.0)).reshape(100, 4, HIDDEN).mean(1)  # without the level
    assert np.abs(raw[13:] - quiet[13:]).max() > 0.3  # the network hears another voice


def test_the_session_keeps_the_level_from_utterance_to_utterance(speech):
    def gain_after(samples: np.ndarray) -> tuple[float, VoiceNorm]:
        session = VoiceNorm()
        ge2e_columns(samples, session)
        return float(session.level.gains(np.ones(1), np.zeros(1, bool))[0]), session  # a silent frame's

    loud, _ = gain_after(speech)
    quiet, session = gain_after(speech * 0.1)
    assert 20 * np.log10(quiet / loud) == pytest.approx(20, abs=1.5)  # the next utterance starts at its level
    session.reset()
    assert session.level.gains(np.ones(1), np.zeros(1, bool))[0] == 1.0


def test_an_utterance_after_a_pause_starts_from_a_fresh_state(speech):
    first, second = speech[32000:], speech[:32000]  # whole steps each
    session = VoiceNorm()
    ge2e_columns(first, session)
    heard_next = ge2e_columns(second, session)  # its own stream, at the level the first left
    for gap_steps, fresh in ((ONSET_SILENCE_STEPS + 2, True), (ONSET_SILENCE_STEPS // 2, False)):
        both = ge2e_columns(np.concatenate([first, np.zeros(gap_steps * STEP, np.float32), second]))
        close = np.abs(both[-len(heard_next):][:25] - heard_next[:25]).max() < 0.05
        assert close == fresh, gap_steps


def test_speech_level_brings_the_speech_frames_to_the_target_level():
    power = np.array([1e-8, 1e-4, 1e-2, 1e-4, 1e-2])
    speech = np.array([False, True, True, False, True])
    gain = SpeechLevel().gains(power, speech)
    assert gain[0] == 1.0  # before any speech
    assert 10 * np.log10(power[1] * gain[1] ** 2) == pytest.approx(TARGET_DBFS)
    mean_db = 10 * np.log10((1e-4 + 1e-2 + 1e-2) / 3)  # a mean of power: the quiet frame hardly counts
    assert 20 * np.log10(gain[4]) == pytest.approx(TARGET_DBFS - mean_db)
    assert len(frame_power(np.zeros(399))) == 0 and mel_power(np.zeros(399), 1.0).shape == (0, N_MELS)


def test_a_track_refuses_frames_other_than_the_networks():
    with pytest.raises(ValueError, match="GE2E frames are 400 samples every 160"):
        Ge2eTrack(FRAMES_PER_STEP, WINDOW + 112, HOP)


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
