"""The ack carried by the reply (frame_ids.run_once, SendingMixin.send_reply), attacked.

Over WebsocketCommunicator: what a connection sends from outside a client frame's run
(a presence render, which runs in its own task) is neither held back as that frame's reply
nor recorded with it, and a re-sent id gets the frames its first run sent, once each.
"""

import asyncio
import uuid

from hypergen.imports import command

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, handler
from hypergen_consumers.delivery.frame_ids import ACK_COMMAND
from tests.test_delivery_replies import define_room, frame, open_socket, receive


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


class ClientDisconnected(OSError):
    """What uvicorn raises from ``send`` once the client is gone (uvicorn.protocols.utils)."""


class UvicornLikeServer:
    """The ASGI server's side as uvicorn has it: once the client's socket is closed, a
    ``websocket.send`` raises ``ClientDisconnected`` (daphne drops it silently instead)."""

    def __init__(self, application):
        self.application = application
        self.client_left = False

    async def __call__(self, scope, receive, send):
        async def send_to_client(message):
            if self.client_left and message["type"] == "websocket.send":
                raise ClientDisconnected()
            await send(message)

        return await self.application(scope, receive, send_to_client)


async def test_a_reply_the_server_could_not_send_is_still_kept_for_the_re_sent_id():
    """The page left while its frame ran; the reply's send raised. The re-sent id gets the
    reply at once, not a wait for a claim left pending (up to the handler's timeout), then a
    resync (a page reload)."""
    from channels.testing import WebsocketCommunicator

    from hypergen_consumers.testing import DEFAULT_HEADERS, _application

    Room, runs, release = define_room(timeout=3.0)
    socket_id = uuid.uuid4().hex
    application, route = _application(Room, None)
    url = "/" + route.replace("<slug:room>", "r") + f"?hypergen_socket={socket_id}"
    server = UvicornLikeServer(application)
    gone = WebsocketCommunicator(server, url, headers=DEFAULT_HEADERS)
    assert (await gone.connect())[0]
    await gone.receive_from(5)  # Its position.
    await gone.send_to(text_data=frame(1, "slow"))
    await asyncio.sleep(0.1)  # Frame 1 runs.
    server.client_left = True  # The network went.
    await gone.send_input({"type": "websocket.disconnect", "code": 1006})
    release.set()
    try:
        await gone.wait(5)
    except ClientDisconnected:
        pass  # The connection ended with its send's error, as under uvicorn.

    again = await open_socket(Room, socket_id)
    await again.send_to(text_data=frame(1, "slow"))
    assert loads_within(await again.receive_from(1)) == [["slow done"], [ACK_COMMAND, 1]]
    assert runs == ["slow"]
    await again.disconnect()


def loads_within(text):
    from hypergen.liveview import loads

    return loads(text)
