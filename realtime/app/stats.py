"""What a run measured (``Stats``): latencies, frames, inferences, drops."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from realtime.app.config import STATS_KEPT


@dataclass
class Stats:
    """What a run measured (``bench/pipeline.py`` prints it)."""

    glass_ms: deque = field(default_factory=lambda: deque(maxlen=STATS_KEPT))  # capture -> shown
    update_ms: deque = field(default_factory=lambda: deque(maxlen=STATS_KEPT))  # window end -> result
    model_ms: deque = field(default_factory=lambda: deque(maxlen=STATS_KEPT))
    asr_lag_ms: deque = field(default_factory=lambda: deque(maxlen=STATS_KEPT))  # clock -> end of the audio decoded
    shown: int = 0  # frames rendered and shown (or recorded)
    first_shown: float | None = None
    last_shown: float | None = None
    inferences: int = 0
    hops_skipped: int = 0  # hops whose window was not taken because inference was late
    display_dropped: int = 0
    capture_dropped: int = 0
    asr_dropped: int = 0
    asr_renewals: int = 0  # recognisers the ASR renewed to bound its memory (see StreamingASR)
    failed_windows: int = 0  # windows whose model output was not finite (reported, not shown)
    join_s: float = 0.0  # how long the threads took to end after stop()

    @property
    def fps(self) -> float:
        if self.first_shown is None or self.last_shown is None or self.last_shown <= self.first_shown:
            return 0.0
        return (self.shown - 1) / (self.last_shown - self.first_shown)
