"""The ack carried by the reply (frame_ids.run_once, SendingMixin.send_reply), attacked.

Over WebsocketCommunicator: what a connection sends from outside a client frame's run
(a presence render, which runs in its own task) is neither held back as that frame's reply
nor recorded with it, and a re-sent id gets the frames its first run sent, once each.
"""

import asyncio
import uuid

from hypergen.imports import command

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, handler
from hypergen_consumers.catchup import POSITION_COMMAND
from hypergen_consumers.frame_ids import ACK_COMMAND
from tests.test_delivery_replies import frame, open_socket, receive


def define_presence_room():
    runs = []
    started, release = asyncio.Event(), asyncio.Event()

    class Lobby(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "ackattack/<slug:room>/"
        presence = True

        async def on_presence(self, request, room: str, present, joins, leaves):
            command("present", len(present))

        @handler(broadcast=False)
        async def slow(self, request, room: str):
            runs.append("slow")
            started.set()
            await release.wait()
            command("slow done")

    return Lobby, runs, started, release


async def test_a_presence_render_during_a_run_is_not_held_back_nor_recorded_twice():
    Lobby, runs, started, release = define_presence_room()
    socket_id = uuid.uuid4().hex
    a = await open_socket(Lobby, socket_id)
    assert await receive(a) == [["present", 1]]
    await a.send_to(text_data=frame(1, "slow"))
    await asyncio.wait_for(started.wait(), 5)
    b = await open_socket(Lobby, uuid.uuid4().hex)  # Joins while a's frame 1 runs.
    # a's page hears of b now, as it would without a frame running: not when frame 1 ends.
    assert await receive(a) == [["present", 2]]
    release.set()
    assert await receive(a) == [["slow done"], [ACK_COMMAND, 1]]
    await a.disconnect()
    assert await receive(b) == [["present", 2]]

    again = await open_socket(Lobby, socket_id)  # Frame 1's answer was lost: the page re-sends it.
    await again.send_to(text_data=frame(1, "slow"))
    answers = []
    while True:
        commands = await receive(again)
        answers.append(commands)
        if commands[-1] == [ACK_COMMAND, 1]:
            break
    assert answers.count([["present", 2]]) <= 1, f"a frame recorded twice: {answers}"
    assert answers[-1] == [["slow done"], [ACK_COMMAND, 1]]
    assert runs == ["slow"]
    await again.disconnect()
    await b.disconnect()


def define_sync_room():
    runs = []

    class SyncRoom(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "ackattack-sync/<slug:room>/"

        @handler(broadcast=False)
        def whisper(self, request, room: str, value: str):  # A worker thread: send_commands via async_to_sync.
            runs.append(value)
            self.send_commands([["first", value]])
            command("whisper", value, len(runs))

    return SyncRoom, runs


async def test_a_def_handlers_send_commands_is_still_its_runs_reply():
    """The run's recording follows it into the worker thread and back (a context variable)."""
    SyncRoom, runs = define_sync_room()
    socket_id = uuid.uuid4().hex
    socket = await open_socket(SyncRoom, socket_id)
    await socket.send_to(text_data=frame(1, "whisper", "hi"))
    first = [await receive(socket) for _ in range(2)]
    assert first == [[["first", "hi"]], [["whisper", "hi", 1], [ACK_COMMAND, 1]]]
    await socket.disconnect()
    again = await open_socket(SyncRoom, socket_id)
    await again.send_to(text_data=frame(1, "whisper", "hi"))
    assert [await receive(again) for _ in range(2)] == first
    assert runs == ["hi"]
    await again.disconnect()
