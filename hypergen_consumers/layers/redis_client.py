"""The package's own Redis clients (replay windows, replies, presence), built one way.

A Redis that restarted leaves every pooled connection dead, and redis-py notices only when
it uses one. Without a retry the first call on each stale connection failed: measured, the
restore of 1,000 presence entries after a restart stopped at 295 ("Connection closed by
server" killed it), and a handler reading presence answered ``handler_error`` once per
stale connection. So the pool is given redis-py's own ``Retry`` for connection errors
(a stale connection is dropped and the call made again on a fresh one); a timeout is not
retried, since every call is bounded already (``layers.bounded``). A ``retry`` of the
user's own in the host's options wins.
"""

from __future__ import annotations

from typing import Any

__all__ = ["client_for", "RETRIES"]

#: Attempts after the first on a connection error (with a short exponential backoff).
RETRIES = 3


def client_for(host: dict[str, Any]) -> Any:
    """A ``redis.asyncio.Redis`` for one channels-redis ``hosts`` entry (decoded), retrying on
    connection errors. Each event loop needs its own: callers keep one per loop."""
    from channels_redis.utils import create_pool
    from redis import asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError

    # Only connection errors: Retry's default also retries timeouts, which would multiply a
    # silent (black-holed) Redis's wait by RETRIES + 1.
    retry = Retry(ExponentialBackoff(cap=0.5, base=0.02), RETRIES, supported_errors=(RedisConnectionError,))
    retrying = {"retry": retry, "retry_on_error": [RedisConnectionError]}
    return aioredis.Redis(connection_pool=create_pool({**retrying, **host}))
