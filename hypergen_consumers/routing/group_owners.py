"""Which consumer class a group belongs to, so a backend push can be checked in the caller.

``group_send(group, "revael")`` used to return normally and every page got
``unknown_handler``: the backend never heard of its typo. Each group name a class produces
(``ChatRoom.group_name(...)`` and every connect) is recorded here with its class; when
exactly one class is known for a group, the module-level ``group_send`` checks the
handler name against that class. A group two classes share (a custom ``group_name``
rule) is not checked: the name may be either's. Bounded: the least recently named
groups are forgotten first, and a forgotten group is simply not checked.
"""

from __future__ import annotations

import collections
import threading
from typing import Any

__all__ = ["MAX_REMEMBERED_GROUPS", "forget_all", "owner_of", "remember"]

#: How many groups are remembered at most (a few MB at most; LRU beyond it).
MAX_REMEMBERED_GROUPS = 100_000

_owners: collections.OrderedDict[str, tuple[Any, ...]] = collections.OrderedDict()
_lock = threading.Lock()  # Lookups run in worker threads (sync views, Celery) and on the loop.


def remember(group: str, consumer_class: Any) -> None:
    """Record that ``consumer_class`` produced ``group`` (cheap: one dict update)."""
    with _lock:
        known = _owners.get(group, ())
        if consumer_class not in known:
            _owners[group] = (*known, consumer_class)[-2:]  # Two already mean "not one".
        _owners.move_to_end(group)
        if len(_owners) > MAX_REMEMBERED_GROUPS:
            _owners.popitem(last=False)


def owner_of(group: str) -> Any:
    """The one consumer class known to produce ``group``, or None (unknown, or shared)."""
    with _lock:
        known = _owners.get(group, ())
    return known[0] if len(known) == 1 else None


def forget_all() -> None:
    """Forget every group (for tests that define classes with clashing group names)."""
    with _lock:
        _owners.clear()
