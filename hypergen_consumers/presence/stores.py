"""Where presence lives: in the process for the in-memory layer, in Redis for channels-redis.

A store keeps one entry per connection per group (``{"id", "key", "user", "meta", "at"}``)
and answers "who is in this group" for any process. Only the Redis store can outlive a
process, so only it needs heartbeats: each process writes ONE key with an expiry every
``HYPERGEN_CONSUMERS_PRESENCE_HEARTBEAT`` seconds, and an entry whose process key has
expired is dropped when the group is next read. So a process killed without cleanup leaves
every list within ``HYPERGEN_CONSUMERS_PRESENCE_EXPIRY`` seconds, and 100,000 connections
cost one heartbeat write per interval, not 100,000.

What a heartbeat reads does not grow with the number of rooms either: a process learns
that another one died from the set of processes (one read for all), and that a room changed
from its version counter (one read for all watched rooms), and only then reads those rooms.
Before, each heartbeat re-read every room: 500 quiet one-member rooms cost 500 Redis
commands/s (bench/scale.py, presence).

Each channel layer has one store, kept by its backend (``layers.backend``), which decides
which kind and where its Redis is.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any, TypeAlias

from hypergen_consumers import conf
from hypergen_consumers.layers.redis_client import LoopClients

__all__ = ["MemoryStore", "RedisStore", "PresenceStore"]

#: Group hashes of rooms nobody visits again are collected after this long.
GROUP_KEY_SECONDS = 24 * 3600


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

    async def newly_dead(self) -> list[str]:  # pragma: no cover - never called (one process)
        return []

    async def changed(self, groups: list[str]) -> list[str]:  # pragma: no cover - never called
        return []

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
        #: Its own clients, not the replay window's: a sync presence() call closes its loop's.
        self._clients = LoopClients(host)
        self._kept_until: dict[str, float] = {}  # group -> until when its hash's expiry was last pushed
        self._dead: dict[str, float] = {}  # process -> when this process first found it dead
        self._versions: dict[str, bytes | None] = {}  # group -> the version last seen

    def _client(self) -> Any:
        return self._clients.client()

    async def aclose(self) -> None:
        """Close this loop's client (for short-lived loops, such as a sync presence() call)."""
        await self._clients.aclose()

    def _group_key(self, group: str) -> str:
        return f"{self.prefix}:g:{group}"

    def _process_key(self, process: str) -> str:
        return f"{self.prefix}:p:{process}"

    def _version_key(self, group: str) -> str:
        return f"{self.prefix}:v:{group}"

    def _processes_key(self) -> str:
        return f"{self.prefix}:processes"

    async def heartbeat(self, groups: list[str]) -> bool:
        """Say this process is alive (one key), and keep its groups' hashes from expiring.

        Returns False when the key had vanished since the last heartbeat (Redis restarted
        empty, or this process stalled past the expiry and others pruned its entries). A
        group's expiry is pushed back once an hour, not every heartbeat.
        """
        now = time.monotonic()
        async with self._client().pipeline(transaction=False) as pipe:
            pipe.set(self._process_key(self.process), "1", ex=max(1, round(conf.current().presence_expiry)), get=True)
            pipe.sadd(self._processes_key(), self.process)
            for group in groups:
                if self._kept_until.get(group, 0.0) < now + GROUP_KEY_SECONDS - 3600:
                    self._kept_until[group] = now + GROUP_KEY_SECONDS
                    pipe.expire(self._group_key(group), GROUP_KEY_SECONDS)
                    pipe.expire(self._version_key(group), GROUP_KEY_SECONDS)
            pipe.expire(self._processes_key(), GROUP_KEY_SECONDS)
            results = await pipe.execute()
        for group in set(self._kept_until) - set(groups):
            del self._kept_until[group]
        if results[0] is None:
            self._kept_until.clear()  # Redis may have lost them all: push every expiry again.
        return results[0] is not None

    async def newly_dead(self) -> list[str]:
        """Processes whose heartbeat expired since this process last asked (one read for all).

        Each process reads its own rooms when it learns of a death, so every process's pages
        hear of it; a process dead for an hour is struck from the set.
        """
        client = self._client()
        processes = sorted(name.decode() for name in await client.smembers(self._processes_key()))
        others = [process for process in processes if process != self.process]
        alive = await client.mget([self._process_key(process) for process in others]) if others else []
        now, found = time.monotonic(), []
        for process, is_alive in zip(others, alive):
            if is_alive is not None:
                self._dead.pop(process, None)
            elif process not in self._dead:
                self._dead[process] = now
                found.append(process)
            elif self._dead[process] < now - 3600:
                await client.srem(self._processes_key(), process)
                del self._dead[process]
        return found

    async def changed(self, groups: list[str]) -> list[str]:
        """Which of ``groups`` changed since this process last asked (one read for all of them).

        Change news travels through the layer, and the pub/sub layer delivers at most once:
        this is how a lost change is still seen within a heartbeat."""
        if not groups:
            return []
        versions = await self._client().mget([self._version_key(group) for group in groups])
        seen = self._versions  # A room seen for the first time rendered when its connection joined.
        moved = [group for group, version in zip(groups, versions) if group in seen and seen[group] != version]
        self._versions = dict(zip(groups, versions))
        return moved

    async def add(self, group: str, entry: dict[str, Any]) -> None:
        field = f"{self.process}:{entry['id']}"
        async with self._client().pipeline(transaction=False) as pipe:
            pipe.hset(self._group_key(group), field, json.dumps(entry))
            pipe.expire(self._group_key(group), GROUP_KEY_SECONDS)
            pipe.incr(self._version_key(group))
            pipe.expire(self._version_key(group), GROUP_KEY_SECONDS)
            await pipe.execute()
        self._kept_until[group] = time.monotonic() + GROUP_KEY_SECONDS

    async def remove(self, group: str, entry_id: str) -> None:
        async with self._client().pipeline(transaction=False) as pipe:
            pipe.hdel(self._group_key(group), f"{self.process}:{entry_id}")
            pipe.incr(self._version_key(group))
            await pipe.execute()

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
            async with client.pipeline(transaction=False) as pipe:
                pipe.hdel(self._group_key(group), *dead_fields)
                pipe.incr(self._version_key(group))
                await pipe.execute()
        return entries, bool(dead_fields)


#: A layer's presence store (see ``layers.backend``).
PresenceStore: TypeAlias = MemoryStore | RedisStore
