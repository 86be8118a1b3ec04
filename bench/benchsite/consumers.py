"""The endpoints compared by bench/run.py. Every one renders (or echoes) the same small payload."""

import json

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from hypergen.imports import COMMANDS, HypergenWebsocketConsumer, hypergen, span

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, consumer, handler

FANOUT_GROUP = "bench-fanout"


def template(n):
    span("n = ", n)


class RawEcho(AsyncJsonWebsocketConsumer):
    """The framework floor: a plain Channels JSON echo."""

    async def receive_json(self, content, **kwargs):
        await self.send_json(content)


class RawFanout(AsyncJsonWebsocketConsumer):
    """Plain Channels fan-out: group_send of pre-encoded text, forwarded as is."""

    async def connect(self):
        await self.channel_layer.group_add(FANOUT_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(FANOUT_GROUP, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        n = json.loads(text_data)["args"][0]
        text = json.dumps([["hypergen.morph", "t", f"<span>n = {n}</span>"]])
        await self.channel_layer.group_send(FANOUT_GROUP, {"type": "bench.frame", "text": text})

    async def bench_frame(self, event):
        await self.send(text_data=event["text"])


class Upstream(HypergenWebsocketConsumer):
    """django-hypergen's own consumer rendering the same template."""

    def receive_hypergen_callback(self, n):
        commands = hypergen(template, n, settings=dict(action=True, returns=COMMANDS, target_id="t"))
        self.channel_send_hypergen_commands(commands)


class UpstreamFanout(HypergenWebsocketConsumer):
    groups = [FANOUT_GROUP]

    def receive_hypergen_callback(self, n):
        commands = hypergen(template, n, settings=dict(action=True, returns=COMMANDS, target_id="t"))
        self.group_send_hypergen_commands(FANOUT_GROUP, commands)


class OursAsync(HypergenConsumer):
    perm = NO_PERM_REQUIRED
    target_id = "t"
    broadcast = False

    @handler
    async def render(self, request, n: int):
        template(n)


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


class OursAsyncFanout(HypergenConsumer):
    perm = NO_PERM_REQUIRED
    target_id = "t"
    group_name = lambda consumer: FANOUT_GROUP  # noqa: E731

    @handler
    async def render(self, request, n: int):
        template(n)


class OursSyncFanout(HypergenConsumer):
    perm = NO_PERM_REQUIRED
    target_id = "t"
    group_name = lambda consumer: FANOUT_GROUP  # noqa: E731

    @handler
    def render(self, request, n: int):
        template(n)


@consumer(perm=NO_PERM_REQUIRED, target_id="t", group_name=lambda consumer: FANOUT_GROUP)
async def ours_function_fanout(consumer, request, n: int):
    template(n)
