"""What a connection sends: to its client, to its group, and ``send_commands``.

Every frame to the client goes through ``send``, which refuses a frame the server could not
send (it would close the socket) and closes a socket whose client stopped reading. Handler
output for the group is encoded once and sent as one pre-encoded ``FRAME_EVENT`` through
the channel layer; each receiving connection only forwards its text (``lifecycle.dispatch``
skips the database clean-up for it), so a broadcast is rendered once and encoded once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from asgiref.sync import async_to_sync
from channels.consumer import AsyncConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from hypergen_consumers._compat import channels_consumer
from hypergen_consumers.connection.state import ConnectionState
from hypergen_consumers.errors import FRAME_TOO_LARGE, LAYER_UNAVAILABLE, ChannelLayerUnavailable, ErrorCode
from hypergen_consumers.layers.backend import backend_for
from hypergen_consumers.layers.calls import FRAME_EVENT
from hypergen_consumers.observability import observe
from hypergen_consumers.wire.mistake_log import mistakes
from hypergen_consumers.wire.outgoing import encode, error_frame, too_large, with_command

__all__ = ["SendingMixin", "direct_send"]

logger = logging.getLogger("hypergen_consumers")


def _check_commands(who: str, commands: Any) -> list[Any]:
    if not (
        isinstance(commands, (list, tuple, deque))
        and all(isinstance(c, (list, tuple)) and c and isinstance(c[0], str) for c in commands)
    ):
        msg = f'{who} takes a list of hypergen commands, e.g. [["alert", 42]]; got {commands!r}'[:300]
        raise ValueError(msg)
    return [list(command) for command in commands]


def direct_send(cls: type) -> bool:
    """True while the ``send`` methods after this package's in ``cls``'s MRO are Channels'
    ``AsyncWebsocketConsumer.send`` and then ``AsyncConsumer.send``, nobody's own in between,
    and they are as ``_compat.channels_consumer`` found them: they only build ``{"type":
    "websocket.send", "text": ...}`` and hand it to the server, so a text frame is handed to
    ``base_send`` at once, two awaits fewer on every frame out. Asked when a connection
    starts (``lifecycle``), so a method patched later counts from the next one."""
    if not channels_consumer.send_is_direct():
        return False
    mro = cls.__mro__
    after = mro[mro.index(SendingMixin) + 1 :] if SendingMixin in mro else ()
    owners = [klass for klass in after if "send" in klass.__dict__]
    return owners[:2] == [AsyncWebsocketConsumer, AsyncConsumer]


class SendingMixin(ConnectionState):
    """Frames to this connection or its group; channel-layer events to their methods."""

    # --- sending --------------------------------------------------------------------

    async def send_to_group(self, text: str, *, exclude: str | None = None) -> None:
        """Send an encoded command list to every connection in this connection's group
        (but the channel ``exclude``, for ``broadcast="others"``)."""
        message = {"type": FRAME_EVENT, "text": text}
        if exclude is not None:
            message["exclude"] = exclude
            socket_key = self._hc.delivery.socket_key
            if socket_key is not None:
                message["exclude_socket"] = socket_key  # The sender's page, also after a reconnect.
        backend = backend_for(self.channel_layer)
        try:
            await backend.publish(self.group, message, who="group_send", recover=True)
            observe.group_frame(self)
        except ChannelLayerUnavailable as exc:
            backend.health.mark_failed()
            await self.send_error(LAYER_UNAVAILABLE, f"Could not reach the other connections: {exc}", log=False)

    async def send_error(self, code: ErrorCode, message: str, *, log: bool = True, **extra: Any) -> None:
        """Send one ``hypergen.websocket.error`` command to this connection alone, and log it."""
        if log:
            mistakes.warning(type(self).__name__, str(code), message)
        await self.send_reply(error_frame(code, message, **extra))

    async def send_reply(self, text: str) -> None:
        """A handler's output to its sender, or an error frame: the last thing a run sends.

        While a client frame with an id runs (``ClientFramesMixin._run_once``), the reply is recorded and
        held back: the run's ack goes out inside it, one frame down instead of two (measured:
        the second frame cost more than the rest of the delivery protocol together). Anything
        sent after it (nothing, in a handler run as it is today) sends it first, so order holds.
        """
        delivery = self._hc.delivery
        recording = delivery.run_recording()
        if recording is None:
            await self.send(text_data=self._with_reply_tail(text))
            return
        await self.send_held_reply()
        recording.append(text)
        delivery.held_reply = text

    def _with_reply_tail(self, text: str) -> str:
        """``text`` with the tail a ``group_send`` run's reply carries (its position), once, in
        the run's own task (a presence render sending meanwhile is no part of the run)."""
        delivery = self._hc.delivery
        held = delivery.reply_tail
        if held is None or held[0] is not asyncio.current_task():
            return text
        carried = with_command(text, held[1])
        if too_large(carried):
            return text  # The caller sends the tail alone after it.
        delivery.reply_tail = None
        return carried

    async def send_held_reply(self, ack: str | None = None) -> None:
        """Send the held reply, with ``ack`` (an encoded command) as its last command, or ``ack`` alone."""
        delivery = self._hc.delivery
        held, delivery.held_reply = delivery.held_reply, None
        if held is None:
            if ack is not None:
                await self.send(text_data=f"[{ack}]")
            return
        if ack is None:
            await self._send(held, recorded=True)  # send_reply recorded it.
            return
        carried = with_command(held, ack)
        if too_large(carried):
            await self._send(held, recorded=True)
            await self.send(text_data=f"[{ack}]")
        else:
            await self._send(carried, recorded=True)

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False) -> None:
        """Channels' send, refusing a frame the server could not send (it would close the socket)."""
        if self._hc.delivery.held_reply is not None:
            await self.send_held_reply()  # Nothing overtakes a reply.
        await self._send(text_data, bytes_data, close)

    async def _send(
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        close: bool = False,
        *,
        recorded: bool = False,
    ) -> None:
        if text_data is not None and too_large(text_data):
            mistakes.warning(
                type(self).__name__, str(FRAME_TOO_LARGE), f"refused to send a {len(text_data)}-byte frame"
            )
            text_data = error_frame(
                FRAME_TOO_LARGE, "A frame for this connection was too large to send; it was dropped."
            )
        record = self._hc
        recording = None if recorded else record.delivery.run_recording()
        if recording is not None and text_data is not None:
            recording.append(text_data)  # A reply to a client frame, kept for a re-sent copy (replies).
        socket = record.socket
        if socket.closing:
            # Closed by the server (4401, 4403, ...): nothing more goes out, and the server is
            # not asked to (daphne would log "Attempt to send on a closed protocol" as an error).
            logger.debug("%s: not sent, the connection is closing", type(self).__name__)
            return
        turn = socket.turn
        if text_data is not None and not close and socket.direct_send:
            # What Channels' send would hand the server, handed to it here (see direct_send).
            message = {"type": "websocket.send", "text": text_data}
            if turn is None:
                await self.base_send(message)
            else:
                lock = turn.lock  # As below.
                if not lock.take_now():
                    await lock.take()
                try:
                    await self.base_send(message)
                finally:
                    lock.give()
        elif turn is None:
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
        else:
            # One send of this socket at a time, from any task (a presence render runs in its
            # own; a group's tap writes too, see local_groups): uvicorn's websockets lets one
            # send wait for a full buffer, and the next one waits behind it, in order.
            lock = turn.lock
            if not lock.take_now():
                await lock.take()
            try:
                await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
            finally:
                lock.give()
        buffer = socket.buffer
        if buffer is not None and buffer.over_limit():
            socket.buffer = None
            logger.warning(
                "%s: the client is not reading (%d bytes queued, HYPERGEN_CONSUMERS_MAX_QUEUED_BYTES = %d); "
                "dropped the connection",
                type(self).__name__,
                buffer.queued(),
                buffer.limit,
            )
            buffer.drop()  # See slow_readers: a close frame would wait behind the unread bytes.

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Channels' close; after it nothing more is sent on this connection (see ``_send``)."""
        self._hc.socket.closing = True
        await super().close(code=code, reason=reason)  # Channels' close.

    # --- send_commands: to this connection alone, now (guide: "Who gets what") ---------

    async def asend_commands(self, commands: list[Any]) -> None:
        """Send ``commands`` to this connection alone, now (from async code)."""
        commands = _check_commands("asend_commands", commands)
        if commands:
            await self.send(text_data=encode(commands))

    def send_commands(self, commands: list[Any]) -> None:
        """Send ``commands`` to this connection alone, now, from sync code: a ``def`` handler,
        hook or event method (they run in a worker thread).

        They arrive before what the handler renders, which is sent when it returns.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            async_to_sync(self.asend_commands)(commands)
            return
        msg = (
            f"{type(self).__name__}.send_commands() was called from async code; "
            "use 'await self.asend_commands(commands)' there."
        )
        raise RuntimeError(msg)
