"""Channels' ``aclose_old_connections``, called by our ``dispatch`` before a message.

Channels 4.2 added ``channels.db.aclose_old_connections`` (``close_old_connections`` in a
``sync_to_async`` worker) and calls it in its own ``dispatch``, which ``ConnectionMixin``
overrides to skip that hop when it would do nothing (see ``db_cleanup``). Channels 4.0 and
4.1 do not have it (they are not supported: setup.cfg asks for 4.2). Should a Channels
release drop or rename it, the same thing is built here from public parts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import channels.db
from asgiref.sync import sync_to_async
from django.db import close_old_connections

__all__ = ["FALLBACK", "aclose_old_connections", "apply", "check"]

FALLBACK = "close_old_connections() through sync_to_async, as Channels 4.2 does"


async def _plain_aclose_old_connections() -> None:
    await sync_to_async(close_old_connections)()


_implementation: Callable[[], Awaitable[object]] = _plain_aclose_old_connections


def check(module: object = channels.db) -> str | None:
    if not callable(getattr(module, "aclose_old_connections", None)):
        return "channels.db has no aclose_old_connections (Channels changed its API)"
    return None


def apply() -> None:
    global _implementation
    _implementation = channels.db.aclose_old_connections


async def aclose_old_connections() -> None:
    """Close database connections that are unusable or past ``CONN_MAX_AGE``, in a worker thread."""
    await _implementation()
