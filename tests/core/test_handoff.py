"""The one hand-off between threads: drop-oldest or wait for room, close, the dropped count."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from realtime.capture.video_source import Frame
from realtime.core.clock import now
from realtime.core.handoff import POLL_S, Handoff


def test_drops_the_oldest_when_full_and_counts_it() -> None:
    q: Handoff[Frame] = Handoff(maxlen=2)
    img = np.zeros((2, 2, 3), np.uint8)
    for i in range(5):
        q.put(Frame(float(i), img, i))
    q.close()
    assert q.dropped == 3
    assert [q.get().index, q.get().index, q.get()] == [3, 4, None]


def test_waits_for_room_and_gives_up_on_stop() -> None:
    q: Handoff[int] = Handoff(maxlen=1)
    stop = threading.Event()
    assert q.put(1, wait=True, stop=stop)
    threading.Timer(2 * POLL_S, stop.set).start()
    t0 = now()
    assert not q.put(2, wait=True, stop=stop)  # full until stop: not added, nothing dropped
    assert now() - t0 < 1.0
    assert q.dropped == 0 and q.take_all() == [1] and len(q) == 0


def test_get_times_out_then_ends_after_close() -> None:
    q: Handoff[int] = Handoff(maxlen=3)
    assert q.get(timeout=POLL_S) is None and not q.closed
    q.put(7)
    q.close()
    assert q.closed and q.get() == 7 and q.get() is None


def test_holds_at_least_one_item() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Handoff(0)
