"""A connection's life: the ASGI entry point, the handshake, the groups, the end.

Channels' ``AsyncConsumer.__call__`` runs a connection; here it is re-implemented (see
``_compat.channels_consumer``) so that a channel-layer outage does not end the connection:
the layer receive waits for the process's recovery probe, which re-joins the groups as soon
as the layer answers again. The handshake checks ``perm`` before anything joins a group, and
however a connection ends (a disconnect, an exception, a cancelled task) it leaves its groups.
A connection joins its own group and its class's ``groups`` through the process's one member
of each (``local_groups``), which writes the group's frames to the socket while the
connection has nothing in turn (its ``Turn``), and otherwise puts them in its inbox.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import logging
from functools import partial
from typing import Any

from channels.exceptions import AcceptConnection, DenyConnection, StopConsumer

from hypergen_consumers import conf
from hypergen_consumers._compat import channels_consumer
from hypergen_consumers.auth.authority import Authority
from hypergen_consumers.auth.perms import perms_ok
from hypergen_consumers.connection.executor import handler_timeout
from hypergen_consumers.connection.ratelimit import RateLimiter
from hypergen_consumers.connection.slow_readers import find_send_buffer
from hypergen_consumers.connection.state import ConnectionState
from hypergen_consumers.delivery import catchup, frame_ids, local_groups
from hypergen_consumers.errors import CloseCode, ReservedGroupName
from hypergen_consumers.layers.backend import backend_for
from hypergen_consumers.layers.calls import CATCHUP_EVENT, require_layer, retried
from hypergen_consumers.layers.users import user_groups
from hypergen_consumers.observability import observe
from hypergen_consumers.presence import tracking as presence
from hypergen_consumers.wire.mistake_log import mistakes

__all__ = ["LifecycleMixin", "build_request"]

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


async def _call_hook(connection: Any, func: Any, *args: Any) -> None:
    """Await an async hook, or run a sync one in the worker pool (so the ORM works), with the class's timeout."""
    what, timeout = f"{type(connection).__name__}.{func.__name__}", handler_timeout(type(connection).timeout)
    if inspect.iscoroutinefunction(func):
        await connection._lane.run_async(what, timeout, func(connection, *args))
    else:
        await connection._lane.run_sync(what, timeout, func, connection, *args)


class LifecycleMixin(ConnectionState):
    """Connect, accept or refuse, survive layer outages, disconnect, leave the groups."""

    # --- the ASGI entry point -------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Channels' AsyncConsumer.__call__, with a channel-layer receive that survives outages.

        Channels stops the whole consumer when the layer's receive raises (Redis down), which
        would drop every connection. Here the receive waits for the layer instead, and
        resumes once the connection's groups are re-joined (``recovery``).
        """
        if not channels_consumer.call_is_ours():
            await self._channels_call(scope, receive, send)
            return
        self.scope = scope
        self.base_send = send
        self._server_receive = receive
        self.channel_layer = require_layer(self.channel_layer_alias, who=type(self).__name__)
        backend_for(self.channel_layer)  # Made before the first receive: it fits channels-redis's blocking read.
        try:
            self.channel_name = await self.channel_layer.new_channel()
        except Exception:
            logger.exception("%s: the channel layer is unavailable; refusing the connection", type(self).__name__)
            await receive()  # The handshake's websocket.connect.
            await send({"type": "websocket.close", "code": CloseCode.INTERNAL_ERROR})
            return
        self.channel_receive = self._receive_from_layer
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        turn = local_groups.Turn()
        self._inbox, self._turn = inbox, turn
        try:
            receivers: list[Any] = [receive, self.channel_receive, partial(self._from_inbox, inbox, turn)]
            await channels_consumer.await_many_dispatch(receivers, partial(self._dispatch_in_turn, turn))
        except StopConsumer:
            pass
        finally:
            # Whatever ended the connection (a disconnect, an exception, daphne cancelling a
            # still-running handler), it leaves its groups and the recovery registry. Shielded:
            # a second cancellation cannot cut the clean-up short.
            await asyncio.shield(self._leave_groups())

    async def _channels_call(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The fallback when Channels' ``__call__`` changed (see ``_compat.channels_consumer``):
        Channels' own, without the outage retry, and the same clean-up when it ends."""
        self._server_receive = receive
        require_layer(self.channel_layer_alias, who=type(self).__name__)  # Its error says what to configure.
        try:
            await super().__call__(scope, receive, send)  # type: ignore[misc]  # Channels' __call__.
        finally:
            await asyncio.shield(self._leave_groups())

    @staticmethod
    async def _from_inbox(inbox: asyncio.Queue[dict[str, Any]], turn: local_groups.Turn) -> dict[str, Any]:
        turn.taken = message = await inbox.get()
        return message

    async def _dispatch_in_turn(self, turn: local_groups.Turn, message: dict[str, Any]) -> None:
        """``dispatch``, marked on the connection's ``Turn``: while it runs, and while its inbox
        holds anything, a group's tap leaves its frames there instead of writing them itself."""
        turn.handling = True
        try:
            await self.dispatch(message)
        finally:
            turn.handled(message)

    async def _receive_from_layer(self) -> dict[str, Any]:
        while True:
            try:
                message: dict[str, Any] = await self.channel_layer.receive(self.channel_name)
                return message
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning(
                    "%s: channel layer receive failed (%s: %s); retrying once the layer answers",
                    type(self).__name__,
                    type(exc).__name__,
                    exc,
                )
                await self._wait_for_layer(backend_for(self.channel_layer).health.mark_failed())

    def request_catch_up(self) -> bool:
        """After an outage (see ``recovery``): queue one catch-up from the replay windows in this
        connection's local inbox, handled in turn with its other messages, never through the
        layer. False for a connection without an inbox (Channels' own ``__call__``)."""
        if getattr(self, "_replay", None) is None:
            return True  # No positions kept (replay off, or not client.js): nothing to catch up.
        inbox = self._inbox
        if inbox is None:
            return False
        if not self._catch_up_queued:
            self._catch_up_queued = True
            local_groups.put_in_inbox(self, {"type": CATCHUP_EVENT})
        return True

    async def _wait_for_layer(self, failed_at: float) -> None:
        """Wait until the layer answers and this process's connections are in their groups again
        (one probe for the whole process, see ``recovery``)."""
        await backend_for(self.channel_layer).health.wait_recovered(failed_at)

    # --- connect / disconnect --------------------------------------------------------

    async def websocket_connect(self, message: Any) -> None:
        """Check permissions, join the group, let ``connect()`` accept, then run ``on_connect``."""
        cls = type(self)
        self._joined, self._relayed = [], []
        self._accepted = False
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
        self._authority = Authority(self.scope, self.request.user)
        try:
            await catchup.start(self)
            rooms = dict.fromkeys([self.group, *self.groups])
            personal = [group for group in [*self._authority.groups(), *user_groups(self)] if group not in rooms]
            for group in [*rooms, *personal]:
                if self._inbox is not None and group in rooms:
                    # Through the process's one member of the group (local_groups). A session's or
                    # user's own group has a member or two per process: a channel of its own
                    # would cost more than it saves, so the connection joins those itself.
                    self._relayed.append(group)
                    await local_groups.join(self, group)
                else:
                    await retried(partial(self.channel_layer.group_add, group, self.channel_name), self.channel_layer)
                    self._joined.append(group)
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
        if not self._accepted:
            await self._leave_groups()
            return
        backend_for(self.channel_layer).health.track(self)
        self._authority.start_watching(self)  # Also a socket that never sends loses lapsed rights.
        per_second = conf.current().rate_limit
        self._rate_limiter = RateLimiter(per_second) if per_second else None
        await catchup.resume(self)
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
        self._accepted = True
        await presence.join(self)  # Before the client hears "accepted", so presence() lists it already.
        await super().accept(subprotocol=subprotocol, headers=headers)  # type: ignore[misc]  # Channels' accept.
        self._send_buffer = find_send_buffer(getattr(self, "_server_receive", None))
        presence.opened(self)  # Now a render can be sent (one woken during the join waited).
        observe.opened(self)

    async def websocket_disconnect(self, message: Any) -> None:
        """Leave the group, then call ``disconnect`` (Channels) and ``on_disconnect``."""
        observe.closing(self, message.get("code", 1000))
        await self._leave_groups()
        await self.disconnect(message.get("code", 1000))
        hook = type(self)._on_disconnect
        if hook is not None and getattr(self, "_accepted", False):
            try:
                await _call_hook(self, hook, self.request, message.get("code", 1000))
            except Exception:
                logger.exception("%s.on_disconnect raised", type(self).__name__)
        raise StopConsumer()

    async def _leave_groups(self) -> None:
        relayed, self._relayed = self._relayed, []
        for group in relayed:  # First: nothing below may keep a dead connection a member.
            await local_groups.leave(self, group)  # Out of the group at once; never raises.
        await frame_ids.flush_record(self)  # Its last reply's record, if it waited (frame_ids._record).
        backend_for(self.channel_layer).health.untrack(self)
        observe.left(self)
        authority = getattr(self, "_authority", None)
        if authority is not None:
            authority.stop_watching()
        await presence.leave(self)
        for group in getattr(self, "_joined", []):
            try:
                await retried(partial(self.channel_layer.group_discard, group, self.channel_name), self.channel_layer)
            except Exception as exc:
                # Owed: left once the layer answers (see recovery), or every broadcast to the
                # group would go on reaching this dead channel until channels-redis's group_expiry.
                backend_for(self.channel_layer).health.owe_discard(group, self.channel_name)
                logger.warning(
                    "%s: could not leave group %r yet (%s); leaving it when the layer answers",
                    type(self).__name__,
                    group,
                    type(exc).__name__,
                )
        self._joined = []
