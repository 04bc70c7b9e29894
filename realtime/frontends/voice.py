"""The voice front-end: 16 kHz audio -> 25 Hz steps of [64 log-mel energies, voice-activity prob,
pitch, periodicity, 256 GE2E states].

Per step (40 ms):
- log-mel: 25 ms Hann-windowed frames every 10 ms (FFT of 512, HTK mel filters, 20 Hz - 8 kHz, in
  numpy: ``realtime.frontends.mel``, the torchaudio computation it replaced), natural log of the
  energies floored at ``MEL_FLOOR``, averaged over the step's 4 frames. Step k summarises samples
  [k * STEP, k * STEP + STEP_SPAN) and is stamped at the centre of that span on the shared clock.
- voice activity: silero-vad's speech probability (its ONNX model through onnxruntime:
  ``realtime.frontends.vad``), run on consecutive 512-sample chunks; a step holds the probability
  of the last chunk that ended inside its span.
- pitch and periodicity: YIN on the step's span (``realtime.frontends.pitch``). The pitch (semitones)
  is standardised by its own running statistics over voiced steps and is 0 on unvoiced ones; the
  periodicity (0..1) is kept as is.
- GE2E states: the mean over the same 4 frames of a pretrained speech network's states
  (``realtime.frontends.ge2e``: its level set by the speech heard so far, its state started afresh at
  each utterance), kept as they are.
- streaming normalisation (``RunningNorm``) of the 64 log-mel values; the probability is kept as is.
  The running normalisations and the speech level belong to a ``VoiceNorm``, which lives as long as
  the stream: live, one person's voice over minutes; offline, ``realtime.extract`` runs each speaker's
  clips through one (a session), so that training sees what a voice looks like once the app has heard
  it for a while.
At the end of a stream the last started step is completed with zeros, so N samples give
ceil(N / STEP) steps (25 per second).

``VoiceFrontEnd`` computes this incrementally from chunks of any size; ``voice_features`` computes
it for a whole signal at once. Both give the same numbers (a tested property), so features
extracted offline for training are the ones the live system sees. Nothing here imports torch.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from realtime.capture.audio_source import SAMPLE_RATE, AudioChunk, StreamTimeline
from realtime.core.feature_spec import FEATURE_RATE_HZ, GE2E_START, N_MELS, VOICE_FEATURE_DIM
from realtime.frontends.ge2e import Ge2eTrack, SpeechLevel
from realtime.frontends.mel import log_mel, mel_filters, resample
from realtime.frontends.pitch import step_pitch
from realtime.frontends.vad import VAD_CHUNK, VAD_RATE, SileroVad

WINDOW = SAMPLE_RATE * 25 // 1000  # 400 samples: 25 ms analysis window
HOP = SAMPLE_RATE * 10 // 1000  # 160 samples: 10 ms between frames
N_FFT = 512  # the window zero-padded to a power of two
FRAMES_PER_STEP = SAMPLE_RATE // (HOP * FEATURE_RATE_HZ)  # 4
STEP = HOP * FRAMES_PER_STEP  # 640 samples: 40 ms per step
STEP_SPAN = STEP - HOP + WINDOW  # 880 samples: what the 4 frames of one step cover
MEL_FLOOR = 1e-6  # energy floor before the log: 100 dB below a full-scale tone
F_MIN, F_MAX = 20.0, SAMPLE_RATE / 2
assert STEP * FEATURE_RATE_HZ == SAMPLE_RATE, "steps must tile the samples exactly"
assert VAD_RATE == SAMPLE_RATE, "silero-vad runs on the front-end's samples as they are"

# Warm start of the normalisation: log-mel statistics of speech with its pauses (120 RAVDESS
# clips: mean -10.2, std 4.3, nearly flat across bins), worth NORM_WARM_STEPS observed steps.
NORM_WARM_MEAN = -10.0
NORM_WARM_STD = 4.0
NORM_WARM_STEPS = 50  # 2 s
NORM_MEMORY_STEPS = 1500  # 60 s: past this the statistics follow the last minute or so
# Warm start of the pitch's normalisation: 33 semitones above 27.5 Hz (about 185 Hz, between typical
# male and female speaking pitch) with a spread of 4 semitones, worth 2 s of voiced steps.
PITCH_WARM_MEAN = 33.0
PITCH_WARM_STD = 4.0
_NORM_EPS = 1e-4


class RunningNorm:
    """Streaming per-dimension standardisation with a fixed warm start.

    The statistics start at (warm_mean, warm_std**2) (by default the log-mel values' NORM_WARM_MEAN
    and NORM_WARM_STD) as if NORM_WARM_STEPS steps had been seen; each new step x updates them with
    weight 1/c, c = min(steps seen + NORM_WARM_STEPS, NORM_MEMORY_STEPS): an exact running mean and
    variance at first, then an exponential moving average with a time constant of NORM_MEMORY_STEPS
    steps. The long memory is deliberate: a new room or microphone gain is absorbed within a few
    minutes, while a voice getting louder for a few seconds (arousal, which the model needs) is not
    normalised away. A step is normalised with statistics that include it. The result depends on
    the sequence of steps only, never on how the audio was chunked.
    """

    def __init__(self, dim: int = N_MELS, warm_mean: float = NORM_WARM_MEAN,
                 warm_std: float = NORM_WARM_STD) -> None:
        self.dim = dim
        self._warm_mean, self._warm_std = warm_mean, warm_std
        self.reset()

    def reset(self) -> None:
        self._mean = np.full(self.dim, self._warm_mean, np.float64)
        self._var = np.full(self.dim, self._warm_std**2, np.float64)
        self._count = NORM_WARM_STEPS

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(dim,) -> (dim,) float32: update with ``x``, then standardise it."""
        self._count = min(self._count + 1, NORM_MEMORY_STEPS)
        delta = x - self._mean
        self._mean += delta / self._count
        self._var += (delta * (x - self._mean) - self._var) / self._count
        return ((x - self._mean) / np.sqrt(self._var + _NORM_EPS)).astype(np.float32)


class VoiceNorm:
    """What one voice session has learnt of the voice: running normalisations of the log-mel energies
    and the voiced pitch, and the speech level the GE2E network's input is scaled by."""

    def __init__(self) -> None:
        self.mel = RunningNorm()
        self.pitch = RunningNorm(1, PITCH_WARM_MEAN, PITCH_WARM_STD)
        self.level = SpeechLevel()

    def reset(self) -> None:
        self.mel.reset()
        self.pitch.reset()
        self.level.reset()

    def step(self, log_mel: np.ndarray, vad: float, pitch: float, periodicity: float,
             ge2e: np.ndarray) -> np.ndarray:
        """One step's (VOICE_FEATURE_DIM,) float32 features; the statistics are updated with it."""
        out = np.empty(VOICE_FEATURE_DIM, np.float32)
        out[:N_MELS] = self.mel(log_mel.astype(np.float64))
        out[N_MELS] = vad
        out[N_MELS + 1] = 0.0 if np.isnan(pitch) else self.pitch(np.array([pitch]))[0]
        out[N_MELS + 2] = periodicity
        out[GE2E_START:] = ge2e
        return out


_MEL_FILTERS = mel_filters(N_FFT // 2 + 1, F_MIN, F_MAX, N_MELS, SAMPLE_RATE)  # (257, 64)


def _log_mel(samples: np.ndarray) -> np.ndarray:
    """(n,) float32 -> (frames, N_MELS) log-mel energies of every whole frame."""
    return log_mel(samples, window=WINDOW, hop=HOP, n_fft=N_FFT, filters=_MEL_FILTERS, floor=MEL_FLOOR)


def _pool(log_mel: np.ndarray) -> np.ndarray:
    """(FRAMES_PER_STEP * steps, N_MELS) -> (steps, N_MELS): mean over each step's frames."""
    return log_mel.reshape(-1, FRAMES_PER_STEP, N_MELS).mean(axis=1)


def _pitch(samples: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Pitch (semitones, nan if unvoiced) and periodicity of each of ``steps`` steps from the first
    sample of ``samples`` on (which holds at least their spans)."""
    spans = np.lib.stride_tricks.sliding_window_view(samples[:(steps - 1) * STEP + STEP_SPAN], STEP_SPAN)[::STEP]
    return step_pitch(spans, SAMPLE_RATE)


def _vad_chunk_of_step(k: int | np.ndarray) -> int | np.ndarray:
    """Index of the last VAD chunk that ends inside step k's span."""
    return (k * STEP + STEP_SPAN) // VAD_CHUNK - 1


def _step_center(k: int | np.ndarray) -> float | np.ndarray:
    """Sample index at the centre of step k's span."""
    return k * STEP + STEP_SPAN / 2


def _padded_length(n: int) -> int:
    """Samples needed to complete every step started within n samples."""
    return 0 if n == 0 else (math.ceil(n / STEP) - 1) * STEP + STEP_SPAN


class VoiceFrontEnd:
    """Incremental voice features of one audio stream.

    ``push`` each chunk as it arrives and get the steps it completed as (timestamp,
    (VOICE_FEATURE_DIM,) float32) pairs; ``finish`` completes the last step with zeros and resets for a new stream.
    Latency: a step comes out 55 ms of audio after its span began (plus the chunk length).
    """

    def __init__(self) -> None:
        self._vad = SileroVad()  # one per stream: the model carries recurrent state and context
        self._norm = VoiceNorm()
        self._ge2e = Ge2eTrack(FRAMES_PER_STEP, WINDOW, HOP)
        self.reset()

    def reset(self) -> None:
        """Forget the stream: timeline, buffered samples, VAD and GE2E state and normalisation."""
        self._vad.reset()
        self._norm.reset()
        self._ge2e.reset()
        self._timeline = StreamTimeline(SAMPLE_RATE)
        self._buffer = np.empty(0, np.float32)  # samples from index _buffer_start on
        self._buffer_start = 0
        self._next_step = 0
        self._next_vad = 0  # next VAD chunk to run
        self._vad_probs: dict[int, float] = {}  # VAD chunk index -> prob, for steps still to come

    def push(self, chunk: AudioChunk) -> list[tuple[float, np.ndarray]]:
        samples = np.asarray(chunk.samples, np.float32)
        if samples.ndim != 1:
            raise ValueError(f"VoiceFrontEnd.push: samples must be 1-D (mono), got shape {samples.shape}")
        self._timeline.append(AudioChunk(chunk.t0, samples))
        self._buffer = np.concatenate([self._buffer, samples])
        return self._steps()

    def finish(self) -> list[tuple[float, np.ndarray]]:
        """The steps still pending, the last one completed with zeros; then reset."""
        total = self._timeline.samples
        pad = _padded_length(total) - total
        steps = self.push(AudioChunk(self._timeline.time(total), np.zeros(pad, np.float32))) if pad > 0 else []
        self.reset()
        return steps

    def _steps(self) -> list[tuple[float, np.ndarray]]:
        total = self._timeline.samples
        while (self._next_vad + 1) * VAD_CHUNK <= total:
            a = self._next_vad * VAD_CHUNK - self._buffer_start
            self._vad_probs[self._next_vad] = self._vad(self._buffer[a:a + VAD_CHUNK])
            self._next_vad += 1

        first = self._next_step
        complete = (total - STEP_SPAN) // STEP + 1 if total >= STEP_SPAN else 0  # steps with all samples
        n = complete - first
        if n <= 0:
            return []
        a = first * STEP - self._buffer_start
        samples = self._buffer[a:a + (n - 1) * STEP + STEP_SPAN]
        log_mel = _pool(_log_mel(samples))  # (n, N_MELS)
        pitch, periodicity = _pitch(samples, n)
        vad = np.array([self._vad_probs.pop(_vad_chunk_of_step(k)) for k in range(first, first + n)])
        ge2e = self._ge2e.steps(samples, vad, self._norm.level)
        out = []
        for i, k in enumerate(range(first, first + n)):
            feature = self._norm.step(log_mel[i], vad[i], pitch[i], periodicity[i], ge2e[i])
            out.append((self._timeline.time(_step_center(k)), feature))
        self._next_step = first + n

        keep_from = min(self._next_step * STEP, self._next_vad * VAD_CHUNK)
        self._buffer = self._buffer[keep_from - self._buffer_start:]
        self._buffer_start = keep_from
        needed = _vad_chunk_of_step(self._next_step)
        self._vad_probs = {j: p for j, p in self._vad_probs.items() if j >= needed}
        return out


_offline = threading.local()  # one VAD model and GE2E track per thread for voice_features


def voice_features(samples: np.ndarray, sample_rate: int = SAMPLE_RATE, t0: float = 0.0,
                   norm: VoiceNorm | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Voice features of a whole mono signal: timestamps (N,) float64 and features (N, VOICE_FEATURE_DIM) float32,
    N = ceil(len / STEP) at 16 kHz. Other sample rates are resampled to 16 kHz first. ``norm``: the
    running normalisation to go on with (a session's, updated in place), else a fresh one."""
    x = np.asarray(samples, np.float32)
    if x.ndim != 1:
        raise ValueError(f"voice_features: samples must be 1-D (mono), got shape {x.shape}")
    if sample_rate != SAMPLE_RATE:
        x = resample(x, sample_rate, SAMPLE_RATE)
    n_steps = math.ceil(len(x) / STEP)
    x = np.pad(x, (0, _padded_length(len(x)) - len(x)))

    log_mel = _pool(_log_mel(x)) if n_steps else np.empty((0, N_MELS), np.float32)  # (N, N_MELS)
    pitch, periodicity = _pitch(x, n_steps) if n_steps else (np.empty(0), np.empty(0))
    if not hasattr(_offline, "vad"):
        _offline.vad, _offline.ge2e = SileroVad(), Ge2eTrack(FRAMES_PER_STEP, WINDOW, HOP)
    _offline.vad.reset()
    _offline.ge2e.reset()
    probs = np.array([_offline.vad(x[a:a + VAD_CHUNK]) for a in range(0, len(x) - VAD_CHUNK + 1, VAD_CHUNK)])
    vad = probs[_vad_chunk_of_step(np.arange(n_steps))] if n_steps else np.empty(0)

    norm = norm or VoiceNorm()
    ge2e = _offline.ge2e.steps(x, vad, norm.level)
    features = np.empty((n_steps, VOICE_FEATURE_DIM), np.float32)
    for k in range(n_steps):
        features[k] = norm.step(log_mel[k], vad[k], pitch[k], periodicity[k], ge2e[k])
    timestamps = t0 + _step_center(np.arange(n_steps)) / SAMPLE_RATE
    return timestamps, features
