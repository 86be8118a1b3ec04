"""One connection's state: one record, made in ``__init__``, with a part per concern.

A connection's parts (``lifecycle``, ``pipeline``, ``sending``) and the modules below them
(``frame_ids``, ``catchup``, ``presence.tracking``, ``heartbeat``, ``authority``...) share
what a connection knows. It lives in one :class:`ConnectionRecord` (``consumer._hc``), set
up when the consumer is made, so every read finds a value (no ``getattr(..., default)``)
and a newcomer finds every piece of a connection's state, typed, in this file. A module is
handed its part (``record.delivery``, ``record.presence``...), not the whole consumer.

What users read stays on the consumer itself (``request``, ``url_kwargs``, ``group``,
``matched_perms``, ``channel_layer``, ``channel_name``, ``scope``: the guide documents them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from hypergen_consumers.connection.executor import SerialLane
from hypergen_consumers.connection.handler_rates import HandlerLimits

if TYPE_CHECKING:
    from hypergen_consumers.auth.authority import Authority
    from hypergen_consumers.connection.ratelimit import RateLimiter
    from hypergen_consumers.connection.slow_readers import SendBuffer
    from hypergen_consumers.declaring.handlers import HandlerSpec
    from hypergen_consumers.delivery.frame_ids import PendingRecord
    from hypergen_consumers.delivery.local_groups import Turn
    from hypergen_consumers.delivery.streams import Stream
    from hypergen_consumers.errors import ErrorCode
    from hypergen_consumers.presence.hub import Hub

__all__ = [
    "ConnectionRecord",
    "ConnectionState",
    "DeliveryState",
    "LimitsState",
    "Member",
    "Recorded",
    "PresenceState",
    "RUN_RECORDING",
    "SocketState",
]

#: The recording of the client frame whose run this code is part of (``frame_ids``), in its
#: task and the tasks and threads it starts. A connection also sends from outside its runs
#: (a presence render runs in a task of its own, at any time): that is no run's reply.
RUN_RECORDING: ContextVar[list[str] | None] = ContextVar("hypergen_consumers_run_recording", default=None)


class Member(Protocol):
    """What the modules below a connection read from it: where it is and who it is.

    Read only: what they write is their part of the record (``DeliveryState``...), handed to
    them beside this. A consumer is a ``Member``.
    """

    @property
    def scope(self) -> dict[str, Any]: ...
    @property
    def url_kwargs(self) -> dict[str, Any]: ...
    @property
    def group(self) -> str: ...
    @property
    def groups(self) -> list[str]: ...
    @property
    def request(self) -> Any: ...
    @property
    def channel_layer(self) -> Any: ...
    @property
    def channel_layer_alias(self) -> str: ...
    @property
    def channel_name(self) -> str: ...


class Recorded(Protocol):
    """Anything that keeps a connection record: what ``observability`` counts by."""

    _hc: ConnectionRecord


@dataclass(slots=True)
class SocketState:
    """The socket itself: is it open, what it is in, where its messages wait (``lifecycle``, ``sending``)."""

    #: ``accept()`` ran; a refused connection is accepted only to be closed, and runs nothing.
    accepted: bool = False
    #: The server closes it (4401, 4403, ...): nothing more runs or goes out.
    closing: bool = False
    #: The server's receive (daphne's queue: how ``slow_readers`` finds the send buffer).
    server_receive: Any = None
    #: The client's send buffer under daphne (``slow_readers``), found when the socket is accepted.
    buffer: SendBuffer | None = None
    #: In-process messages to this connection (group frames from ``local_groups``, a catch-up
    #: after an outage), beside the server's and the layer's; None until the connection runs.
    inbox: asyncio.Queue[dict[str, Any]] | None = None
    #: Whether a group's tap may write to this socket itself (``local_groups.Turn``); None
    #: until the connection runs (and under Channels' own ``__call__``).
    turn: Turn | None = None
    #: Its inbox was full once (see ``local_groups``): said once in the log.
    inbox_overflowed: bool = False
    #: Groups joined through the process's one member of each (``local_groups``) ...
    relayed: list[str] = field(default_factory=list)
    #: ... and groups joined with the connection's own channel (re-joined by ``recovery``).
    joined: list[str] = field(default_factory=list)
    #: Counted as open in the metrics (``observability``), and the close code counted, if any.
    observed_open: bool = False
    observed_close: int | None = None
    #: Seconds between keepalive answers during a run (``heartbeat``); None: the client gave none.
    keepalive_period: float | None = None
    #: A keepalive runs (one at a time: a run inside a re-sent frame's wait starts none).
    keepalive_running: bool = False
    #: Found when the connection starts (``lifecycle``): its class keeps Channels' way in for a
    #: client frame (``client_frames.own_receive_path``), and its way out for a text frame
    #: (``sending.direct_send``); False under Channels' own ``__call__``.
    own_receive_path: bool = False
    direct_send: bool = False


@dataclass(slots=True)
class DeliveryState:
    """The delivery guarantees' side of one connection (``frame_ids`` up, ``catchup`` down)."""

    #: The page's socket id, as a keyed digest (``catchup.start``); None: not client.js, no guarantees.
    socket_key: str | None = None
    #: Where the page is in each replayed group's stream (``streams``); empty without replay.
    streams: list[Stream] = field(default_factory=list)
    #: While a client frame with an id runs: what that run sends (its reply, recorded).
    recording: list[str] | None = None
    #: That run's reply, held back to carry the frame's ack: one frame down, not two.
    held_reply: str | None = None
    #: A reply record waiting to ride on the socket's next claim, and the timer that writes
    #: it otherwise (``frame_ids.record``).
    pending_record: PendingRecord | None = None
    record_timer: asyncio.TimerHandle | None = None
    #: A catch-up waits in the inbox: one is enough, however many outages end meanwhile.
    catch_up_queued: bool = False
    #: While a ``group_send`` run goes: its task and the encoded position its reply carries
    #: (one frame per member, not two).
    reply_tail: tuple[asyncio.Task[Any] | None, str] | None = None

    def run_recording(self) -> list[str] | None:
        """The recording of the run the calling code is part of, if it is this connection's."""
        recording = self.recording
        return recording if recording is not None and RUN_RECORDING.get() is recording else None


@dataclass(slots=True)
class PresenceState:
    """The connection's entry in its group's presence (``presence.tracking``)."""

    #: Its id in presence (a meta's ``id``); "" until it joins.
    id: str = ""
    #: The hub it joined through; None when not in presence (never joined, or left).
    hub: Hub | None = None
    #: What the store holds for it (re-added after Redis lost it; changed by ``update_presence``).
    entry: dict[str, Any] | None = None
    #: The list its last ``on_presence`` render saw, and whether a newer one is due.
    seen: list[dict[str, Any]] = field(default_factory=list)
    dirty: bool = False
    #: The render running, if any (one absorbs any number of wakes).
    task: asyncio.Future[None] | None = None
    #: The accept went out: a render may be sent (one woken earlier waits for this).
    open: bool = False


@dataclass(slots=True)
class LimitsState:
    """What bounds the connection's work: message rate, handler rates, one run at a time."""

    #: HYPERGEN_CONSUMERS_RATE_LIMIT's bucket; None without the setting (or before accept).
    rate_limiter: RateLimiter | None = None
    #: Per-handler buckets (``@handler(rate=...)``, ``rate`` on the class).
    handler_limits: HandlerLimits = field(default_factory=HandlerLimits)
    #: Handler runs: in order, never overlapping, each with a timeout.
    lane: SerialLane = field(default_factory=SerialLane)


@dataclass(slots=True)
class ConnectionRecord:
    """Everything one connection keeps for itself, by concern (see the module docstring)."""

    socket: SocketState = field(default_factory=SocketState)
    delivery: DeliveryState = field(default_factory=DeliveryState)
    presence: PresenceState = field(default_factory=PresenceState)
    limits: LimitsState = field(default_factory=LimitsState)
    #: Re-reads session and user (``auth.authority``); None until the handshake passed ``perm``.
    authority: Authority | None = None


class ConnectionState:
    """The base of a connection's parts: the record, and what each part relies on the others for."""

    _hc: ConnectionRecord

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hc = ConnectionRecord()

    @property
    def _joined(self) -> list[str]:
        """The groups ``recovery`` re-adds this connection's channel to (as it does a tap's)."""
        return self._hc.socket.joined

    if TYPE_CHECKING:  # What HypergenConsumer and Channels' AsyncJsonWebsocketConsumer provide.
        perm: ClassVar[Any]
        any_perm: ClassVar[bool]
        target_id: ClassVar[str | None]
        user_plugins: ClassVar[Any]
        timeout: ClassVar[float | None]
        _handlers: ClassVar[dict[str, HandlerSpec]]
        _on_connect: ClassVar[HandlerSpec | None]
        _on_resync: ClassVar[HandlerSpec | None]
        _on_disconnect: ClassVar[Callable[..., Any] | None]
        _function_handler: ClassVar[str | None]
        channel_layer_alias: str
        groups: list[str]

        # Set when the connection starts (``lifecycle``).
        scope: Any
        base_send: Any
        channel_layer: Any
        channel_name: str
        channel_receive: Any
        url_kwargs: dict[str, Any]
        request: Any
        matched_perms: frozenset[str]
        group: str

        @classmethod
        def _group_for(cls, consumer: Member) -> str: ...
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
        async def send_held_reply(self, ack: str | None = None) -> None: ...
        async def _send(
            self,
            text_data: str | None = None,
            bytes_data: bytes | None = None,
            close: bool = False,
            *,
            recorded: bool = False,
        ) -> None: ...
        async def _run_group_event(self, event: dict[str, Any], *, tail: str | None = None) -> bool: ...
        async def _authority_holds(self) -> bool: ...
        async def receive(
            self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
        ) -> None: ...
        async def _resume(self) -> None: ...
        async def _leave_groups(self) -> None: ...
        async def hypergen_consumers_frame(self, event: dict[str, Any]) -> None: ...
        async def _resync(self, streams: list[Stream] | None = None) -> None: ...
        def request_catch_up(self) -> bool: ...
