"""The frame pipeline: every handler run, whoever asked for it, takes one path.

A client frame enters at ``client_frames`` (checked, decoded, its id claimed for "nothing
twice"); a ``group_send`` run at ``group_frames`` (in stream order, with its position);
both meet here in ``_dispatch_args`` (authority still holds? which handler?), then
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
from contextvars import ContextVar
from time import perf_counter
from typing import Any

from django.conf import settings

from hypergen_consumers import conf
from hypergen_consumers.auth.perms import perms_ok
from hypergen_consumers.connection.executor import HandlerTimedOut, handler_timeout
from hypergen_consumers.connection.heartbeat import keepalive
from hypergen_consumers.connection.rendering import renderer_for
from hypergen_consumers.connection.state import ConnectionState
from hypergen_consumers.connection.targeting import OTHERS
from hypergen_consumers.declaring.handlers import HandlerArgumentsInvalid, HandlerSpec
from hypergen_consumers.declaring.url_kwarg_hints import url_kwarg_hint
from hypergen_consumers.errors import (
    FRAME_TOO_LARGE,
    HANDLER_ERROR,
    HANDLER_TIMEOUT,
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
    if name is None:  # Empty args (or a null first one): "has no handler None" reads as a handler's name.
        return (
            f"The frame to {cls.__name__} named no handler: the first callback argument of a class consumer "
            f"must name the handler, e.g. callback(url, {example!r}, ...); its handlers are {handlers}."
        )
    return (
        f"{cls.__name__} has no handler {shown}; its handlers are {handlers}. The first callback "
        f"argument of a class consumer always names the handler: callback(url, {example!r}, ...)."
    )


class _Rejections:
    """``async with connection.rejections():`` (a class: entered for every frame, and cheaper
    than an ``asynccontextmanager``)."""

    __slots__ = ("connection",)

    def __init__(self, connection: PipelineMixin) -> None:
        self.connection = connection

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        if not isinstance(exc, Rejected):
            return False
        await self.connection._send_rejection(exc)
        return True


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

    def rejections(self) -> _Rejections:
        """Turn a :class:`Rejected` raised inside into one error frame to this connection."""
        return _Rejections(self)

    async def _send_rejection(self, exc: Rejected) -> None:
        """What ``rejections()`` does with a :class:`Rejected`: counted, and one error frame to this connection."""
        observe.frame(self, exc.handler, exc.code.value, exc.seconds)
        await self.send_error(exc.code, exc.message, log=exc.log, **exc.extra)

    # --- to the handler ---------------------------------------------------------------

    async def _dispatch_args(self, args: list[Any], *, to_group: bool | None, from_server: bool = False) -> None:
        """Find the handler as docs/protocol.rst says: a ``@consumer`` function takes every arg;
        a class consumer's first arg names the handler, even when it has one handler."""
        cls = type(self)
        record = self._hc
        if record.socket.closing:
            return
        authority = record.authority
        if authority is not None and authority.due() and not await self._authority_holds():
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
            limits = record.limits.handler_limits
            if spec.rate is not None and not from_server and not limits.allow(spec.name, spec.rate):
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
            to = spec.broadcast if to_group is None else to_group
            if spec.perm is None:  # No perm of its own (the class's was checked at the handshake).
                await self._run(spec, args, to_group=to, from_server=from_server)
            else:
                await self._run_checked(spec, args, to_group=to, from_server=from_server)
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
        if spec.perm is not None:  # Always, from _dispatch_args; kept for any other caller.
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
        except (Exception, asyncio.CancelledError) as exc:
            # A validator of the project's own raised what pydantic does not turn into a
            # validation error (only ValueError and AssertionError): a bug in that validator,
            # answered like one in the handler, not an end of the sender's connection. Binding
            # awaits nothing, so no cancellation of this task arrives inside it: a CancelledError
            # from there is a validator's own, and let through the pump takes it for the loop's end.
            raise _handler_error(
                cls.__name__,
                f"{spec.name}'s argument validation raised {type(exc).__name__}: a validator must raise ValueError "
                f"(or AssertionError) for pydantic to answer validation_error",
                f"{cls.__name__}.{spec.name} failed validating its arguments: {type(exc).__name__}.",
            ) from None
        renderer = renderer_for(cls, spec.target_id, cls.user_plugins)
        matched = self.matched_perms if matched_perms is None else matched_perms
        positional = [self, self.request, *call_args]
        what, timeout = f"{cls.__name__}.{spec.name}", handler_timeout(spec.timeout)
        server_run = _SERVER_RUN.set(self if from_server else None)
        beating = keepalive(self._hc.socket, self._send)  # A long run must not look like a dead path to the page.
        try:
            if spec.is_async:
                run = renderer.run_async(spec.func, positional, call_kwargs, self.request, matched)
                commands = await self._hc.limits.lane.run_async(what, timeout, run)
            else:
                commands = await self._hc.limits.lane.run_sync(
                    what, timeout, renderer.run_sync, spec.func, positional, call_kwargs, self.request, matched
                )
            text = encode(commands) if commands else None
        except HandlerTimedOut as exc:
            raise Rejected(HANDLER_TIMEOUT, f"{exc} (its timeout; set timeout on the class or @handler).") from None
        except Exception as exc:
            raise _handler_error(
                cls.__name__,
                f"{spec.name} raised {type(exc).__name__}",
                f"{cls.__name__}.{spec.name} failed: {type(exc).__name__}.",
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
        if self._hc.socket.closing:
            return False
        authority = self._hc.authority
        if authority is not None and authority.due():
            cls = type(self)
            reread = await authority.recheck(cls.perm, cls.any_perm)
            if reread.user is not None:
                self.request.user = reread.user
                self.scope["user"] = reread.user
            if reread.code is not None:
                await self._close_for(reread.code)
                return False
            self.matched_perms = reread.matched
        return True

    async def _close_for(self, code: CloseCode) -> None:
        logger.info("%s: closing with %d: %s", type(self).__name__, code, code.name.lower())
        self._hc.socket.closing = True
        observe.closing(self, code)
        await self.close(code=int(code))  # autobahn refuses an IntEnum member.

    async def hypergen_consumers_session_ended(self, event: dict[str, Any]) -> None:
        """The session logged out or was deleted (in any process): close with 4401."""
        if not self._hc.socket.closing:
            await self._close_for(CloseCode.SESSION_ENDED)

    # --- JSON with hypergen's encoding ----------------------------------------------

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        """A client frame, decoded with bounded rules (see frame_decoding)."""
        return decode_frame(text_data)

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return encode(content)


def _handler_error(owner: str, logged: str, told: str) -> Rejected:
    """``handler_error`` for the exception being handled: the log line (with its traceback,
    within the mistake budget) says what failed, the sender is told ``told`` (the traceback
    too under DEBUG)."""
    mistakes.exception(owner, str(HANDLER_ERROR), logged)
    extra = {"traceback": traceback.format_exc()} if settings.DEBUG else {}
    return Rejected(HANDLER_ERROR, told, log=False, **extra)
