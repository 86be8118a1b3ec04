"""The endpoints compared by bench/run.py.

Every endpoint that renders renders the same template and puts the same bytes on the wire,
``[["hypergen.morph","t","<span>n = 5</span>"]]`` (bench/run.py checks this before measuring).
Plain Channels consumers come in two kinds: as Channels ships them, with the per-message
``aclose_old_connections`` thread hop in ``AsyncConsumer.dispatch``, and ``_nohop``, without
it (hypergen-consumers skips the hop while no database connection is open, so the fair
baseline is the one without it). The ``websockets`` library's own server, the floor, lives
in bench/floor.py.
"""

import io
from typing import Literal

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer
from chanx.channels.websocket import AsyncJsonWebsocketConsumer as ChanxConsumer
from chanx.core.decorators import ws_handler
from chanx.messages.base import BaseMessage
from django.core.handlers.asgi import ASGIRequest
from hypergen.context import context
from hypergen.imports import COMMANDS, HypergenWebsocketConsumer, command, hypergen, span
from hypergen.liveview import dumps, loads
from pydantic import BaseModel

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, consumer, handler

FANOUT_GROUP = "bench-fanout"


def template(n):
    span("n = ", n)


def morph(request, n) -> str:
    """What a plain consumer sends: the template rendered by hypergen, morphed into #t.

    hypergen() needs a request in its context (its middleware sets one for views); a
    plain consumer sets the one it built for the handshake, as hypergen-consumers does.
    """
    with context(request=request):
        return dumps([["hypergen.morph", "t", hypergen(template, n)]])


class RequestOnConnect:
    """Build the handshake's request once, as hypergen-consumers does, for hypergen()'s context."""

    async def websocket_connect(self, message):
        self.request = ASGIRequest({**self.scope, "method": "WS"}, io.BytesIO())
        self.request.user = self.scope["user"]
        await super().websocket_connect(message)


class WithoutHop:
    """Channels' ``AsyncConsumer.dispatch`` minus ``await aclose_old_connections()``."""

    async def dispatch(self, message):
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)


# --- round trip -------------------------------------------------------------------------


class RawEcho(AsyncJsonWebsocketConsumer):
    """A plain Channels JSON echo: decode, encode, send. Renders nothing."""

    async def receive_json(self, content, **kwargs):
        await self.send_json(content)


class RawEchoNoHop(WithoutHop, RawEcho):
    pass


class RawRender(RequestOnConnect, AsyncWebsocketConsumer):
    """A plain Channels consumer rendering the template with hypergen: the fair floor for ours."""

    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=morph(self.request, loads(text_data)["args"][0]))


class RawRenderNoHop(WithoutHop, RawRender):
    pass


class Upstream(HypergenWebsocketConsumer):
    """django-hypergen's own consumer, rendered as its docs show; only the morph is sent.

    ``hypergen(..., action=True)`` adds ``setClientState`` and ``onpushstate`` commands that
    ours does not send; they are dropped so every renderer puts the same bytes on the wire.
    """

    def receive_hypergen_callback(self, n):
        commands = hypergen(template, n, settings=dict(action=True, returns=COMMANDS, target_id="t"))
        self.channel_send_hypergen_commands([c for c in commands if c[0] == "hypergen.morph"])


class OursAsync(HypergenConsumer):
    perm = NO_PERM_REQUIRED
    target_id = "t"
    broadcast = False

    @handler
    async def render(self, request, n: int):
        template(n)


class OursAsyncNoReplay(OursAsync):
    """OursAsync with the replay window off: what the delivery guarantees cost is the difference."""

    replay_frames = 0


class OursSync(HypergenConsumer):
    perm = NO_PERM_REQUIRED
    target_id = "t"
    broadcast = False

    @handler
    def render(self, request, n: int):
        template(n)


@consumer(perm=NO_PERM_REQUIRED, target_id="t", broadcast=False)
async def ours_function(consumer, request, n: int):
    template(n)


@consumer(perm=NO_PERM_REQUIRED, broadcast=False)
async def ours_command(consumer, request, n: int):
    """A command and no HTML: like for like with chanx's echo (typed input, one typed reply)."""
    command("bench.echo", n)


class EchoPayload(BaseModel):
    n: int


class EchoIn(BaseMessage):
    action: Literal["echo"] = "echo"
    payload: EchoPayload


class EchoOut(BaseMessage):
    action: Literal["echo_result"] = "echo_result"
    payload: EchoPayload


class ChanxEcho(ChanxConsumer):
    """chanx's echo as its docs write one: a typed message in, a typed message returned."""

    @ws_handler(output_type=EchoOut)
    async def echo(self, message: EchoIn) -> EchoOut:
        return EchoOut(payload=message.payload)


# --- fan-out ----------------------------------------------------------------------------


class RawGroupSend(RequestOnConnect, AsyncWebsocketConsumer):
    """Plain Channels fan-out: render once, group_send the text, every receiver forwards it."""

    async def connect(self):
        await self.channel_layer.group_add(FANOUT_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(FANOUT_GROUP, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        text = morph(self.request, loads(text_data)["args"][0])
        await self.channel_layer.group_send(FANOUT_GROUP, {"type": "bench.frame", "text": text})

    async def bench_frame(self, event):
        await self.send(text_data=event["text"])


class RawGroupSendNoHop(WithoutHop, RawGroupSend):
    pass


class RawLocalSend(WithoutHop, RequestOnConnect, AsyncWebsocketConsumer):
    """The daphne ceiling: no channel layer at all, the sender calls every local socket's send.

    Not a usable design (one process only; no replay, no ordering across senders), but the
    most a Channels app can get out of daphne's own send path: what is left between it and
    the floor is the server's (daphne, Twisted, autobahn), not the package's.
    """

    members: set = set()

    async def connect(self):
        await self.accept()
        RawLocalSend.members.add(self)

    async def disconnect(self, code):
        RawLocalSend.members.discard(self)

    async def receive(self, text_data=None, bytes_data=None):
        text = morph(self.request, loads(text_data)["args"][0])
        for member in list(RawLocalSend.members):
            await member.send(text_data=text)


class UpstreamFanout(HypergenWebsocketConsumer):
    groups = [FANOUT_GROUP]

    def receive_hypergen_callback(self, n):
        commands = hypergen(template, n, settings=dict(action=True, returns=COMMANDS, target_id="t"))
        self.group_send_hypergen_commands(FANOUT_GROUP, [c for c in commands if c[0] == "hypergen.morph"])


class OursAsyncFanout(HypergenConsumer):
    perm = NO_PERM_REQUIRED
    target_id = "t"
    group_name = lambda consumer: FANOUT_GROUP  # noqa: E731

    @handler
    async def render(self, request, n: int):
        template(n)


class OursAsyncFanoutNoReplay(OursAsyncFanout):
    replay_frames = 0


class OursSyncFanout(HypergenConsumer):
    perm = NO_PERM_REQUIRED
    target_id = "t"
    group_name = lambda consumer: FANOUT_GROUP  # noqa: E731

    @handler
    def render(self, request, n: int):
        template(n)


class OursPresenceFanout(OursAsyncFanout):
    """``ours_async`` with presence on: every connection is tracked and told who is here.

    on_presence sends a small command (no ``n = ``, so the load client does not count it):
    the cost of presence measured here is the bookkeeping plus one render per connection
    per (coalesced) change, as a "who's online" list would do.
    """

    presence = True

    async def on_presence(self, request, present, joins, leaves):
        command("online", len(present))


@consumer(perm=NO_PERM_REQUIRED, target_id="t", group_name=lambda consumer: FANOUT_GROUP)
async def ours_function_fanout(consumer, request, n: int):
    template(n)


class ShoutIn(BaseMessage):
    action: Literal["shout"] = "shout"
    payload: EchoPayload


class ShoutOut(BaseMessage):
    action: Literal["shout_result"] = "shout_result"
    payload: EchoPayload


class ChanxBroadcast(ChanxConsumer):
    """chanx's broadcast: every connection in one group, ``broadcast_message`` to all of them."""

    groups = [FANOUT_GROUP]

    @ws_handler(output_type=ShoutOut)
    async def shout(self, message: ShoutIn) -> None:
        await self.broadcast_message(ShoutOut(payload=message.payload))
