"""The windows the engine sees, saved for calibration (``--save-windows DIR``).

Files ``DIR/windows_NNNNN.npz`` of up to ``WINDOWS_PER_FILE`` windows, each holding the arrays of
``engines.base.window_batch`` (visual, visual_mask, audio, audio_mask, text, text_mask) and ``t_end``
(n,); a file is written to a temporary name and renamed, so a reader never sees half a file.
Closed on every exit path; closing saves the last partial file.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from realtime.engines.base import window_batch
from realtime.window import Window

WINDOWS_PER_FILE = 256


class WindowSaver:
    """Collects windows and writes them ``WINDOWS_PER_FILE`` at a time (see the module docstring)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._windows: list[Window] = []
        self._lock = threading.Lock()
        self.files = 0

    def add(self, window: Window) -> None:
        with self._lock:
            self._windows.append(window)
            if len(self._windows) >= WINDOWS_PER_FILE:
                self._write()

    def _write(self) -> None:
        if not self._windows:
            return
        path = self.directory / f"windows_{self.files:05d}.npz"
        tmp = path.with_name(f".{path.stem}.tmp.npz")
        arrays = window_batch(self._windows)
        np.savez(tmp, **arrays, t_end=np.array([w.t_end for w in self._windows], np.float64))
        os.replace(tmp, path)
        self.files += 1
        self._windows = []

    def close(self) -> None:
        with self._lock:
            self._write()
