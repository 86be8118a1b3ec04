"""Where presence lives: in the process for the in-memory layer, in Redis for channels-redis.

A store keeps one entry per connection per group (``{"id", "key", "user", "meta", "at"}``)
and answers "who is in this group" for any process. Only the Redis store can outlive a
process, so only it needs heartbeats: each process writes ONE key with an expiry every
``HYPERGEN_CONSUMERS_PRESENCE_HEARTBEAT`` seconds, and an entry whose process key has
expired is dropped when the group is next read. So a process killed without cleanup leaves
every list within ``HYPERGEN_CONSUMERS_PRESENCE_EXPIRY`` seconds, and 100,000 connections
cost one heartbeat write per interval, not 100,000.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import weakref
from typing import Any

from channels.layers import InMemoryChannelLayer
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

__all__ = ["MemoryStore", "RedisStore", "store_for", "heartbeat_seconds", "expiry_seconds"]

DEFAULT_HEARTBEAT_SECONDS = 5.0
#: A dead process leaves presence() within this, and its survivors' on_presence within one
#: heartbeat more (20 s < the documented 30 s); three missed heartbeats, so a busy process is not dropped.
DEFAULT_EXPIRY_SECONDS = 15.0
#: Group hashes of rooms nobody visits again are collected after this long.
GROUP_KEY_SECONDS = 24 * 3600


def heartbeat_seconds() -> float:
    return float(getattr(settings, "HYPERGEN_CONSUMERS_PRESENCE_HEARTBEAT", DEFAULT_HEARTBEAT_SECONDS))


def expiry_seconds() -> float:
    expiry = float(getattr(settings, "HYPERGEN_CONSUMERS_PRESENCE_EXPIRY", DEFAULT_EXPIRY_SECONDS))
    if expiry <= heartbeat_seconds():
        msg = (
            f"HYPERGEN_CONSUMERS_PRESENCE_EXPIRY ({expiry:g}) must be longer than "
            f"HYPERGEN_CONSUMERS_PRESENCE_HEARTBEAT ({heartbeat_seconds():g}), or live processes "
            f"would vanish from presence between heartbeats; e.g. 2.5 times as long."
        )
        raise ImproperlyConfigured(msg)
    return expiry


class MemoryStore:
    """Presence for the in-memory layer: everything is in this one process."""

    in_process = True  # Answers at once: no timeout around its calls (layers.bounded_store).

    needs_heartbeat = False

    def __init__(self) -> None:
        self.process = secrets.token_hex(6)
        self._groups: dict[str, dict[str, dict[str, Any]]] = {}

    async def add(self, group: str, entry: dict[str, Any]) -> None:
        self._groups.setdefault(group, {})[entry["id"]] = entry

    async def remove(self, group: str, entry_id: str) -> None:
        members = self._groups.get(group, {})
        members.pop(entry_id, None)
        if not members:
            self._groups.pop(group, None)

    async def entries(self, group: str) -> tuple[list[dict[str, Any]], bool]:
        """The group's entries, and whether dead ones were dropped (never, in one process)."""
        return list(self._groups.get(group, {}).values()), False

    async def heartbeat(self, groups: list[str]) -> bool:  # pragma: no cover - never called
        return True

    async def aclose(self) -> None:
        pass


class RedisStore:
    """Presence in the channel layer's Redis (its first host), shared by every process."""

    needs_heartbeat = True
    pooled = True  # Its calls count against the process's share of Redis connections (layers.bounded).

    def __init__(self, host: dict[str, Any], prefix: str) -> None:
        self.host = host
        self.prefix = f"{prefix}:hc:presence"
        self.process = secrets.token_hex(6)
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def _client(self) -> Any:
        """One client per event loop: redis-py connections belong to the loop that made them."""
        from channels_redis.utils import create_pool
        from redis import asyncio as aioredis

        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = aioredis.Redis(connection_pool=create_pool(self.host))
            self._clients[loop] = client
        return client

    async def aclose(self) -> None:
        """Close this loop's client (for short-lived loops, such as a sync presence() call)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose(close_connection_pool=True)

    def _group_key(self, group: str) -> str:
        return f"{self.prefix}:g:{group}"

    def _process_key(self, process: str) -> str:
        return f"{self.prefix}:p:{process}"

    async def heartbeat(self, groups: list[str]) -> bool:
        """Say this process is alive (one key), and keep its groups' hashes from expiring.

        Returns False when the key had vanished since the last heartbeat (Redis restarted
        empty, or this process stalled past the expiry and others pruned its entries).
        """
        async with self._client().pipeline(transaction=False) as pipe:
            pipe.set(self._process_key(self.process), "1", ex=max(1, round(expiry_seconds())), get=True)
            for group in groups:
                pipe.expire(self._group_key(group), GROUP_KEY_SECONDS)
            results = await pipe.execute()
        return results[0] is not None

    async def add(self, group: str, entry: dict[str, Any]) -> None:
        field = f"{self.process}:{entry['id']}"
        async with self._client().pipeline(transaction=False) as pipe:
            pipe.hset(self._group_key(group), field, json.dumps(entry))
            pipe.expire(self._group_key(group), GROUP_KEY_SECONDS)
            await pipe.execute()

    async def remove(self, group: str, entry_id: str) -> None:
        await self._client().hdel(self._group_key(group), f"{self.process}:{entry_id}")

    async def entries(self, group: str) -> tuple[list[dict[str, Any]], bool]:
        """Live entries of ``group``; entries of processes whose heartbeat expired are deleted."""
        client = self._client()
        raw = await client.hgetall(self._group_key(group))
        if not raw:
            return [], False
        by_process: dict[str, list[tuple[bytes, bytes]]] = {}
        for field, value in raw.items():
            process = field.decode().split(":", 1)[0]
            by_process.setdefault(process, []).append((field, value))
        processes = sorted(by_process)
        alive = await client.mget([self._process_key(process) for process in processes])
        entries: list[dict[str, Any]] = []
        dead_fields: list[bytes] = []
        for process, is_alive in zip(processes, alive):
            if is_alive is None and process != self.process:
                dead_fields.extend(field for field, _ in by_process[process])
            else:
                entries.extend(json.loads(value) for _, value in by_process[process])
        if dead_fields:
            await client.hdel(self._group_key(group), *dead_fields)
        return entries, bool(dead_fields)


_stores: weakref.WeakKeyDictionary[Any, MemoryStore | RedisStore] = weakref.WeakKeyDictionary()


def store_for(layer: Any, owner: str) -> MemoryStore | RedisStore:
    """The presence store of ``layer`` (one per layer object, so one per process)."""
    store = _stores.get(layer)
    if store is None:
        store = _make_store(layer, owner)
        _stores[layer] = store
    return store


def _make_store(layer: Any, owner: str) -> MemoryStore | RedisStore:
    if isinstance(layer, InMemoryChannelLayer):
        return MemoryStore()
    try:
        from channels_redis.core import RedisChannelLayer
        from channels_redis.pubsub import RedisPubSubChannelLayer
    except ImportError:  # pragma: no cover - channels-redis is an optional extra
        pass
    else:
        if isinstance(layer, RedisChannelLayer):
            return RedisStore(layer.hosts[0], layer.prefix)
        if isinstance(layer, RedisPubSubChannelLayer):
            pubsub: Any = layer  # Its __getattr__ proxies to a shard, which confuses type checkers.
            return RedisStore(pubsub._shards[0].host, pubsub.prefix)
    msg = (
        f"{owner}.presence = True needs channels' InMemoryChannelLayer or a channels_redis layer "
        f"(RedisChannelLayer or RedisPubSubChannelLayer) to keep presence in; the channel layer is "
        f"{type(layer).__name__}. Use one of those, or set presence = False."
    )
    raise ImproperlyConfigured(msg)
