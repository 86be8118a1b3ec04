"""What a connection sends, and the channel-layer events it gets.

Every frame to the client goes through ``send``, which refuses a frame the server could not
send (it would close the socket) and closes a socket whose client stopped reading. Handler
output for the group is encoded once and sent as one pre-encoded ``FRAME_EVENT`` through
the channel layer; each receiving connection only forwards its text (``dispatch`` skips
the database clean-up for it), so a broadcast is rendered once and encoded once.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

from hypergen_consumers._compat import channels_consumer
from hypergen_consumers._compat.channels_db import aclose_old_connections
from hypergen_consumers.connection.db_cleanup import aclose_old_connections_if_any_open
from hypergen_consumers.connection.state import ConnectionState
from hypergen_consumers.connection.targeting import run_event_method
from hypergen_consumers.delivery import catchup
from hypergen_consumers.errors import FRAME_TOO_LARGE, LAYER_UNAVAILABLE, ChannelLayerUnavailable, ErrorCode
from hypergen_consumers.layers.backend import backend_for
from hypergen_consumers.layers.calls import FRAME_EVENT
from hypergen_consumers.observability import observe
from hypergen_consumers.wire.mistake_log import mistakes
from hypergen_consumers.wire.outgoing import error_frame, too_large, with_command

__all__ = ["SendingMixin"]

logger = logging.getLogger("hypergen_consumers")


class SendingMixin(ConnectionState):
    """Frames to this connection or its group; channel-layer events to their methods."""

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

        While a client frame with an id runs (``frame_ids.run_once``), the reply is recorded and
        held back: the run's ack goes out inside it, one frame down instead of two (measured:
        the second frame cost more than the rest of the delivery protocol together). Anything
        sent after it (nothing, in a handler run as it is today) sends it first, so order holds.
        """
        recording = self._run_recording()
        if recording is None:
            await self.send(text_data=self._with_reply_tail(text))
            return
        await self.send_held_reply()
        recording.append(text)
        self._held_reply = text

    def _with_reply_tail(self, text: str) -> str:
        """``text`` with the tail a ``group_send`` run's reply carries (its position), once, in
        the run's own task (a presence render sending meanwhile is no part of the run)."""
        held = self._reply_tail
        if held is None or held[0] is not asyncio.current_task():
            return text
        carried = with_command(text, held[1])
        if too_large(carried):
            return text  # The caller sends the tail alone after it.
        self._reply_tail = None
        return carried

    async def send_held_reply(self, ack: str | None = None) -> None:
        """Send the held reply, with ``ack`` (an encoded command) as its last command, or ``ack`` alone."""
        held, self._held_reply = self._held_reply, None
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
        if self._held_reply is not None:
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
        recording = None if recorded else self._run_recording()
        if recording is not None and text_data is not None:
            recording.append(text_data)  # A reply to a client frame, kept for a re-sent copy (replies).
        if getattr(self, "_closing", False):
            # Closed by the server (4401, 4403, ...): nothing more goes out, and the server is
            # not asked to (daphne would log "Attempt to send on a closed protocol" as an error).
            logger.debug("%s: not sent, the connection is closing", type(self).__name__)
            return
        turn = self._turn
        if turn is None:
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
        else:
            # One send of this socket at a time, from any task (a presence render runs in its
            # own; a group's tap writes too, see local_groups): uvicorn's websockets lets one
            # send wait for a full buffer, and the next one waits behind it, in order.
            async with turn.lock:
                await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
        buffer = getattr(self, "_send_buffer", None)
        if buffer is not None and buffer.over_limit():
            self._send_buffer = None
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
        self._closing = True
        await super().close(code=code, reason=reason)  # Channels' close.

    # --- channel layer events -------------------------------------------------------

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch, with its per-message database clean-up only when it can do something.

        Channels hops to a worker thread to run ``close_old_connections`` before every message;
        here that hop is made only while a database connection is open (see ``db_cleanup``).
        A pre-encoded frame (a broadcast, the most common message under fan-out) only
        forwards text and never touches the database, so it skips the clean-up entirely.
        """
        if not channels_consumer.dispatch_is_ours():
            await self._channels_dispatch(message)
            return
        if message["type"] == FRAME_EVENT:
            await self.hypergen_consumers_frame(message)
            return
        handler = getattr(self, channels_consumer.get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await aclose_old_connections_if_any_open()
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

    async def hypergen_consumers_frame(self, event: dict[str, Any]) -> None:
        """An already encoded command list for this connection (a broadcast or consumer_command)."""
        if await catchup.on_group_event(self, event):
            return  # Positioned: sent in stream order (and not to an excluded sender) by catchup.
        if event.get("exclude") == self.channel_name:
            return  # broadcast="others": the sender does not get its own output.
        await self.send(text_data=event["text"])

    async def hypergen_consumers_catchup(self, event: dict[str, Any]) -> None:
        """After a layer outage: send what the group said while this connection was out of it."""
        self._catch_up_queued = False
        await catchup.catch_up(self)
