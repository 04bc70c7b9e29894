"""What the app writes down as it runs: the JSONL event log and, for calibration, the windows.

``EventLog``: one strict JSON object per line (a NaN or infinite number is written as null),
written and flushed as it happens (a crash loses at most the line being written), from any
thread. ``WindowSaver`` (``--save-windows DIR``): every window
the engine sees, in files ``DIR/windows_NNNNN.npz`` of up to ``WINDOWS_PER_FILE`` windows, each
holding the arrays of ``engine.window_batch`` (visual, visual_mask, audio, audio_mask, text,
text_mask) and ``t_end`` (n,); a file is written to a temporary name and renamed, so a reader
never sees half a file. Both are closed on every exit path; closing saves the last partial file.
"""

from __future__ import annotations

import json
import math
import os
import threading
from pathlib import Path
from typing import IO

import numpy as np

from realtime.engines.base import window_batch
from realtime.window import Window

WINDOWS_PER_FILE = 256


def _json_line(value: object) -> str:
    """``value`` as one line of compact, strict JSON (ASCII, so no character in it can break the line)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False) + "\n"


def _finite(value: object) -> object:
    """``value`` with every non-finite float in it, nested in dicts, lists or tuples, replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class EventLog:
    """Appends events (dicts of JSON values) to ``path``, one line each, flushed per line."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = open(self.path, "w", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, event: dict) -> None:
        """Append ``event`` as one line of strict JSON; a non-finite float in it is written as null."""
        try:
            line = _json_line(event)
        except ValueError:  # a NaN or an infinity somewhere (strict JSON has neither): the rare, slower path
            line = _json_line(_finite(event))
        with self._lock:
            if self._file is None:
                return
            self._file.write(line)
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


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
