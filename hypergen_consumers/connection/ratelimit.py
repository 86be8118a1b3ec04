"""A per-connection token bucket: HYPERGEN_CONSUMERS_RATE_LIMIT messages per second.

Off unless the setting is a positive number. The bucket holds one second's worth of
messages, so short bursts pass and a client flooding the socket gets ``rate_limited``
errors for the excess while its in-budget messages keep working.
"""

from __future__ import annotations

import time

__all__ = ["RateLimiter"]


class RateLimiter:
    """A token bucket refilled at ``per_second`` and holding ``capacity`` (default: one second's worth)."""

    def __init__(self, per_second: float, capacity: float | None = None) -> None:
        self.per_second = per_second
        self.capacity = per_second if capacity is None else capacity
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.per_second)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False
