"""A client frame, top to bottom: checked, decoded, claimed by its id, run once, answered.

``receive`` takes the socket's text (a heartbeat is answered at once; the message rate,
the frame's size and its JSON are checked), ``receive_json`` its shape, then ``_run_once``
drives the delivery protocol up (``frame_ids``): claim the frame's id; the first copy runs
(``PipelineMixin._dispatch_args``) while what it sends its sender is recorded; a re-sent
copy gets that record instead of a second run. Either way the ack rides on the last frame
to the sender (``SendingMixin.send_held_reply``). ``frame_ids`` decides and keeps records;
every send is made here or in ``sending``.
"""

from __future__ import annotations

import logging
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from hypergen_consumers import conf
from hypergen_consumers.connection.executor import handler_timeout
from hypergen_consumers.connection.heartbeat import HEARTBEAT_FRAME, HEARTBEAT_REPLY, is_heartbeat, keepalive
from hypergen_consumers.connection.pipeline import PipelineMixin
from hypergen_consumers.delivery import frame_ids
from hypergen_consumers.errors import FRAME_TOO_LARGE, INVALID_FRAME, RATE_LIMITED, Rejected
from hypergen_consumers.wire.frame_decoding import decode_frame

__all__ = ["ClientFramesMixin", "own_receive_path"]

logger = logging.getLogger("hypergen_consumers")


class ClientFramesMixin(PipelineMixin):
    """What the client sends: one frame at a time, each run at most once per socket."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        """Check and decode one client frame, then hand it to ``receive_json``."""
        socket = self._hc.socket
        if not socket.accepted or socket.closing:
            # A refused connection (accepted only to be closed with its code), or one the server
            # is closing (4401, 4403), runs nothing more: a frame already on its way is dropped.
            logger.debug("%s: dropped a frame from a refused or closing connection", type(self).__name__)
            return
        if text_data == HEARTBEAT_FRAME:
            await self.send(text_data=HEARTBEAT_REPLY)  # Before the rate limit: a page's pulse is never refused.
            return
        try:  # As ``async with self.rejections()``, without its two awaits on every frame.
            limiter = self._hc.limits.rate_limiter
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
            own = socket.own_receive_path
            try:
                content = decode_frame(text_data) if own else await self.decode_json(text_data)
            except Rejected:
                raise
            except Exception as exc:
                raise Rejected(INVALID_FRAME, f"Frame is not valid JSON: {type(exc).__name__}: {exc}"[:300]) from None
            if own:
                await self._handle_content(content)  # receive_json's body, its Rejected handled below.
            else:
                await self.receive_json(content, **kwargs)
        except Rejected as exc:
            await self._send_rejection(exc)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Dispatch a decoded ``{"args": [...], "meta": {...}}`` frame to its handler."""
        async with self.rejections():
            await self._handle_content(content)

    async def _handle_content(self, content: Any) -> None:
        """``receive_json``'s body, without its rejections handler: the direct way in (a class
        that overrides none of Channels' receive methods) calls it from ``websocket_receive``,
        whose own handler already answers a :class:`Rejected`, so a frame pays for one, not two."""
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
        frame_id = frame_ids.frame_id_of(self._hc.delivery, content["meta"])
        beating = keepalive(self._hc.socket, self._send)  # Also while a re-sent frame waits for its first run.
        try:
            if frame_id is None:
                await self._dispatch_args(content["args"], to_group=None)
            else:
                await self._run_once(frame_id, content["args"])
        finally:
            beating.stop()

    async def _run_once(self, frame_id: int, args: list[Any]) -> None:
        """Run a frame with an id at most once per socket, its reply recorded, then the ack.

        A duplicate id (client.js re-sends what was not acknowledged) does not run: it gets the
        frames the first run sent to this connection alone, in order, then the ack (see
        ``replies``). The ack comes last, so a page that has it has the reply too: it is the last
        command of the run's last frame to the sender (its reply or error frame), or a frame of
        its own when the run sent the sender nothing.
        """
        delivery, owner = self._hc.delivery, type(self).__name__
        claim = await frame_ids.claim(delivery, self, frame_id, owner)
        if not claim.first:
            reply = await frame_ids.recorded_reply(delivery, claim, owner, handler_timeout(type(self).timeout))
            if reply is None:
                await self._resync()
            elif reply:
                *before, last = reply
                for text in before:
                    await self.send(text_data=text)
                delivery.held_reply = last  # Carries the ack, as the first run's last frame did.
            await self.send_held_reply(claim.ack)
            return
        with frame_ids.recording(delivery) as sent:  # Only this run's sends (not a presence render's).
            async with self.rejections():
                try:
                    await self._dispatch_args(args, to_group=None)
                except Rejected as exc:
                    if exc.extra.get("retry"):
                        exc.extra["id"] = frame_id  # Not run: client.js sends this frame again (see pipeline).
                    raise
        # The reply carries the ack (see SendingMixin.send_reply). Sent before it is recorded: a
        # copy of the id re-sent meanwhile finds the claim pending and waits for the record.
        # Recorded even when that send fails (uvicorn raises once the client is gone): the run
        # is over, and its page, reconnecting, re-sends the id for exactly this answer.
        try:
            await self.send_held_reply(claim.ack)
        finally:
            await frame_ids.record(delivery, claim, sent, owner)


#: The function of this package's ``decode_json`` (a classmethod: found through ``__func__``).
_OWN_DECODE_JSON = vars(PipelineMixin)["decode_json"].__func__


def own_receive_path(cls: type) -> bool:
    """True while ``cls`` keeps this package's way in for a client frame: Channels'
    ``websocket_receive`` and this package's ``receive``, ``decode_json`` and ``receive_json``,
    none overridden. Such a class's frames go straight from ``dispatch`` to ``receive`` and on
    to the handler, without the layers in between (each an await on every frame); a class
    that overrides one of them goes through them all, as Channels calls them. Asked when a
    connection starts (``lifecycle``), so a method patched later counts from the next one."""
    return (
        getattr(cls, "websocket_receive", None) is AsyncWebsocketConsumer.websocket_receive
        and getattr(cls, "receive", None) is ClientFramesMixin.receive
        and getattr(cls, "receive_json", None) is ClientFramesMixin.receive_json
        and getattr(getattr(cls, "decode_json", None), "__func__", None) is _OWN_DECODE_JSON
    )
