"""Audio sources on real files (flac, wav, mp4 made with espeak-ng and PyAV) and a real microphone
stream (a private PulseAudio server, see helpers/pulse.py)."""

import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from helpers.pulse import speak

from realtime.capture.audio_source import SAMPLE_RATE, AudioChunk, FileAudioSource, MicrophoneSource, StreamTimeline
from realtime.core.clock import now
from realtime.core.errors import SourceError

torch.set_num_threads(1)


def _write(path: Path, samples: np.ndarray, rate: int, codec: str, video: bool = False) -> Path:
    """Encode mono float samples (or, with ``video``, 1 s of black frames only) with PyAV."""
    with av.open(str(path), "w") as out:
        if video:
            stream = out.add_stream("mpeg4", rate=10)
            stream.width, stream.height = 64, 64
            frames = [av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24") for _ in range(10)]
        else:
            stream = out.add_stream(codec, rate=rate, layout="mono")
            frame = av.AudioFrame.from_ndarray(samples[None, :].astype(np.float32), format="flt", layout="mono")
            frame.sample_rate, frame.pts = rate, 0
            frames = [frame]
        for frame in frames:
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> tuple[np.ndarray, Path]:
    """About 2 s of espeak-ng speech, as 16 kHz float32 samples and as the 16 kHz wav they came from."""
    tmp = tmp_path_factory.mktemp("speech")
    raw = speak("Hello there, the weather is lovely today.", tmp / "raw.wav")
    with FileAudioSource(raw) as source:
        samples = np.concatenate([c.samples for c in source])
    samples = np.round(samples * 32767) / 32767  # exactly representable in 16-bit files
    return samples.astype(np.float32), _write(tmp / "speech16k.wav", samples, SAMPLE_RATE, "pcm_s16le")


def _read(path: Path, **kw) -> tuple[list[AudioChunk], list[float], FileAudioSource]:
    chunks, arrivals = [], []
    with FileAudioSource(path, **kw) as source:
        for chunk in source:
            chunks.append(chunk)
            arrivals.append(now())
    return chunks, arrivals, source


@pytest.mark.parametrize("codec,suffix,lossless", [("flac", "flac", True), ("pcm_s16le", "wav", True),
                                                   ("aac", "mp4", False)])
def test_file_source_unpaced(speech, tmp_path, codec, suffix, lossless):
    samples, _ = speech
    rate = SAMPLE_RATE if lossless else 44_100  # the mp4 also exercises resampling
    original = samples if lossless else av.AudioResampler(format="flt", layout="mono", rate=rate)
    if not lossless:
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        original = np.concatenate([f.to_ndarray()[0] for f in original.resample(frame) + original.resample(None)])
    path = _write(tmp_path / f"speech.{suffix}", original, rate, codec)

    chunks, _, source = _read(path, start=100.0)
    got = np.concatenate([c.samples for c in chunks])
    t0 = np.array([c.t0 for c in chunks])
    assert all(c.samples.dtype == np.float32 and c.samples.ndim == 1 for c in chunks)
    assert all(len(c.samples) == source.block for c in chunks[:-1])
    assert t0[0] == pytest.approx(100.0, abs=0.05)
    np.testing.assert_allclose(np.diff(t0), [len(c.samples) / SAMPLE_RATE for c in chunks[:-1]], atol=1e-9)
    assert len(got) / SAMPLE_RATE == pytest.approx(len(samples) / SAMPLE_RATE, abs=0.05)
    assert source.duration == pytest.approx(len(samples) / SAMPLE_RATE, abs=0.05)
    if lossless:
        np.testing.assert_allclose(got, samples, atol=1e-4)
    else:
        assert np.sqrt(np.mean(got**2)) == pytest.approx(np.sqrt(np.mean(samples**2)), rel=0.1)
    assert source.dropped == 0 and source.ended


def test_paced_file_behaves_like_a_microphone(speech, tmp_path):
    samples, wav = speech
    duration = len(samples) / SAMPLE_RATE
    start = now()
    chunks, arrivals, source = _read(wav, pace=True, start=start)
    elapsed = now() - start
    t1 = np.array([c.t0 + c.duration for c in chunks])
    assert elapsed == pytest.approx(duration, abs=0.3)
    assert np.all(np.diff([c.t0 for c in chunks]) > 0)
    lateness = np.array(arrivals) - t1  # a chunk comes once the clock has passed its last sample
    assert lateness.min() > -2e-3 and np.median(lateness) < 0.05
    assert t1[-1] - start == pytest.approx(duration, abs=1e-6)
    assert source.dropped == 0


def test_paced_source_drops_the_oldest_when_the_consumer_is_slow(speech):
    _, wav = speech
    source = FileAudioSource(wav, pace=True, queue_s=0.1).start()  # room for 5 chunks
    try:
        time.sleep(1.0)  # the consumer stalls: chunks queue up, then the oldest go
        kept = [source.get(timeout=0.01) for _ in range(5)]
    finally:
        source.stop()
    assert source.dropped > 10
    assert all(c is not None for c in kept)
    assert kept[0].t0 > source.start_time + 0.5  # the newest survived, not the first ones
    assert np.all(np.diff([c.t0 for c in kept]) > 0)


def test_stop_ends_a_paced_source_promptly(speech):
    _, wav = speech
    source = FileAudioSource(wav, pace=True).start()
    assert source.get(timeout=1.0) is not None
    t = now()
    source.stop()
    assert now() - t < 0.5
    assert list(source) == list(source)  # drains what was queued, then ends
    assert source.ended


def test_broken_inputs_raise_one_line_source_errors(tmp_path):
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"\x00not audio\xff" * 100)
    silent_video = _write(tmp_path / "video_only.mp4", np.empty(0), 0, "", video=True)
    for path, words in ((garbage, "cannot read"), (tmp_path / "missing.flac", "No such file"),
                        (silent_video, "no audio track")):
        with pytest.raises(SourceError) as e:
            FileAudioSource(path)
        assert words in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


def test_unknown_microphone_raises_one_line_source_error():
    try:
        import sounddevice  # noqa: F401
    except OSError:
        pytest.skip("the PortAudio library is missing (apt-get install libportaudio2)")
    for device in ("no such microphone", 999):
        with pytest.raises(SourceError) as e:
            MicrophoneSource(device)
        assert "\n" not in str(e.value) and "device" in str(e.value)


def test_timeline_follows_a_gap_in_chunk_times():
    timeline = StreamTimeline()
    timeline.append(AudioChunk(10.0, np.zeros(1600, np.float32)))
    timeline.append(AudioChunk(10.1, np.zeros(1600, np.float32)))  # contiguous
    timeline.append(AudioChunk(11.2, np.zeros(1600, np.float32)))  # 1 s of chunks were dropped
    assert timeline.time(800) == pytest.approx(10.05)
    assert timeline.time(2400) == pytest.approx(10.15)
    assert timeline.time(4000) == pytest.approx(11.25)


@pytest.mark.parametrize("capture_rate", [None, 44_100])  # 16 kHz direct, native rate + resampling
def test_microphone_captures_played_speech_in_real_time(pulse_server, speech, tmp_path, capture_rate):
    samples, _ = speech
    quiet = np.zeros(SAMPLE_RATE // 2, np.float32)
    played = np.concatenate([quiet, samples, quiet])
    wav = _write(tmp_path / "played.wav", played, SAMPLE_RATE, "pcm_s16le")
    chunks, arrivals = [], []
    with MicrophoneSource("pulse", capture_rate=capture_rate) as mic:
        assert mic.capture_rate == (capture_rate or SAMPLE_RATE)
        player = pulse_server.play(wav)
        deadline = now() + len(played) / SAMPLE_RATE + 5
        finished_at = None
        while now() < deadline and (finished_at is None or now() < finished_at + 0.3):
            if finished_at is None and player.poll() is not None:
                finished_at = now()
            if (chunk := mic.get(timeout=0.05)) is not None:
                chunks.append(chunk)
                arrivals.append(now())
    assert player.returncode == 0, player.stderr.read()
    got = np.concatenate([c.samples for c in chunks])
    t0 = np.array([c.t0 for c in chunks])
    rms = np.array([np.sqrt(np.mean(c.samples**2)) for c in chunks])
    speech_rms = np.sqrt(np.mean(samples**2))

    assert len(got) >= 0.9 * len(played)  # the whole clip came back
    assert rms.max() > 0.5 * speech_rms and np.percentile(rms, 5) < 0.1 * speech_rms  # speech and pauses
    assert np.all(np.diff(t0) > 0) and mic.dropped == 0
    captured_s = (len(got) - len(chunks[0].samples)) / SAMPLE_RATE
    assert (arrivals[-1] - arrivals[0]) / captured_s == pytest.approx(1.0, abs=0.2)  # real-time pace
    lag = np.array(arrivals) - (t0 + [c.duration for c in chunks])  # clock time after the last sample
    assert -0.05 < np.median(lag) < 0.5
