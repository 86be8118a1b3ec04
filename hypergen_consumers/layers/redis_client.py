"""The package's own Redis clients (replay windows, replies, presence), built one way.

A Redis that restarted leaves every pooled connection dead, and redis-py notices only when
it uses one. Without a retry the first call on each stale connection failed: measured, the
restore of 1,000 presence entries after a restart stopped at 295 ("Connection closed by
server" killed it), and a handler reading presence answered ``handler_error`` once per
stale connection. So the pool is given redis-py's own ``Retry`` for connection errors
(a stale connection is dropped and the call made again on a fresh one); a timeout is not
retried, since every call is bounded already (``layers.bounded``). A ``retry`` of the
user's own in the host's options wins. This is the only retry of these clients: the stores
call Redis plainly and leave reconnecting to redis-py.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

__all__ = ["client_for", "LoopClients", "RETRIES"]

#: Attempts after the first on a connection error (with a short exponential backoff).
RETRIES = 3


def client_for(host: dict[str, Any]) -> Any:
    """A ``redis.asyncio.Redis`` for one channels-redis ``hosts`` entry (decoded), retrying on
    connection errors. Each event loop needs its own: callers keep one per loop (``LoopClients``)."""
    # redis and channels-redis are the optional [redis] extra: imported only for a Redis layer.
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


class LoopClients:
    """One client per event loop for one Redis host, and the Lua scripts registered with it.

    redis-py's connections belong to the loop that made them, and a process may run several
    loops (a sync ``group_send`` from a view thread runs one of its own).
    """

    def __init__(self, host: dict[str, Any]) -> None:
        self.host = host
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[Any, dict[str, Any]]] = (
            weakref.WeakKeyDictionary()
        )

    def _entry(self) -> tuple[Any, dict[str, Any]]:
        loop = asyncio.get_running_loop()
        entry = self._clients.get(loop)
        if entry is None:
            entry = self._clients[loop] = (client_for(self.host), {})
        return entry

    def client(self) -> Any:
        """This loop's client."""
        return self._entry()[0]

    def script(self, source: str) -> Any:
        """The Lua ``source`` registered with this loop's client (once per client)."""
        client, scripts = self._entry()
        script = scripts.get(source)
        if script is None:
            script = scripts[source] = client.register_script(source)
        return script

    async def aclose(self) -> None:
        """Close this loop's client (for short-lived loops, such as a sync presence() call)."""
        entry = self._clients.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[0].aclose(close_connection_pool=True)
