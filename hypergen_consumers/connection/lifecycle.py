"""A connection's life: the ASGI entry point, every message in, the end.

Channels' ``AsyncConsumer.__call__`` runs a connection; here it is re-implemented (see
``_compat.channels_consumer``) so that a channel-layer outage does not end the connection:
the layer receive waits for the process's recovery probe, which re-joins the groups as soon
as the layer answers again. One loop reads the server (the handshake, ``handshake``; client
frames, ``client_frames``; the close), the layer and the connection's inbox (its groups'
frames, ``group_frames``), and ``dispatch`` hands each message, in turn, to its method. A
group's tap (``local_groups``) writes its frames to the socket itself while the connection has
nothing in turn (its ``Turn``), and otherwise puts them in the inbox. However a connection
ends (a disconnect, an exception, a cancelled task) it leaves its groups.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import weakref
from functools import partial
from typing import Any

from channels.db import DatabaseSyncToAsync
from channels.exceptions import StopConsumer
from hypergen.context import context

from hypergen_consumers._compat import channels_consumer
from hypergen_consumers._compat.channels_db import aclose_old_connections
from hypergen_consumers.connection.client_frames import own_receive_path
from hypergen_consumers.connection.db_cleanup import cleanup_needed
from hypergen_consumers.connection.executor import handler_timeout, worker_pool
from hypergen_consumers.connection.handshake import build_request
from hypergen_consumers.connection.receivers import dispatch_from
from hypergen_consumers.connection.sending import direct_send
from hypergen_consumers.connection.state import ConnectionState
from hypergen_consumers.delivery import frame_ids, local_groups
from hypergen_consumers.errors import CloseCode
from hypergen_consumers.layers.backend import backend_for
from hypergen_consumers.layers.calls import CATCHUP_EVENT, FRAME_EVENT, receive, require_layer, retried
from hypergen_consumers.observability import observe
from hypergen_consumers.presence import tracking as presence

__all__ = ["LifecycleMixin", "build_request", "run_event_method"]

logger = logging.getLogger("hypergen_consumers")


async def _call_hook(connection: LifecycleMixin, func: Any, *args: Any) -> None:
    """Await an async hook, or run a sync one in the worker pool (so the ORM works), with the class's timeout."""
    what, timeout = f"{type(connection).__name__}.{func.__name__}", handler_timeout(type(connection).timeout)
    if inspect.iscoroutinefunction(func):
        await connection._hc.limits.lane.run_async(what, timeout, func(connection, *args))
    else:
        await connection._hc.limits.lane.run_sync(what, timeout, func, connection, *args)


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
        self._hc.socket.server_receive = receive
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
        turn = local_groups.Turn(limit=_client_read_limit(self.channel_layer))
        socket = self._hc.socket
        socket.inbox, socket.turn = inbox, turn
        socket.own_receive_path, socket.direct_send = own_receive_path(type(self)), direct_send(type(self))
        try:
            receivers: list[Any] = [
                partial(self._from_server, receive, turn),
                self.channel_receive,
                partial(self._from_inbox, inbox, turn),
            ]
            await dispatch_from(receivers, partial(self._dispatch_in_turn, turn))
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
        self._hc.socket.server_receive = receive
        require_layer(self.channel_layer_alias, who=type(self).__name__)  # Its error says what to configure.
        try:
            await super().__call__(scope, receive, send)  # type: ignore[misc]  # Channels' __call__.
        finally:
            await asyncio.shield(self._leave_groups())

    @staticmethod
    async def _from_server(receive: Any, turn: local_groups.Turn) -> dict[str, Any]:
        """The server's next message, read once the inbox has room (``Turn.room_for_client``):
        a client's frames wait with the server while its own broadcasts fill its inbox."""
        if turn.limit is not None and turn.queued >= turn.limit:  # Checked here: no wait, no coroutine.
            await turn.room_for_client()
        message: dict[str, Any] = await receive()
        return message

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
        """The next message on the connection's own channel. Through ``calls.receive``, so the
        read ends when the connection does (a read that swallowed its cancellation kept a closed
        socket's instance alive until daphne killed it)."""
        while True:
            try:
                message: dict[str, Any] = await receive(self.channel_layer, self.channel_name)
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
        delivery = self._hc.delivery
        if not delivery.streams:
            return True  # No positions kept (replay off, or not client.js): nothing to catch up.
        inbox = self._hc.socket.inbox
        if inbox is None:
            return False
        if not delivery.catch_up_queued:
            delivery.catch_up_queued = True
            local_groups.put_in_inbox(self, {"type": CATCHUP_EVENT})
        return True

    async def _wait_for_layer(self, failed_at: float) -> None:
        """Wait until the layer answers and this process's connections are in their groups again
        (one probe for the whole process, see ``recovery``)."""
        await backend_for(self.channel_layer).health.wait_recovered(failed_at)

    # --- every message in ------------------------------------------------------------

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Where every message to the connection enters, one at a time, and goes to its method.

        From the server: ``websocket.connect`` (``handshake``), ``websocket.receive`` (a client
        frame, ``client_frames``), ``websocket.disconnect`` (below). From the layer and the
        inbox: the groups' frames and runs (``group_frames``), a catch-up, a session's end, and
        a user's own event methods (``run_event_method``).

        It is Channels' dispatch, with its per-message database clean-up only when it can do
        something: Channels hops to a worker thread to run ``close_old_connections`` before
        every message; here that hop is made only while a database connection is open (see
        ``db_cleanup``). A pre-encoded frame (a broadcast, the most common message under fan-out) only
        forwards text and never touches the database, so it skips the clean-up entirely.
        """
        if not channels_consumer.dispatch_is_ours():
            await self._channels_dispatch(message)
            return
        kind = message["type"]
        if kind == FRAME_EVENT:
            await self.hypergen_consumers_frame(message)
            return
        if kind == "websocket.receive" and self._hc.socket.own_receive_path:
            # A client frame, straight to ``receive`` (Channels' ``websocket_receive`` would
            # only pass it on): the most common message of all, see ``own_receive_path``.
            if cleanup_needed():
                await aclose_old_connections()
            text = message.get("text")
            await self.receive(text_data=text, bytes_data=message.get("bytes") if text is None else None)
            return
        handler = getattr(self, channels_consumer.get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        if cleanup_needed():
            await aclose_old_connections()
        await run_event_method(handler, message, getattr(self, "request", None))

    async def _channels_dispatch(self, message: dict[str, Any]) -> None:
        """The fallback when Channels' ``dispatch`` changed (see ``_compat.channels_consumer``).

        Channels' own dispatch (its clean-up hop before every message), except for a plain
        ``def`` event method, which Channels' async dispatch cannot run: that one runs in a
        worker thread as ``run_event_method`` promises, after the same clean-up.
        """
        handler = getattr(self, str(message.get("type", "")).replace(".", "_"), None)
        if handler is not None and not inspect.iscoroutinefunction(handler):
            await aclose_old_connections()
            await run_event_method(handler, message, getattr(self, "request", None))
            return
        await super().dispatch(message)  # Channels' dispatch.

    # --- the end --------------------------------------------------------------------

    async def websocket_disconnect(self, message: Any) -> None:
        """Leave the group, then call ``disconnect`` (Channels) and ``on_disconnect``."""
        observe.closing(self, message.get("code", 1000))
        await self._leave_groups()
        await self.disconnect(message.get("code", 1000))
        hook = type(self)._on_disconnect
        if hook is not None and self._hc.socket.accepted:
            try:
                await _call_hook(self, hook, self.request, message.get("code", 1000))
            except Exception:
                logger.exception("%s.on_disconnect raised", type(self).__name__)
        raise StopConsumer()

    async def _leave_groups(self) -> None:
        record = self._hc
        relayed, record.socket.relayed = record.socket.relayed, []
        for group in relayed:  # First: nothing below may keep a dead connection a member.
            await local_groups.leave(self, group)  # Out of the group at once; never raises.
        await frame_ids.flush_record(record.delivery, type(self).__name__)  # Its last reply's record, if it waited.
        backend_for(self.channel_layer).health.untrack(self)
        observe.left(self)
        if record.authority is not None:
            record.authority.stop_watching()
        await presence.leave(self)
        for group in record.socket.joined:
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
        record.socket.joined = []


def _client_read_limit(layer: Any) -> int | None:
    """How many messages may wait in a connection's inbox while it still reads its client's
    next frame: half of what the inbox holds at most (the layer's capacity, see
    ``local_groups``), so the other half is left for the room's other senders."""
    bound = local_groups.relay_for(layer).inbox_bound
    return None if bound is None else max(1, bound // 2)


#: Weak: a method using ``super()`` refers to its class, which must stay free to go.
_async_functions: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def _is_async(method: Any) -> bool:
    """``inspect.iscoroutinefunction``, remembered per function (asked for every message)."""
    function = getattr(method, "__func__", None)
    if function is None:
        return inspect.iscoroutinefunction(method)
    known = _async_functions.get(function)
    if known is None:
        known = _async_functions[function] = inspect.iscoroutinefunction(method)
    return known


async def run_event_method(method: Any, message: dict[str, Any], request: Any = None) -> None:
    """Run a channel-layer event method: ``async def`` awaited, ``def`` in a worker thread.

    Upstream hypergen's (and Channels' sync consumers') event methods are plain ``def``;
    in a worker thread they may use the ORM, render with ``hypergen(...)`` (the
    connection's request is in hypergen's context, as upstream's dispatch put it) and
    send with ``self.send_commands(...)``.
    """
    if _is_async(method):
        await method(message)
        return

    def call() -> None:
        if request is None:
            method(message)
            return
        with context(request=request):
            method(message)

    # The worker pool, not asgiref's one thread-sensitive thread (see executor).
    await DatabaseSyncToAsync(call, thread_sensitive=False, executor=worker_pool())()
