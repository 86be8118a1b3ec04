"""Channels' ``aclose_old_connections``, which Channels 4.0 and 4.1 do not have.

Channels 4.2 added ``channels.db.aclose_old_connections`` (``close_old_connections`` in a
``sync_to_async`` worker) and calls it before every message. On older Channels the same
thing is built here from public parts, so the package imports and behaves alike on both.
Unlike the other modules here this is no patch and no slower: it warns about nothing,
since Channels 4.0 and 4.1 are supported versions (the version matrix in noxfile.py runs
the suite on 4.0).
"""

from __future__ import annotations

import channels.db
from asgiref.sync import sync_to_async
from django.db import close_old_connections

__all__ = ["aclose_old_connections"]


async def _plain_aclose_old_connections() -> None:
    await sync_to_async(close_old_connections)()


async def aclose_old_connections() -> None:
    """Close database connections that are unusable or past ``CONN_MAX_AGE``, in a worker thread."""
    await getattr(channels.db, "aclose_old_connections", _plain_aclose_old_connections)()
