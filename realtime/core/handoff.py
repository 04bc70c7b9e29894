"""Handing items between threads through a bounded ``queue.Queue``."""

from __future__ import annotations

import queue
import threading
from typing import TypeVar

T = TypeVar("T")


def put_or_drop(q: queue.Queue[T], item: T, wait: bool, stop: threading.Event, poll_s: float) -> int:
    """Queue ``item``. When the queue is full: wait for room (``wait``, looking at ``stop`` every
    ``poll_s``), or drop the oldest item to make room. Returns how many items were dropped (0 or 1);
    meant for one producer, so after taking one out there is room."""
    if wait:
        while not stop.is_set():
            try:
                q.put(item, timeout=poll_s)
                return 0
            except queue.Full:
                pass
        return 0
    try:
        q.put_nowait(item)
        return 0
    except queue.Full:
        try:
            q.get_nowait()
            dropped = 1
        except queue.Empty:
            dropped = 0
        q.put_nowait(item)
        return dropped
