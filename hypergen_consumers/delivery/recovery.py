"""Re-join groups after a channel-layer outage, for every connection of the process.

A Redis restarted without persistence has forgotten every group. Only some connections
see the outage (the one blocked in Redis when it died raises; the others wait on it), so
recovery is process-wide and per layer: while a layer's outage is open, one probe tries
every ``PROBE_INTERVAL`` seconds to re-add every live connection of that layer to its
groups, and wakes the connections waiting for it once that worked. So groups are rejoined
within ``PROBE_INTERVAL`` of the layer answering again, however long the outage was, and a
process with 10,000 connections makes one attempt per interval, not 10,000.

What a connection missed meanwhile is sent by the connection itself: recovery puts one
catch-up request in each connection's local inbox (see ``lifecycle``), never a message
through the layer. Why: channels-redis gives all of a process's connections one inbox in
Redis that holds ``capacity`` messages (100 by default), so 1,000 catch-up messages sent
through it failed with ``ChannelFull`` and the pass restarted for ever.

Each layer has its own :class:`LayerHealth` (its pass under way, probe and wake-up event), so a layer
that hangs holds up only its own connections.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any

from hypergen_consumers.layers.calls import CATCHUP_EVENT, bounded
from hypergen_consumers.observability import observe

__all__ = [
    "track",
    "untrack",
    "recover",
    "mark_failed",
    "ensure_recovered",
    "wait_recovered",
    "is_down",
    "health_of",
    "owe_discard",
    "LayerHealth",
    "PROBE_INTERVAL",
]

logger = logging.getLogger("hypergen_consumers")

#: Seconds between two attempts to rejoin the groups while the layer is down.
PROBE_INTERVAL = 0.2
#: A group nobody joins: leaving it asks the layer whether it answers, changing nothing.
PROBE_GROUP = "hc-recovery-probe"


class LayerHealth:
    """One channel layer's outage state in this process: open since when, the probe, the waiters."""

    def __init__(self) -> None:
        self.members: weakref.WeakSet[Any] = weakref.WeakSet()
        self.outage_since: float | None = None
        self.recovered_at = 0.0
        #: Group memberships of channels that ended while the layer was down: (group, channel).
        self.owed_discards: set[tuple[str, str]] = set()
        #: The pass under way: everyone who asks meanwhile shares its outcome.
        self.attempt: asyncio.Task[bool] | None = None
        self.probe: asyncio.Task[None] | None = None
        self.event: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

    def recovered_event(self) -> asyncio.Event:
        """Set when the layer recovers; one per event loop."""
        loop = asyncio.get_running_loop()
        if self.event is None or self.event[0] is not loop:
            self.event = (loop, asyncio.Event())
        return self.event[1]


_health: weakref.WeakKeyDictionary[Any, LayerHealth] = weakref.WeakKeyDictionary()


def health_of(layer: Any) -> LayerHealth:
    """The outage state of ``layer`` (one per layer object: a layer Channels rebuilds starts afresh)."""
    health = _health.get(layer)
    if health is None:
        health = _health[layer] = LayerHealth()
    return health


def track(connection: Any) -> None:
    """A connection joined its groups: include it in its layer's recoveries."""
    health_of(connection.channel_layer).members.add(connection)


def untrack(connection: Any) -> None:
    layer = getattr(connection, "channel_layer", None)
    if layer is not None and layer in _health:
        _health[layer].members.discard(connection)


def owe_discard(layer: Any, group: str, channel: str) -> None:
    """A connection ended and could not leave ``group`` (the layer failed): leave it for the
    connection after the next successful rejoin pass, which this starts if none is due."""
    health = health_of(layer)
    health.owed_discards.add((group, channel))
    if len(health.owed_discards) > MAX_OWED_DISCARDS:  # A very long outage: one is given up (group_expiry ends it).
        health.owed_discards.pop()
    mark_failed(layer)


#: Discards remembered for one layer at most (a day-long outage of a busy process).
MAX_OWED_DISCARDS = 100_000


def is_down(layer: Any) -> bool:
    """Whether an outage of ``layer`` is open in this process (seen, not yet recovered from)."""
    health = _health.get(layer)
    return health is not None and health.outage_since is not None


def mark_failed(layer: Any) -> float:
    """Record that ``layer`` failed and start probing it; return when the outage was first seen."""
    health = health_of(layer)
    if health.outage_since is None:
        observe.layer_outage(layer)
        health.outage_since = time.monotonic()
    _probe_for(layer, health.outage_since)
    return health.outage_since


async def ensure_recovered(layer: Any) -> bool:
    """Before a broadcast: if an outage is unresolved, re-join everyone first (False if still down)."""
    since = health_of(layer).outage_since
    return True if since is None else await recover(layer, since)


async def wait_recovered(layer: Any, failed_at: float) -> None:
    """Return once the layer answers again and this process's connections are back in their
    groups (by the probe, or by a broadcast's ``ensure_recovered``, whichever comes first)."""
    health = health_of(layer)
    while health.recovered_at <= failed_at:
        _probe_for(layer, failed_at)
        await health.recovered_event().wait()


def _probe_for(layer: Any, failed_at: float) -> None:
    """Start the one probe of ``layer``'s outage on this event loop, unless it runs already."""
    health = health_of(layer)
    loop = asyncio.get_running_loop()
    probe = health.probe
    if probe is None or probe.done() or probe.get_loop() is not loop:
        health.probe = loop.create_task(_probe(layer, failed_at))


async def _probe(layer: Any, failed_at: float) -> None:
    while True:
        try:
            if await recover(layer, failed_at):
                return
        except Exception:  # Never leave the waiting connections without a probe.
            logger.exception("recovering from the channel layer outage failed; trying again")
        await asyncio.sleep(PROBE_INTERVAL)


async def recover(layer: Any, failed_at: float) -> bool:
    """True once the layer answers and every live connection on it is back in its groups.

    One pass at a time per layer, shared by everyone who asks while it runs (the probe, and
    every broadcast during the outage: 1,000 clients sending at once cost one pass, not 1,000).
    """
    health = health_of(layer)
    if health.recovered_at > failed_at:
        return True  # Another caller already recovered everyone since we failed.
    attempt = health.attempt
    if attempt is None or attempt.done() or attempt.get_loop() is not asyncio.get_running_loop():
        attempt = health.attempt = asyncio.get_running_loop().create_task(_rejoin(layer, health))
    return await asyncio.shield(attempt)


async def _rejoin(layer: Any, health: LayerHealth) -> bool:
    """One pass: every live connection back in its groups, then asked to catch up.

    The first group add goes alone: while the layer is down, a pass costs one failed call,
    not one per group. The rest run side by side (``bounded`` keeps them within the
    process's share of the Redis pool); any failure fails the pass, which the probe repeats.
    Adding a channel to a group twice is harmless, so a repeated pass needs no memory of
    the last one.
    """
    members = list(health.members)
    adds = [(group, member.channel_name) for member in members for group in list(member._joined)]
    try:
        if adds:
            await bounded(layer.group_add(*adds[0]), layer)
        else:
            # Nobody has a group to rejoin (a presence listener whose pages all left): still ask
            # the layer, or the pass "succeeds" while it is down and the waiters' receives fail
            # again at once (measured: 12,324 listener failures in a 3 s outage, a hot loop).
            await bounded(layer.group_discard(PROBE_GROUP, PROBE_GROUP), layer)
    except Exception:
        return False
    results = await asyncio.gather(
        *(bounded(layer.group_add(group, channel), layer) for group, channel in adds[1:]), return_exceptions=True
    )
    if any(isinstance(result, BaseException) for result in results):
        return False
    for group, channel in list(health.owed_discards):
        try:
            await bounded(layer.group_discard(group, channel), layer)
        except Exception:
            break  # Still owed; the next pass tries again.
        health.owed_discards.discard((group, channel))
    health.recovered_at = time.monotonic()
    health.outage_since = None
    for member in members:  # Each sends what its groups said meanwhile, if it keeps positions.
        await _ask_to_catch_up(layer, member)
    _wake_waiters(health)
    logger.info("channel layer reachable again; %d connection(s) rejoined their groups", len(members))
    return True


async def _ask_to_catch_up(layer: Any, member: Any) -> None:
    """Through the connection's local inbox; a connection without one (Channels' own ``__call__``,
    see ``_compat.channels_consumer``) gets a layer message, and a failure to send it is its loss alone."""
    if member.request_catch_up():
        return
    try:
        await bounded(layer.send(member.channel_name, {"type": CATCHUP_EVENT}), layer)
    except Exception as exc:
        logger.warning("could not ask a connection to catch up after the outage (%s: %s)", type(exc).__name__, exc)


def _wake_waiters(health: LayerHealth) -> None:
    """Recovered: wake the connections waiting for it, and stop the probe (if another call did it)."""
    kept, health.event = health.event, None
    if kept is not None and kept[0] is asyncio.get_running_loop():
        kept[1].set()
    probe, health.probe = health.probe, None
    if probe is not None and probe is not asyncio.current_task():
        probe.cancel()
