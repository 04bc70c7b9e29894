"""The numpy mel filters, log-mel and resampling (realtime.frontends.mel) against torchaudio, on real
speech: RAVDESS (16 kHz FLAC) and Opus clips decoded at their own 48 kHz from ../shared, and the
demo clip's sound (always). torchaudio is only the reference here: the tests skip without torch.

What equal means (measured on 24 RAVDESS clips, 13 Opus clips and the demo): the filters within
4e-6 and resampling within 3e-7 of torchaudio's. Log-mel, with torchaudio's filters, within 5e-7 of
the torch computation in float64; torch's own float32 computation (what the front-end ran) is up to
6e-4 away from that in bins far below the frame's loudest (its FFT's rounding, ~1e-7 of the frame's
power), so against it the bound is its own deviation plus 1e-5. The front-end's normalised features
differ from the torchaudio front-end's by at most 5e-5 (the filters' float32 rounding differs by an
ulp in a few weights, which moves the log of the narrow low bins).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from helpers.paths import DATA

from realtime.capture.audio_source import SAMPLE_RATE, FileAudioSource
from realtime.core.resources import shipped
from realtime.frontends import voice
from realtime.frontends.mel import log_mel, mel_filters, resample

torch = pytest.importorskip("torch", reason="torchaudio is the reference: the comparison needs torch")
torchaudio = pytest.importorskip("torchaudio")

TOL = 1e-5
FEATURE_TOL = 1e-4  # the front-end's normalised log-mel features (measured at most 4.9e-5)
RAVDESS = [DATA / "ravdess_speech_16k" / f"Actor_{a}" / f"03-01-{e}-02-01-01-{a}.flac"
           for a, e in (("01", "05"), ("08", "03"), ("15", "04"), ("22", "06"))]
OPUS = [DATA / "speech" / "tess" / "audio" / "OAF" / "OAF_back_angry.opus",
        DATA / "speech" / "urdu" / "audio" / "Angry" / "SM1_F10_A010.opus"]
DEMO = shipped("media/demo.mp4")


def _file_audio(path: Path) -> np.ndarray:
    """The project's own reader: mono float32 at 16 kHz."""
    with FileAudioSource(path) as source:
        return np.concatenate([c.samples for c in source])


def _native_audio(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 at the file's own rate (48 kHz for Opus), decoded by PyAV."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=stream.rate)
        parts = [f.to_ndarray()[0] for frame in container.decode(stream) for f in resampler.resample(frame)]
    return np.concatenate(parts), stream.rate


def _torch_log_mel(samples: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    """The torchaudio front-end's log-mel (before this module), in ``dtype``."""
    filters = torchaudio.functional.melscale_fbanks(voice.N_FFT // 2 + 1, voice.F_MIN, voice.F_MAX, voice.N_MELS,
                                                    SAMPLE_RATE).to(dtype)
    x = torch.from_numpy(np.ascontiguousarray(samples, np.float32)).to(dtype)
    frames = x.unfold(0, voice.WINDOW, voice.HOP) * torch.hann_window(voice.WINDOW, periodic=False, dtype=dtype)
    power = torch.fft.rfft(frames, n=voice.N_FFT).abs().square()
    return torch.log((power @ filters).clamp_min(voice.MEL_FLOOR)).numpy()


def _torch_resample(samples: np.ndarray, orig: int, new: int) -> np.ndarray:
    return torchaudio.functional.resample(torch.from_numpy(np.ascontiguousarray(samples)), orig, new).numpy()


def test_mel_filters_equal_torchaudio():
    for n_freqs, f_min, f_max, n_mels, rate in ((257, 20.0, 8000.0, 64, 16000), (201, 0.0, 8000.0, 80, 16000),
                                                (513, 30.0, 12000.0, 40, 24000)):
        ref = torchaudio.functional.melscale_fbanks(n_freqs, f_min, f_max, n_mels, rate).numpy()
        ours = mel_filters(n_freqs, f_min, f_max, n_mels, rate)
        assert ours.shape == ref.shape and ours.dtype == np.float32
        np.testing.assert_allclose(ours, ref, rtol=0, atol=TOL)
    np.testing.assert_allclose(voice._MEL_FILTERS, torchaudio.functional.melscale_fbanks(
        257, voice.F_MIN, voice.F_MAX, voice.N_MELS, SAMPLE_RATE).numpy(), rtol=0, atol=TOL)


def _check_log_mel(samples: np.ndarray) -> None:
    ref32, ref64 = _torch_log_mel(samples, torch.float32), _torch_log_mel(samples, torch.float64)
    torch_filters = torchaudio.functional.melscale_fbanks(257, voice.F_MIN, voice.F_MAX, voice.N_MELS,
                                                          SAMPLE_RATE).numpy()
    ours = log_mel(samples, window=voice.WINDOW, hop=voice.HOP, n_fft=voice.N_FFT, filters=torch_filters,
                   floor=voice.MEL_FLOOR)
    assert ours.shape == ref32.shape and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref64, rtol=0, atol=TOL)  # the same arithmetic, exactly rounded
    assert np.all(np.abs(ours - ref32) <= np.abs(ref64 - ref32) + TOL)  # no further than torch float32's own error
    front_end = voice._log_mel(samples)  # with the front-end's own filters (an ulp apart in a few weights)
    assert np.all(np.abs(front_end - ref32) <= np.abs(ref64 - ref32) + 1e-4)


def test_log_mel_equals_torchaudio_on_the_demo():
    _check_log_mel(_file_audio(DEMO))


@pytest.mark.needs_data("ravdess_speech_16k")
def test_log_mel_equals_torchaudio_on_ravdess():
    for path in RAVDESS:
        _check_log_mel(_file_audio(path))


@pytest.mark.needs_data("speech")
@pytest.mark.parametrize("path", OPUS, ids=lambda p: p.name)
def test_resample_48k_opus_equals_torchaudio(path):
    x, rate = _native_audio(path)
    assert rate == 48_000
    ours = resample(x, rate, SAMPLE_RATE)
    ref = _torch_resample(x, rate, SAMPLE_RATE)
    assert ours.shape == ref.shape and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=0, atol=TOL)


@pytest.mark.parametrize("rate", [48_000, 44_100, 8_000])
def test_resample_equals_torchaudio_on_the_demo(rate):
    x = _file_audio(DEMO)
    up = resample(x, SAMPLE_RATE, rate)
    np.testing.assert_allclose(up, _torch_resample(x, SAMPLE_RATE, rate), rtol=0, atol=TOL)
    np.testing.assert_allclose(resample(up, rate, SAMPLE_RATE), _torch_resample(up, rate, SAMPLE_RATE),
                               rtol=0, atol=TOL)
    np.testing.assert_array_equal(resample(x, SAMPLE_RATE, SAMPLE_RATE), x)


def _torchaudio_features(monkeypatch: pytest.MonkeyPatch, x: np.ndarray, rate: int) -> np.ndarray:
    """The front-end's features with torchaudio's log-mel and resampling in place of the numpy ones."""
    with monkeypatch.context() as m:
        m.setattr(voice, "_log_mel", lambda s: _torch_log_mel(s, torch.float32))
        m.setattr(voice, "resample", _torch_resample)
        return voice.voice_features(x, rate)[1]


def _check_features(monkeypatch: pytest.MonkeyPatch, x: np.ndarray, rate: int) -> None:
    ours = voice.voice_features(x, rate)[1]
    ref = _torchaudio_features(monkeypatch, x, rate)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours[:, :voice.N_MELS], ref[:, :voice.N_MELS], rtol=0, atol=FEATURE_TOL)
    np.testing.assert_allclose(ours[:, voice.N_MELS], ref[:, voice.N_MELS], rtol=0, atol=FEATURE_TOL)  # VAD input


@pytest.mark.parametrize("rate", [SAMPLE_RATE, 48_000])
def test_front_end_features_equal_torchaudio_on_the_demo(monkeypatch, rate):
    x = _file_audio(DEMO)
    x = x if rate == SAMPLE_RATE else _torch_resample(x, SAMPLE_RATE, rate)
    _check_features(monkeypatch, x, rate)


@pytest.mark.needs_data("speech")
def test_front_end_features_equal_torchaudio_on_48k_opus(monkeypatch):
    for path in OPUS:
        _check_features(monkeypatch, *_native_audio(path))
