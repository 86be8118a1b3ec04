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
that hangs holds up only its own connections. It is part of the layer's backend
(``layers.backend.backend_for(layer).health``), next to the layer's replay window, replies
and presence: one object per layer, one place to look.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any

from hypergen_consumers.layers.calls import CATCHUP_EVENT, bounded
from hypergen_consumers.observability import observe

__all__ = ["LayerHealth", "PROBE_INTERVAL", "PROBE_GROUP", "MAX_OWED_DISCARDS"]

logger = logging.getLogger("hypergen_consumers")

#: Seconds between two attempts to rejoin the groups while the layer is down.
PROBE_INTERVAL = 0.2
#: A group nobody joins: leaving it asks the layer whether it answers, changing nothing.
PROBE_GROUP = "hc-recovery-probe"
#: Discards remembered for one layer at most (a day-long outage of a busy process).
MAX_OWED_DISCARDS = 100_000


class LayerHealth:
    """One channel layer's outage state in this process: open since when, the probe, the waiters.

    Its members are what recovery re-adds to their groups: connections, the local groups'
    taps and the presence listener, each with a ``channel_name``, the groups it ``_joined``
    and ``request_catch_up()``.
    """

    def __init__(self, layer: Any) -> None:
        self.layer = layer
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

    def track(self, member: Any) -> None:
        """``member`` joined its groups: include it in this layer's recoveries."""
        self.members.add(member)

    def untrack(self, member: Any) -> None:
        self.members.discard(member)

    def owe_discard(self, group: str, channel: str) -> None:
        """A connection ended and could not leave ``group`` (the layer failed): leave it for the
        connection after the next successful rejoin pass, which this starts if none is due."""
        self.owed_discards.add((group, channel))
        if len(self.owed_discards) > MAX_OWED_DISCARDS:  # A very long outage: one is given up (group_expiry ends it).
            self.owed_discards.pop()
        self.mark_failed()

    def is_down(self) -> bool:
        """Whether an outage of the layer is open in this process (seen, not yet recovered from)."""
        return self.outage_since is not None

    def mark_failed(self) -> float:
        """Record that the layer failed and start probing it; return when the outage was first seen."""
        if self.outage_since is None:
            observe.layer_outage(self.layer)
            self.outage_since = time.monotonic()
        self._probe_for(self.outage_since)
        return self.outage_since

    async def ensure_recovered(self) -> bool:
        """Before a broadcast: if an outage is unresolved, re-join everyone first (False if still down)."""
        since = self.outage_since
        return True if since is None else await self.recover(since)

    async def wait_recovered(self, failed_at: float) -> None:
        """Return once the layer answers again and this process's connections are back in their
        groups (by the probe, or by a broadcast's ``ensure_recovered``, whichever comes first)."""
        while self.recovered_at <= failed_at:
            self._probe_for(failed_at)
            await self.recovered_event().wait()

    def _probe_for(self, failed_at: float) -> None:
        """Start the one probe of the layer's outage on this event loop, unless it runs already."""
        loop = asyncio.get_running_loop()
        probe = self.probe
        if probe is None or probe.done() or probe.get_loop() is not loop:
            self.probe = loop.create_task(self._probe(failed_at))

    async def _probe(self, failed_at: float) -> None:
        while True:
            try:
                if await self.recover(failed_at):
                    return
            except Exception:  # Never leave the waiting connections without a probe.
                logger.exception("recovering from the channel layer outage failed; trying again")
            await asyncio.sleep(PROBE_INTERVAL)

    async def recover(self, failed_at: float) -> bool:
        """True once the layer answers and every live connection on it is back in its groups.

        One pass at a time per layer, shared by everyone who asks while it runs (the probe, and
        every broadcast during the outage: 1,000 clients sending at once cost one pass, not 1,000).
        """
        if self.recovered_at > failed_at:
            return True  # Another caller already recovered everyone since we failed.
        attempt = self.attempt
        if attempt is None or attempt.done() or attempt.get_loop() is not asyncio.get_running_loop():
            attempt = self.attempt = asyncio.get_running_loop().create_task(self._rejoin())
        return await asyncio.shield(attempt)

    async def _rejoin(self) -> bool:
        """One pass: every live connection back in its groups, then asked to catch up.

        The first group add goes alone: while the layer is down, a pass costs one failed call,
        not one per group. The rest run side by side (``bounded`` keeps them within the
        process's share of the Redis pool); any failure fails the pass, which the probe repeats.
        Adding a channel to a group twice is harmless, so a repeated pass needs no memory of
        the last one.
        """
        layer = self.layer
        members = list(self.members)
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
        for group, channel in list(self.owed_discards):
            try:
                await bounded(layer.group_discard(group, channel), layer)
            except Exception:
                break  # Still owed; the next pass tries again.
            self.owed_discards.discard((group, channel))
        self.recovered_at = time.monotonic()
        self.outage_since = None
        for member in members:  # Each sends what its groups said meanwhile, if it keeps positions.
            await self._ask_to_catch_up(member)
        self._wake_waiters()
        logger.info("channel layer reachable again; %d connection(s) rejoined their groups", len(members))
        return True

    async def _ask_to_catch_up(self, member: Any) -> None:
        """Through the connection's local inbox; a connection without one (Channels' own ``__call__``,
        see ``_compat.channels_consumer``) gets a layer message, and a failure to send it is its loss alone."""
        if member.request_catch_up():
            return
        try:
            await bounded(self.layer.send(member.channel_name, {"type": CATCHUP_EVENT}), self.layer)
        except Exception as exc:
            logger.warning("could not ask a connection to catch up after the outage (%s: %s)", type(exc).__name__, exc)

    def _wake_waiters(self) -> None:
        """Recovered: wake the connections waiting for it, and stop the probe (if another call did it)."""
        kept, self.event = self.event, None
        if kept is not None and kept[0] is asyncio.get_running_loop():
            kept[1].set()
        probe, self.probe = self.probe, None
        if probe is not None and probe is not asyncio.current_task():
            probe.cancel()
