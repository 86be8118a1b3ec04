"""A group frame, top to bottom: in stream order, once, with its position; or a catch-up.

What a group says reaches a connection as a channel-layer event (from its inbox, see
``lifecycle``): ``hypergen_consumers.frame`` (output encoded once by its sender: forward the
text) or ``hypergen_consumers.run`` (a ``group_send``: run the handler as this connection's
user, reply to it alone). A positioned one (the group keeps a replay window) goes through
``_on_group_event``: the next of its stream is delivered; one that skips ahead means
something was missed, and the connection catches up from the stream first (``_catch_up``).
``catchup`` keeps the positions and says what each frame comes to (a ``Step``, a
``CatchUp``); every send and every run happens here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypergen.liveview import loads

from hypergen_consumers.connection.heartbeat import keepalive
from hypergen_consumers.connection.pipeline import PipelineMixin
from hypergen_consumers.delivery import catchup
from hypergen_consumers.delivery.replay import newer
from hypergen_consumers.delivery.streams import Stream, positions_frame
from hypergen_consumers.errors import INVALID_FRAME, Rejected
from hypergen_consumers.observability import observe

__all__ = ["GroupFramesMixin"]


class GroupFramesMixin(PipelineMixin):
    """What the connection's groups send it, and catching up with what it missed."""

    async def hypergen_consumers_frame(self, event: dict[str, Any]) -> None:
        """An already encoded command list for this connection (a broadcast or consumer_command)."""
        if await self._on_group_event(event):
            return  # Positioned: sent in stream order (and not to an excluded sender).
        if event.get("exclude") == self.channel_name:
            return  # broadcast="others": the sender does not get its own output.
        await self.send(text_data=event["text"])

    async def hypergen_consumers_run(self, event: dict[str, Any]) -> None:
        """Run a handler as if this connection's client had sent it (``group_send``); reply to it alone."""
        if not await self._on_group_event(event):
            await self._run_group_event(event)

    async def hypergen_consumers_catchup(self, event: dict[str, Any]) -> None:
        """After a layer outage: send what the group said while this connection was out of it."""
        self._hc.delivery.catch_up_queued = False
        await self._catch_up()

    async def _on_group_event(self, event: dict[str, Any]) -> bool:
        """Deliver a positioned group frame in stream order; False if it is not one (send it as is)."""
        stream = catchup.stream_of(self._hc.delivery, event)
        if stream is None:
            return False
        if event["prev"] == stream.position:
            await self._deliver(event["position"], event, stream)
        elif newer(event["position"], stream.position):
            await self._catch_up([stream])  # Something before it is missing: the stream has it.
        return True  # Otherwise a catch-up already sent it.

    async def _deliver(self, position: str, message: dict[str, Any], stream: Stream) -> None:
        """Send one frame of ``stream`` (or run it, for a ``group_send``) and move the page's position there."""
        step = catchup.deliver(self._hc.delivery, self.channel_name, position, message, stream)
        if step.run is None or not await self._run_group_event(step.run, tail=step.tail):
            await self.send(text_data=step.text)  # A run that sent nothing to carry its position: alone.

    async def _run_group_event(self, event: dict[str, Any], *, tail: str | None = None) -> bool:
        """Run a ``group_send``'s handler for this connection. ``tail`` (an encoded command, the
        run's position) is appended to what the run replies; False if nothing carried it (the
        handler rendered nothing, or was skipped), so the caller sends it alone."""
        delivery = self._hc.delivery
        delivery.reply_tail = None if tail is None else (asyncio.current_task(), tail)
        try:
            async with self.rejections():
                try:
                    args = loads(event["args"])
                except Exception as exc:
                    raise Rejected(INVALID_FRAME, f"group_send arguments could not be decoded: {exc}") from None
                await self._dispatch_args(list(args), to_group=False, from_server=True)
        finally:
            unsent, delivery.reply_tail = delivery.reply_tail, None
        return tail is not None and unsent is None

    # --- catching up ----------------------------------------------------------------------

    async def _resume(self) -> None:
        """After accepting: send a reconnecting page what it missed, or a new page its positions."""
        current, behind = await catchup.resume(self._hc.delivery)
        if current:
            await self.send(text_data=positions_frame(current))
        if behind:
            await self._catch_up(behind)

    async def _catch_up(self, streams: list[Stream] | None = None) -> None:
        """Send every frame after the page's positions in ``streams`` (all by default), in order,
        once each; resync the streams past a window."""
        socket = self._hc.socket
        plan = await catchup.catch_up(self._hc.delivery.streams if streams is None else streams, type(self).__name__)
        for stream in plan.moved:
            await self.send(text_data=positions_frame([stream]))
        # A page waiting for a slot is silent (its heartbeat waits behind this catch-up): keep it
        # alive, or client.js gives the socket up and queues again at the back.
        beating = keepalive(socket, self._send) if plan.runs else None
        try:
            async with catchup.replay_slot(plan.runs):
                for stream, entry in plan.missed:
                    if socket.buffer is not None and socket.buffer.closed():
                        # The client is gone (daphne, see slow_readers). Its disconnect waits
                        # behind this catch-up: without this, the replayed handlers all ran for
                        # nobody, holding one of the process's catch-up slots.
                        return
                    if newer(entry.position, stream.position):
                        await self._deliver(entry.position, entry.message, stream)
        finally:
            if beating is not None:
                beating.stop()
        if plan.lost:
            await self._resync(plan.lost)

    async def _resync(self, streams: list[Stream] | None = None) -> None:
        """The page missed what cannot be sent again: tell it (reload by default) or re-render
        with ``on_resync``, then where its streams (all by default) are now."""
        streams = self._hc.delivery.streams if streams is None else streams
        hook = type(self)._on_resync
        observe.resync(self)
        await catchup.resync_positions(streams)
        await self.send(text_data=catchup.resync_frame(reload=hook is None))
        if hook is not None:
            async with self.rejections():
                await self._run(hook, [], to_group=False)
        if streams:
            await self.send(text_data=positions_frame(streams))
