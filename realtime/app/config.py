"""The app's configuration (``AppConfig``, what ``realtime.cli`` parses) and its tunables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

WINDOW_TITLE = "dmd-realtime (q or Esc to quit)"
JOIN_S = 1.0  # all threads together must end within this after stop()
MIC_SILENT_S = 2.0  # a live microphone that delivers nothing this long is treated as gone
BACKOFF_S = (0.5, 8.0)  # first and longest wait between reconnection attempts
FLOWING_S = 1.0  # a reopened source counts as working once it has delivered frames this long
LOADER_JOIN_S = 60.0  # longest the exit waits for a speech model still loading
# audio the ASR may fall behind before its oldest chunks are dropped: more than the stall of a renewed
# recogniser composing its graph (seconds on 2 busy cores, see StreamingASR), within text_window_s
ASR_QUEUE_S = 6.0
WORDS_SHOWN = 12
STATS_KEPT = 100_000  # latency samples kept for the summary (bounded memory on long runs)


@dataclass(frozen=True)
class AppConfig:
    """What ``realtime.cli`` parses; see ``main.py --help`` for each field."""

    video: int | str  # camera index, file, URL or GStreamer pipeline
    mic: str | None = None  # None: a file's own audio, else the default microphone
    audio: bool = True
    asr: bool = True
    vosk_model: str | None = None
    realtime: bool = True
    checkpoint: str = "default"
    backend: str = "torch"
    engine_file: str | None = None
    device: str = "cpu"
    threads: int | None = 1
    precision: str = "float32"  # --backend fused: the matrix products' arithmetic
    server: str | None = None  # grpc://HOST:PORT of a Triton server running the recognizer (python -m serve)
    headless: bool = False
    record: Path | None = None
    events: Path | None = None
    save_windows: Path | None = None
    max_seconds: float | None = None
