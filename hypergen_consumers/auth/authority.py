"""Keep a connection's authority current: what Django re-reads on every HTTP request.

A websocket's user, session and permissions are read once, at the handshake. Without this
module a socket would keep working after a logout in another tab, the session's expiry,
``is_active=False`` or a removed permission. Two mechanisms:

- **Push, for logout.** Each connection with a session joins that session's group
  (``hc-session.<keyed digest of the key>``: valid, reserved, and the key itself is never stored in
  Redis, see ``keys``). ``user_logged_out`` and the deletion of a database session (``flush()``,
  ``delete()``, ``clearsessions``) send a close event to that group through the channel layer
  (``backend.publish``, bounded like every layer call), so the session's sockets in every
  process close with 4401 within a second.
- **Pull, for everything else.** Before running a message, a connection whose user was
  authenticated at the handshake re-reads its session and user from the database (at most
  every ``HYPERGEN_CONSUMERS_AUTH_RECHECK_SECONDS``, default 5; 0 = before every message),
  the way ``AuthMiddleware`` does: an expired or deleted session, another user, an inactive
  user or a changed password closes with 4401; a consumer ``perm`` no longer held closes with
  4403; handler perms are checked against the fresh user (``permission_denied``).
- **A timer, for sockets that never send.** A socket that only listens would otherwise keep
  receiving a perm-gated group's broadcasts for as long as it stays open. Each watched
  connection has one sleeping task that re-reads when the last read is older than the
  setting (at least every :data:`SILENT_RECHECK_FLOOR` seconds when it is 0), with a little
  jitter so sockets opened together do not query together. A socket that sends is re-read
  by its frames and its timer finds nothing due: one query per connection per period at most,
  never one per broadcast per member.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import import_module
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels import DEFAULT_CHANNEL_LAYER
from channels.db import DatabaseSyncToAsync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib import auth
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete
from django.utils.crypto import salted_hmac

from hypergen_consumers import conf
from hypergen_consumers.auth.perms import check_user_perms
from hypergen_consumers.connection.executor import worker_pool
from hypergen_consumers.errors import CloseCode
from hypergen_consumers.layers.backend import backend_for

if TYPE_CHECKING:
    from hypergen_consumers.connection.state import SocketState

__all__ = [
    "session_group",
    "SESSION_ENDED_EVENT",
    "end_session",
    "Authority",
    "Reread",
]

logger = logging.getLogger("hypergen_consumers")

#: How often a silent socket is re-read when HYPERGEN_CONSUMERS_AUTH_RECHECK_SECONDS is 0.
SILENT_RECHECK_FLOOR = 1.0
_JITTER = 0.1  # Up to a tenth of the period later.
#: Sent to a session's group: every connection of that session closes with 4401.
SESSION_ENDED_EVENT = "hypergen_consumers.session_ended"
#: Kept as it was before the move to auth/: processes of two versions (a rolling deploy) name a
#: session's group alike, so a logout in one closes the sockets in the other.
_SESSION_SALT = "hypergen_consumers.authority.session"


def session_group(session_key: str) -> str:
    """The group of every connection of one session (a keyed digest: the key stays secret)."""
    digest: str = salted_hmac(_SESSION_SALT, session_key, algorithm="sha256").hexdigest()
    return f"hc-session.{digest[:32]}"  # Keyed (SECRET_KEY), like every name the package puts in Redis.


def end_session(session_key: str | None) -> None:
    """Close every socket of ``session_key``, in every process (through the channel layer)."""
    if not session_key:
        return
    layer = get_channel_layer(DEFAULT_CHANNEL_LAYER)
    if layer is None:
        return
    group = session_group(session_key)

    async def send() -> None:
        # No replay: no page replays a session's group (see streams); its sockets close, none catches up.
        await backend_for(layer).publish(group, {"type": SESSION_ENDED_EVENT}, who="end_session", replay=False)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        try:
            async_to_sync(send)()
        except Exception:
            logger.exception("could not close the sockets of an ended session (channel layer unreachable)")
        return
    task = asyncio.ensure_future(send())  # Called from async code (an async view's alogout).
    task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("could not close the sockets of an ended session: %r", task.exception())


def _on_logout(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    end_session(getattr(getattr(request, "session", None), "session_key", None))


def _on_session_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    end_session(getattr(instance, "session_key", None))


def connect_signals() -> None:
    """Called from AppConfig.ready(): logout and session deletion close that session's sockets."""
    from django.apps import apps  # Django's app registry and models: only once apps are ready.

    user_logged_out.connect(_on_logout, dispatch_uid="hypergen_consumers.auth.authority.logout")
    if apps.is_installed("django.contrib.sessions"):  # A project may use other session storage.
        from django.contrib.sessions.models import Session

        post_delete.connect(
            _on_session_deleted, sender=Session, dispatch_uid="hypergen_consumers.auth.authority.session"
        )


@dataclass(frozen=True, slots=True)
class Reread:
    """What a re-read found: the fresh user (None: the session ended), the close code if the
    connection lost its authority, and the consumer perms the user still holds."""

    user: Any
    code: CloseCode | None
    matched: frozenset[str]


class Authority:
    """One connection's view of its session and user, refreshed at most every N seconds."""

    def __init__(self, scope: dict[str, Any], user: Any) -> None:
        session = scope.get("session")
        self.session_key: str | None = getattr(session, "session_key", None)
        # Without a session (a test client's user, a custom auth) there is nothing to re-read.
        self.watch = bool(self.session_key) and bool(getattr(user, "is_authenticated", False))
        self.user_pk = getattr(user, "pk", None)
        self.checked_at = time.monotonic()
        self._timer: asyncio.Task[None] | None = None

    def groups(self) -> list[str]:
        return [session_group(self.session_key)] if self.session_key else []

    def start_watching(self, owner: str, socket: SocketState, holds: Callable[[], Awaitable[bool]]) -> None:
        """Re-read on a timer while the connection is open (see the module docstring).

        ``holds`` is the connection's own check (``pipeline``): it re-reads when due and closes
        the socket if the authority lapsed; the timer only decides when to call it.
        """
        if self.watch and self._timer is None:
            self._timer = asyncio.ensure_future(self._recheck_silent(owner, socket, holds))

    def stop_watching(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()

    async def _recheck_silent(self, owner: str, socket: SocketState, holds: Callable[[], Awaitable[bool]]) -> None:
        while not socket.closing:
            period = conf.current().auth_recheck_seconds or SILENT_RECHECK_FLOOR
            wait = self.checked_at + period - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait + random.uniform(0, period * _JITTER))
                continue
            try:
                await holds()  # Closes with 4401 / 4403 when the authority lapsed.
            except Exception as exc:  # The database is down: try again next period, keep the socket.
                self.checked_at = time.monotonic()
                logger.warning("%s: could not re-read the session (%s: %s)", owner, type(exc).__name__, exc)

    def due(self) -> bool:
        return self.watch and time.monotonic() - self.checked_at >= conf.current().auth_recheck_seconds

    async def recheck(self, perm: Any, any_perm: bool) -> Reread:
        """Re-read session and user against the consumer's ``perm``; the connection applies the result."""
        self.checked_at = time.monotonic()
        reload = DatabaseSyncToAsync(self._reload, thread_sensitive=False, executor=worker_pool())
        user, allowed, matched = await reload(perm, any_perm)
        if user is None:
            return Reread(None, CloseCode.SESSION_ENDED, frozenset())
        return Reread(user, None if allowed else CloseCode.PERMISSION_DENIED, matched)

    def _reload(self, perm: Any, any_perm: bool) -> tuple[Any, bool, frozenset[str]]:
        if not self.session_key:
            return None, False, frozenset()
        store = import_module(settings.SESSION_ENGINE).SessionStore(self.session_key)
        user = auth.get_user(SimpleNamespace(session=store))
        if not user.is_authenticated or user.pk != self.user_pk or not getattr(user, "is_active", True):
            return None, False, frozenset()
        allowed, matched = check_user_perms(user, perm, any_perm)
        return user, allowed, matched
