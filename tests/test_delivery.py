"""Delivery guarantees over WebsocketCommunicator: ids run once, positions, resync, and the attacks."""

import json
import re
import uuid

import pytest
from channels.testing import WebsocketCommunicator
from django.core.exceptions import ImproperlyConfigured
from hypergen.imports import command, span
from hypergen.liveview import loads

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, aconsumer_command, agroup_send, handler
from hypergen_consumers.delivery.catchup import POSITION_COMMAND, RESYNC_COMMAND
from hypergen_consumers.delivery.frame_ids import ACK_COMMAND
from hypergen_consumers.testing import DEFAULT_HEADERS, ConsumerClient, _application


def define_room(**attributes):
    runs = []

    class Room(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "room/<slug:room>/"
        target_id = "t"
        locals().update(attributes)

        @handler
        async def say(self, request, room: str, value: str):
            runs.append(value)
            command("said", value)

    return Room, runs


async def open_socket(consumer_class, room, *, socket_id=None, position=None):
    application, route = _application(consumer_class, None)
    query = f"?hypergen_socket={socket_id or uuid.uuid4().hex}"
    if position is not None:
        query += f"&hypergen_position={position}"
    communicator = WebsocketCommunicator(
        application, "/" + route.replace("<slug:room>", room) + query, headers=DEFAULT_HEADERS
    )
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def receive(communicator):
    return loads(await communicator.receive_from(2))


def said(value, frame_id):
    return json.dumps({"args": ["say", value], "meta": {"id": frame_id}})


async def test_a_frame_id_runs_once_and_every_copy_is_acknowledged():
    Room, runs = define_room()
    socket = await open_socket(Room, "once", socket_id="s" * 16)
    assert (await receive(socket))[0][0] == POSITION_COMMAND
    await socket.send_to(text_data=said("hi", 1))
    # Acknowledged once run; the broadcast comes back through the layer right after.
    assert await receive(socket) == [[ACK_COMMAND, 1]]
    reply = await receive(socket)
    assert reply[0] == ["said", "hi"] and reply[-1][0] == POSITION_COMMAND
    await socket.disconnect()

    again = await open_socket(Room, "once", socket_id="s" * 16, position=reply[-1][1])
    await again.send_to(text_data=said("hi", 1))  # The answer was lost: client.js re-sends it.
    assert await receive(again) == [[ACK_COMMAND, 1]]
    assert runs == ["hi"]
    await again.disconnect()


async def test_a_page_that_was_away_gets_what_it_missed_in_order_then_live_frames():
    Room, _ = define_room()
    group = Room.group_name(room="away")
    socket = await open_socket(Room, "away")
    [[_, position]] = await receive(socket)
    await socket.disconnect()
    for n in range(3):
        await aconsumer_command(group, [["missed", n]])
    back = await open_socket(Room, "away", position=position)
    assert [(await receive(back))[0] for _ in range(3)] == [["missed", 0], ["missed", 1], ["missed", 2]]
    await aconsumer_command(group, [["live"]])
    assert (await receive(back))[0] == ["live"]
    assert await back.receive_nothing(0.1)
    await back.disconnect()


async def test_past_the_window_the_page_is_told_to_reload():
    Room, _ = define_room(replay_frames=2)
    group = Room.group_name(room="far")
    socket = await open_socket(Room, "far")
    [[_, position]] = await receive(socket)
    await socket.disconnect()
    for n in range(3):
        await aconsumer_command(group, [["missed", n]])
    back = await open_socket(Room, "far", position=position)
    assert await receive(back) == [[RESYNC_COMMAND, {"reload": True}]]
    [[name, latest]] = await receive(back)
    assert name == POSITION_COMMAND and latest != position
    await back.disconnect()


async def test_on_resync_re_renders_instead_of_a_reload():
    def on_resync(self, request, room):
        span("fresh view of ", room)

    Room, _ = define_room(replay_frames=1, on_resync=on_resync)
    socket = await open_socket(Room, "re")
    [[_, position]] = await receive(socket)
    await socket.disconnect()
    for n in range(2):
        await aconsumer_command(Room.group_name(room="re"), [["missed", n]])
    back = await open_socket(Room, "re", position=position)
    assert await receive(back) == [[RESYNC_COMMAND, {"reload": False}]]
    assert await receive(back) == [["hypergen.morph", "t", "<span>fresh view of re</span>"]]
    assert (await receive(back))[0][0] == POSITION_COMMAND
    await back.disconnect()


async def test_replay_off_and_plain_clients_get_the_frames_as_before():
    Room, _ = define_room(replay_frames=0)
    socket = await open_socket(Room, "off")
    await socket.send_to(text_data=said("x", 1))
    assert await receive(socket) == [[ACK_COMMAND, 1]]  # Ids still run once...
    assert await receive(socket) == [["said", "x"]]  # ...but no position command.
    await socket.disconnect()
    Plain, _ = define_room()
    async with ConsumerClient(Plain, room="plain") as client:  # No hypergen_socket: no extras at all.
        assert await client.call("say", "y") == [["said", "y"]]
        await client.expect_nothing()


@pytest.mark.parametrize("position", ["not-a-position", "1-2-3", "'; DROP", "9" * 40])
async def test_a_garbage_position_is_a_new_page_not_a_crash(position):
    Room, _ = define_room()
    socket = await open_socket(Room, "junk", position=position)
    assert (await receive(socket))[0][0] == POSITION_COMMAND
    await socket.send_to(text_data=said("still works", 1))
    assert await receive(socket) == [[ACK_COMMAND, 1]]
    assert (await receive(socket))[0] == ["said", "still works"]
    await socket.disconnect()


async def test_a_position_this_process_never_gave_is_corrected_and_live_frames_arrive():
    Room, _ = define_room()
    await aconsumer_command(Room.group_name(room="other"), [["secret"]])
    socket = await open_socket(Room, "mine", position="99999999999999-0")  # Or a restarted process.
    assert await receive(socket) == [[POSITION_COMMAND, ""]]
    await aconsumer_command(Room.group_name(room="mine"), [["live"]])
    assert (await receive(socket))[0] == ["live"]
    assert await socket.receive_nothing(0.1)
    await socket.disconnect()


async def test_a_position_from_the_future_of_a_group_with_history_gets_a_resync():
    Room, _ = define_room()
    await aconsumer_command(Room.group_name(room="kept"), [["before"]])
    socket = await open_socket(Room, "kept", position="99999999999999-0")
    assert await receive(socket) == [[RESYNC_COMMAND, {"reload": True}]]
    assert (await receive(socket))[0][0] == POSITION_COMMAND
    await socket.disconnect()


@pytest.mark.parametrize("frame_id", ["1", 0, -1, 2**53, 1.5, True, [1]])
async def test_a_bad_frame_id_is_an_invalid_frame_and_nothing_runs(frame_id):
    Room, runs = define_room()
    socket = await open_socket(Room, "bad")
    await receive(socket)
    await socket.send_to(text_data=json.dumps({"args": ["say", "x"], "meta": {"id": frame_id}}))
    [[name, error]] = await receive(socket)
    assert name == "hypergen.websocket.error" and error["code"] == "invalid_frame"
    assert "meta.id must be a positive integer" in error["message"]
    assert runs == []
    await socket.disconnect()


async def test_another_socket_cannot_make_my_frame_ids_be_skipped():
    Room, runs = define_room()
    mine, theirs = await open_socket(Room, "mine"), await open_socket(Room, "theirs")
    await receive(mine), await receive(theirs)  # Their positions.
    await theirs.send_to(text_data=said("theirs", 1))
    assert await receive(theirs) == [[ACK_COMMAND, 1]]
    await mine.send_to(text_data=said("mine", 1))  # The same id on another socket: runs too.
    assert await receive(mine) == [[ACK_COMMAND, 1]]
    assert runs == ["theirs", "mine"]
    await mine.disconnect()
    await theirs.disconnect()


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"replay_frames": -1}, "Room.replay_frames must be a whole number of frames, 0 to turn replay off; got -1."),
        ({"replay_frames": 2.5}, "Room.replay_frames must be a whole number of frames, 0 to turn replay off; got 2.5."),
        ({"replay_seconds": 0}, "Room.replay_seconds must be a number of seconds above 0 (e.g. 120); got 0."),
        ({"replay_seconds": "60"}, "Room.replay_seconds must be a number of seconds above 0 (e.g. 120); got '60'."),
    ],
)
def test_bad_replay_settings_fail_at_class_creation(attributes, message):
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        define_room(**attributes)


async def test_broadcast_others_skips_the_sender_live_and_after_it_reconnects():
    class Room(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "room/<slug:room>/"

        @handler(broadcast="others")
        async def say(self, request, room: str, value: str):
            command("said", value)

    sender = await open_socket(Room, "others", socket_id="o" * 16)
    [[_, start]] = await receive(sender)
    other = await open_socket(Room, "others")
    await receive(other)
    await sender.send_to(text_data=said("hi", 1))
    assert await receive(sender) == [[ACK_COMMAND, 1]]
    [[name, position]] = await receive(sender)  # Its own frame is skipped, but counted.
    assert name == POSITION_COMMAND and position != start
    assert (await receive(other))[0] == ["said", "hi"]
    await sender.disconnect()

    back = await open_socket(Room, "others", socket_id="o" * 16, position=start)  # The answer was lost.
    assert await receive(back) == [[POSITION_COMMAND, position]]  # Replayed as a skip, not as "hi".
    assert await back.receive_nothing(0.1)
    await back.disconnect()
    await other.disconnect()


async def test_a_group_send_run_is_one_frame_per_member_its_output_carrying_the_position():
    Room, runs = define_room()
    sockets = [await open_socket(Room, "runs") for _ in range(3)]
    starts = [(await receive(socket))[0][1] for socket in sockets]
    group = Room.group_name(room="runs")
    for value in ("a", "b"):
        await agroup_send(group, "say", value)
    for socket, start in zip(sockets, starts):
        first, second = await receive(socket), await receive(socket)
        assert [first[0], second[0]] == [["said", "a"], ["said", "b"]]
        assert first[-1][0] == second[-1][0] == POSITION_COMMAND and len(first) == len(second) == 2
        assert first[-1][1] != start and second[-1][1] != first[-1][1]
        assert await socket.receive_nothing(0.1), "no separate positions frame follows a run's output"
        await socket.disconnect()
    assert runs == ["a"] * 3 + ["b"] * 3


async def test_a_group_send_run_that_renders_nothing_still_moves_the_position():
    Room, _ = define_room()

    class Quiet(Room):
        path = "quiet/<slug:room>/"

        @handler
        async def hush(self, request, room: str):
            pass

    socket = await open_socket(Quiet, "q")
    [[_, start]] = await receive(socket)
    await agroup_send(Quiet.group_name(room="q"), "hush")
    [[name, position]] = await receive(socket)
    assert name == POSITION_COMMAND and position != start
    await socket.disconnect()
