"""Consumers for bench/scale.py: what a resume storm costs, and an idle presence room."""

from hypergen.imports import command

from benchsite.consumers import template
from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, agroup_send, handler

STORM_GROUP = "bench-storm"


class StormRoom(HypergenConsumer):
    """A room whose window holds ``group_send`` runs (``fill``), which a resuming page replays."""

    perm = NO_PERM_REQUIRED
    target_id = "t"
    group_name = lambda consumer: STORM_GROUP  # noqa: E731

    @handler
    async def tick(self, request, n: int):
        template(n)

    @handler(broadcast=False)
    async def fill(self, request, count: int):
        for n in range(count):
            await agroup_send(STORM_GROUP, "tick", n)
        command("filled", count)

    @handler(broadcast=False)
    async def render(self, request, n: int):
        template(n)


class IdleLobby(HypergenConsumer):
    """A presence room per URL (``?room=``): what thousands of quiet rooms cost Redis."""

    perm = NO_PERM_REQUIRED
    presence = True
    group_name = lambda consumer: "bench-lobby-" + consumer.scope["query_string"].decode()[5:][:40]  # noqa: E731

    async def on_presence(self, request, present, joins, leaves):
        command("present", len(present))

    @handler(broadcast=False)
    async def ping(self, request):
        command("pong")
