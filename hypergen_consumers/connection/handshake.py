"""A connection's handshake: ``perm``, the groups, ``connect()``, then ``on_connect``.

The handshake checks ``perm`` before anything joins a group (a refused socket is accepted
only to be closed with its code, so a browser sees it). It reads where the page is in each
replayed stream (``catchup.start``) before joining, so nothing sent in between is lost, then
joins its own group and its class's ``groups`` through the process's one member of each
(``local_groups``, which puts the group's messages in the connection's inbox); the session's
and user's groups with its own channel. Once ``connect()`` accepted, the page is caught up
and ``on_connect`` runs. How the socket lives on and ends is ``lifecycle``.
"""

from __future__ import annotations

import io
import logging
from functools import partial
from typing import Any

from channels.exceptions import AcceptConnection, DenyConnection

from hypergen_consumers import conf
from hypergen_consumers.auth.authority import Authority
from hypergen_consumers.auth.perms import perms_ok
from hypergen_consumers.connection.heartbeat import keepalive_period
from hypergen_consumers.connection.ratelimit import RateLimiter
from hypergen_consumers.connection.slow_readers import find_send_buffer
from hypergen_consumers.connection.state import ConnectionState
from hypergen_consumers.delivery import catchup, local_groups
from hypergen_consumers.errors import CloseCode, ReservedGroupName
from hypergen_consumers.layers.backend import backend_for
from hypergen_consumers.layers.calls import retried
from hypergen_consumers.layers.users import user_groups
from hypergen_consumers.observability import observe
from hypergen_consumers.presence import tracking as presence
from hypergen_consumers.wire.mistake_log import mistakes

__all__ = ["HandshakeMixin", "build_request"]

logger = logging.getLogger("hypergen_consumers")


def build_request(scope: dict[str, Any]) -> Any:
    """A Django ASGIRequest for the handshake, like the request a view gets (user, session)."""
    from django.contrib.auth.models import AnonymousUser
    from django.core.handlers.asgi import ASGIRequest

    request: Any = ASGIRequest({**scope, "method": "WS"}, io.BytesIO())
    request.user = scope.get("user") or AnonymousUser()
    if "session" in scope:
        request.session = scope["session"]
    return request


class HandshakeMixin(ConnectionState):
    """Check permissions, join the groups, accept or refuse, catch up, run ``on_connect``."""

    async def websocket_connect(self, message: Any) -> None:
        """Check permissions, join the group, let ``connect()`` accept, then run ``on_connect``."""
        cls = type(self)
        socket = self._hc.socket
        socket.keepalive_period = keepalive_period(self.scope)
        self.url_kwargs = dict(self.scope.get("url_route", {}).get("kwargs", {}))
        self.request = build_request(self.scope)
        ok, self.matched_perms = await perms_ok(self.request.user, cls.perm, cls.any_perm)
        if not ok:
            logger.info("%s: handshake refused, %s lacks perm %r", cls.__name__, self.request.user, cls.perm)
            await self.refuse(CloseCode.PERMISSION_DENIED)
            return
        try:
            self.group = cls._group_for(self)
        except ReservedGroupName as exc:
            mistakes.warning(cls.__name__, "handshake refused", str(exc))  # A client chose the URL: budgeted.
            await self.refuse(CloseCode.PERMISSION_DENIED)  # Accept first, so a browser sees 4403.
            return
        authority = self._hc.authority = Authority(self.scope, self.request.user)
        try:
            await catchup.start(self._hc.delivery, self)
            rooms = dict.fromkeys([self.group, *self.groups])
            personal = [group for group in [*authority.groups(), *user_groups(self)] if group not in rooms]
            for group in [*rooms, *personal]:
                if socket.inbox is not None and group in rooms:
                    # Through the process's one member of the group (local_groups). A session's or
                    # user's own group has a member or two per process: a channel of its own
                    # would cost more than it saves, so the connection joins those itself.
                    socket.relayed.append(group)
                    await local_groups.join(self, group)
                else:
                    await retried(partial(self.channel_layer.group_add, group, self.channel_name), self.channel_layer)
                    socket.joined.append(group)
        except Exception:
            logger.exception("%s: could not join group %r; refusing the connection", cls.__name__, self.group)
            await self._leave_groups()
            await self.close(code=CloseCode.INTERNAL_ERROR)
            return
        try:
            await self.connect()
        except AcceptConnection:
            await self.accept()
        except DenyConnection:
            await self.close()
        if not socket.accepted:
            await self._leave_groups()
            return
        backend_for(self.channel_layer).health.track(self)
        # Also a socket that never sends loses lapsed rights.
        authority.start_watching(cls.__name__, socket, self._authority_holds)
        per_second = conf.current().rate_limit
        self._hc.limits.rate_limiter = RateLimiter(per_second) if per_second else None
        await self._resume()
        if cls._on_connect is not None:
            async with self.rejections():
                await self._run(cls._on_connect, [], to_group=False)

    async def refuse(self, code: int) -> None:
        """Accept, then close at once with ``code``: a browser sees the code in its close event.

        Closing before accepting makes the server answer the handshake with HTTP 403, which a
        browser reports as 1006 (like a network outage), so client.js would retry for ever.
        Nothing joins a group and no hook or handler runs.
        """
        await self.base_send({"type": "websocket.accept", "subprotocol": None, "headers": []})
        observe.closing(self, code)
        await self.close(code=int(code))  # autobahn takes a plain int, not an IntEnum.

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        socket = self._hc.socket
        socket.accepted = True
        await presence.join(self)  # Before the client hears "accepted", so presence() lists it already.
        await super().accept(subprotocol=subprotocol, headers=headers)  # type: ignore[misc]  # Channels' accept.
        socket.buffer = find_send_buffer(socket.server_receive)
        presence.opened(self)  # Now a render can be sent (one woken during the join waited).
        observe.opened(self)
