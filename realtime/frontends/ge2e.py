"""The GE2E states of a voice (``realtime.nets.ge2e``): 16 kHz audio -> (frames, 256) every 10 ms.

The level that scales the audio is measured as live use can: the running mean level (dB) of the
frames silero-vad has called speech so far (probability at least ``SPEECH``), so a quiet or loud
microphone is brought to the network's level from the first word on. The LSTM starts from zero
state with each utterance (here: each signal passed in).
"""

from __future__ import annotations

import numpy as np

from realtime.frontends.vad import VAD_CHUNK, SileroVad
from realtime.nets.ge2e import HOP, TARGET_DBFS, WINDOW, Ge2eLstm, frame_power, mel_power

SPEECH = 0.5  # VAD probability from which a frame counts towards the level


def running_gain(power: np.ndarray, speech: np.ndarray) -> np.ndarray:
    """(frames,) gain of each frame: the one that brings the mean level (in dB) of the speech frames up
    to it to ``TARGET_DBFS`` (``power``: each frame's mean square, ``speech``: which frames count); 1
    before the first speech frame."""
    db = 10 * np.log10(np.maximum(power, 1e-10))
    count = np.cumsum(speech)
    mean_db = np.cumsum(np.where(speech, db, 0.0)) / np.maximum(count, 1)
    return np.where(count > 0, 10 ** ((TARGET_DBFS - mean_db) / 20), 1.0)


def frame_speech(samples: np.ndarray, vad: SileroVad) -> np.ndarray:
    """(frames,) bool: whether silero-vad's chunk that holds each frame's centre is speech (fresh state)."""
    vad.reset()
    n_chunks = len(samples) // VAD_CHUNK
    probs = np.array([vad(samples[k * VAD_CHUNK:(k + 1) * VAD_CHUNK]) for k in range(n_chunks)] or [0.0])
    frames = max(0, (len(samples) - WINDOW) // HOP + 1)
    centre_chunk = np.minimum((np.arange(frames) * HOP + WINDOW // 2) // VAD_CHUNK, len(probs) - 1)
    return probs[centre_chunk] >= SPEECH


def utterance_states(samples: np.ndarray, lstm: Ge2eLstm, vad: SileroVad) -> np.ndarray:
    """(frames, 256) float32 GE2E states of one utterance of 16 kHz mono samples, heard from a cold start."""
    x = np.asarray(samples, np.float32)
    gain = running_gain(frame_power(x), frame_speech(x, vad))
    lstm.reset()
    return lstm(mel_power(x, gain))
