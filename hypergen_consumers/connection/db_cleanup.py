"""Channels' per-message database clean-up, skipped when there is nothing to clean.

Channels runs ``django.db.close_old_connections`` before every message a consumer gets,
in its one thread-sensitive worker thread, to do for websockets what Django does around
each HTTP request. That thread hop was most of the cost of a small message: every
connection's every message queued for one thread and woke the event loop when done.

``close_old_connections`` only ever acts on a database connection that is open (every
branch of ``close_if_unusable_or_obsolete`` starts with ``if self.connection is not
None``). This module notes every database connection Django opens (the
``connection_created`` signal) and lets a consumer skip the hop while none of them is
open in another thread, which is the common case for handlers that do not use the ORM,
and for ``def`` handlers, whose ``database_sync_to_async`` closes its own connections
after running. As soon as one is open (an ``async def`` handler used Django's async ORM,
or ``CONN_MAX_AGE`` keeps connections), every message makes the hop exactly as Channels
does.

Connections owned by the event loop's own thread are left out: a hop never runs there,
so it could not close them anyway (how a connection's thread is known: ``_compat.django_db``).
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

from django.db.backends.signals import connection_created

from hypergen_consumers._compat.django_db import owned_by_thread

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

__all__ = ["cleanup_needed"]

#: Every database connection wrapper Django made, as weak references; replaced (never
#: changed in place) under the lock, so that a read, asked for every message, needs no lock.
_tracked: tuple[weakref.ref[Any], ...] = ()
_lock = threading.Lock()


def _track(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    global _tracked
    with _lock:
        alive = tuple(ref for ref in _tracked if ref() is not None and ref() is not connection)
        _tracked = (*alive, weakref.ref(connection))


connection_created.connect(_track, dispatch_uid="hypergen_consumers.connection.db_cleanup")


def cleanup_needed() -> bool:
    """Whether ``close_old_connections`` in a worker thread could find anything to do."""
    here = threading.get_ident()
    for ref in _tracked:
        wrapper = ref()
        if wrapper is not None and wrapper.connection is not None and not owned_by_thread(wrapper, here):
            return True
    return False
