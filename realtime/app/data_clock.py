"""When windows can be taken (``DataClock``): the shared clock live, the data's own time as fast as possible."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable

from realtime.core.clock import now
from realtime.core.handoff import POLL_S


class DataClock:
    """Up to when windows can be taken. Live: the shared clock. As fast as possible: the time up to
    which every running stream has delivered (``advance``; ``finish`` when one ends); producers
    ``hold`` while they are more than ``lead_s`` ahead of the inference (``consumed``)."""

    def __init__(self, live: bool, streams: Iterable[str], start: float, lead_s: float) -> None:
        self.live, self.lead_s = live, lead_s
        self._t = {s: -math.inf for s in streams}
        self._last = -math.inf  # latest finite time any stream reached
        self._consumed = start
        self._cond = threading.Condition()

    def advance(self, stream: str, t: float) -> None:
        with self._cond:
            self._t[stream] = max(self._t[stream], t)
            if t < math.inf:
                self._last = max(self._last, t)
            self._cond.notify_all()

    def finish(self, stream: str) -> None:
        self.advance(stream, math.inf)

    def time(self) -> float:
        if self.live:
            return now()
        with self._cond:
            return min(self._t.values(), default=math.inf)

    def last(self) -> float:
        """Latest time any stream reached (the end of the data once all have finished)."""
        with self._cond:
            return self._last

    @property
    def finished(self) -> bool:
        with self._cond:
            return all(t == math.inf for t in self._t.values())

    def wait_for(self, t: float, stop: threading.Event) -> bool:
        """Wait (at most POLL_S) until the data reach ``t``; True when they have."""
        if self.live:
            stop.wait(min(POLL_S, max(0.0, t - now())))
            return now() >= t
        with self._cond:
            if self.time() < t:
                self._cond.wait(POLL_S)
        return self.time() >= t

    def consumed(self, t: float) -> None:
        with self._cond:
            self._consumed = t
            self._cond.notify_all()

    def hold(self, t: float, stop: threading.Event) -> None:
        """Producers, as fast as possible: wait while ``t`` is more than ``lead_s`` ahead of the inference."""
        if self.live:
            return
        with self._cond:
            while t > self._consumed + self.lead_s and not stop.is_set():
                self._cond.wait(POLL_S)
