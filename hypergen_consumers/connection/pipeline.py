"""The frame pipeline: every handler run, whoever asked for it, takes one path.

A client frame enters at ``receive`` (checked, decoded), then ``receive_json`` (its shape,
its id for "nothing twice"); a ``group_send`` run enters at ``hypergen_consumers_run``;
both meet in ``_dispatch_args`` (authority still holds? which handler?), then
``_run_checked`` (the handler's ``perm``) and ``_run`` (bind the arguments, render, encode
once, send to the sender or the group). Hooks (``on_connect``) join at ``_run``. A mistake
anywhere raises :class:`Rejected` with its error code; ``rejections()`` turns it into the
one error frame this connection gets. Channels delivers one message at a time per
connection, so a connection's handlers run in order and its replies keep that order.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from functools import partial
from time import perf_counter
from typing import Any

from django.conf import settings
from hypergen.liveview import loads

from hypergen_consumers import conf
from hypergen_consumers.auth.perms import perms_ok
from hypergen_consumers.connection.executor import HandlerTimedOut, handler_timeout
from hypergen_consumers.connection.heartbeat import HEARTBEAT_FRAME, HEARTBEAT_REPLY, is_heartbeat, keepalive
from hypergen_consumers.connection.rendering import render_async, render_sync
from hypergen_consumers.connection.state import ConnectionState
from hypergen_consumers.connection.targeting import OTHERS
from hypergen_consumers.declaring.handlers import HandlerArgumentsInvalid, HandlerSpec
from hypergen_consumers.declaring.url_kwarg_hints import url_kwarg_hint
from hypergen_consumers.delivery import catchup, frame_ids
from hypergen_consumers.errors import (
    FRAME_TOO_LARGE,
    HANDLER_ERROR,
    HANDLER_TIMEOUT,
    INVALID_FRAME,
    LAYER_UNAVAILABLE,
    PERMISSION_DENIED,
    RATE_LIMITED,
    UNKNOWN_HANDLER,
    VALIDATION_ERROR,
    CloseCode,
    Rejected,
)
from hypergen_consumers.layers.backend import backend_for
from hypergen_consumers.observability import observe
from hypergen_consumers.wire.frame_decoding import decode_frame
from hypergen_consumers.wire.mistake_log import mistakes
from hypergen_consumers.wire.outgoing import (
    TAIL_BYTES,
    encode,
    encoded_size,
    too_large_to_deliver,
)

__all__ = ["PipelineMixin"]

logger = logging.getLogger("hypergen_consumers")

#: The connection whose current run a ``group_send`` asked for (``from_server``), in the run's
#: task and the worker thread of a ``def`` handler; every run sets it, so a task started
#: during one run (a presence render) never inherits another run's answer.
_SERVER_RUN: ContextVar[object | None] = ContextVar("hypergen_consumers_server_run", default=None)


def _unknown_handler_message(cls: type, name: Any) -> str:
    handlers = sorted(cls._handlers)  # type: ignore[attr-defined]
    shown = repr(name[:60] + "...") if isinstance(name, str) and len(name) > 60 else repr(name)[:80]
    example = handlers[0] if handlers else "handler_name"
    return (
        f"{cls.__name__} has no handler {shown}; its handlers are {handlers}. The first callback "
        f"argument of a class consumer always names the handler: callback(url, {example!r}, ...)."
    )


class PipelineMixin(ConnectionState):
    """Client frames and ``group_send`` runs, through checks, to a handler and its output."""

    @property
    def from_server(self) -> bool:
        """True while a handler runs for a ``group_send`` (on every connection of the group),
        False for a client's frame, a hook or outside a run.

        A ``group_send`` runs the handler on each connection as that connection's user; this
        tells the handler so, e.g. to render "revealed by the server" instead of the viewer's
        name, or to do a side effect that must happen once only for a client's own frame.
        Nothing a client sends can make it True.
        """
        return _SERVER_RUN.get() is self

    # --- receiving ------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        """Check and decode one client frame, then hand it to ``receive_json``."""
        if not getattr(self, "_accepted", False) or getattr(self, "_closing", False):
            # A refused connection (accepted only to be closed with its code), or one the server
            # is closing (4401, 4403), runs nothing more: a frame already on its way is dropped.
            logger.debug("%s: dropped a frame from a refused or closing connection", type(self).__name__)
            return
        if text_data == HEARTBEAT_FRAME:
            await self.send(text_data=HEARTBEAT_REPLY)  # Before the rate limit: a page's pulse is never refused.
            return
        async with self.rejections():
            limiter = getattr(self, "_rate_limiter", None)
            if limiter is not None and not limiter.allow():
                raise Rejected(
                    RATE_LIMITED,
                    f"More than {limiter.per_second:g} messages per second (HYPERGEN_CONSUMERS_RATE_LIMIT).",
                )
            if text_data is None:
                raise Rejected(INVALID_FRAME, "Binary frames are not supported; send JSON text.")
            limit = conf.current().max_frame_bytes
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
            if is_heartbeat(content):
                await self.send(text_data=HEARTBEAT_REPLY)
                return
            beating = keepalive(self)  # Also while a re-sent frame waits for its first run to end.
            try:
                await frame_ids.run_once(
                    self, content["meta"], partial(self._dispatch_args, content["args"], to_group=None)
                )
            finally:
                beating.stop()

    @asynccontextmanager
    async def rejections(self) -> AsyncIterator[None]:
        """Turn a :class:`Rejected` raised inside into one error frame to this connection."""
        try:
            yield
        except Rejected as exc:
            observe.frame(self, exc.handler, exc.code.value, exc.seconds)
            await self.send_error(exc.code, exc.message, log=exc.log, **exc.extra)

    async def hypergen_consumers_run(self, event: dict[str, Any]) -> None:
        """Run a handler as if this connection's client had sent it (``group_send``); reply to it alone."""
        if not await catchup.on_group_event(self, event):
            await self._run_group_event(event)

    async def _run_group_event(self, event: dict[str, Any], *, tail: str | None = None) -> bool:
        """Run a ``group_send``'s handler for this connection. ``tail`` (an encoded command, the
        run's position) is appended to what the run replies; False if nothing carried it (the
        handler rendered nothing, or was skipped), so the caller sends it alone."""
        self._reply_tail = None if tail is None else (asyncio.current_task(), tail)
        try:
            async with self.rejections():
                try:
                    args = loads(event["args"])
                except Exception as exc:
                    raise Rejected(INVALID_FRAME, f"group_send arguments could not be decoded: {exc}") from None
                await self._dispatch_args(list(args), to_group=False, from_server=True)
        finally:
            unsent, self._reply_tail = self._reply_tail, None
        return tail is not None and unsent is None

    # --- to the handler ---------------------------------------------------------------

    async def _dispatch_args(self, args: list[Any], *, to_group: bool | None, from_server: bool = False) -> None:
        """Find the handler as docs/protocol.rst says: a ``@consumer`` function takes every arg;
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
        started = perf_counter()
        try:
            if spec.rate is not None and not from_server and not self._handler_limits.allow(spec.name, spec.rate):
                raise Rejected(
                    RATE_LIMITED,
                    f"More than {spec.rate.describe()} to {cls.__name__}.{spec.name} (its rate {spec.rate.text!r}); "
                    f"try again later.",
                )
            if to_group is None and spec.broadcast and not await self._layer_answers():
                raise Rejected(
                    LAYER_UNAVAILABLE,
                    f"{cls.__name__}.{spec.name} answers the group, and the channel layer is down: it was not run. "
                    f"client.js sends it again shortly (a new frame id).",
                    log=False,
                    retry=True,
                )
            await self._run_checked(
                spec, args, to_group=spec.broadcast if to_group is None else to_group, from_server=from_server
            )
        except Rejected as exc:
            exc.handler, exc.seconds = spec.name, perf_counter() - started  # Counted by rejections().
            raise
        observe.frame(self, spec.name, observe.OK, perf_counter() - started)

    async def _layer_answers(self) -> bool:
        """False while this process knows the channel layer is down (and rejoining fails): a
        handler that answers the group is then refused before it runs, so the page can send the
        frame again and have it run once, after the outage. Handlers that answer only their
        sender need no layer, and run."""
        health = backend_for(self.channel_layer).health
        return not health.is_down() or await health.ensure_recovered()

    async def _run_checked(
        self, spec: HandlerSpec, args: list[Any], *, to_group: bool | str, from_server: bool = False
    ) -> None:
        matched = self.matched_perms
        if spec.perm is not None:
            ok, handler_matched = await perms_ok(self.request.user, spec.perm, spec.any_perm)
            if not ok and from_server:
                # group_send is not this client's doing: nothing to tell it, nothing runs.
                logger.debug(
                    "group_send skipped %s.%s for %s, who lacks perm %r",
                    type(self).__name__,
                    spec.name,
                    self.request.user,
                    spec.perm,
                )
                return
            if not ok:
                raise Rejected(
                    PERMISSION_DENIED, f"{type(self).__name__}.{spec.name} requires permission {spec.perm!r}."
                )
            matched = matched | handler_matched
        await self._run(spec, args, to_group=to_group, matched_perms=matched, from_server=from_server)

    async def _run(
        self,
        spec: HandlerSpec,
        args: list[Any],
        *,
        to_group: bool | str,
        matched_perms: frozenset[str] | None = None,
        from_server: bool = False,
    ) -> None:
        cls = type(self)
        try:
            call_args, call_kwargs = spec.bind(args, self.url_kwargs)
        except HandlerArgumentsInvalid as exc:
            # A missing argument may be a URL kwarg under another name: say which ones exist.
            missing = any(error.get("type") == "missing" for error in exc.errors)
            hint = url_kwarg_hint(cls, spec) if missing else ""
            raise Rejected(
                VALIDATION_ERROR, f"Invalid arguments for {cls.__name__}.{spec.name}.{hint}", errors=exc.errors
            ) from None
        options = dict(
            request=self.request,
            target_id=spec.target_id,
            user_plugins=cls.user_plugins,
            matched_perms=self.matched_perms if matched_perms is None else matched_perms,
            owner=cls.__name__,
        )
        positional = [self, self.request, *call_args]
        what, timeout = f"{cls.__name__}.{spec.name}", handler_timeout(spec.timeout)
        server_run = _SERVER_RUN.set(self if from_server else None)
        beating = keepalive(self)  # A long run must not look like a dead path to the page.
        try:
            if spec.is_async:
                run = render_async(spec.func, positional, call_kwargs, **options)
                commands = await self._lane.run_async(what, timeout, run)
            else:
                commands = await self._lane.run_sync(
                    what, timeout, partial(render_sync, **options), spec.func, positional, call_kwargs
                )
            text = encode(commands) if commands else None
        except HandlerTimedOut as exc:
            raise Rejected(HANDLER_TIMEOUT, f"{exc} (its timeout; set timeout on the class or @handler).") from None
        except Exception as exc:
            mistakes.exception(cls.__name__, str(HANDLER_ERROR), f"{spec.name} raised {type(exc).__name__}")
            extra = {"traceback": traceback.format_exc()} if settings.DEBUG else {}
            raise Rejected(
                HANDLER_ERROR, f"{cls.__name__}.{spec.name} failed: {type(exc).__name__}.", log=False, **extra
            ) from None
        finally:
            beating.stop()
            _SERVER_RUN.reset(server_run)
        if text is None:
            return
        if too_large_to_deliver(text):  # With the position or ack each member's copy gets.
            raise Rejected(
                FRAME_TOO_LARGE,
                f"{cls.__name__}.{spec.name}'s output is {encoded_size(text)} bytes; the server sends at most "
                f"{conf.current().server_max_message_bytes} (HYPERGEN_CONSUMERS_SERVER_MAX_MESSAGE_BYTES), {TAIL_BYTES} of "
                f"them kept for the frame's position. Nothing was sent: send less at a time.",
            )
        if to_group == OTHERS:
            await self.send_to_group(text, exclude=self.channel_name)
        elif to_group:
            await self.send_to_group(text)
        else:
            await self.send_reply(text)

    # --- authority ------------------------------------------------------------------

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
        observe.closing(self, code)
        await self.close(code=int(code))  # autobahn refuses an IntEnum member.

    async def hypergen_consumers_session_ended(self, event: dict[str, Any]) -> None:
        """The session logged out or was deleted (in any process): close with 4401."""
        if not getattr(self, "_closing", False):
            await self._close_for(CloseCode.SESSION_ENDED)

    # --- JSON with hypergen's encoding ----------------------------------------------

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        """A client frame, decoded with bounded rules (see frame_decoding)."""
        return decode_frame(text_data)

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return encode(content)
