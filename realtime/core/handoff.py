"""The one bounded hand-off between threads, used at every thread boundary, and the one poll interval.

A ``Handoff`` is a thread-safe FIFO of at most ``maxlen`` items. ``put`` either drops the oldest item
when it is full (live data: counted in ``dropped``) or, with ``wait=True``, waits for room (files
read as fast as possible: nothing is lost), looking at a stop flag every ``POLL_S``. ``close``
marks the end: ``get`` then hands out what is left, and None once it is empty.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

from realtime.core.clock import now

T = TypeVar("T")
POLL_S = 0.05  # longest any blocked wait in the app goes without looking at its stop flag


class Handoff(Generic[T]):
    """Bounded FIFO between a producer and a consumer thread: drop-oldest or wait, close, a dropped count."""

    def __init__(self, maxlen: int) -> None:
        if maxlen < 1:
            raise ValueError(f"a hand-off holds at least 1 item, got maxlen {maxlen}")
        self.maxlen = maxlen
        self.dropped = 0  # items dropped because the consumer fell behind
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, item: T, wait: bool = False, stop: threading.Event | None = None) -> bool:
        """Add ``item``; when full, drop the oldest (counted) or, with ``wait``, wait for room. False when
        ``stop`` was set while waiting (``item`` is not added)."""
        with self._cond:
            while wait and len(self._items) >= self.maxlen:
                if stop is not None and stop.is_set():
                    return False
                self._cond.wait(POLL_S)
            if len(self._items) >= self.maxlen:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> T | None:
        """The oldest item; None when closed and empty, or when ``timeout`` seconds pass first."""
        deadline = None if timeout is None else now() + timeout
        with self._cond:
            while not self._items and not self._closed:
                left = None if deadline is None else deadline - now()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            item = self._items.popleft() if self._items else None
            self._cond.notify_all()
            return item

    def take_all(self) -> list[T]:
        """Everything queued now, oldest first, without waiting."""
        with self._cond:
            items = list(self._items)
            self._items.clear()
            self._cond.notify_all()
            return items

    def close(self) -> None:
        """No more items will come: ``get`` returns what is left, then None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
