"""The pitch tracker on tones, noise and real voices; the voice front-end's pitch channels."""

import numpy as np
import pytest
from helpers.paths import DATA

from realtime.capture.audio_source import SAMPLE_RATE, FileAudioSource
from realtime.core.feature_spec import N_MELS
from realtime.frontends.pitch import F0_MIN, semitones, step_pitch
from realtime.frontends.voice import STEP, STEP_SPAN, VoiceNorm, voice_features

RAVDESS = DATA / "ravdess_speech_16k"


def harmonic_tone(f0: float, n: int = STEP_SPAN, phase: float = 0.3) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    return 0.3 * (np.sin(2 * np.pi * f0 * t + phase) + 0.6 * np.sin(4 * np.pi * f0 * t)
                  + 0.3 * np.sin(6 * np.pi * f0 * t + 1))


def clip(name: str) -> np.ndarray:
    with FileAudioSource(RAVDESS / name) as source:
        return np.concatenate([c.samples for c in source])


@pytest.mark.parametrize("f0", [75.0, 98.0, 150.0, 233.0, 330.0, 480.0])
def test_tones_across_the_speaking_range(f0):
    pitch, periodicity = step_pitch(harmonic_tone(f0)[None], SAMPLE_RATE)
    assert pitch[0] == pytest.approx(semitones(f0), abs=0.1)  # within a tenth of a semitone
    assert periodicity[0] > 0.95


def test_noise_and_silence_are_unvoiced():
    rng = np.random.default_rng(0)
    frames = np.concatenate([0.1 * rng.normal(size=(20, STEP_SPAN)), np.zeros((3, STEP_SPAN))])
    pitch, periodicity = step_pitch(frames, SAMPLE_RATE)
    assert np.isnan(pitch).all()
    assert periodicity[:20].max() < 0.5 and (periodicity[20:] == 0).all()


def test_too_short_frames_are_refused():
    with pytest.raises(ValueError, match="too short"):
        step_pitch(np.zeros((1, int(SAMPLE_RATE / F0_MIN) + 10)), SAMPLE_RATE)


@pytest.mark.needs_data
def test_a_female_voice_is_higher_than_a_male_voice():
    """RAVDESS actor 1 (male) and actor 2 (female), neutral: median pitch in the usual ranges."""
    medians = {}
    for name in ("Actor_01/03-01-01-01-01-01-01.flac", "Actor_02/03-01-01-01-01-01-02.flac"):
        x = clip(name)
        frames = np.lib.stride_tricks.sliding_window_view(x, STEP_SPAN)[::STEP]
        pitch, _ = step_pitch(frames, SAMPLE_RATE)
        assert 0.15 < np.isfinite(pitch).mean() < 0.8  # speech is partly voiced
        medians[name[:8]] = 27.5 * 2 ** (np.nanmedian(pitch) / 12)
    assert 80 < medians["Actor_01"] < 160 and 160 < medians["Actor_02"] < 300


def test_pitch_channels_of_the_voice_front_end():
    """A glide from 120 to 240 Hz: normalised pitch rises, periodicity is high, silence gives zeros."""
    seconds = 3.0
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f = 120 * 2 ** (t / seconds)
    tone = (0.3 * np.sin(2 * np.pi * np.cumsum(f) / SAMPLE_RATE)).astype(np.float32)
    x = np.concatenate([np.zeros(SAMPLE_RATE, np.float32), tone])
    _, features = voice_features(x)
    pitch, periodicity = features[:, N_MELS + 1], features[:, N_MELS + 2]
    silent, voiced = slice(0, 20), slice(30, len(features) - 2)
    assert (pitch[silent] == 0).all() and (periodicity[silent] == 0).all()
    assert periodicity[voiced].min() > 0.9
    assert np.corrcoef(np.arange(len(pitch[voiced])), pitch[voiced])[0, 1] > 0.95


def test_a_session_normalises_pitch_to_the_speaker():
    """A low voice's pitch is negative alone (the warm start sits higher) and near zero once heard."""
    low = harmonic_tone(100.0, SAMPLE_RATE * 2).astype(np.float32)
    alone = voice_features(low)[1][:, N_MELS + 1]
    session = VoiceNorm()
    for _ in range(30):  # a minute of the same voice
        voice_features(low, norm=session)
    heard = voice_features(low, norm=session)[1][:, N_MELS + 1]
    voiced = slice(5, -5)
    assert alone[voiced].mean() < -1.0
    assert abs(heard[voiced].mean()) < 0.3
