"""The voice front-end on real speech: incremental == offline, shapes and rates, voice activity."""

import numpy as np
import pytest
from helpers.paths import DATA
from helpers.pulse import speak

from realtime.capture.audio_source import SAMPLE_RATE, AudioChunk, FileAudioSource
from realtime.core.feature_spec import FeatureSpec
from realtime.frontends.mel import resample
from realtime.frontends.voice import (FEATURE_RATE_HZ, N_MELS, NORM_WARM_MEAN, STEP, VOICE_FEATURE_DIM, RunningNorm,
                                      VoiceFrontEnd, voice_features)

RAVDESS_CLIP = (DATA / "ravdess_speech_16k"
                / "Actor_01" / "03-01-05-02-01-01-01.flac")  # angry, strong: "Kids are talking by the door"
T0 = 1000.0


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> np.ndarray:
    """A RAVDESS clip (espeak-ng speech when ../shared is absent) padded with 1 s of zeros each side."""
    path = RAVDESS_CLIP if RAVDESS_CLIP.is_file() else speak(
        "Kids are talking by the door.", tmp_path_factory.mktemp("voice") / "speech.wav")
    with FileAudioSource(path) as source:
        samples = np.concatenate([c.samples for c in source])
    silence = np.zeros(SAMPLE_RATE, np.float32)
    return np.concatenate([silence, samples, silence])


def _stream(samples: np.ndarray, sizes: np.ndarray, front_end: VoiceFrontEnd) -> tuple[np.ndarray, np.ndarray]:
    steps, start = [], 0
    for size in sizes:
        piece = samples[start:start + size]
        steps += front_end.push(AudioChunk(T0 + start / SAMPLE_RATE, piece))
        start += len(piece)
    steps += front_end.finish()
    return np.array([t for t, _ in steps]), np.stack([f for _, f in steps])


@pytest.mark.parametrize("seed", [0, 1])
def test_streaming_equals_offline(speech, seed):
    rng = np.random.default_rng(seed)
    sizes = np.exp(rng.uniform(0, np.log(6000), size=len(speech))).astype(int)  # 1 .. 6000 samples
    sizes = sizes[np.cumsum(sizes) < len(speech) + 6000]
    times, features = _stream(speech, sizes, VoiceFrontEnd())
    ref_times, ref_features = voice_features(speech, t0=T0)
    assert features.shape == ref_features.shape
    np.testing.assert_allclose(times, ref_times, atol=1e-9)
    np.testing.assert_allclose(features, ref_features, atol=1e-5)


def test_shapes_rates_and_the_feature_spec(speech):
    times, features = voice_features(speech, t0=T0)
    n = int(np.ceil(len(speech) / STEP))
    assert features.shape == (n, VOICE_FEATURE_DIM) == (n, 323) and features.dtype == np.float32
    assert np.all(np.isfinite(features))
    np.testing.assert_allclose(np.diff(times), 1 / FEATURE_RATE_HZ, atol=1e-9)
    assert times[0] == pytest.approx(T0 + 0.0275)  # centre of the first 55 ms span
    assert n / (len(speech) / SAMPLE_RATE) == pytest.approx(FEATURE_RATE_HZ, abs=0.5)
    spec = FeatureSpec()
    assert (spec.audio_dim, spec.audio_rate_hz) == (VOICE_FEATURE_DIM, FEATURE_RATE_HZ)
    assert voice_features(np.zeros(0, np.float32))[1].shape == (0, VOICE_FEATURE_DIM)


def test_resampled_input_matches_16k_input(speech):
    doubled = resample(speech, SAMPLE_RATE, 2 * SAMPLE_RATE)
    _, at_16k = voice_features(speech)
    _, at_32k = voice_features(doubled, sample_rate=2 * SAMPLE_RATE)
    n = min(len(at_16k), len(at_32k))
    speaking = at_16k[:n, N_MELS] > 0.5
    assert np.abs(at_32k[:n, :N_MELS] - at_16k[:n, :N_MELS])[speaking].mean() < 0.05


def test_voice_activity_is_high_on_speech_and_low_on_silence(speech):
    _, features = voice_features(speech)
    vad = features[:, N_MELS]
    per_second = FEATURE_RATE_HZ
    assert vad[:per_second].max() < 0.1  # the leading second of zeros
    assert vad[-per_second // 2:].max() < 0.2  # the end of the trailing second of zeros
    middle = vad[per_second:-per_second]
    assert middle.max() > 0.9 and (middle > 0.5).mean() > 0.2


def test_timestamps_follow_a_gap_between_chunks(speech):
    """Chunks dropped upstream: the steps after the jump in chunk times move with it."""
    front_end, half = VoiceFrontEnd(), len(speech) // 2 // STEP * STEP
    before = front_end.push(AudioChunk(T0, speech[:half]))
    after = front_end.push(AudioChunk(T0 + 10.0 + half / SAMPLE_RATE, speech[half:]))
    ref_times, _ = voice_features(speech, t0=T0)
    times = np.array([t for t, _ in before + after])
    np.testing.assert_allclose(times[:len(before)], ref_times[:len(before)], atol=1e-9)
    np.testing.assert_allclose(times[len(before) + 1:], ref_times[len(before) + 1:len(times)] + 10.0, atol=1e-9)


def test_finish_resets_the_stream(speech):
    piece = speech[:SAMPLE_RATE * 2]
    front_end = VoiceFrontEnd()
    first = _stream(piece, [len(piece)], front_end)
    second = _stream(piece, [len(piece)], front_end)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_running_norm_warm_start_memory_and_adaptation():
    norm = RunningNorm(dim=3)
    np.testing.assert_allclose(norm(np.full(3, NORM_WARM_MEAN)), 0.0, atol=1e-6)
    norm.reset()
    rng = np.random.default_rng(0)
    x = rng.normal([-8.0, -13.0, -10.0], [3.0, 5.0, 2.0], size=(12_000, 3))  # log-mel-like, 8 min
    x[6000:] += 2.0  # 9 dB louder from 4 min on
    y = np.stack([norm(row) for row in x])
    for settled in (y[250:1250], y[-1000:]):  # from 10 s on, and long after the change
        np.testing.assert_allclose(settled.mean(0), 0.0, atol=0.15)
        np.testing.assert_allclose(settled.std(0), 1.0, atol=0.1)
    assert y[6000:6250, 2].mean() > 0.5  # a louder voice stays visible for a while (arousal)
