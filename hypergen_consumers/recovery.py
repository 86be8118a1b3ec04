"""Re-join groups after a channel-layer outage, for every connection of the process.

A Redis restarted without persistence has forgotten every group. Only some connections
see the outage (the one blocked in Redis when it died raises; the others wait on it), so
recovery is process-wide: the first connection to find the layer reachable again re-adds
every live connection of that layer to its groups, once per outage.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any

from .layers import CATCHUP_EVENT, bounded

__all__ = ["track", "untrack", "recover", "mark_failed", "ensure_recovered"]

logger = logging.getLogger("hypergen_consumers")

_live: weakref.WeakSet[Any] = weakref.WeakSet()
_lock: asyncio.Lock | None = None
_recovered_at = 0.0
_outage_since: dict[int, float] = {}  # id(layer) -> when a failure was first seen


def track(connection: Any) -> None:
    """A connection joined its groups: include it in recoveries."""
    _live.add(connection)


def untrack(connection: Any) -> None:
    _live.discard(connection)


def mark_failed(layer: Any) -> float:
    """Record that ``layer`` failed; return when the current outage was first seen."""
    return _outage_since.setdefault(id(layer), time.monotonic())


async def ensure_recovered(layer: Any) -> bool:
    """Before a broadcast: if an outage is unresolved, re-join everyone first (False if still down)."""
    since = _outage_since.get(id(layer))
    return True if since is None else await recover(layer, since)


def _get_lock() -> asyncio.Lock:
    global _lock
    if _lock is None:
        _lock = asyncio.Lock()
    return _lock


async def recover(layer: Any, failed_at: float) -> bool:
    """True once the layer answers and every live connection on it is back in its groups."""
    global _recovered_at
    async with _get_lock():
        if _recovered_at > failed_at:
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
        _recovered_at = time.monotonic()
        _outage_since.pop(id(layer), None)
        logger.info("channel layer reachable again; %d connection(s) rejoined their groups", len(connections))
        return True
