"""What a live microphone does to a voice, put on a clip's samples before the voice front-end.

The speech corpora are studio recordings; live, a voice reaches the app through a room, under noise,
at any level, and sometimes through a phone or a network codec. ``realtime.extract --live-conditions
SEED`` passes every clip through one draw of these, seeded by SEED and the clip's name (the same
draw on every rerun and in every worker), then through the unchanged front-end, so training and
evaluation can hear what the app hears. In the order applied:

- speed: the clip resampled by a factor in 1 +- ``SPEED`` (rate and pitch move together), half the clips;
- room: convolution with a synthetic room impulse response (a direct path, then Gaussian noise
  decaying by 60 dB over RT60, drawn in ``RT60_S``; Polack's statistical model), half the clips;
- noise: white, pink, brown noise or mains hum (50 or 60 Hz and 5 harmonics) at an SNR drawn in
  ``SNR_DB`` against the clip's speech power (frames within 30 dB of its loudest), 80 % of the clips;
- gain: a level change drawn in +- ``GAIN_DB``, the samples then clipped to [-1, 1] as a converter does;
- codec: a third of the clips encoded and decoded by Opus at 8-16 kbit/s, MP3 at 32 kbit/s, AMR-NB
  (a phone call, 8 kHz) or G.711 mu-law (8 kHz), with PyAV's FFmpeg.

The length of the clip is kept except by the speed change. What is not modelled: other people
talking (babble), a far microphone's own colouring, packet loss.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import av
import numpy as np

from realtime.capture.audio_source import SAMPLE_RATE

SPEED = 0.1
RT60_S = (0.2, 0.9)
SNR_DB = (0.0, 20.0)
GAIN_DB = 12.0
NOISES = ("white", "pink", "brown", "hum")
CODECS = ("opus", "mp3", "amr", "mulaw")  # FFmpeg encoder per name: ``_CODEC``
_CODEC = {"opus": ("libopus", "ogg", SAMPLE_RATE), "mp3": ("libmp3lame", "mp3", SAMPLE_RATE),
          "amr": ("libopencore_amrnb", "amr", 8000), "mulaw": ("pcm_mulaw", "wav", 8000)}
PROBABILITY = {"speed": 0.5, "room": 0.5, "noise": 0.8, "codec": 1 / 3}


@dataclass(frozen=True)
class Conditions:
    """One draw of live conditions (a field at its neutral value: not applied)."""

    speed: float = 1.0  # resampling factor: > 1 faster and higher
    rt60_s: float = 0.0  # the room's reverberation time; 0: no room
    noise: str = ""  # one of NOISES; "": none
    snr_db: float = 0.0  # of the speech over the noise, where there is noise
    gain_db: float = 0.0
    codec: str = ""  # one of CODECS; "": none
    bitrate: int = 0  # bit/s, for opus and mp3


def clip_rng(seed: int, source: str) -> np.random.Generator:
    """The generator of one clip's draw: the same for the same seed and clip name, wherever it runs."""
    digest = hashlib.sha256(f"{seed}:{source}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def draw_conditions(rng: np.random.Generator) -> Conditions:
    """Conditions with the module's probabilities and ranges."""
    on = {k: bool(rng.random() < p) for k, p in PROBABILITY.items()}
    codec = str(rng.choice(CODECS)) if on["codec"] else ""
    return Conditions(
        speed=float(rng.uniform(1 - SPEED, 1 + SPEED)) if on["speed"] else 1.0,
        rt60_s=float(rng.uniform(*RT60_S)) if on["room"] else 0.0,
        noise=str(rng.choice(NOISES)) if on["noise"] else "",
        snr_db=float(rng.uniform(*SNR_DB)) if on["noise"] else 0.0,
        gain_db=float(rng.uniform(-GAIN_DB, GAIN_DB)),
        codec=codec,
        bitrate={"opus": int(rng.choice([8000, 12000, 16000])), "mp3": 32000}.get(codec, 0))


def apply_conditions(samples: np.ndarray, c: Conditions, rng: np.random.Generator) -> np.ndarray:
    """``samples`` (float32 mono at SAMPLE_RATE, in [-1, 1]) as heard under ``c``; ``rng`` draws the
    room's and the noise's random parts."""
    x = np.asarray(samples, np.float64)
    if not len(x):
        return np.asarray(samples, np.float32)
    if c.speed != 1.0:
        x = resample(x, 1 / c.speed)
    if c.rt60_s:
        x = _convolve(x, room_response(c.rt60_s, rng))
    if c.noise:
        x = x + noise(c.noise, len(x), rng) * np.sqrt(speech_power(x) / 10 ** (c.snr_db / 10))
    x = np.clip(x * 10 ** (c.gain_db / 20), -1.0, 1.0)
    if c.codec:
        x = through_codec(x, c.codec, c.bitrate)
    return x.astype(np.float32)


def resample(x: np.ndarray, ratio: float) -> np.ndarray:
    """x (n,) at ``ratio`` times as many samples (linear interpolation)."""
    n = max(1, int(round(len(x) * ratio)))
    return np.interp(np.arange(n) * (len(x) / n), np.arange(len(x)), x)


def room_response(rt60_s: float, rng: np.random.Generator) -> np.ndarray:
    """A synthetic impulse response: 1 (the direct path), then after 2 ms Gaussian noise whose energy
    decays by 60 dB in ``rt60_s``, scaled so the reverberant part carries as much energy as the
    direct path at an RT60 of 0.5 s (a living room at about a metre)."""
    t = np.arange(int(rt60_s * SAMPLE_RATE)) / SAMPLE_RATE
    tail = rng.standard_normal(len(t)) * 10 ** (-3 * t / rt60_s)
    tail[: int(0.002 * SAMPLE_RATE)] = 0.0
    tail *= np.sqrt(rt60_s / 0.5 / max(np.sum(tail ** 2), 1e-12))
    tail[0] = 1.0
    return tail


def _convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """x convolved with h by FFT, cut to len(x)."""
    n = len(x) + len(h) - 1
    size = 1 << (n - 1).bit_length()
    return np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[: len(x)]


def speech_power(x: np.ndarray, frame: int = 320) -> float:
    """Mean power of the 20 ms frames within 30 dB of the loudest (the speech, not the pauses)."""
    n = max(1, len(x) // frame)
    p = np.mean(x[: n * frame].reshape(n, -1) ** 2, axis=1) if len(x) >= frame else np.array([np.mean(x ** 2)])
    loud = p >= p.max() * 1e-3
    return float(max(p[loud].mean(), 1e-12))


def noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples of unit-power noise: white, pink (1/f power), brown (1/f^2) or mains hum."""
    if kind == "hum":
        t = np.arange(n) / SAMPLE_RATE
        base = float(rng.choice([50.0, 60.0]))
        y = sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 2 * np.pi))
                for k in range(1, 7))
        y = y + 0.05 * rng.standard_normal(n)
    else:
        spectrum = np.fft.rfft(rng.standard_normal(n))
        f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
        exponent = {"white": 0.0, "pink": 0.5, "brown": 1.0}[kind]
        spectrum *= 1 / np.maximum(f, 20.0) ** exponent
        y = np.fft.irfft(spectrum, n)
    return y / np.sqrt(max(np.mean(y ** 2), 1e-12))


def through_codec(x: np.ndarray, codec: str, bitrate: int) -> np.ndarray:
    """x encoded and decoded by ``codec`` (one of CODECS) in memory, len(x) samples at SAMPLE_RATE; the
    rate changes to and from the codec's are FFmpeg's (filtered, as a phone's are)."""
    name, container, rate = _CODEC[codec]
    pcm = np.clip(x * 32767, -32768, 32767).astype(np.int16)[None, :]
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(name, rate=rate, layout="mono")
        if bitrate:
            stream.bit_rate = bitrate
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE  # the encoder brings it to its own rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    buf.seek(0)
    back = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    with av.open(buf, "r") as inp:
        parts = [r.to_ndarray().reshape(-1) for f in inp.decode(audio=0) for r in back.resample(f)]
    parts += [r.to_ndarray().reshape(-1) for r in back.resample(None)]
    y = np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)
    return np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)]
