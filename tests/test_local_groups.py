"""One subscription per process per group (``local_groups``): the layer's group holds the process
once, each local member still gets every frame, and a member that stops reading holds up no
one and misses nothing it cannot catch up."""

import asyncio
import uuid

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from hypergen.imports import command
from hypergen.liveview import loads

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, aconsumer_command, handler
from hypergen_consumers.delivery import local_groups
from hypergen_consumers.delivery.catchup import POSITION_COMMAND
from hypergen_consumers.delivery.replay import position_key
from hypergen_consumers.testing import DEFAULT_HEADERS, _application
from tests.support import memory_or_redis, wait_for

layer = pytest.fixture(params=["memory", "redis"])(memory_or_redis)


def define_room(connections, release, **attributes):
    class Room(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "local/<slug:room>/"
        locals().update(attributes)

        async def on_connect(self, request, room):
            connections.append(self)

        @handler(broadcast=False)
        async def hang(self, request, room: str):
            release.entered.set()
            await release.wait()
            command("released")

    return Room


async def open_socket(Room, room):
    application, route = _application(Room, None)
    url = "/" + route.replace("<slug:room>", room) + f"?hypergen_socket={uuid.uuid4().hex}"
    communicator = WebsocketCommunicator(application, url, headers=DEFAULT_HEADERS)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def group_channels(layer, group):
    if hasattr(layer, "groups"):  # In memory.
        return set(layer.groups.get(group, {}))
    async with layer.connection(layer.consistent_hash(group)) as connection:
        return set(await connection.zrange(layer._group_key(group), 0, -1))


async def frames_until(communicator, last):
    frames = []
    while not frames or frames[-1][0] != ["n", last]:
        frame = loads(await communicator.receive_from(5))
        if frame[0][0] == "n":
            frames.append(frame)
    return frames


async def test_the_process_is_in_the_group_once_and_every_member_gets_each_frame(layer):
    connections = []
    Room = define_room(connections, asyncio.Event())
    group = Room.group_name(room="once")
    sockets = [await open_socket(Room, "once") for _ in range(20)]
    layer_object = get_channel_layer()
    assert len(await group_channels(layer_object, group)) == 1, "one channel per process, not one per connection"
    assert len(local_groups.local_members(layer_object, group)) == 20
    await aconsumer_command(group, [["n", 0]])
    for socket in sockets:
        [frame] = await frames_until(socket, 0)
        assert frame[-1][0] == POSITION_COMMAND
    for socket in sockets:
        await socket.disconnect()
    assert await group_channels(layer_object, group) == set(), "the last member's leaving takes the process out"


async def test_a_member_that_stops_reading_holds_up_no_one_and_catches_up_after():
    """Its inbox holds at most the layer's capacity; what it misses past that it gets from the
    replay window once it reads again, once each and in order."""
    capacity = get_channel_layer().capacity
    sent = capacity + 30
    connections, release = [], asyncio.Event()
    release.entered = asyncio.Event()
    Room = define_room(connections, release, replay_frames=sent + 50)
    group = Room.group_name(room="slow")
    stuck, other = await open_socket(Room, "slow"), await open_socket(Room, "slow")
    await wait_for(lambda: len(connections) == 2)
    for socket in (stuck, other):
        await socket.receive_from(2)  # Its positions.
    await stuck.send_to(text_data='{"args": ["hang"], "meta": {}}')
    await asyncio.wait_for(release.entered.wait(), 5)  # Its task now waits in the handler.
    for n in range(sent):
        await aconsumer_command(group, [["n", n]])
    frames = await frames_until(other, sent - 1)  # Not held up by the member that does not read.
    assert [frame[0][1] for frame in frames] == list(range(sent))
    assert connections[0]._inbox.qsize() <= capacity + 1, "bounded by the layer's capacity (and one catch-up request)"
    release.set()
    assert loads(await stuck.receive_from(2)) == [["released"]]
    caught_up = await frames_until(stuck, sent - 1)
    assert [frame[0][1] for frame in caught_up] == list(range(sent)), "every frame once, in order"
    keys = [position_key(frame[-1][1]) for frame in caught_up]
    assert keys == sorted(set(keys))
    for socket in (stuck, other):
        await socket.disconnect()
