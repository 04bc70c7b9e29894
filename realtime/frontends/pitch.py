"""Pitch of a voice step: the fundamental frequency and how periodic the step is, from samples.

YIN (de Cheveigné & Kawahara 2002) on each step's span of samples, in numpy: the difference
function over lags of 2 ms (500 Hz) to 14.3 ms (70 Hz), computed with one FFT per step; its
cumulative-mean-normalised form d'(lag); the first lag where d' dips below ``THRESHOLD``, followed
to its local minimum (else the global minimum); a parabola through that minimum and its neighbours
for a fractional lag. ``periodicity`` is 1 - d' there (1: a clean periodic tone, near 0: noise or
silence); a step is voiced when it is at least ``VOICED`` and the step carries energy.
The pitch is given in semitones above 27.5 Hz (A0), as eGeMAPS gives it.
"""

from __future__ import annotations

import numpy as np

F0_MIN, F0_MAX = 70.0, 500.0  # Hz: the range of speaking voices, low male to high child
THRESHOLD = 0.15  # YIN's absolute threshold on d'
VOICED = 0.5  # periodicity at least this (d' at most 0.5) counts as voiced
MIN_RMS = 1e-3  # a step quieter than -60 dBFS is never voiced
SEMITONE_REF_HZ = 27.5


def semitones(f0_hz: np.ndarray) -> np.ndarray:
    """Hz -> semitones above 27.5 Hz."""
    return 12.0 * np.log2(np.asarray(f0_hz, np.float64) / SEMITONE_REF_HZ)


def step_pitch(frames: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """frames (n, span) float -> pitch in semitones (n,) (nan where unvoiced) and periodicity (n,) in 0..1.

    Each frame is compared with itself shifted by every lag up to ``sample_rate / F0_MIN``; the first
    ``span - max lag`` samples are the integration window, so ``span`` must exceed twice the max lag."""
    frames = np.asarray(frames, np.float64)
    n, span = frames.shape
    lag_min, lag_max = int(sample_rate / F0_MAX), int(np.ceil(sample_rate / F0_MIN))
    width = span - lag_max  # integration window
    if width < lag_max:
        raise ValueError(f"step_pitch: frames of {span} samples are too short for lags up to {lag_max}")
    if n == 0:
        return np.empty(0), np.empty(0)
    frames = frames - frames.mean(axis=1, keepdims=True)
    size = 1 << int(np.ceil(np.log2(span + width)))
    spectrum = np.fft.rfft(frames, size)
    window_spectrum = np.fft.rfft(frames[:, :width], size)
    cross = np.fft.irfft(spectrum * np.conj(window_spectrum), size)[:, :lag_max + 1]  # sum_j x_j x_{j+lag}
    squares = np.concatenate([np.zeros((n, 1)), np.cumsum(frames**2, axis=1)], axis=1)
    lags = np.arange(lag_max + 1)
    energy_window = squares[:, width:width + 1]  # sum_{j<width} x_j^2
    energy_shifted = squares[:, lags + width] - squares[:, lags]  # sum_{j<width} x_{j+lag}^2
    diff = np.maximum(energy_window + energy_shifted - 2 * cross, 0.0)  # (n, lag_max + 1), diff[:, 0] = 0
    running = np.cumsum(diff[:, 1:], axis=1) / lags[1:]
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] / np.maximum(running, 1e-12)

    search = cmnd[:, lag_min:lag_max]  # candidate lags lag_min .. lag_max - 1
    below = search < THRESHOLD
    first = np.where(below.any(axis=1), below.argmax(axis=1), search.argmin(axis=1))
    # follow the dip from its first lag below the threshold down to its local minimum: the first lag
    # from there on whose next lag is no lower (the last lag always qualifies)
    bottom = np.ones_like(below)
    bottom[:, :-1] = search[:, 1:] >= search[:, :-1]
    bottom &= np.arange(search.shape[1]) >= first[:, None]
    lag = bottom.argmax(axis=1) + lag_min
    rows = np.arange(n)
    # a parabola through the minimum and its neighbours
    left, mid, right = cmnd[rows, lag - 1], cmnd[rows, lag], cmnd[rows, np.minimum(lag + 1, lag_max)]
    curvature = left - 2 * mid + right
    offset = np.where(curvature > 1e-12, 0.5 * (left - right) / np.maximum(curvature, 1e-12), 0.0)
    periodicity = np.clip(1.0 - mid, 0.0, 1.0)
    rms = np.sqrt(squares[:, -1] / span)
    voiced = (periodicity >= VOICED) & (rms >= MIN_RMS)
    pitch = np.where(voiced, semitones(sample_rate / (lag + np.clip(offset, -1, 1))), np.nan)
    return pitch, np.where(rms >= MIN_RMS, periodicity, 0.0)
