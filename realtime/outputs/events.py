"""The app's event log (``--events FILE``): one strict JSON object per line (a NaN or infinite
number is written as null), written and flushed as it happens (a crash loses at most the line being
written), from any thread; closed on every exit path.
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import IO


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
