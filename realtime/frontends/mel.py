"""Log-mel spectra and sinc resampling in numpy: the numbers torchaudio gives, without torch.

- ``mel_filters``: ``torchaudio.functional.melscale_fbanks`` (HTK scale, no normalisation).
- ``log_mel``: Hann-windowed frames (``torch.hann_window(periodic=False)``), zero-padded FFT, power,
  mel filters, natural log floored at ``floor``.
- ``resample``: ``torchaudio.functional.resample`` with its defaults (windowed sinc, Hann window,
  ``lowpass_filter_width=6``, ``rolloff=0.99``): the same kernel, applied as a polyphase filter.

The filters follow torchaudio's float32 arithmetic; log-mel and resampling run in float64 and
return float32. tests/frontends/test_mel.py checks them against torchaudio on real speech where
torch is installed (filters within 4e-6, resampling within 3e-7; log-mel within 5e-7 of the same
computation in float64, torch's float32 FFT itself rounding faint bins by up to ~6e-4).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

LOWPASS_FILTER_WIDTH = 6  # torchaudio.functional.resample's defaults
ROLLOFF = 0.99
_RESAMPLE_BLOCK_VALUES = 1 << 21  # input values per matrix product (16 MB of float64: bounds the memory)


def _hz_to_mel(freq: float) -> float:
    return 2595.0 * math.log10(1.0 + freq / 700.0)


def _linspace32(start: float, end: float, n: int) -> np.ndarray:
    """(n,) float32 evenly spaced from ``start`` to ``end`` in float32 arithmetic, as ``torch.linspace``
    (the first half counted up from ``start``, the rest down from ``end``)."""
    a, b = np.float32(start), np.float32(end)
    step = (b - a) / np.float32(n - 1)
    i = np.arange(n)
    up = a + step * i.astype(np.float32)
    down = b - step * (n - 1 - i).astype(np.float32)
    return np.where(i < n // 2, up, down).astype(np.float32)


@lru_cache(maxsize=8)
def mel_filters(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int) -> np.ndarray:
    """(n_freqs, n_mels) float32 triangular HTK mel filters, as ``torchaudio.functional.melscale_fbanks``
    (filters cross at the mel points; not area-normalised), in its float32 arithmetic (equal to it but for
    a few weights 1 float32 ulp apart, where torch's power is not correctly rounded). Read-only."""
    f32 = np.float32
    all_freqs = _linspace32(0.0, sample_rate // 2, n_freqs)
    mels = _linspace32(_hz_to_mel(f_min), _hz_to_mel(f_max), n_mels + 2)
    power = (10.0 ** (mels / f32(2595.0)).astype(np.float64)).astype(np.float32)  # rounded once, as torch's pow
    f_pts = f32(700.0) * (power - f32(1.0))
    f_diff = f_pts[1:] - f_pts[:-1]  # (n_mels + 1,)
    slopes = f_pts[None, :] - all_freqs[:, None]  # (n_freqs, n_mels + 2)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    filters = np.maximum(f32(0.0), np.minimum(down, up)).astype(np.float32)
    filters.flags.writeable = False
    return filters


@lru_cache(maxsize=8)
def hann_window(length: int) -> np.ndarray:
    """(length,) float64 symmetric Hann window (``torch.hann_window(length, periodic=False)``). Read-only."""
    window = np.hanning(length)
    window.flags.writeable = False
    return window


def log_mel(samples: np.ndarray, *, window: int, hop: int, n_fft: int, filters: np.ndarray,
            floor: float) -> np.ndarray:
    """(n,) -> (frames, n_mels) float32 natural-log mel energies of every whole frame of ``window``
    samples every ``hop`` (Hann window, FFT of ``n_fft`` points, ``filters`` from ``mel_filters``)."""
    x = np.asarray(samples, np.float32).astype(np.float64)
    if len(x) < window:
        return np.empty((0, filters.shape[1]), np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, window)[::hop] * hann_window(window)
    spectrum = np.fft.rfft(frames, n=n_fft)  # (frames, n_fft // 2 + 1)
    power = spectrum.real ** 2 + spectrum.imag ** 2
    return np.log(np.maximum(power @ filters.astype(np.float64), floor)).astype(np.float32)


@lru_cache(maxsize=8)
def _resample_kernel(orig: int, new: int) -> tuple[np.ndarray, int]:
    """torchaudio's windowed-sinc kernel for ``orig`` -> ``new`` (already divided by their gcd):
    (new, 2 * width + orig) float32, one row per output phase, and ``width``. Read-only."""
    base = min(orig, new) * ROLLOFF
    width = math.ceil(LOWPASS_FILTER_WIDTH * orig / base)
    idx = np.arange(-width, width + orig, dtype=np.float64)[None, :] / orig
    t = (np.arange(0, -new, -1, dtype=np.float32)[:, None] / np.float32(new)).astype(np.float64) + idx
    t = np.clip(t * base, -LOWPASS_FILTER_WIDTH, LOWPASS_FILTER_WIDTH)
    window = np.cos(t * math.pi / LOWPASS_FILTER_WIDTH / 2) ** 2
    t = t * math.pi
    with np.errstate(invalid="ignore", divide="ignore"):
        sinc = np.where(t == 0, 1.0, np.sin(t) / t)
    kernel = (sinc * window * (base / orig)).astype(np.float32)
    kernel.flags.writeable = False
    return kernel, width


def resample(samples: np.ndarray, orig_freq: int, new_freq: int) -> np.ndarray:
    """(n,) float32 at ``orig_freq`` -> (ceil(n * new_freq / orig_freq),) float32 at ``new_freq``,
    as ``torchaudio.functional.resample(x, orig_freq, new_freq)`` with its default settings."""
    if orig_freq <= 0 or new_freq <= 0 or int(orig_freq) != orig_freq or int(new_freq) != new_freq:
        raise ValueError(f"resample: sample rates must be positive integers, got {orig_freq} -> {new_freq}")
    x = np.asarray(samples, np.float32)
    if x.ndim != 1:
        raise ValueError(f"resample: samples must be 1-D, got shape {x.shape}")
    if orig_freq == new_freq:
        return x
    gcd = math.gcd(int(orig_freq), int(new_freq))
    orig, new = int(orig_freq) // gcd, int(new_freq) // gcd
    kernel, width = _resample_kernel(orig, new)
    padded = np.pad(x, (width, width + orig)).astype(np.float64)
    taps = np.lib.stride_tricks.sliding_window_view(padded, kernel.shape[1])[::orig]  # (blocks, taps)
    weights = kernel.astype(np.float64).T  # (taps, new)
    target = math.ceil(new * len(x) / orig)
    out = np.empty(len(taps) * new, np.float64)
    rows = max(1, _RESAMPLE_BLOCK_VALUES // kernel.shape[1])
    for a in range(0, len(taps), rows):
        block = taps[a:a + rows]
        out[a * new:(a + len(block)) * new] = (block @ weights).ravel()
    return out[:target].astype(np.float32)
