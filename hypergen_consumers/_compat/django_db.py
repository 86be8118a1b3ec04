"""Which thread owns a database connection: reads Django's private ``_thread_ident``.

``db_cleanup`` skips Channels' per-message clean-up hop while no database connection is
open outside the event loop's thread (a hop never runs on that thread, so it could not
close those). Django records a connection's thread only in ``BaseDatabaseWrapper._thread_ident``.

Relies on: every configured connection wrapper having an ``int`` ``_thread_ident``. Without
it every open connection counts, wherever it lives: the hop is skipped only while no
connection at all is open.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FALLBACK", "apply", "check", "is_active", "owned_by_thread"]

FALLBACK = "counting every open database connection, including the event loop thread's own"

_active = False


def check(wrappers: Any = None) -> str | None:
    """``None`` if each connection wrapper (default: Django's, one per alias) has ``_thread_ident``."""
    if wrappers is None:
        from django.db import connections

        wrappers = [connections[alias] for alias in connections]
    for wrapper in wrappers:
        if not isinstance(getattr(wrapper, "_thread_ident", None), int):
            return f"{type(wrapper).__qualname__} has no integer _thread_ident (Django changed its internals)"
    return None


def apply() -> None:
    global _active
    _active = True


def is_active() -> bool:
    return _active


def owned_by_thread(wrapper: Any, ident: int) -> bool:
    """Whether ``wrapper``'s connection belongs to thread ``ident`` (``False`` when unknown)."""
    return _active and wrapper._thread_ident == ident
