"""The heartbeat: how a page finds out that its socket's path died without a close.

A laptop lid, a NAT that forgot the connection or a black-holed link leaves a socket that
looks open to the browser until the OS gives up, minutes later. client.js sends
``{"args":[],"meta":{"heartbeat":true}}`` every 15 s (half its 30 s heartbeat) and treats
one that got no frame back before the next as a dead socket: it closes it, shows the page
offline and reconnects, within one heartbeat of the path dying. The server answers ``[["hypergen.websocket.heartbeat"]]`` at
once, without running a handler, touching the channel layer or taking a frame id; the
reply carries no commands for the page. See docs/protocol.rst.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from hypergen_consumers.connection.state import SocketState

__all__ = ["HEARTBEAT_FRAME", "HEARTBEAT_PARAM", "HEARTBEAT_REPLY", "is_heartbeat", "keepalive"]

logger = logging.getLogger("hypergen_consumers")

#: The query parameter in which client.js gives its heartbeat (milliseconds).
HEARTBEAT_PARAM = "hypergen_heartbeat"
#: The fastest keepalive a client can ask for (its own frames, during its own runs).
MIN_KEEPALIVE_SECONDS = 0.1

#: What client.js sends (JSON.stringify's spelling): answered before any decoding.
HEARTBEAT_FRAME = '{"args":[],"meta":{"heartbeat":true}}'
#: The server's answer, a command list whose one command does nothing on the page.
HEARTBEAT_REPLY = '[["hypergen.websocket.heartbeat"]]'


def is_heartbeat(content: dict[str, Any]) -> bool:
    """A decoded ``{"args": [], "meta": {"heartbeat": true}}`` in any other spelling."""
    return content["meta"].get("heartbeat") is True and content["args"] == []


# --- keepalive during long runs -----------------------------------------------------------
# Channels hands a connection one message at a time, so a heartbeat waits behind a handler
# that runs long (up to its timeout, 30 s by default) and its answer comes too late: the
# page would give up a healthy socket. A client that gives its heartbeat in the URL
# (``?hypergen_heartbeat=30000``) is therefore sent the heartbeat's answer every half of it
# while one of its runs lasts. A timer, not a task, per run: nothing is paid for a quick run.


def keepalive_period(scope: dict[str, Any]) -> float | None:
    """Seconds between answers during a run, or None for a client that gave no heartbeat
    (read once, at the handshake, into ``SocketState.keepalive_period``)."""
    raw = scope.get("query_string", b"")
    text = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)
    values = parse_qs(text).get(HEARTBEAT_PARAM, [])
    if values and values[-1].isdigit() and len(values[-1]) < 10 and int(values[-1]) > 0:
        return max(MIN_KEEPALIVE_SECONDS, int(values[-1]) / 2000)
    return None


class UnrecordedSend(Protocol):
    """The connection's send that bypasses a run's recording (``SendingMixin._send``)."""

    def __call__(self, text_data: str, *, recorded: bool) -> Awaitable[None]: ...


class Keepalive:
    """Sends the heartbeat's answer every ``period`` seconds until ``stop()``."""

    def __init__(self, socket: SocketState, send: UnrecordedSend, period: float) -> None:
        socket.keepalive_running = True  # One at a time: a run inside a frame's wait.
        self.socket = socket
        self.send = send
        self.period = period
        self.loop = asyncio.get_running_loop()
        self.sending: set[asyncio.Task[None]] = set()
        self.handle: asyncio.TimerHandle | None = self.loop.call_later(period, self._beat)

    def _beat(self) -> None:
        task = self.loop.create_task(self._send())
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)
        self.handle = self.loop.call_later(self.period, self._beat)

    async def _send(self) -> None:
        try:
            # Not recorded with the run's reply (frame_ids): it is no part of the answer.
            await self.send(HEARTBEAT_REPLY, recorded=True)
        except Exception as exc:  # The socket went away: the run's own send will say so.
            logger.debug("keepalive not sent (%s)", exc)

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
            self.socket.keepalive_running = False


class _NoKeepalive:
    def stop(self) -> None:
        pass


_NO_KEEPALIVE = _NoKeepalive()


def keepalive(socket: SocketState, send: UnrecordedSend) -> Keepalive | _NoKeepalive:
    """Start answering the heartbeat while a run lasts (if the client gave one); ``stop()`` after."""
    period = socket.keepalive_period
    if period is None or socket.keepalive_running:
        return _NO_KEEPALIVE
    return Keepalive(socket, send, period)
