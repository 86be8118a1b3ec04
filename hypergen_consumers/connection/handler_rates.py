"""Per-handler rate limits: ``@handler(rate="5/s")``, or ``rate`` on the class for every handler.

A rate is ``"<count>/<unit>"`` with unit ``s``, ``m`` or ``h`` (``"5/s"``, ``"100/m"``). Each
connection keeps one token bucket per limited handler, holding ``count`` calls and refilled at
``count`` per unit, so a burst up to ``count`` passes and a steady stream is held to the rate.
Past it the sender gets ``rate_limited`` for that handler only: its other handlers, the other
connections of its group and other users keep their own buckets. Runs a ``group_send`` makes
are the server's doing and are never limited.

The string is parsed once, when the class is made; a malformed one raises
ImproperlyConfigured naming the class and the handler.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from hypergen_consumers.connection.ratelimit import RateLimiter

__all__ = ["HandlerLimits", "Rate", "parse_rate"]

_RATE = re.compile(r"^\s*(?P<count>\d{1,9})\s*/\s*(?P<unit>s|m|h)\s*$")
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_UNIT_NAMES = {"s": "second", "m": "minute", "h": "hour"}


@dataclass(frozen=True)
class Rate:
    """``count`` calls per ``seconds``, as written (``text``) for messages."""

    count: int
    seconds: float
    text: str

    def describe(self) -> str:
        unit = _UNIT_NAMES[self.text.strip()[-1]]
        return f"{self.count} call{'s' if self.count != 1 else ''} per {unit}"


def parse_rate(where: str, value: Any) -> Rate | None:
    """``value`` (``"5/s"``, ``"100/m"``, ``"10/h"`` or None) as a Rate; else ImproperlyConfigured."""
    if value is None:
        return None
    match = _RATE.match(value) if isinstance(value, str) else None
    if match is None or int(match.group("count")) < 1:
        msg = (
            f'{where}: rate must be a string "<count>/<unit>" with a count of 1 or more and unit '
            f's, m or h (e.g. rate="5/s" or rate="100/m"), or None for no limit; got {value!r}.'
        )
        raise ImproperlyConfigured(msg)
    return Rate(int(match.group("count")), _UNIT_SECONDS[match.group("unit")], value.strip())


class HandlerLimits:
    """One connection's buckets, one per limited handler, made on its first call."""

    def __init__(self) -> None:
        self._buckets: dict[str, RateLimiter] = {}

    def allow(self, name: str, rate: Rate) -> bool:
        """Take one call of handler ``name`` from its bucket; False when it is empty."""
        bucket = self._buckets.get(name)
        if bucket is None:
            bucket = self._buckets[name] = RateLimiter(rate.count / rate.seconds, capacity=rate.count)
        return bucket.allow()
