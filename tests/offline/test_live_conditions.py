"""Live conditions put on a clip before the voice front-end: each effect measured on real or synthetic
audio, the draws reproducible, and ``realtime.extract --live-conditions`` end to end on RAVDESS clips."""

import json

import numpy as np
import pytest
from helpers.ravdess import copy_sessions, ravdess_samples

from realtime.capture.audio_source import SAMPLE_RATE
from realtime.extract import extract, load_shard
from realtime.offline.live_conditions import (CODECS, NOISES, Conditions, apply_conditions, clip_rng,
                                              draw_conditions, noise, room_response, speech_power, through_codec)


def tone(hz: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return 0.3 * np.sin(2 * np.pi * hz * t)


def peak_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)[spectrum.argmax()])


def test_a_clips_draw_depends_on_the_seed_and_its_name_only():
    assert draw_conditions(clip_rng(3, "a.flac")) == draw_conditions(clip_rng(3, "a.flac"))
    draws = {draw_conditions(clip_rng(3, f"clip{i}.flac")) for i in range(40)}
    assert len(draws) == 40 and draw_conditions(clip_rng(4, "a.flac")) != draw_conditions(clip_rng(3, "a.flac"))
    assert {d.codec for d in draws} > {""} and {d.noise for d in draws} > {""}  # some clips get each, some not


def test_noise_is_added_at_the_drawn_snr_against_the_speech():
    x = np.concatenate([np.zeros(8000), tone(220.0), np.zeros(8000)])  # speech between two pauses
    for kind in NOISES:
        y = apply_conditions(x, Conditions(noise=kind, snr_db=10.0), np.random.default_rng(0)).astype(np.float64)
        snr = 10 * np.log10(speech_power(x) / np.mean((y - x) ** 2))
        assert snr == pytest.approx(10.0, abs=0.05), kind  # the pauses do not count as speech


def test_noise_colours_and_hum_have_their_spectra():
    rng = np.random.default_rng(1)
    f = np.fft.rfftfreq(SAMPLE_RATE, 1 / SAMPLE_RATE)

    def low_share(kind: str) -> float:  # power below 500 Hz over all
        p = np.abs(np.fft.rfft(noise(kind, SAMPLE_RATE, rng))) ** 2
        return float(p[f < 500].sum() / p.sum())

    assert low_share("white") < 0.1 < low_share("pink") < low_share("brown")
    assert peak_hz(noise("hum", SAMPLE_RATE, rng)) in (50.0, 60.0)


def test_the_room_decays_by_60_db_over_its_rt60():
    for rt60 in (0.3, 0.8):
        h = room_response(rt60, np.random.default_rng(2))
        energy = np.cumsum(h[::-1] ** 2)[::-1]  # Schroeder's backward integral
        db = 10 * np.log10(energy / energy[0])
        t = np.arange(len(h)) / SAMPLE_RATE
        fit = (db > -25) & (db < -5)
        slope = np.polyfit(t[fit], db[fit], 1)[0]  # dB per second
        assert -60 / slope == pytest.approx(rt60, rel=0.15)


def test_speed_moves_rate_and_pitch_together():
    x = tone(200.0)
    y = apply_conditions(x, Conditions(speed=1.1), np.random.default_rng(0))
    assert len(y) == round(len(x) / 1.1) and peak_hz(y) == pytest.approx(220.0, abs=2.0)


def test_gain_is_clipped_as_a_converter_does():
    y = apply_conditions(tone(300.0), Conditions(gain_db=12.0), np.random.default_rng(0))
    assert y.dtype == np.float32 and np.abs(y).max() == 1.0


@pytest.mark.needs_data
def test_each_codec_keeps_the_speech_and_the_phone_codecs_lose_its_top_band():
    x = ravdess_samples("Actor_01/03-01-05-01-01-01-01.flac").astype(np.float64)
    f = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)

    def top_db(y: np.ndarray) -> float:  # power above 4.2 kHz against the whole, dB
        p = np.abs(np.fft.rfft(y)) ** 2
        return float(10 * np.log10(p[f > 4200].sum() / p.sum()))

    for codec in CODECS:
        y = through_codec(x, codec, 12000 if codec == "opus" else 32000)
        assert len(y) == len(x)
        best = max(range(-400, 400), key=lambda lag: float(np.dot(np.roll(y, -lag), x)))
        assert np.corrcoef(x, np.roll(y, -best))[0, 1] > 0.75, codec  # the same speech, a codec's delay apart
        if codec in ("amr", "mulaw"):  # 8 kHz: nothing above 4 kHz is left
            assert top_db(y) < top_db(x) - 15, codec


@pytest.mark.needs_data
def test_extraction_under_live_conditions_records_them_and_refuses_another_seed(tmp_path):
    src, clean, live = tmp_path / "in", tmp_path / "clean", tmp_path / "live"
    copy_sessions(src)
    extract("audio", src, clean, workers=1)
    summary = extract("audio", src, live, workers=2, live_seed=5)
    assert summary["processed"] == 6 and summary["failed"] == 0
    records = [json.loads(line) for line in (live / "index.jsonl").read_text().splitlines()]
    for r in records:
        drawn = draw_conditions(clip_rng(5, r["source"]))
        assert r["live_conditions"] == json.loads(json.dumps(drawn.__dict__))
    heard = {r["source"]: s["audio"][1] for shard in (live / "shards").glob("**/*.npz") for r, s in load_shard(shard)}
    as_is = {r["source"]: s["audio"][1] for shard in (clean / "shards").glob("**/*.npz") for r, s in load_shard(shard)}
    assert heard.keys() == as_is.keys()
    changed = [x.shape != as_is[s].shape or np.abs(x - as_is[s]).max() > 0.1 for s, x in heard.items()]
    assert sum(changed) >= len(heard) - 1  # a session's first clip may have had a level change alone
    with pytest.raises(ValueError, match="live conditions of seed 5: pass --live-conditions 5"):
        extract("audio", src, live, workers=1, live_seed=6)
    with pytest.raises(ValueError, match="clean voices: drop --live-conditions"):
        extract("audio", src, clean, workers=1, live_seed=5)
    assert extract("audio", src, live, workers=1, live_seed=5)["skipped_existing"] == 6
