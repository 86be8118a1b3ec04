"""Re-join groups after a channel-layer outage, for every connection of the process.

A Redis restarted without persistence has forgotten every group. Only some connections
see the outage (the one blocked in Redis when it died raises; the others wait on it), so
recovery is process-wide: while an outage is open, one probe per layer tries every
``PROBE_INTERVAL`` seconds to re-add every live connection of that layer to its groups, and
wakes the connections waiting for it once that worked. So groups are rejoined within
``PROBE_INTERVAL`` of the layer answering again, however long the outage was, and a process
with 10 000 connections makes one attempt per interval, not 10 000.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any

from .layers import CATCHUP_EVENT, bounded
from .observability import observe

__all__ = ["track", "untrack", "recover", "mark_failed", "ensure_recovered", "wait_recovered", "PROBE_INTERVAL"]

logger = logging.getLogger("hypergen_consumers")

_live: weakref.WeakSet[Any] = weakref.WeakSet()
_lock: asyncio.Lock | None = None
_recovered_at: dict[int, float] = {}  # id(layer) -> when it last recovered
_outage_since: dict[int, float] = {}  # id(layer) -> when a failure was first seen
_probes: dict[int, asyncio.Task[None]] = {}  # id(layer) -> the probe of its open outage
_events: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}  # id(layer) -> set on recovery

#: Seconds between two attempts to rejoin the groups while the layer is down.
PROBE_INTERVAL = 0.2


def track(connection: Any) -> None:
    """A connection joined its groups: include it in recoveries."""
    _live.add(connection)


def untrack(connection: Any) -> None:
    _live.discard(connection)


def mark_failed(layer: Any) -> float:
    """Record that ``layer`` failed and start probing it; return when the outage was first seen."""
    if id(layer) not in _outage_since:
        observe.layer_outage(layer)
    since = _outage_since.setdefault(id(layer), time.monotonic())
    _probe_for(layer, since)
    return since


async def ensure_recovered(layer: Any) -> bool:
    """Before a broadcast: if an outage is unresolved, re-join everyone first (False if still down)."""
    since = _outage_since.get(id(layer))
    return True if since is None else await recover(layer, since)


async def wait_recovered(layer: Any, failed_at: float) -> None:
    """Return once the layer answers again and this process's connections are back in their
    groups (by the probe, or by a broadcast's ``ensure_recovered``, whichever comes first)."""
    while _recovered_at.get(id(layer), 0.0) <= failed_at:
        _probe_for(layer, failed_at)
        await _recovered_event(layer).wait()


def _recovered_event(layer: Any) -> asyncio.Event:
    """Set when ``layer`` recovers; one per layer and event loop."""
    loop = asyncio.get_running_loop()
    kept = _events.get(id(layer))
    if kept is None or kept[0] is not loop:
        kept = _events[id(layer)] = (loop, asyncio.Event())
    return kept[1]


def _probe_for(layer: Any, failed_at: float) -> None:
    """Start the one probe of ``layer``'s outage on this event loop, unless it runs already."""
    loop = asyncio.get_running_loop()
    probe = _probes.get(id(layer))
    if probe is None or probe.done() or probe.get_loop() is not loop:
        _probes[id(layer)] = loop.create_task(_probe(layer, failed_at))


async def _probe(layer: Any, failed_at: float) -> None:
    while True:
        try:
            if await recover(layer, failed_at):
                return
        except Exception:  # Never leave the waiting connections without a probe.
            logger.exception("recovering from the channel layer outage failed; trying again")
        await asyncio.sleep(PROBE_INTERVAL)


def _get_lock() -> asyncio.Lock:
    global _lock
    if _lock is None:
        _lock = asyncio.Lock()
    return _lock


async def recover(layer: Any, failed_at: float) -> bool:
    """True once the layer answers and every live connection on it is back in its groups."""
    async with _get_lock():
        if _recovered_at.get(id(layer), 0.0) > failed_at:
            return True  # Another connection already recovered everyone since we failed.
        connections = [c for c in list(_live) if getattr(c, "channel_layer", None) is layer]
        try:
            for connection in connections:
                for group in list(getattr(connection, "_joined", [])):
                    await bounded(layer.group_add(group, connection.channel_name), layer)
            for connection in connections:
                if getattr(connection, "_replay", None) is not None:  # Send what the group said meanwhile.
                    await bounded(layer.send(connection.channel_name, {"type": CATCHUP_EVENT}), layer)
        except Exception:
            return False
        _recovered_at[id(layer)] = time.monotonic()
        _outage_since.pop(id(layer), None)
        _wake_waiters(layer)
        logger.info("channel layer reachable again; %d connection(s) rejoined their groups", len(connections))
        return True


def _wake_waiters(layer: Any) -> None:
    """Recovered: wake the connections waiting for it, and stop the probe (if another call did it)."""
    kept = _events.pop(id(layer), None)
    if kept is not None and kept[0] is asyncio.get_running_loop():
        kept[1].set()
    probe = _probes.pop(id(layer), None)
    if probe is not None and probe is not asyncio.current_task():
        probe.cancel()
