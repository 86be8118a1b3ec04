"""What every part of a connection relies on: the attributes set on it, and its serial lane.

A connection's behaviour is split by concept (``lifecycle``, ``pipeline``, ``sending``),
composed into ``connection.ConnectionMixin``. Each part reads state another part (or
``HypergenConsumer``, or Channels' ``AsyncJsonWebsocketConsumer``) sets; this base declares
that state once, for the type checkers, so no part has to guess what the others provide.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from hypergen_consumers.connection.executor import SerialLane
from hypergen_consumers.connection.handler_rates import HandlerLimits

if TYPE_CHECKING:
    from hypergen_consumers.auth.authority import Authority
    from hypergen_consumers.connection.ratelimit import RateLimiter
    from hypergen_consumers.connection.slow_readers import SendBuffer
    from hypergen_consumers.declaring.handlers import HandlerSpec
    from hypergen_consumers.delivery.frame_ids import PendingRecord
    from hypergen_consumers.delivery.local_groups import Turn
    from hypergen_consumers.errors import ErrorCode

__all__ = ["ConnectionState", "RUN_RECORDING"]

#: The recording of the client frame whose run this code is part of (``frame_ids.run_once``),
#: in its task and the tasks and threads it starts. A connection also sends from outside its
#: runs (a presence render runs in a task of its own, at any time): that is no run's reply.
RUN_RECORDING: ContextVar[list[str] | None] = ContextVar("hypergen_consumers_run_recording", default=None)


class ConnectionState:
    """The state one connection's parts share (see the module docstring)."""

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

        # Set when the connection starts (``lifecycle``).
        base_send: Any
        channel_layer: Any
        channel_name: str
        channel_receive: Any
        url_kwargs: dict[str, Any]
        request: Any
        matched_perms: frozenset[str]
        group: str
        _server_receive: Any
        _joined: list[str]
        _accepted: bool
        _authority: Authority
        _rate_limiter: RateLimiter | None
        _closing: bool

        @classmethod
        def _group_for(cls, consumer: Any) -> str: ...
        async def close(self, code: int | bool | None = None, reason: str | None = None) -> None: ...
        async def connect(self) -> None: ...
        async def disconnect(self, code: int) -> None: ...

        # Provided by one part, used by another.
        def rejections(self) -> AbstractAsyncContextManager[None]: ...
        async def _run(
            self,
            spec: HandlerSpec,
            args: list[Any],
            *,
            to_group: bool | str,
            matched_perms: frozenset[str] | None = None,
            from_server: bool = False,
        ) -> None: ...
        async def send(
            self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
        ) -> None: ...
        async def dispatch(self, message: dict[str, Any]) -> None: ...
        async def send_to_group(self, text: str, *, exclude: str | None = None) -> None: ...
        async def send_error(self, code: ErrorCode, message: str, *, log: bool = True, **extra: Any) -> None: ...
        async def send_reply(self, text: str) -> None: ...
        def request_catch_up(self) -> bool: ...

    #: Counted as open in the metrics (``observability``), and the close code counted, if any.
    _observed_open: bool = False
    _observed_close: int | None = None
    #: In-process messages to this connection (a catch-up after an outage), beside the server's
    #: and the layer's; None until the connection runs (``lifecycle``).
    _inbox: asyncio.Queue[dict[str, Any]] | None = None
    #: Whether a group's tap may write to this connection's socket itself (``local_groups.Turn``).
    _turn: Turn | None = None
    #: The groups this connection is in through the process's one member of each (``local_groups``).
    _relayed: list[str] = []
    #: Its inbox was full once (see ``local_groups``): said once in the log.
    _inbox_overflowed = False
    #: The client's send buffer under daphne (``slow_readers``), found when the socket is accepted.
    _send_buffer: SendBuffer | None = None
    #: A catch-up waits in the inbox: one is enough, however many outages end meanwhile.
    _catch_up_queued = False
    #: A reply record waiting to ride on the socket's next claim, and the timer that writes it
    #: otherwise (see frame_ids._record).
    _pending_record: PendingRecord | None = None
    _record_timer: asyncio.TimerHandle | None = None
    #: While a client frame with an id runs: what that run sends (see frame_ids.run_once).
    _recording: list[str] | None = None
    #: That run's reply, held back to carry the frame's ack: one frame down, not two (send_reply).
    _held_reply: str | None = None

    #: While a ``group_send`` run goes: its task and the encoded position its reply carries
    #: (``pipeline._run_group_event``): one frame per member, not two.
    _reply_tail: tuple[asyncio.Task[Any] | None, str] | None = None

    def _run_recording(self) -> list[str] | None:
        """The recording of the run the calling code is part of, if it is this connection's."""
        recording = self._recording
        return recording if recording is not None and RUN_RECORDING.get() is recording else None

    @cached_property
    def _lane(self) -> SerialLane:
        """This connection's handler runs: in order, never overlapping, each with a timeout."""
        return SerialLane()

    @cached_property
    def _handler_limits(self) -> HandlerLimits:
        """This connection's per-handler rate buckets (``@handler(rate=...)``, ``rate`` on the class)."""
        return HandlerLimits()
