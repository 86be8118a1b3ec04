"""Permission checks with hypergen's semantics, minus the HTTP redirect machinery.

hypergen's ``check_perms`` builds a login redirect response on failure, which needs an
HTTP host and makes no sense for a websocket. The rules are the same: ``perm`` is one
permission or an iterable of them; all are required unless ``any_perm=True``;
``NO_PERM_REQUIRED`` opts out. The matched permissions are returned so handlers can
read them from ``context.hypergen.matched_perms`` as in hypergen actions.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from hypergen.liveview import NO_PERM_REQUIRED

__all__ = ["check_user_perms", "perms_ok"]


def check_user_perms(user: Any, perm: Any, any_perm: bool = False) -> tuple[bool, frozenset[str]]:
    """Return ``(ok, matched_perms)`` for ``user``. May query the database: call from a thread."""
    if perm == NO_PERM_REQUIRED:
        return True, frozenset()
    perms: tuple[str, ...] = (perm,) if isinstance(perm, str) else tuple(perm)
    if user is None:
        return False, frozenset()
    if any_perm:
        matched = frozenset(p for p in perms if user.has_perm(p))
        return bool(matched), matched
    if user.has_perms(perms):
        return True, frozenset(perms)
    return False, frozenset()


async def perms_ok(user: Any, perm: Any, any_perm: bool) -> tuple[bool, frozenset[str]]:
    """``check_user_perms`` from async code: in a worker thread, unless no permission is required."""
    if perm == NO_PERM_REQUIRED:
        return True, frozenset()
    result: tuple[bool, frozenset[str]] = await database_sync_to_async(check_user_perms)(user, perm, any_perm)
    return result
