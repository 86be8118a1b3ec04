"""Disconnects mid-handler leave nothing behind; a stuck connection does not stall its group."""

import asyncio
import gc
import tracemalloc

from channels.layers import get_channel_layer
from django.test import override_settings
from hypergen.imports import command

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, handler
from hypergen_consumers.layers.backend import backend_for
from hypergen_consumers.testing import ConsumerClient

#: Python heap growth allowed over 1000 cycles after warm-up. Measured here: about 62 KB
#: (strings that CPython's json decoder and attribute lookups keep); a leaked consumer per
#: cycle would be several MB.
LEAK_BOUND_BYTES = 256 * 1024


def define_slow():
    class Slow(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "slow/<int:room>/"
        # The replay window is memory kept on purpose (bounded): small enough that the warm-up
        # fills it (100 cycles over 7 rooms), so what the 1000 cycles add is only what leaks.
        replay_frames = 10

        @handler
        async def work(self, request, room: int):
            await asyncio.sleep(0.001)
            command("done", room)

    return Slow


async def cycle(consumer_class, room):
    client = ConsumerClient(consumer_class, room=room)
    await client.connect()
    await client.send("work")
    await client.communicator.send_input({"type": "websocket.disconnect", "code": 1001})
    await client.communicator.wait(timeout=2)  # Raises if the consumer raised.


async def test_a_thousand_disconnects_mid_handler_leave_no_group_member_and_no_growth():
    slow = define_slow()
    layer = get_channel_layer()
    for room in range(100):  # Warm-up: imports, caches, pydantic and hypergen internals.
        await cycle(slow, room % 7)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for room in range(1000):
            await cycle(slow, room % 7)
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert layer.groups == {}, "no stale channels in any group"
    assert layer.channels == {}, "no orphaned channel queues"
    assert len(backend_for(layer).health.members) == 0
    assert growth < LEAK_BOUND_BYTES, f"heap grew {growth} bytes over 1000 cycles"


@override_settings(
    CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 20}}}
)
async def test_a_stuck_connection_does_not_stall_its_group_and_loses_only_its_overflow():
    release = asyncio.Event()

    class Room(HypergenConsumer):
        perm = NO_PERM_REQUIRED

        @handler
        async def post(self, request, n: int):
            command("post", n)

        @handler(broadcast=False)
        async def stall(self, request):
            await release.wait()
            command("unstuck")

    async with ConsumerClient(Room) as sender, ConsumerClient(Room) as other, ConsumerClient(Room) as stuck:
        await stuck.send("stall")
        for n in range(100):  # The sender and the others are served while one connection is stuck.
            assert await sender.call("post", n) == [["post", n]]
        for n in range(100):
            assert await other.receive() == [["post", n]]
        release.set()
        assert await stuck.receive() == [["unstuck"]]
        received = []
        while not await stuck.communicator.receive_nothing(timeout=0.2):
            received.append((await stuck.receive())[0][1])
        # Channels keeps at most `capacity` messages for a channel (plus the one already handed
        # to the consumer) and drops the overflow: the stuck connection gets the oldest, in order.
        assert received == list(range(len(received)))
        assert 20 <= len(received) <= 21
