"""The GE2E part of the voice features: per 40 ms step, the mean of its four 10 ms frames' GE2E
states (``realtime.nets.ge2e``, 256 values each).

The frames are the voice front-end's own (25 ms every 10 ms, four per step). Before the network
the samples are scaled by the gain that brings the speech heard so far to ``TARGET_DBFS``:
``SpeechLevel`` keeps the running mean power of the frames of steps silero-vad calls speech
(probability at least ``SPEECH``; a mean of power, as Resemblyzer's level of a whole file, so the
quiet frames at the edges of speech hardly count), with the voice normalisation's memory. It
belongs to the session (``frontends.voice.VoiceNorm``), so a quiet or loud microphone is brought to
the network's level from the first word on and stays there. The LSTM's state belongs to the stream
(``Ge2eTrack``): zero at its start and again at each utterance onset, a speech step after at least
``ONSET_SILENCE_STEPS`` steps without speech, as the network was trained on single utterances.
"""

from __future__ import annotations

import numpy as np

from realtime.core.feature_spec import GE2E_DIM
from realtime.nets.ge2e import HIDDEN, HOP, TARGET_DBFS, WINDOW, Ge2eLstm, frame_power, mel_power

assert HIDDEN == GE2E_DIM, "the feature spec's GE2E part is one step's network states"

SPEECH = 0.5  # VAD probability from which a step counts as speech
ONSET_SILENCE_STEPS = 13  # 0.52 s without speech, then speech: a new utterance
LEVEL_MEMORY_FRAMES = 6000  # 60 s of frames (the log-mel normalisation's NORM_MEMORY_STEPS)


class SpeechLevel:
    """The running mean power of the speech frames heard so far, and the gain it calls for."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._mean = 0.0
        self._count = 0

    def gains(self, power: np.ndarray, speech: np.ndarray) -> np.ndarray:
        """(frames,) gain of each frame (``power``: its mean square; ``speech``: whether it counts),
        the level updated with it first; 1 until the first speech frame."""
        out = np.ones(len(power))
        for i in range(len(power)):
            if speech[i]:
                self._count = min(self._count + 1, LEVEL_MEMORY_FRAMES)
                self._mean += (power[i] - self._mean) / self._count
            if self._count:
                out[i] = 10 ** (TARGET_DBFS / 20) / np.sqrt(max(self._mean, 1e-10))
        return out


class Ge2eTrack:
    """The GE2E states of one stream, step by step; the recurrent state goes on from call to call."""

    def __init__(self, frames_per_step: int, window: int, hop: int) -> None:
        if (window, hop) != (WINDOW, HOP):
            raise ValueError(f"Ge2eTrack: GE2E frames are {WINDOW} samples every {HOP}, got {window} every {hop}")
        self._per_step = frames_per_step
        self._lstm = Ge2eLstm()
        self.reset()

    def reset(self) -> None:
        """A new stream: zero recurrent state, as after a pause."""
        self._lstm.reset()
        self._silent = ONSET_SILENCE_STEPS

    def steps(self, samples: np.ndarray, vad: np.ndarray, level: SpeechLevel) -> np.ndarray:
        """(n, HIDDEN) float32 states of n = len(vad) steps whose frames are the whole frames of
        ``samples`` (frames_per_step each), ``vad`` their speech probabilities, ``level`` the session's."""
        speech = np.asarray(vad) >= SPEECH
        n, k = len(speech), self._per_step
        per_frame = np.repeat(speech, k)
        mels = mel_power(samples, level.gains(frame_power(samples), per_frame))
        if len(mels) != n * k:
            raise ValueError(f"Ge2eTrack.steps: {len(mels)} frames for {n} steps of {k}")
        out = np.empty((n * k, HIDDEN), np.float32)
        start = 0
        for i in range(n + 1):
            onset = i < n and speech[i] and self._silent >= ONSET_SILENCE_STEPS
            if i == n or onset:
                if i > start:
                    out[start * k:i * k] = self._lstm(mels[start * k:i * k])
                if onset:
                    self._lstm.reset()
                start = i
            if i < n:
                self._silent = 0 if speech[i] else self._silent + 1
        return out.reshape(n, k, HIDDEN).mean(1)
