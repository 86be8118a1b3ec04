"""Who is connected to a consumer's group, across processes, and telling the group when it changes.

``presence = True`` on a consumer makes each accepted connection add an entry to its
group's presence (see ``presence_stores``) and remove it when it ends, whatever ended it.
``ChatRoom.presence(...)`` reads the list from the store, so every process sees the same.

``on_presence`` is where cost could explode: 1,000 clients reconnecting at once would
render 1,000 x 1,000 times if every join re-rendered every member. Instead each process
refreshes a group at most once per window and wakes its local connections; a connection
still rendering a previous update renders once more, with the latest list, not once per
change. The window grows with the group (``throttle x local connections / 100``), which
caps presence renders at about ``100 / HYPERGEN_CONSUMERS_PRESENCE_THROTTLE`` per second
per group and process, however fast people come and go.

Processes learn of changes elsewhere through one channel per process (not per connection)
that joins a companion group of each group it has connections in.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import weakref
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .groups import digest
from .layers import bounded
from .presence_stores import MemoryStore, RedisStore, heartbeat_seconds, store_for

__all__ = ["join", "leave", "presence_list", "apresence_list", "build_presence", "throttle_seconds"]

logger = logging.getLogger("hypergen_consumers")

DEFAULT_THROTTLE_SECONDS = 0.1
#: A window is ``throttle`` for up to this many local connections, and grows in proportion beyond.
CONNECTIONS_PER_WINDOW = 100
CHANGED_EVENT = "hypergen_consumers.presence_changed"
COMPANION_PREFIX = "hc-presence-"


def throttle_seconds() -> float:
    seconds = float(getattr(settings, "HYPERGEN_CONSUMERS_PRESENCE_THROTTLE", DEFAULT_THROTTLE_SECONDS))
    if seconds <= 0:
        msg = (
            f"HYPERGEN_CONSUMERS_PRESENCE_THROTTLE must be a positive number of seconds (it is how often a "
            f"group re-renders presence at most), not {seconds!r}; the default is {DEFAULT_THROTTLE_SECONDS}."
        )
        raise ImproperlyConfigured(msg)
    return seconds


def companion_group(group: str) -> str:
    """The group that the processes with connections in ``group`` listen on (a valid, reserved name)."""
    return COMPANION_PREFIX + digest(group)


def build_presence(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries (one per connection) -> ``[{"key", "user", "metas"}]``, one item per user, oldest first."""
    by_key: dict[str, dict[str, Any]] = {}
    for entry in sorted(entries, key=lambda e: (e["at"], e["id"])):
        item = by_key.setdefault(entry["key"], {"key": entry["key"], "user": entry["user"], "metas": []})
        item["metas"].append(entry["meta"])
    return list(by_key.values())


def _diff(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The metas of ``new`` that ``old`` lacks, grouped by key (Phoenix's joins/leaves shape)."""
    seen = {meta["id"] for item in old for meta in item["metas"]}
    changed = []
    for item in new:
        metas = [meta for meta in item["metas"] if meta["id"] not in seen]
        if metas:
            changed.append({**item, "metas": metas})
    return changed


class _Hub:
    """This process's presence bookkeeping for one channel layer."""

    def __init__(self, layer: Any, store: MemoryStore | RedisStore) -> None:
        self.layer = layer
        self.store = store
        self.local: dict[str, dict[str, Any]] = {}  # group -> entry id -> connection
        self.watched: set[str] = set()  # groups whose members have an on_presence hook
        self.snapshots: dict[str, list[dict[str, Any]]] = {}
        self.refreshing: dict[str, asyncio.Task[None]] = {}
        self.dirty: set[str] = set()
        self.channel: str | None = None
        self.subscribed: set[str] = set()
        self.started: asyncio.Future[None] | None = None
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start heartbeats and the process's change listener (Redis only), once, however many join at once."""
        if not self.store.needs_heartbeat:
            return
        if self.started is None or (self.started.done() and self.started.exception() is not None):
            self.started = asyncio.ensure_future(self._start())  # First time, or Redis was down then.
        await asyncio.shield(self.started)

    async def _start(self) -> None:
        await self.store.heartbeat([])
        self.channel = self.channel or await self.layer.new_channel()
        self.tasks.append(asyncio.ensure_future(self._heartbeats()))
        self.tasks.append(asyncio.ensure_future(self._listen()))

    async def subscribe(self, group: str) -> None:
        """Listen for changes of ``group`` made by other processes (once per group, not per connection)."""
        if self.channel is not None and group not in self.subscribed:
            self.subscribed.add(group)
            await bounded(self.layer.group_add(companion_group(group), self.channel))

    async def unsubscribe(self, group: str) -> None:
        if self.channel is not None and group in self.subscribed:
            self.subscribed.discard(group)
            await bounded(self.layer.group_discard(companion_group(group), self.channel))

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(heartbeat_seconds())
            groups = list(self.local)
            try:
                if not await self.store.heartbeat(groups):
                    await self._restore()
                for group in groups:  # Notice processes that died without saying goodbye.
                    _, pruned = await self.store.entries(group)
                    if pruned:
                        await self.announce(group)
            except Exception:
                logger.exception("presence heartbeat failed; retrying in %gs", heartbeat_seconds())

    async def _restore(self) -> None:
        """Our heartbeat key had vanished (Redis restarted empty, or we stalled past the expiry):
        write this process's entries and subscriptions again, and tell the groups."""
        logger.warning("presence: this process's heartbeat had expired in Redis; re-adding its connections")
        for group, members in list(self.local.items()):
            for connection in list(members.values()):
                await self.store.add(group, connection._presence_entry)
            if group in self.subscribed:
                await bounded(self.layer.group_add(companion_group(group), self.channel))
            await self.announce(group)

    async def _listen(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("presence listener: channel layer receive failed; retrying")
                await asyncio.sleep(1)
                continue
            if message.get("type") == CHANGED_EVENT and message.get("group") in self.local:
                self.mark_dirty(message["group"])

    async def announce(self, group: str) -> None:
        """Tell every process with connections in ``group`` that it changed."""
        if isinstance(self.layer, InMemoryChannelLayer):
            self.mark_dirty(group)
            return
        await bounded(self.layer.group_send(companion_group(group), {"type": CHANGED_EVENT, "group": group}))

    def mark_dirty(self, group: str) -> None:
        if group not in self.watched:
            return
        self.dirty.add(group)
        if group not in self.refreshing:
            self.refreshing[group] = asyncio.ensure_future(self._refresh(group))

    async def _refresh(self, group: str) -> None:
        """Re-read ``group`` once per window while it keeps changing; wake its local connections."""
        try:
            while group in self.dirty:
                window = throttle_seconds() * max(1.0, len(self.local.get(group, ())) / CONNECTIONS_PER_WINDOW)
                await asyncio.sleep(window)
                self.dirty.discard(group)
                entries, _ = await self.store.entries(group)
                self.snapshots[group] = build_presence(entries)
                for connection in list(self.local.get(group, {}).values()):
                    _wake(connection)
        except Exception:
            logger.exception("presence refresh of %r failed", group)
        finally:
            self.refreshing.pop(group, None)


def _base_presence_meta() -> Any:
    from .consumer import HypergenConsumer

    return HypergenConsumer.presence_meta


_hubs: weakref.WeakKeyDictionary[Any, _Hub] = weakref.WeakKeyDictionary()


def _hub(layer: Any, owner: str) -> _Hub:
    hub = _hubs.get(layer)
    if hub is None:
        hub = _hubs[layer] = _Hub(layer, store_for(layer, owner))
    return hub


async def _meta(connection: Any) -> dict[str, Any]:
    hook = connection.presence_meta
    if type(connection).presence_meta is _base_presence_meta():
        return {"id": connection._presence_id}  # Not overridden: no worker-thread hop per handshake.
    if asyncio.iscoroutinefunction(hook):
        extra = await hook(connection.request)
    else:
        extra = await database_sync_to_async(hook)(connection.request)
    return {**(extra or {}), "id": connection._presence_id}


async def join(connection: Any) -> None:
    """Add an accepted connection to its group's presence and tell the group.

    A store that cannot be reached (Redis down) is logged and the connection stays up,
    absent from presence, as it would be from a broadcast sent while Redis was down.
    """
    cls = type(connection)
    if not cls._presence_enabled:
        return
    hub = _hub(connection.channel_layer, cls.__name__)
    try:
        await _join(connection, hub)
    except Exception:
        logger.exception("%s: could not add a connection to presence of %r", cls.__name__, connection.group)


async def _join(connection: Any, hub: _Hub) -> None:
    cls = type(connection)
    user = connection.request.user
    connection._presence_id = secrets.token_hex(8)
    authenticated = bool(getattr(user, "is_authenticated", False))
    entry = {
        "id": connection._presence_id,
        "key": f"user:{user.pk}" if authenticated else f"anon:{connection._presence_id}",
        "user": user.get_username() if authenticated else None,
        "meta": await _meta(connection),
        "at": time.time(),
    }
    group = connection.group
    await hub.start()
    hub.local.setdefault(group, {})[connection._presence_id] = connection
    connection._presence_hub = hub
    if cls._on_presence is not None:
        hub.watched.add(group)
        connection._presence_seen = []
        connection._presence_dirty = False
        connection._presence_task = None
    if cls._on_presence is not None:
        await hub.subscribe(group)
    connection._presence_entry = entry
    await hub.store.add(group, entry)
    await hub.announce(group)


async def leave(connection: Any) -> None:
    """Remove a connection from presence (idempotent; runs however the connection ended)."""
    hub = getattr(connection, "_presence_hub", None)
    if hub is None:
        return
    connection._presence_hub = None
    task = getattr(connection, "_presence_task", None)
    if task is not None:
        task.cancel()
    group = connection.group
    members = hub.local.get(group, {})
    members.pop(connection._presence_id, None)
    try:
        if not members:
            hub.local.pop(group, None)
            hub.watched.discard(group)
            hub.snapshots.pop(group, None)
            await hub.unsubscribe(group)
        await hub.store.remove(group, connection._presence_id)
        await hub.announce(group)
    except Exception:
        logger.exception("%s: could not remove a connection from presence of %r", type(connection).__name__, group)


def _wake(connection: Any) -> None:
    """Ask a connection to render presence; one pending render absorbs any number of wakes."""
    connection._presence_dirty = True
    if connection._presence_task is None:
        connection._presence_task = asyncio.ensure_future(_render(connection))


async def _render(connection: Any) -> None:
    try:
        while connection._presence_dirty and connection._presence_hub is not None:
            connection._presence_dirty = False
            present = connection._presence_hub.snapshots.get(connection.group, [])
            joins = _diff(connection._presence_seen, present)
            leaves = _diff(present, connection._presence_seen)
            connection._presence_seen = present
            if joins or leaves:
                async with connection.rejections():
                    await connection._run(type(connection)._on_presence, [present, joins, leaves], to_group=False)
    finally:
        connection._presence_task = None


async def apresence_list(cls: Any, group: str) -> list[dict[str, Any]]:
    """``[{"key", "user", "metas"}]`` of ``group``, read from the store every process shares."""
    from .layers import require_layer

    layer = require_layer(cls.channel_layer_alias, who=f"{cls.__name__}.presence()")
    entries, _ = await store_for(layer, cls.__name__).entries(group)
    return build_presence(entries)


def presence_list(cls: Any, group: str) -> list[dict[str, Any]]:
    """Sync twin of ``apresence_list`` for views and tasks (closes what it opened)."""
    from .layers import require_layer

    async def read() -> list[dict[str, Any]]:
        store = store_for(require_layer(cls.channel_layer_alias, who=f"{cls.__name__}.presence()"), cls.__name__)
        try:
            return build_presence((await store.entries(group))[0])
        finally:
            await store.aclose()

    return async_to_sync(read)()
