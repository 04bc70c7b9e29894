"""Waits between attempts to reopen a lost source: ``first`` seconds, doubling up to ``cap``.

The delay goes back to ``first`` only when ``reset()`` is called, which the caller does once data
flow again: a source that opens but then delivers nothing counts as one more failure, so its
retries slow down instead of restarting at the shortest delay on every "successful" open.
"""

from __future__ import annotations


class Backoff:
    """The next delay to wait (``next``), doubling each time, until ``reset``."""

    def __init__(self, first: float, cap: float) -> None:
        if not 0 < first <= cap:
            raise ValueError(f"back-off needs 0 < first <= cap, got {first} and {cap}")
        self.first, self.cap = first, cap
        self._delay = first

    def next(self) -> float:
        """The delay to wait before this attempt; the one after it is twice as long (up to ``cap``)."""
        delay = self._delay
        self._delay = min(2 * delay, self.cap)
        return delay

    def reset(self) -> None:
        """Data flow again: the next failure starts from ``first``."""
        self._delay = self.first
