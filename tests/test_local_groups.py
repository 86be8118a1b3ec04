"""One subscription per process per group (``local_groups``): the layer's group holds the process
once, each local member still gets every frame, and a member that stops reading holds up no
one and misses nothing it cannot catch up."""

import asyncio
import uuid

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import override_settings
from hypergen.imports import command
from hypergen.liveview import loads

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, aconsumer_command, agroup_send, handler
from hypergen_consumers.delivery import local_groups
from hypergen_consumers.delivery.catchup import POSITION_COMMAND, RESYNC_COMMAND
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


def wait_like_a_full_buffer(connection, drained):
    """Make ``connection``'s socket write at once, then wait until ``drained`` is set, like
    websockets' ``drain()`` under uvicorn when the client's buffer is full; a second write
    while one waits fails the test (websockets allows one waiting write per socket)."""
    write, waiting = connection.base_send, []

    async def base_send(message):
        await write(message)
        if not drained.is_set() and message["type"] == "websocket.send":
            assert not waiting, "a second write while one waits for the socket"
            waiting.append(message)
            try:
                await drained.wait()
            finally:
                waiting.clear()

    connection.base_send = base_send


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
    assert connections[0]._hc.socket.inbox.qsize() <= capacity + 1, (
        "bounded by the layer's capacity (and one catch-up request)"
    )
    release.set()
    assert loads(await stuck.receive_from(2)) == [["released"]]
    caught_up = await frames_until(stuck, sent - 1)
    assert [frame[0][1] for frame in caught_up] == list(range(sent)), "every frame once, in order"
    keys = [position_key(frame[-1][1]) for frame in caught_up]
    assert keys == sorted(set(keys))
    for socket in (stuck, other):
        await socket.disconnect()


# --- direct delivery: the tap writes a frame itself only to a member with nothing in turn ----


def define_talking_room(**attributes):
    class Talk(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "talk/<slug:room>/"
        locals().update(attributes)

        @handler
        async def say(self, request, room: str, label: str):
            command("n", label)

        @handler(broadcast=False)
        async def reply(self, request, room: str, label: str):
            command("reply", label)

        @handler(broadcast="others")
        async def nudge(self, request, room: str, label: str):
            command("n", label)

    return Talk


async def open_page(Room, room, *, plain=False):
    application, route = _application(Room, None)
    url = "/" + route.replace("<slug:room>", room) + ("" if plain else f"?hypergen_socket={uuid.uuid4().hex}")
    communicator = WebsocketCommunicator(application, url, headers=DEFAULT_HEADERS)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def labels_until(communicator, last):
    labels = []
    while last not in labels:
        frame = loads(await communicator.receive_from(5))
        labels += [args[0] for name, *args in frame if name == "n"]
    return labels


@pytest.mark.parametrize("plain", [True, False], ids=["plain", "client.js"])
async def test_a_frame_right_behind_a_handler_run_does_not_overtake_it(plain, monkeypatch):
    """A run goes to each member's inbox (its handler runs there). A frame the layer hands over
    right behind it (two messages in one receive, as a busy layer does) finds the member's task
    not handling anything yet, but the run queued: it must wait its turn (a plain page has no
    positions that would catch the overtaking)."""
    Talk = define_talking_room()
    group = Talk.group_name(room="behind")
    page = await open_page(Talk, "behind", plain=plain)
    if not plain:
        await page.receive_from(2)  # Its positions.
    layer, sent = get_channel_layer(), []

    async def group_send(group, message):
        sent.append(message)

    monkeypatch.setattr(layer, "group_send", group_send)
    for n in range(3):
        await agroup_send(group, "say", f"run{n}")
        await aconsumer_command(group, [["n", f"frame{n}"]])
    monkeypatch.undo()
    tap = local_groups.relay_for(layer).taps[group]
    for message in sent:  # The layer's messages, handed out without a pause between them.
        tap.hand_out(message)
    expected = [label for n in range(3) for label in (f"run{n}", f"frame{n}")]
    assert await labels_until(page, "frame2") == expected
    await page.disconnect()


async def test_no_frame_reaches_a_socket_before_its_handshake_is_answered():
    """A connection is in its groups before ``connect()`` accepts it; a frame sent meanwhile
    waits for the handshake's end (the connection's task is busy with it), then follows it."""
    entered, gate = asyncio.Event(), asyncio.Event()

    async def connect(self):
        entered.set()
        await gate.wait()
        await self.accept()

    Talk = define_talking_room(connect=connect)
    group = Talk.group_name(room="handshake")
    application, route = _application(Talk, None)
    url = "/" + route.replace("<slug:room>", "handshake") + f"?hypergen_socket={uuid.uuid4().hex}"
    page = WebsocketCommunicator(application, url, headers=DEFAULT_HEADERS)
    connecting = asyncio.create_task(page.connect())
    await asyncio.wait_for(entered.wait(), 5)
    await aconsumer_command(group, [["n", "early"]])
    gate.set()
    connected, _ = await connecting
    assert connected, "the handshake's answer came first"
    frame = loads(await page.receive_from(2))
    assert frame[0] == ["n", "early"] and frame[-1][0] == POSITION_COMMAND
    await page.disconnect()


async def test_a_socket_the_server_makes_wait_gets_the_next_frames_in_turn_and_holds_up_no_one():
    """Under uvicorn a send writes the frame, then waits while the socket's buffer is full. The
    tap must not wait there (the others go on), nor write the next frame meanwhile (websockets
    allows one waiting write per socket), and the member's own reply waits its turn too."""
    drained, connections = asyncio.Event(), []

    async def on_connect(self, request, room):
        connections.append(self)
        if len(connections) > 1:
            return
        wait_like_a_full_buffer(self, drained)

    Talk = define_talking_room(on_connect=on_connect)
    group = Talk.group_name(room="drain")
    slow = await open_page(Talk, "drain", plain=True)
    other = await open_page(Talk, "drain", plain=True)
    await wait_for(lambda: len(connections) == 2)
    await aconsumer_command(group, [["n", "f0"]])
    assert await labels_until(slow, "f0") == ["f0"]  # Written; now its write waits.
    await slow.send_to(text_data='{"args": ["reply", "mine"], "meta": {}}')
    for n in range(1, 10):
        await aconsumer_command(group, [["n", f"f{n}"]])
    assert await labels_until(other, "f9") == [f"f{n}" for n in range(10)], "no one waits for the slow socket"
    drained.set()
    seen = []
    while "f9" not in seen or "mine" not in seen:
        seen += [args[0] for _, *args in loads(await slow.receive_from(5))]
    assert [label for label in seen if label != "mine"] == [f"f{n}" for n in range(1, 10)], "each once, in order"
    for page in (slow, other):
        await page.disconnect()


async def test_a_sender_whose_frame_arrives_once_it_is_idle_is_moved_to_its_position(monkeypatch):
    """broadcast="others": the sender gets no frame of its own, but its position moves to the
    frame's (as the others'), also when the frame finds it idle and is not queued for it."""
    Talk = define_talking_room()
    group = Talk.group_name(room="others")
    sender, other = await open_page(Talk, "others"), await open_page(Talk, "others")
    for page in (sender, other):
        await page.receive_from(2)  # Its positions.
    layer, sent = get_channel_layer(), []

    async def group_send(group, message):
        sent.append(message)

    monkeypatch.setattr(layer, "group_send", group_send)
    await sender.send_to(text_data='{"args": ["nudge", "hi"], "meta": {"id": 1}}')
    await sender.receive_from(2)  # Its ack: the run is over, the sender is idle.
    monkeypatch.undo()
    [message] = sent
    local_groups.relay_for(layer).taps[group].hand_out(message)
    frame = loads(await other.receive_from(2))
    assert frame[0] == ["n", "hi"] and frame[-1] == [POSITION_COMMAND, message["position"]]
    assert loads(await sender.receive_from(2)) == [[POSITION_COMMAND, message["position"]]]
    for page in (sender, other):
        await page.disconnect()


async def test_a_frame_waits_for_a_send_of_another_task_that_the_server_makes_wait():
    """A connection also sends from other tasks (a presence render runs in its own). While such
    a send waits for the socket (uvicorn: its buffer full), nothing else writes to it, neither a
    group's tap nor the connection's own task; what comes meanwhile follows, in order, once."""
    drained, connections = asyncio.Event(), []

    async def on_connect(self, request, room):
        connections.append(self)
        wait_like_a_full_buffer(self, drained)

    Talk = define_talking_room(on_connect=on_connect)
    group = Talk.group_name(room="render")
    page = await open_page(Talk, "render", plain=True)
    await wait_for(lambda: len(connections) == 1)
    rendering = asyncio.create_task(connections[0].send(text_data='[["n","render"]]'))  # As presence does.
    assert await labels_until(page, "render") == ["render"]  # Written; its send now waits.
    for n in range(3):
        await aconsumer_command(group, [["n", f"f{n}"]])
    await page.send_to(text_data='{"args": ["reply", "mine"], "meta": {}}')
    await wait_for(lambda: connections[0]._hc.socket.turn.handling)  # Its own task is at a send too.
    drained.set()
    await rendering
    seen = []
    while "f2" not in seen or "mine" not in seen:
        seen += [args[0] for _, *args in loads(await page.receive_from(5))]
    assert [label for label in seen if label != "mine"] == ["f0", "f1", "f2"], "each once, in order"
    await page.disconnect()


async def test_two_senders_flooding_the_room_lose_nothing_and_nobody_resyncs():
    """Two pages each send 300 broadcasts as fast as they can (the layer's capacity is 100):
    each sender's own frames and the other's come back to it while it is still handling its
    own, so they wait in its inbox. Every page, the senders too, gets all 600 frames, each
    sender's in its order, and none is told to resync (reload)."""
    with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}):
        assert get_channel_layer().capacity == 100, "Channels' default"
        await two_senders_flood_the_room()


async def two_senders_flood_the_room():
    per_sender = 300
    Talk = define_talking_room()
    senders = [await open_page(Talk, "flood") for _ in range(2)]
    receivers = [await open_page(Talk, "flood") for _ in range(2)]
    for page in senders + receivers:
        await page.receive_from(2)  # Its positions.

    async def flood(page, name):
        for n in range(per_sender):
            await page.send_to(text_data=f'{{"args": ["say", "{name}{n}"], "meta": {{"id": {n + 1}}}}}')

    async def everything(page):
        labels, commands = [], set()
        while len(labels) < 2 * per_sender and RESYNC_COMMAND not in commands:
            frame = loads(await page.receive_from(10))
            commands.update(name for name, *_ in frame)
            labels += [args[0] for name, *args in frame if name == "n"]
        return labels, commands

    reading = [asyncio.ensure_future(everything(page)) for page in senders + receivers]
    await asyncio.gather(flood(senders[0], "a"), flood(senders[1], "b"))
    for labels, commands in await asyncio.gather(*reading):
        assert RESYNC_COMMAND not in commands, f"a page was told to reload after {len(labels)} frames"
        for name in "ab":
            assert [label for label in labels if label.startswith(name)] == [f"{name}{n}" for n in range(per_sender)]
    for page in senders + receivers:
        await page.disconnect()
