"""A bounded, thread-safe, time-sorted buffer of (timestamp, feature) samples for one modality.

Producers (front-end threads) ``push``; the window assembler reads ``slice``. Samples may arrive
late or out of order (the ASR finalises words after they were spoken): they are inserted at their place in time. Memory never grows: past ``capacity`` the
oldest sample is evicted, and a sample older than everything a full buffer holds, or older than
``horizon_s`` behind the newest, is dropped and counted.
"""

from __future__ import annotations

import math
import threading

import numpy as np


class Track:
    def __init__(self, shape: tuple[int, ...], capacity: int, dtype: np.dtype | type = np.float32,
                 horizon_s: float = math.inf) -> None:
        if capacity < 1:
            raise ValueError(f"Track capacity must be >= 1, got {capacity}")
        self.shape, self.capacity, self.horizon_s = tuple(shape), capacity, horizon_s
        # Live samples are the contiguous, time-sorted run [_lo, _hi) of storage twice the
        # capacity, so appends are O(1) amortised and slices are one searchsorted away.
        self._t = np.zeros(2 * capacity, dtype=np.float64)
        self._x = np.zeros((2 * capacity, *self.shape), dtype=dtype)
        self._lo = self._hi = 0
        self._lock = threading.Lock()
        self.dropped = 0  # samples refused: too late, or not a finite time
        self.evicted = 0  # samples pushed out by newer ones when full

    def __len__(self) -> int:
        with self._lock:
            return self._hi - self._lo

    @property
    def newest(self) -> float | None:
        """Latest timestamp held, or None when empty."""
        with self._lock:
            return float(self._t[self._hi - 1]) if self._hi > self._lo else None

    def push(self, t: float, feature: np.ndarray) -> bool:
        """Insert one sample at its place in time; False (and counted) when it is dropped."""
        feature = np.asarray(feature)
        if feature.shape != self.shape:
            raise ValueError(f"Track expects features of shape {self.shape}, got {feature.shape}")
        with self._lock:
            n = self._hi - self._lo
            too_old = n > 0 and (t < self._t[self._hi - 1] - self.horizon_s
                                 or (n == self.capacity and t < self._t[self._lo]))
            if not math.isfinite(t) or too_old:
                self.dropped += 1
                return False
            if n == self.capacity:
                self._lo += 1
                self.evicted += 1
            if self._hi == len(self._t):  # out of room at the end: move the live run to the front
                n = self._hi - self._lo
                self._t[:n], self._x[:n] = self._t[self._lo:self._hi], self._x[self._lo:self._hi]
                self._lo, self._hi = 0, n
            i = self._lo + int(np.searchsorted(self._t[self._lo:self._hi], t, side="right"))
            if i < self._hi:  # out of order: shift the newer samples one place on
                self._t[i + 1:self._hi + 1] = self._t[i:self._hi].copy()
                self._x[i + 1:self._hi + 1] = self._x[i:self._hi].copy()
            self._t[i], self._x[i] = t, feature
            self._hi += 1
            return True

    def slice(self, t_start: float, t_end: float) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the samples with ``t_start <= t <= t_end``: (times (n,), features (n, *shape))."""
        with self._lock:
            live = self._t[self._lo:self._hi]
            a = self._lo + int(np.searchsorted(live, t_start, side="left"))
            b = self._lo + int(np.searchsorted(live, t_end, side="right"))
            return self._t[a:b].copy(), self._x[a:b].copy()

    def clear(self) -> None:
        """Forget every sample (the counters stay)."""
        with self._lock:
            self._lo = self._hi = 0
