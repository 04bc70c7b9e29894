"""Silencing what native libraries print straight to the process's stderr.

MediaPipe (absl/glog), TensorFlow Lite, FFmpeg and Kaldi write their own log lines to file
descriptor 2, beneath Python's logging, so ``--log-level`` cannot reach them. ``silence_native_stderr``
points descriptor 2 at /dev/null and gives Python's ``sys.stderr`` a duplicate of the original one:
Python's messages, logging and tracebacks still reach the terminal; the native lines do not.
"""

from __future__ import annotations

import faulthandler
import os
import sys

_silenced = False


def silence_native_stderr() -> None:
    """Route native writes to fd 2 into /dev/null, keeping Python's stderr on the terminal (once)."""
    global _silenced
    if _silenced:
        return
    sys.stderr.flush()
    kept = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = os.fdopen(kept, "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace")
    if faulthandler.is_enabled():  # a crash report goes where the user can read it
        faulthandler.enable(sys.stderr)
    _silenced = True
