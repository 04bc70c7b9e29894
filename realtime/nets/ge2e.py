"""A pretrained speech network: the GE2E speaker encoder's first two LSTM layers, in numpy.

GE2E (Wan et al. 2018, "Generalized end-to-end loss for speaker verification") as trained by
Resemblyzer (Apache-2.0; its PyPI wheel ships ``pretrained.pt``, trained on VoxCeleb, thousands of
speakers in many languages, and by one of its authors' accounts LibriSpeech too): 40 mel power bands
every 10 ms -> a 3-layer LSTM of 256 units -> a speaker embedding. This module computes the second
layer's states for 16 kHz audio, which the voice front-end carries (why: MODEL_CARD.md, "A pretrained
speech network carries emotion to corpora it never heard").

Input as Resemblyzer makes it: 25 ms periodic-Hann frames every 10 ms (``WINDOW``/``HOP``), an FFT of
400 points, power, 40 Slaney mel filters (area-normalised, 0-8 kHz), the signal first scaled so that
its level is ``TARGET_DBFS``. The level here is measured over the frames the caller marks as speech
(``realtime.frontends.ge2e``), where Resemblyzer measures a whole file. Weights:
``realtime/data/models/ge2e.*``, converted once from ``pretrained.pt`` by ``python -m realtime.ge2e
convert``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from realtime.core.resources import shipped
from realtime.nets.sidecar import check_sha256, checked_sidecar

WEIGHTS_PATH = shipped("models/ge2e.safetensors")
SAMPLE_RATE = 16000
WINDOW = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
HIDDEN = 256
LAYERS = 2  # of the 3: the second layer's states transfer best (MODEL_CARD.md)
TARGET_DBFS = -30.0  # Resemblyzer's audio_norm_target_dBFS
CONVERT = "python -m realtime.ge2e convert --source <Resemblyzer's pretrained.pt>"


def _hz_to_slaney(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, np.float64)
    linear = f / (200.0 / 3)
    return np.where(f < 1000.0, linear, 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) / (math.log(6.4) / 27.0))


def _slaney_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, np.float64)
    return np.where(m < 15.0, m * (200.0 / 3), 1000.0 * np.exp((m - 15.0) * (math.log(6.4) / 27.0)))


@lru_cache(maxsize=1)
def mel_filters() -> np.ndarray:
    """(WINDOW // 2 + 1, N_MELS) float64 Slaney mel filters, area-normalised (librosa's default). Read-only."""
    freqs = np.linspace(0, SAMPLE_RATE / 2, WINDOW // 2 + 1)
    points = _slaney_to_hz(np.linspace(_hz_to_slaney(0.0), _hz_to_slaney(SAMPLE_RATE / 2), N_MELS + 2))
    widths = np.diff(points)
    ramps = points[:, None] - freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    filters = np.maximum(0.0, np.minimum(lower, upper)) * (2.0 / (points[2:] - points[:-2]))[:, None]
    filters = filters.T.copy()
    filters.flags.writeable = False
    return filters


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WINDOW) / WINDOW)  # periodic Hann
    w.flags.writeable = False
    return w


def _frames(samples: np.ndarray) -> np.ndarray:
    """(n,) samples -> (frames, WINDOW) float64 view of every whole frame (none when n < WINDOW)."""
    x = np.asarray(samples, np.float64)
    return np.lib.stride_tricks.sliding_window_view(x, WINDOW)[::HOP] if len(x) >= WINDOW else np.empty((0, WINDOW))


def frame_power(samples: np.ndarray) -> np.ndarray:
    """(n,) samples -> (frames,) mean square of each whole frame."""
    return (_frames(samples) ** 2).mean(1)


def mel_power(samples: np.ndarray, gain: float | np.ndarray) -> np.ndarray:
    """(n,) samples -> (frames, N_MELS) float32 mel power of every whole frame, the samples scaled by
    ``gain`` (a number, or one per frame)."""
    spectrum = np.fft.rfft(_frames(samples) * _window(), n=WINDOW)
    power = (spectrum.real ** 2 + spectrum.imag ** 2) * np.square(np.asarray(gain, np.float64)).reshape(-1, 1)
    return (power @ mel_filters()).astype(np.float32)


class Ge2eLstm:
    """The LSTM layers: (frames, N_MELS) mel power -> (frames, HIDDEN) states of the last layer,
    carrying the recurrent state from call to call until ``reset``."""

    def __init__(self, path: Path = WEIGHTS_PATH) -> None:
        meta = checked_sidecar(path, {"layers": LAYERS, "hidden": HIDDEN, "n_mels": N_MELS}, "GE2E", CONVERT)
        check_sha256(path, meta, path.with_suffix(".json"), f"make them again with `{CONVERT}`")
        w = load_file(path)
        self._layers = [(np.ascontiguousarray(w[f"weight_ih_l{n}"].T, np.float32),
                         np.ascontiguousarray(w[f"weight_hh_l{n}"].T, np.float32),
                         (w[f"bias_ih_l{n}"] + w[f"bias_hh_l{n}"]).astype(np.float32)) for n in range(LAYERS)]
        self.reset()

    def reset(self) -> None:
        """Zero recurrent state, as at the start of an utterance."""
        self._state = [(np.zeros(HIDDEN, np.float32), np.zeros(HIDDEN, np.float32)) for _ in range(LAYERS)]

    def __call__(self, mels: np.ndarray) -> np.ndarray:
        x = np.asarray(mels, np.float32)
        for n, (w_ih, w_hh, bias) in enumerate(self._layers):
            gates_in = x @ w_ih + bias  # (frames, 4 * HIDDEN): PyTorch's gate order i, f, g, o
            h, c = self._state[n]
            out = np.empty((len(x), HIDDEN), np.float32)
            for t in range(len(x)):
                g = gates_in[t] + h @ w_hh
                i, f, o = (0.5 + 0.5 * np.tanh(0.5 * g[k * HIDDEN:(k + 1) * HIDDEN]) for k in (0, 1, 3))  # sigmoid
                c = f * c + i * np.tanh(g[2 * HIDDEN:3 * HIDDEN])
                h = o * np.tanh(c)
                out[t] = h
            self._state[n] = (h, c)
            x = out
        return x
