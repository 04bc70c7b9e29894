"""The one monotonic clock every sample's timestamp is taken from."""

import time


def now() -> float:
    """Seconds on the shared monotonic clock."""
    return time.monotonic()
