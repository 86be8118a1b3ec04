"""What one websocket connection does: connect, receive, run handlers, reply, disconnect.

Kept apart from ``consumer.py`` (class creation) so each module has one job. The mixin
runs on Channels' ``AsyncJsonWebsocketConsumer``: Channels delivers one message at a time
per connection, so a connection's handlers run in order and its replies keep that order.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import logging
import traceback
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, ClassVar

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import AcceptConnection, DenyConnection, StopConsumer
from channels.utils import await_many_dispatch
from django.conf import settings
from hypergen.liveview import NO_PERM_REQUIRED, dumps, loads

from .errors import (
    ChannelLayerUnavailable,
    CloseCode,
    ErrorCode,
    Rejected,
    ReservedGroupName,
    FRAME_TOO_LARGE,
    HANDLER_ERROR,
    HANDLER_TIMEOUT,
    INVALID_FRAME,
    LAYER_UNAVAILABLE,
    PERMISSION_DENIED,
    RATE_LIMITED,
    UNKNOWN_HANDLER,
    VALIDATION_ERROR,
)
from . import catchup, presence, recovery
from .authority import Authority
from .frame_decoding import decode_frame
from .mistake_log import mistakes
from .slow_readers import find_send_buffer
from .outgoing import encoded_size, error_frame, server_max_message_bytes, too_large
from .db_cleanup import aclose_old_connections_if_any_open
from .executor import HandlerTimedOut, SerialLane, handler_timeout
from .handlers import HandlerArgumentsInvalid, HandlerSpec
from .layers import FRAME_EVENT, bounded, layer_errors, require_layer, retried
from .perms import check_user_perms
from .ratelimit import RateLimiter, rate_limit_setting
from .rendering import render_async, render_sync
from .targeting import OTHERS, run_event_method
from .users import user_groups

__all__ = ["ConnectionMixin", "DEFAULT_MAX_FRAME_BYTES"]

logger = logging.getLogger("hypergen_consumers")

DEFAULT_MAX_FRAME_BYTES = 256 * 1024
LAYER_RETRY_FIRST_DELAY = 0.1
LAYER_RETRY_MAX_DELAY = 5.0


def max_frame_bytes() -> int:
    return int(getattr(settings, "HYPERGEN_CONSUMERS_MAX_FRAME_BYTES", DEFAULT_MAX_FRAME_BYTES))


def build_request(scope: dict[str, Any]) -> Any:
    """A Django ASGIRequest for the handshake, like the request a view gets (user, session)."""
    from django.contrib.auth.models import AnonymousUser
    from django.core.handlers.asgi import ASGIRequest

    request: Any = ASGIRequest({**scope, "method": "WS"}, io.BytesIO())
    request.user = scope.get("user") or AnonymousUser()
    if "session" in scope:
        request.session = scope["session"]
    return request


async def _perms_ok(user: Any, perm: Any, any_perm: bool) -> tuple[bool, frozenset[str]]:
    if perm == NO_PERM_REQUIRED:
        return True, frozenset()
    result: tuple[bool, frozenset[str]] = await database_sync_to_async(check_user_perms)(user, perm, any_perm)
    return result


def _unknown_handler_message(cls: type, name: Any) -> str:
    handlers = sorted(cls._handlers)  # type: ignore[attr-defined]
    shown = repr(name[:60] + "...") if isinstance(name, str) and len(name) > 60 else repr(name)[:80]
    example = handlers[0] if handlers else "handler_name"
    return (
        f"{cls.__name__} has no handler {shown}; its handlers are {handlers}. The first callback "
        f"argument of a class consumer always names the handler: callback(url, {example!r}, ...)."
    )


async def _call_hook(connection: Any, func: Any, *args: Any) -> None:
    """Await an async hook, or run a sync one in the worker pool (so the ORM works), with the class's timeout."""
    what, timeout = f"{type(connection).__name__}.{func.__name__}", handler_timeout(type(connection).timeout)
    if inspect.iscoroutinefunction(func):
        await connection._lane.run_async(what, timeout, func(connection, *args))
    else:
        await connection._lane.run_sync(what, timeout, func, connection, *args)


class ConnectionMixin:
    """Per-connection behaviour of HypergenConsumer (see consumer.py for configuration)."""

    if TYPE_CHECKING:  # What HypergenConsumer and Channels' AsyncJsonWebsocketConsumer provide.
        perm: ClassVar[Any]
        any_perm: ClassVar[bool]
        target_id: ClassVar[str | None]
        user_plugins: ClassVar[Any]
        _handlers: ClassVar[dict[str, HandlerSpec]]
        _on_connect: ClassVar[HandlerSpec | None]
        _on_disconnect: ClassVar[Callable[..., Any] | None]
        _function_handler: ClassVar[str | None]
        channel_layer_alias: str
        groups: list[str]

        @classmethod
        def _group_for(cls, consumer: Any) -> str: ...
        async def close(self, code: int | bool | None = None, reason: str | None = None) -> None: ...
        async def connect(self) -> None: ...
        async def disconnect(self, code: int) -> None: ...

    @cached_property
    def _lane(self) -> SerialLane:
        """This connection's handler runs: in order, never overlapping, each with a timeout."""
        return SerialLane()

    # --- the ASGI entry point -------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Channels' AsyncConsumer.__call__, with a channel-layer receive that survives outages.

        Channels stops the whole consumer when the layer's receive raises (Redis down), which
        would drop every connection. Here the receive backs off and retries instead, and
        re-joins the connection's groups once the layer answers again.
        """
        self.scope = scope
        self.base_send = send
        self._server_receive = receive
        self.channel_layer = require_layer(self.channel_layer_alias, who=type(self).__name__)
        try:
            self.channel_name = await self.channel_layer.new_channel()
        except Exception:
            logger.exception("%s: the channel layer is unavailable; refusing the connection", type(self).__name__)
            await receive()  # The handshake's websocket.connect.
            await send({"type": "websocket.close", "code": CloseCode.INTERNAL_ERROR})
            return
        self.channel_receive = self._receive_from_layer
        try:
            receivers: list[Any] = [receive, self.channel_receive]
            await await_many_dispatch(receivers, self.dispatch)
        except StopConsumer:
            pass
        finally:
            # Whatever ended the connection (a disconnect, an exception, daphne cancelling a
            # still-running handler), it leaves its groups and the recovery registry. Shielded:
            # a second cancellation cannot cut the clean-up short.
            await asyncio.shield(self._leave_groups())

    async def _receive_from_layer(self) -> dict[str, Any]:
        while True:
            try:
                message: dict[str, Any] = await self.channel_layer.receive(self.channel_name)
                return message
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning(
                    "%s: channel layer receive failed (%s: %s); retrying with backoff",
                    type(self).__name__, type(exc).__name__, exc,
                )
                await self._wait_for_layer(recovery.mark_failed(self.channel_layer))

    async def _wait_for_layer(self, failed_at: float) -> None:
        """Back off until the layer answers and this process's connections are in their groups again."""
        delay = LAYER_RETRY_FIRST_DELAY
        while True:
            await asyncio.sleep(delay)
            if await recovery.recover(self.channel_layer, failed_at):
                return
            delay = min(delay * 2, LAYER_RETRY_MAX_DELAY)

    # --- connect / disconnect --------------------------------------------------------

    async def websocket_connect(self, message: Any) -> None:
        """Check permissions, join the group, let ``connect()`` accept, then run ``on_connect``."""
        cls = type(self)
        self._joined: list[str] = []
        self._accepted = False
        self.url_kwargs = dict(self.scope.get("url_route", {}).get("kwargs", {}))
        self.request = build_request(self.scope)
        ok, self.matched_perms = await _perms_ok(self.request.user, cls.perm, cls.any_perm)
        if not ok:
            logger.info("%s: handshake refused, %s lacks perm %r", cls.__name__, self.request.user, cls.perm)
            await self.refuse(CloseCode.PERMISSION_DENIED)
            return
        try:
            self.group = cls._group_for(self)
        except ReservedGroupName as exc:
            logger.warning("%s: handshake refused: %s", cls.__name__, exc)
            await self.refuse(CloseCode.PERMISSION_DENIED)  # Accept first, so a browser sees 4403.
            return
        self._authority = Authority(self.scope, self.request.user)
        try:
            await catchup.start(self)
            for group in [self.group, *self.groups, *self._authority.groups(), *user_groups(self)]:
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
        recovery.track(self)
        per_second = rate_limit_setting()
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
        await self.close(code=int(code))  # autobahn takes a plain int, not an IntEnum.

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        self._accepted = True
        await presence.join(self)  # Before the client hears "accepted", so presence() lists it already.
        await super().accept(subprotocol=subprotocol, headers=headers)  # type: ignore[misc]  # Channels' accept.
        self._send_buffer = find_send_buffer(getattr(self, "_server_receive", None))

    async def websocket_disconnect(self, message: Any) -> None:
        """Leave the group, then call ``disconnect`` (Channels) and ``on_disconnect``."""
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
        recovery.untrack(self)
        await presence.leave(self)
        for group in getattr(self, "_joined", []):
            try:
                await retried(partial(self.channel_layer.group_discard, group, self.channel_name), self.channel_layer)
            except Exception:
                logger.exception("%s: could not leave group %r", type(self).__name__, group)
        self._joined = []

    # --- receiving ------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        """Check and decode one client frame, then hand it to ``receive_json``."""
        if not getattr(self, "_accepted", False):
            # A refused connection (accepted only to be closed with its code) runs nothing.
            logger.debug("%s: dropped a frame from a refused connection", type(self).__name__)
            return
        async with self.rejections():
            limiter = getattr(self, "_rate_limiter", None)
            if limiter is not None and not limiter.allow():
                raise Rejected(
                    RATE_LIMITED, f"More than {limiter.per_second:g} messages per second (HYPERGEN_CONSUMERS_RATE_LIMIT)."
                )
            if text_data is None:
                raise Rejected(INVALID_FRAME, "Binary frames are not supported; send JSON text.")
            limit = max_frame_bytes()
            if len(text_data) * 4 > limit and len(text_data.encode("utf-8")) > limit:
                raise Rejected(
                    FRAME_TOO_LARGE, f"Frame is larger than {limit} bytes (HYPERGEN_CONSUMERS_MAX_FRAME_BYTES)."
                )
            try:
                content = await self.decode_json(text_data)
            except Rejected:
                raise
            except Exception as exc:
                raise Rejected(INVALID_FRAME, f"Frame is not valid JSON: {type(exc).__name__}: {exc}"[:300]) from None
            await self.receive_json(content, **kwargs)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Dispatch a decoded ``{"args": [...], "meta": {...}}`` frame to its handler."""
        async with self.rejections():
            if not (
                isinstance(content, dict)
                and isinstance(content.get("args"), list)
                and isinstance(content.get("meta"), dict)
            ):
                raise Rejected(
                    INVALID_FRAME, 'Expected {"args": [...], "meta": {...}}, the frame hypergen\'s callback() sends.'
                )
            frame_id, run = await catchup.admit(self, content["meta"])
            try:
                if run:
                    await self._dispatch_args(content["args"], to_group=None)
            finally:
                if frame_id is not None:
                    await catchup.acknowledge(self, frame_id)

    @asynccontextmanager
    async def rejections(self) -> AsyncIterator[None]:
        """Turn a :class:`Rejected` raised inside into one error frame to this connection."""
        try:
            yield
        except Rejected as exc:
            await self.send_error(exc.code, exc.message, log=exc.log, **exc.extra)

    async def _dispatch_args(self, args: list[Any], *, to_group: bool | None, from_server: bool = False) -> None:
        """Find the handler the way SPEC says: a ``@consumer`` function takes every arg;
        a class consumer's first arg names the handler, even when it has one handler."""
        cls = type(self)
        if not await self._authority_holds():
            return
        spec: HandlerSpec | None
        if cls._function_handler is not None:
            spec = cls._handlers[cls._function_handler]
        else:
            name = args[0] if args else None
            spec = cls._handlers.get(name) if isinstance(name, str) else None
            if spec is None:
                raise Rejected(UNKNOWN_HANDLER, _unknown_handler_message(cls, name))
            args = args[1:]
        await self._run_checked(
            spec, args, to_group=spec.broadcast if to_group is None else to_group, from_server=from_server
        )

    async def _run_checked(
        self, spec: HandlerSpec, args: list[Any], *, to_group: bool | str, from_server: bool = False
    ) -> None:
        matched = self.matched_perms
        if spec.perm is not None:
            ok, handler_matched = await _perms_ok(self.request.user, spec.perm, spec.any_perm)
            if not ok and from_server:
                # group_send is not this client's doing: nothing to tell it, nothing runs.
                logger.debug(
                    "group_send skipped %s.%s for %s, who lacks perm %r",
                    type(self).__name__, spec.name, self.request.user, spec.perm,
                )
                return
            if not ok:
                raise Rejected(PERMISSION_DENIED, f"{type(self).__name__}.{spec.name} requires permission {spec.perm!r}.")
            matched = matched | handler_matched
        await self._run(spec, args, to_group=to_group, matched_perms=matched)

    async def _run(
        self, spec: HandlerSpec, args: list[Any], *, to_group: bool | str, matched_perms: frozenset[str] | None = None
    ) -> None:
        cls = type(self)
        try:
            call_args, call_kwargs = spec.bind(args, self.url_kwargs)
        except HandlerArgumentsInvalid as exc:
            raise Rejected(
                VALIDATION_ERROR, f"Invalid arguments for {cls.__name__}.{spec.name}.", errors=exc.errors
            ) from None
        options = dict(
            request=self.request,
            target_id=cls.target_id,
            user_plugins=cls.user_plugins,
            matched_perms=self.matched_perms if matched_perms is None else matched_perms,
            owner=cls.__name__,
        )
        positional = [self, self.request, *call_args]
        what, timeout = f"{cls.__name__}.{spec.name}", handler_timeout(spec.timeout)
        try:
            if spec.is_async:
                run = render_async(spec.func, positional, call_kwargs, **options)
                commands = await self._lane.run_async(what, timeout, run)
            else:
                commands = await self._lane.run_sync(what, timeout, partial(render_sync, **options), spec.func, positional, call_kwargs)
            text = dumps(commands) if commands else None
        except HandlerTimedOut as exc:
            raise Rejected(HANDLER_TIMEOUT, f"{exc} (its timeout; set timeout on the class or @handler).") from None
        except Exception as exc:
            logger.exception("%s.%s raised", cls.__name__, spec.name)
            extra = {"traceback": traceback.format_exc()} if settings.DEBUG else {}
            raise Rejected(
                HANDLER_ERROR, f"{cls.__name__}.{spec.name} failed: {type(exc).__name__}.", log=False, **extra
            ) from None
        if text is None:
            return
        if too_large(text):
            raise Rejected(
                FRAME_TOO_LARGE,
                f"{cls.__name__}.{spec.name}'s output is {encoded_size(text)} bytes; the server sends at most "
                f"{server_max_message_bytes()} (HYPERGEN_CONSUMERS_SERVER_MAX_MESSAGE_BYTES). Nothing was sent: "
                f"send less at a time.",
            )
        if to_group == OTHERS:
            await self.send_to_group(text, exclude=self.channel_name)
        elif to_group:
            await self.send_to_group(text)
        else:
            await self.send(text_data=text)

    async def _authority_holds(self) -> bool:
        """Re-read session and user when due (see ``authority``); close the socket if they lapsed."""
        if getattr(self, "_closing", False):
            return False
        authority = getattr(self, "_authority", None)
        if authority is not None and authority.due():
            code = await authority.recheck(self)
            if code is not None:
                await self._close_for(code)
                return False
        return True

    async def _close_for(self, code: CloseCode) -> None:
        logger.info("%s: closing with %d: %s", type(self).__name__, code, code.name.lower())
        self._closing = True
        await self.close(code=int(code))  # autobahn refuses an IntEnum member.

    async def hypergen_consumers_session_ended(self, event: dict[str, Any]) -> None:
        """The session logged out or was deleted (in any process): close with 4401."""
        if not getattr(self, "_closing", False):
            await self._close_for(CloseCode.SESSION_ENDED)

    # --- sending --------------------------------------------------------------------

    async def send_to_group(self, text: str, *, exclude: str | None = None) -> None:
        """Send an encoded command list to every connection in this connection's group
        (but the channel ``exclude``, for ``broadcast="others"``)."""
        message = {"type": FRAME_EVENT, "text": text}
        if exclude is not None:
            message["exclude"] = exclude
            socket_key = getattr(self, "_socket_key", None)
            if socket_key is not None:
                message["exclude_socket"] = socket_key  # The sender's page, also after a reconnect.
        layer = self.channel_layer
        try:
            async with layer_errors("group_send", self.group):
                if not await recovery.ensure_recovered(layer):
                    raise ConnectionError("the channel layer is still down")
                message = await catchup.stamp(layer, self.channel_layer_alias, self.group, message)
                try:
                    await bounded(layer.group_send(self.group, message), layer)
                except Exception:
                    # A pooled connection may have died with a restarted Redis: one fresh try.
                    await bounded(layer.group_send(self.group, message), layer)
        except ChannelLayerUnavailable as exc:
            recovery.mark_failed(layer)
            await self.send_error(LAYER_UNAVAILABLE, f"Could not reach the other connections: {exc}", log=False)

    async def send_error(self, code: ErrorCode, message: str, *, log: bool = True, **extra: Any) -> None:
        """Send one ``hypergen.websocket.error`` command to this connection alone, and log it."""
        if log:
            mistakes.warning(type(self).__name__, str(code), message)
        await self.send(text_data=error_frame(code, message, **extra))

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False) -> None:
        """Channels' send, refusing a frame the server could not send (it would close the socket)."""
        if text_data is not None and too_large(text_data):
            logger.warning("%s: refused to send a %d-byte frame (frame_too_large)", type(self).__name__, len(text_data))
            text_data = error_frame(FRAME_TOO_LARGE, "A frame for this connection was too large to send; it was dropped.")
        await super().send(text_data=text_data, bytes_data=bytes_data, close=close)  # type: ignore[misc]
        buffer = getattr(self, "_send_buffer", None)
        if buffer is not None and buffer.over_limit():
            self._send_buffer = None
            logger.warning(
                "%s: the client is not reading (%d bytes queued, HYPERGEN_CONSUMERS_MAX_QUEUED_BYTES = %d); closed with %d",
                type(self).__name__, buffer.queued(), buffer.limit, CloseCode.TRY_AGAIN_LATER,
            )
            await super().close(code=int(CloseCode.TRY_AGAIN_LATER))  # type: ignore[misc]

    # --- channel layer events -------------------------------------------------------

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch, with its per-message database clean-up only when it can do something.

        Channels hops to a worker thread to run ``close_old_connections`` before every message;
        here that hop is made only while a database connection is open (see ``db_cleanup``).
        A pre-encoded frame (a broadcast, the most common message under fan-out) only
        forwards text and never touches the database, so it skips the clean-up entirely.
        """
        if message["type"] == FRAME_EVENT:
            await self.hypergen_consumers_frame(message)
            return
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await aclose_old_connections_if_any_open()
        await run_event_method(handler, message, getattr(self, "request", None))

    async def hypergen_consumers_frame(self, event: dict[str, Any]) -> None:
        """An already encoded command list for this connection (a broadcast or consumer_command)."""
        if await catchup.on_group_event(self, event):
            return  # Positioned: sent in stream order (and not to an excluded sender) by catchup.
        if event.get("exclude") == self.channel_name:
            return  # broadcast="others": the sender does not get its own output.
        await self.send(text_data=event["text"])

    async def hypergen_consumers_run(self, event: dict[str, Any]) -> None:
        """Run a handler as if this connection's client had sent it (``group_send``); reply to it alone."""
        if not await catchup.on_group_event(self, event):
            await self._run_group_event(event)

    async def hypergen_consumers_catchup(self, event: dict[str, Any]) -> None:
        """After a layer outage: send what the group said while this connection was out of it."""
        await catchup.catch_up(self)

    async def _run_group_event(self, event: dict[str, Any]) -> None:
        async with self.rejections():
            try:
                args = loads(event["args"])
            except Exception as exc:
                raise Rejected(INVALID_FRAME, f"group_send arguments could not be decoded: {exc}") from None
            await self._dispatch_args(list(args), to_group=False, from_server=True)

    # --- JSON with hypergen's encoding ----------------------------------------------

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        """A client frame, decoded with bounded rules (see frame_decoding)."""
        return decode_frame(text_data)

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        text: str = dumps(content)
        return text
