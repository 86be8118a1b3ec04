"""One process's presence bookkeeping: its connections per group, heartbeats, and change news.

Split from ``presence`` (what a connection does: join, leave, render ``on_presence``) so that
each has one job. A :class:`Hub` per channel layer keeps the process's local connections per
group, writes one heartbeat for all of them (Redis), listens on one channel per process
(not per connection) in a companion group of each group it has watchers in, and re-reads a
changed group at most once per window before waking its local connections (see the
``presence`` module's docstring for why the window grows with the group). The hub is part
of its layer's backend (``layers.backend``), and tells other processes of a change with the
backend's ``publish``, as every sender does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hypergen_consumers import conf
from hypergen_consumers.layers.calls import bounded
from hypergen_consumers.presence.stores import PresenceStore
from hypergen_consumers.routing.groups import digest

if TYPE_CHECKING:  # The backend owns the hub: the hub only needs its type.
    from hypergen_consumers.layers.backend import LayerBackend

__all__ = ["Hub", "build_presence", "companion_group", "CHANGED_EVENT"]

logger = logging.getLogger("hypergen_consumers")

#: A window is ``throttle`` for up to this many local connections, and grows in proportion beyond.
CONNECTIONS_PER_WINDOW = 100
CHANGED_EVENT = "hypergen_consumers.presence_changed"
COMPANION_PREFIX = "hc-presence-"


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


class _Listener:
    """The hub's change listener as recovery sees a connection: a channel in some groups.

    A Redis restarted empty forgets the companion groups too; without this, other processes'
    changes went unheard until a group emptied and filled again. Kept alive by the hub."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        hub.listener = self
        self.channel_layer = hub.layer

    @property
    def channel_name(self) -> str:
        return self.hub.channel or ""

    @property
    def _joined(self) -> list[str]:
        return [companion_group(group) for group in self.hub.subscribed]

    def request_catch_up(self) -> bool:
        """Recovered: write this process's entries again at once (a Redis restarted empty lost
        them), not at the next heartbeat, and tell the groups."""
        if self.hub.store.needs_heartbeat:
            self.hub.tasks.append(asyncio.ensure_future(self.hub.restore()))
        return True


class Hub:
    """This process's presence bookkeeping for one channel layer."""

    def __init__(self, backend: LayerBackend, store: PresenceStore, wake: Callable[[Any], None]) -> None:
        self.backend = backend
        self.layer = backend.layer
        self.store = store
        self.wake = wake  # Asks one local connection to render presence (see presence._wake).
        self.local: dict[str, dict[str, Any]] = {}  # group -> entry id -> connection
        self.watched: set[str] = set()  # groups whose members have an on_presence hook
        self.snapshots: dict[str, list[dict[str, Any]]] = {}
        self.refreshing: dict[str, asyncio.Task[None]] = {}
        self.dirty: set[str] = set()
        self.channel: str | None = None
        self.subscribed: set[str] = set()
        self.started: asyncio.Future[None] | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.listener: _Listener | None = None
        #: Entries of connections that ended while the store was down: (group, entry id). Their
        #: process lives on, so no heartbeat's pruning would ever remove them.
        self.owed_removals: set[tuple[str, str]] = set()
        #: A restore did not finish (Redis failed again meanwhile): the next heartbeat restores.
        self.needs_restore = False

    async def start(self) -> None:
        """Start heartbeats and the process's change listener (Redis only), once, however many join at once."""
        if not self.store.needs_heartbeat:
            return
        if self.started is None or (self.started.done() and self.started.exception() is not None):
            self.started = asyncio.ensure_future(self._start())  # First time, or Redis was down then.
        await asyncio.shield(self.started)

    async def _start(self) -> None:
        await self.store.heartbeat([])
        if self.channel is None:
            self.channel = await self.layer.new_channel()
            # Its subscriptions are rejoined after an outage, like a connection's groups.
            self.backend.health.track(_Listener(self))
        self.tasks.append(asyncio.ensure_future(self._heartbeats()))
        self.tasks.append(asyncio.ensure_future(self._listen()))

    async def subscribe(self, group: str) -> None:
        """Listen for changes of ``group`` made by other processes (once per group, not per connection)."""
        if self.channel is not None and group not in self.subscribed:
            self.subscribed.add(group)
            await bounded(self.layer.group_add(companion_group(group), self.channel), self.layer)

    async def unsubscribe(self, group: str) -> None:
        if self.channel is not None and group in self.subscribed:
            self.subscribed.discard(group)
            await bounded(self.layer.group_discard(companion_group(group), self.channel), self.layer)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(conf.current().presence_heartbeat)
            groups = list(self.local)
            try:
                if not await self.store.heartbeat(groups) or self.needs_restore:
                    await self.restore()
                await self.settle_removals()
                if await self.store.newly_dead():  # A process died without saying goodbye:
                    for group in groups:  # drop its entries from our rooms, and tell them.
                        _, pruned = await self.store.entries(group)
                        if pruned:
                            await self.announce(group)
                # Change news travels through the layer, and the pub/sub layer delivers at most
                # once: a room whose version moved is re-read (a render only if the list differs).
                for group in await self.store.changed([group for group in groups if group in self.watched]):
                    self.mark_dirty(group)
            except Exception:
                logger.exception("presence heartbeat failed; retrying in %gs", conf.current().presence_heartbeat)

    def owe_removal(self, group: str, entry_id: str) -> None:
        self.owed_removals.add((group, entry_id))
        if len(self.owed_removals) > 100_000:  # A very long outage: the rest go when their group's key expires.
            self.owed_removals.pop()

    async def settle_removals(self) -> None:
        """Remove the entries owed since an outage, and tell their groups (raises while still down)."""
        for group, entry_id in list(self.owed_removals):
            await self.store.remove(group, entry_id)
            self.owed_removals.discard((group, entry_id))
            await self.announce(group)

    async def restore(self) -> None:
        """Our heartbeat key had vanished (Redis restarted empty, or we stalled past the expiry),
        or the layer recovered from an outage: write this process's entries and subscriptions
        again, and tell the groups."""
        logger.warning("presence: re-adding this process's connections (Redis lost them, or was down)")
        self.needs_restore = True
        await self.store.heartbeat(list(self.local))
        await self.settle_removals()
        failed: Exception | None = None
        for group, members in list(self.local.items()):
            try:  # One group's failure does not leave the others out.
                for connection in list(members.values()):
                    await self.store.add(group, connection._hc.presence.entry)
                if group in self.subscribed:
                    await bounded(self.layer.group_add(companion_group(group), self.channel), self.layer)
                await self.announce(group)
            except Exception as exc:
                failed = exc
        if failed is not None:
            raise failed  # Logged by the caller; the next heartbeat tries again (needs_restore).
        self.needs_restore = False

    async def _listen(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("presence listener: channel layer receive failed; retrying once the layer answers")
                health = self.backend.health
                await health.wait_recovered(health.mark_failed())
                continue
            if message.get("type") == CHANGED_EVENT and message.get("group") in self.local:
                self.mark_dirty(message["group"])

    async def announce(self, group: str) -> None:
        """Tell every process with connections in ``group`` that it changed (in one process: this one)."""
        if not self.backend.kind.in_redis:
            self.mark_dirty(group)
            return
        news = {"type": CHANGED_EVENT, "group": group}
        await self.backend.publish(companion_group(group), news, who="presence", replay=False)

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
                window = conf.current().presence_throttle * max(
                    1.0, len(self.local.get(group, ())) / CONNECTIONS_PER_WINDOW
                )
                await asyncio.sleep(window)
                self.dirty.discard(group)
                entries, _ = await self.store.entries(group)
                self.snapshots[group] = build_presence(entries)
                for connection in list(self.local.get(group, {}).values()):
                    self.wake(connection)
        except Exception:
            logger.exception("presence refresh of %r failed", group)
        finally:
            self.refreshing.pop(group, None)
