"""Replay of every group a connection is in: its own, the extra ``groups``, its user's group.

Over WebsocketCommunicator, with the in-memory layer and channels-redis on a real
redis-server. Each stream has its own positions (``["hypergen.websocket.position", p, k]``);
a page that comes back gets each stream's missed frames once, in order; a hostile page that
names streams it does not have, or sends garbage, gets nothing of anyone else's.
"""

import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from hypergen.imports import command
from hypergen.liveview import loads

from hypergen_consumers import (
    NO_PERM_REQUIRED,
    HypergenConsumer,
    aconsumer_command,
    agroup_send,
    auser_command,
    handler,
)
from hypergen_consumers.delivery.catchup import POSITION_COMMAND, RESYNC_COMMAND
from hypergen_consumers.testing import DEFAULT_HEADERS, _application
from tests.support import memory_or_redis

layer = pytest.fixture(params=["memory", "redis"])(memory_or_redis)  # In memory, then on a real Redis.


def define_room(**attributes):
    extra = f"news-{uuid.uuid4().hex[:8]}"

    class Room(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "room/<slug:room>/"
        groups = [extra]
        locals().update(attributes)

        @handler
        async def post(self, request, room: str, value: str):
            command("posted", value)

        @handler(broadcast=False)
        async def shout(self, request, room: str, value: str):
            command("shouted", value)

    return Room, extra


async def open_socket(consumer_class, room, *, socket_id=None, positions=None, query="", user=None):
    application, route = _application(consumer_class, user)
    url = "/" + route.replace("<slug:room>", room) + f"?hypergen_socket={socket_id or uuid.uuid4().hex}"
    for index, position in (positions or {}).items():
        url += f"&hypergen_position={position}" if index == 0 else f"&hypergen_position_{index}={position}"
    communicator = WebsocketCommunicator(application, url + query, headers=DEFAULT_HEADERS)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def receive(communicator, timeout=2):
    return loads(await communicator.receive_from(timeout))


def positions_in(commands):
    """{stream index: position} from the position commands of a frame."""
    return {(args[1] if len(args) > 1 else 0): args[0] for name, *args in commands if name == POSITION_COMMAND}


async def frames_until_quiet(communicator):
    frames = []
    while not await communicator.receive_nothing(0.3):
        frames.append(await receive(communicator))
    return frames


async def test_a_page_away_gets_what_each_of_its_groups_said_once_in_order_then_live_frames(layer):
    Room, extra = define_room()
    alice = await sync_to_async(User.objects.create_user)(f"alice-{uuid.uuid4().hex[:6]}", password="pw")
    own = Room.group_name(room="away")
    socket_id = uuid.uuid4().hex
    socket = await open_socket(Room, "away", socket_id=socket_id, user=alice)
    first = await receive(socket)
    assert [command[2:] for command in first] == [[], [1], [2]]  # One position per stream: own, extra, user.
    positions = positions_in(first)
    await socket.disconnect()

    pushes = [(extra, "x0"), (own, "o0"), ("user", "u0"), (extra, "x1"), (own, "o1"), ("user", "u1"), (extra, "x2")]
    for group, value in pushes:
        if group == "user":
            await auser_command(alice, [["said", value]])
        else:
            await aconsumer_command(group, [["said", value]])

    back = await open_socket(Room, "away", socket_id=socket_id, positions=positions, user=alice)
    frames = await frames_until_quiet(back)
    stream_of = {"x": 1, "o": 0, "u": 2}
    for frame in frames:  # Each frame: its commands, then the position of its own stream.
        [said, position] = frame
        assert said[0] == "said" and positions_in([position]).keys() == {stream_of[said[1][0]]}
    seen = [frame[0][1] for frame in frames]
    for prefix in "xou":
        assert [v for v in seen if v[0] == prefix] == [v for _, v in pushes if v[0] == prefix], (
            f"stream {prefix} in order, once"
        )
    if layer == "memory":  # One clock for every stream: the order they were sent in.
        assert seen == [v for _, v in pushes]
    else:
        assert sorted(seen) == sorted(v for _, v in pushes)

    await aconsumer_command(extra, [["said", "live"]])
    live = await receive(back)
    assert live[0] == ["said", "live"] and list(positions_in(live)) == [1]
    assert await back.receive_nothing(0.2)
    await back.disconnect()


async def test_a_group_send_to_an_extra_group_runs_again_for_the_page_that_missed_it(layer):
    Room, extra = define_room()
    socket_id = uuid.uuid4().hex
    socket = await open_socket(Room, "run", socket_id=socket_id)
    positions = positions_in(await receive(socket))
    await socket.disconnect()
    await agroup_send(extra, "shout", "to all rooms")  # Runs on each connection, for its own page.
    back = await open_socket(Room, "run", socket_id=socket_id, positions=positions)
    replayed = await receive(back)  # One frame: the run's output, then its position.
    assert replayed[0] == ["shouted", "to all rooms"] and list(positions_in(replayed[1:])) == [1]
    assert await back.receive_nothing(0.2)
    await back.disconnect()


async def test_past_an_extra_groups_window_the_page_resyncs_and_the_others_are_still_replayed(layer):
    Room, extra = define_room(replay_frames=2)
    own = Room.group_name(room="far")
    socket_id = uuid.uuid4().hex
    socket = await open_socket(Room, "far", socket_id=socket_id)
    positions = positions_in(await receive(socket))
    await socket.disconnect()
    await aconsumer_command(own, [["said", "own"]])
    for n in range(250):  # The extra group keeps 2, as its class says (Redis trims by ~100): past it.
        await aconsumer_command(extra, [["said", f"x{n}"]])
    back = await open_socket(Room, "far", socket_id=socket_id, positions=positions)
    assert (await receive(back))[0] == ["said", "own"]
    assert await receive(back) == [[RESYNC_COMMAND, {"reload": True}]]
    assert list(positions_in(await receive(back))) == [1]
    assert await back.receive_nothing(0.2)
    await back.disconnect()


async def test_replay_off_sends_the_extra_groups_frames_plain():
    Room, extra = define_room(replay_frames=0)
    socket = await open_socket(Room, "off")
    await aconsumer_command(extra, [["said", "plain"]])
    assert await receive(socket) == [["said", "plain"]]
    await socket.disconnect()


# --- hostile pages ----------------------------------------------------------------------


async def test_made_up_garbage_huge_and_surplus_positions_get_nothing_of_anyone_elses(layer):
    Room, extra = define_room()
    _, other_extra = define_room()
    victim = await sync_to_async(User.objects.create_user)(f"victim-{uuid.uuid4().hex[:6]}", password="pw")
    for n in range(3):  # What the hostile page must never see: other groups, another user's.
        await aconsumer_command(other_extra, [["secret", n]])
        await aconsumer_command(Room.group_name(room="elsewhere"), [["secret", n]])
        await auser_command(victim, [["secret", n]])
    await aconsumer_command(extra, [["said", "mine"]])

    # Every stream index up to 500, ancient positions (the whole window), garbage and huge ones.
    query = "".join(f"&hypergen_position_{k}=0-0" for k in range(1, 500))
    query += "&hypergen_position_-1=0-0&hypergen_position_01=0-0&hypergen_position_x=0-0"
    query += "&hypergen_position_1=" + "9" * 5000 + "&hypergen_position_1=1-1-1&hypergen_position=%00"
    socket = await open_socket(Room, "hostile", query=query)
    frames = await frames_until_quiet(socket)
    assert not any(command[0] == "secret" for frame in frames for command in frame), frames
    # Stream 1's last given position was garbage: it starts where a new page does. No more
    # than the page's own two streams' positions came back.
    assert all(set(positions_in(frame)) <= {0, 1} for frame in frames)
    assert frames == [[[POSITION_COMMAND, frames[0][0][1]], [POSITION_COMMAND, frames[0][1][1], 1]]]
    await socket.disconnect()

    # Ancient but valid positions: the page's own windows, at most, and nobody else's.
    socket = await open_socket(Room, "hostile", positions={0: "0-0", 1: "0-0", 2: "0-0", 3: "0-0"})
    frames = await frames_until_quiet(socket)
    assert [c for frame in frames for c in frame if c[0] != POSITION_COMMAND] == [["said", "mine"]]
    assert all(set(positions_in(frame)) <= {0, 1} for frame in frames)
    await socket.disconnect()
