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
that joins a companion group of each group it has connections in (see ``presence_hub``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

from asgiref.sync import async_to_sync

from hypergen_consumers.connection.executor import handler_timeout
from hypergen_consumers.layers.backend import backend_for
from hypergen_consumers.layers.calls import bounded_store, require_layer
from hypergen_consumers.presence.hub import Hub, build_presence

if TYPE_CHECKING:
    from hypergen_consumers.connection.state import ConnectionRecord
    from hypergen_consumers.declaring.handlers import HandlerSpec

__all__ = ["PresenceMember", "join", "leave", "presence_list", "apresence_list", "build_presence"]

logger = logging.getLogger("hypergen_consumers")


class PresenceMember(Protocol):
    """What presence needs from a connection: who and where it is, its record (its
    ``presence`` part; ``limits.lane`` runs ``presence_meta``), and a run for ``on_presence``."""

    _hc: ConnectionRecord

    @property
    def request(self) -> Any: ...
    @property
    def group(self) -> str: ...
    @property
    def channel_layer(self) -> Any: ...
    def rejections(self) -> AbstractAsyncContextManager[None]: ...
    async def _run(self, spec: HandlerSpec, args: list[Any], *, to_group: bool | str) -> None: ...


def _diff(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The metas of ``new`` that ``old`` lacks, grouped by key (Phoenix's joins/leaves shape)."""
    seen = {meta["id"] for item in old for meta in item["metas"]}
    changed = []
    for item in new:
        metas = [meta for meta in item["metas"] if meta["id"] not in seen]
        if metas:
            changed.append({**item, "metas": metas})
    return changed


async def _meta(connection: PresenceMember) -> dict[str, Any]:
    """The connection's presence meta: ``presence_meta``'s dict, and its id.

    A ``def presence_meta`` runs in the handlers' worker pool with the handlers' timeout, not
    on asgiref's one thread-sensitive thread: that thread loads the user of every handshake
    (``AuthMiddleware``), so a slow hook there delayed every other consumer's handshakes
    (measured: a 3 s hook, 2.8 s each). A hook that fails or times out keeps the connection
    out of presence (``join`` logs it); the connection stays up.
    """
    base = {"id": connection._hc.presence.id}
    cls: Any = type(connection)
    hook = cls._presence_meta  # Set at class creation when the class overrides presence_meta.
    if hook is None:
        return base  # Not overridden: no worker-thread hop per handshake.
    what, timeout = f"{cls.__name__}.presence_meta", handler_timeout(cls.timeout)
    lane = connection._hc.limits.lane
    if asyncio.iscoroutinefunction(hook):
        extra = await lane.run_async(what, timeout, hook(connection, connection.request))
    else:
        extra = await lane.run_sync(what, timeout, hook, connection, connection.request)
    return {**(extra or {}), **base}


async def join(connection: PresenceMember) -> None:
    """Add an accepted connection to its group's presence and tell the group.

    A store that cannot be reached (Redis down) is logged and the connection stays up,
    absent from presence, as it would be from a broadcast sent while Redis was down.
    """
    cls: Any = type(connection)
    if not cls._presence_enabled:
        return
    hub = backend_for(connection.channel_layer).hub(cls.__name__, _wake)
    try:
        await _join(connection, hub)
    except Exception:
        logger.exception("%s: could not add a connection to presence of %r", cls.__name__, connection.group)


async def _join(connection: PresenceMember, hub: Hub) -> None:
    cls: Any = type(connection)
    part = connection._hc.presence
    user = connection.request.user
    part.id = secrets.token_hex(8)
    authenticated = bool(getattr(user, "is_authenticated", False))
    entry = {
        "id": part.id,
        "key": f"user:{user.pk}" if authenticated else f"anon:{part.id}",
        "user": user.get_username() if authenticated else None,
        "meta": await _meta(connection),
        "at": time.time(),
    }
    group = connection.group
    await hub.start()
    hub.local.setdefault(group, {})[part.id] = connection
    part.hub = hub
    if cls._on_presence is not None:
        hub.watched.add(group)
        await hub.subscribe(group)
    part.entry = entry
    await bounded_store(hub.store, hub.store.add(group, entry))
    await hub.announce(group)


async def leave(connection: PresenceMember) -> None:
    """Remove a connection from presence (idempotent; runs however the connection ended)."""
    part = connection._hc.presence
    hub = part.hub
    if hub is None:
        return
    part.hub = None
    if part.task is not None:
        part.task.cancel()
    group = connection.group
    members = hub.local.get(group, {})
    members.pop(part.id, None)
    try:
        if not members:
            hub.local.pop(group, None)
            hub.watched.discard(group)
            hub.snapshots.pop(group, None)
            await hub.unsubscribe(group)
        await bounded_store(hub.store, hub.store.remove(group, part.id))
        await hub.announce(group)
    except Exception as exc:
        hub.owe_removal(group, part.id)  # Removed when Redis answers (next heartbeat).
        logger.warning(
            "%s: could not remove a connection from presence of %r yet (%s); removing it when the store answers",
            type(connection).__name__,
            group,
            type(exc).__name__,
        )


def _wake(connection: PresenceMember) -> None:
    """Ask a connection to render presence; one pending render absorbs any number of wakes.

    A connection joins presence before its accept is sent (so ``presence()`` lists it as soon
    as its page hears "open"); a render woken in between would be sent before the accept,
    which the server refuses, and its list would count as seen: the page would never get it.
    So until ``opened`` it only notes that a render is due.
    """
    part = connection._hc.presence
    part.dirty = True
    if part.task is None and part.open:
        part.task = asyncio.ensure_future(_render(connection))


def opened(connection: PresenceMember) -> None:
    """The connection's accept went out: run the render that was woken before it, if any."""
    part = connection._hc.presence
    part.open = True
    if part.hub is not None and part.dirty:
        _wake(connection)


async def _render(connection: PresenceMember) -> None:
    part = connection._hc.presence
    hook: HandlerSpec = type(connection)._on_presence  # type: ignore[attr-defined]
    try:
        while part.dirty and part.hub is not None:
            part.dirty = False
            present = part.hub.snapshots.get(connection.group, [])
            joins = _diff(part.seen, present)
            leaves = _diff(present, part.seen)
            changed = present != part.seen  # Joins, leaves or an updated meta.
            part.seen = present
            if changed:
                async with connection.rejections():
                    await connection._run(hook, [present, joins, leaves], to_group=False)
    finally:
        part.task = None


async def apresence_list(cls: Any, group: str) -> list[dict[str, Any]]:
    """``[{"key", "user", "metas"}]`` of ``group``, read from the store every process shares."""
    layer = require_layer(cls.channel_layer_alias, who=f"{cls.__name__}.presence()")
    entries, _ = await backend_for(layer).presence_store(cls.__name__).entries(group)
    return build_presence(entries)


def presence_list(cls: Any, group: str) -> list[dict[str, Any]]:
    """Sync twin of ``apresence_list`` for views and tasks (closes what it opened)."""

    async def read() -> list[dict[str, Any]]:
        layer = require_layer(cls.channel_layer_alias, who=f"{cls.__name__}.presence()")
        store = backend_for(layer).presence_store(cls.__name__)
        try:
            return build_presence((await store.entries(group))[0])
        finally:
            await store.aclose()

    return async_to_sync(read)()
