"""Presence metas that change: ``self.update_presence(voted=True)`` (Phoenix's ``Presence.update``).

A connection's entry in its group's presence is written once when it joins (``presence.join``);
an update writes it again with the meta changed, in the store every process reads, and
announces the group like a join or a leave does. So ``on_presence`` renders follow on every
connection of the group, in every process, coalesced with joins and leaves by the same window:
a handler that updates a meta on every keystroke costs one store write per call, but the group
re-renders at most once per window however fast the updates come.

An update that changes nothing writes nothing and wakes no one.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from hypergen_consumers.presence.tracking import PresenceMember

__all__ = ["MAX_META_BYTES", "update"]

logger = logging.getLogger("hypergen_consumers")

#: A meta is read by every render of the group on every process: keep it small.
MAX_META_BYTES = 8 * 1024


async def update(connection: PresenceMember, changes: dict[str, Any]) -> None:
    """Merge ``changes`` into this connection's presence meta, store it and tell the group."""
    cls: Any = type(connection)
    who = f"{cls.__name__}.update_presence()"
    if not cls._presence_enabled:
        msg = f"{who}: {cls.__name__} does not track presence: set presence = True on the class."
        raise ImproperlyConfigured(msg)
    if "id" in changes:
        msg = f"{who}: 'id' is the connection's presence id and cannot be changed; use another key."
        raise ValueError(msg)
    part = connection._hc.presence
    entry, hub = part.entry, part.hub
    if entry is None or hub is None:
        # Not in presence: not yet accepted, already gone, or the store was down at its join.
        logger.warning("%s: this connection is not in presence; the update was dropped", who)
        return
    meta = {**entry["meta"], **changes, "id": entry["id"]}
    try:
        size = len(json.dumps(meta, allow_nan=False))
    except (TypeError, ValueError) as exc:
        msg = f"{who} takes JSON-safe values (str, int, float, bool, None, lists and dicts of them): {exc}"
        raise ValueError(msg) from None
    if size > MAX_META_BYTES:
        msg = f"{who}: the meta would be {size} bytes encoded; keep it under {MAX_META_BYTES} (it is sent to every render)."
        raise ValueError(msg)
    if meta == entry["meta"]:
        return
    entry = {**entry, "meta": meta}
    part.entry = entry  # What a heartbeat re-adds after Redis lost it.
    group = connection.group
    try:
        await hub.store.add(group, entry)
        if part.hub is None:
            # It left while the write was on its way: the write must not bring it back.
            await hub.store.remove(group, entry["id"])
        await hub.announce(group)
    except Exception:
        logger.exception("%s: could not update presence of %r", cls.__name__, group)
