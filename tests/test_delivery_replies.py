"""Sender-only replies and error frames keep the delivery guarantee: a re-sent id gets them again.

Over WebsocketCommunicator, with the in-memory layer and (the hostile tests) channels-redis on a
real redis-server: the first run's reply is recorded with the id's claim, a duplicate is
answered with it (not run), and what a client can make the server keep is bounded.
"""

import asyncio
import json
import uuid

import pytest
from channels.testing import WebsocketCommunicator
from django.test import override_settings
from hypergen.imports import command
from hypergen.liveview import loads

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, handler
from hypergen_consumers.delivery import replies
from hypergen_consumers.delivery.catchup import POSITION_COMMAND, RESYNC_COMMAND
from hypergen_consumers.delivery.frame_ids import ACK_COMMAND
from hypergen_consumers.layers.backend import backend_for
from hypergen_consumers.testing import DEFAULT_HEADERS, _application
from tests.support import memory_or_redis

ERROR_COMMAND = "hypergen.websocket.error"


def define_room(**attributes):
    runs = []
    release = asyncio.Event()

    class Room(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "replies/<slug:room>/"
        locals().update(attributes)

        @handler(broadcast=False)
        async def whisper(self, request, room: str, value: str):
            runs.append(value)
            await self.asend_commands([["first", value, len(runs)]])
            command("whisper", value, len(runs))  # Which run answered: a re-run would say so.

        @handler(broadcast=False)
        async def slow(self, request, room: str):
            runs.append("slow")
            await release.wait()
            command("slow done")

        @handler(broadcast=False)
        async def large(self, request, room: str, size: int):
            runs.append(size)
            command("large", "x" * size)

    return Room, runs, release


async def open_socket(consumer_class, socket_id, room="r"):
    application, route = _application(consumer_class, None)
    url = "/" + route.replace("<slug:room>", room) + f"?hypergen_socket={socket_id}"
    communicator = WebsocketCommunicator(application, url, headers=DEFAULT_HEADERS)
    connected, _ = await communicator.connect()
    assert connected
    assert (await receive(communicator))[0][0] == POSITION_COMMAND
    return communicator


async def receive(communicator):
    return loads(await communicator.receive_from(5))


def frame(frame_id, *args):
    return json.dumps({"args": list(args), "meta": {"id": frame_id}})


def store_key(consumer_class, socket_id):
    from hypergen_consumers.layers.keys import socket_digest

    return socket_digest(consumer_class.__name__, "", socket_id)  # No session in these tests.


async def test_a_lost_reply_is_sent_again_in_order_then_the_ack_and_nothing_runs_twice():
    Room, runs, _ = define_room()
    socket_id = uuid.uuid4().hex
    socket = await open_socket(Room, socket_id)
    await socket.send_to(text_data=frame(1, "whisper", "hi"))
    first = [await receive(socket) for _ in range(2)]
    # send_commands' frame, then the reply, which carries the ack as its last command.
    assert first == [[["first", "hi", 1]], [["whisper", "hi", 1], [ACK_COMMAND, 1]]]
    await socket.disconnect()  # As if those two frames were lost on the way down.

    again = await open_socket(Room, socket_id)
    await again.send_to(text_data=frame(1, "whisper", "hi"))
    assert [await receive(again) for _ in range(2)] == first  # The first run's answer, not a new one.
    await again.send_to(text_data=frame(2, "whisper", "next"))  # And the socket goes on.
    assert [await receive(again) for _ in range(2)] == [
        [["first", "next", 2]],
        [["whisper", "next", 2], [ACK_COMMAND, 2]],
    ]
    assert runs == ["hi", "next"]
    await again.disconnect()


async def test_an_error_frame_is_sent_again_before_the_ack():
    Room, runs, _ = define_room()
    socket_id = uuid.uuid4().hex
    socket = await open_socket(Room, socket_id)
    await socket.send_to(text_data=frame(1, "whisper", 42))  # value must be a string.
    [[name, error], ack] = await receive(socket)
    assert name == ERROR_COMMAND and error["code"] == "validation_error"
    assert ack == [ACK_COMMAND, 1]  # After the error, in its frame.
    await socket.disconnect()

    again = await open_socket(Room, socket_id)
    await again.send_to(text_data=frame(1, "whisper", 42))
    assert await receive(again) == [[ERROR_COMMAND, error], [ACK_COMMAND, 1]]
    assert runs == []
    await again.disconnect()


async def test_a_copy_that_arrives_while_the_first_still_runs_waits_for_its_reply():
    """The first copy went to a connection that went silent; the page re-sends on a new one."""
    Room, runs, release = define_room()
    socket_id = uuid.uuid4().hex
    silent, again = await open_socket(Room, socket_id), await open_socket(Room, socket_id)
    await silent.send_to(text_data=frame(1, "slow"))
    while runs != ["slow"]:
        await asyncio.sleep(0.01)
    await again.send_to(text_data=frame(1, "slow"))
    assert await again.receive_nothing(0.3)  # Waiting for the first run, not running it again.
    release.set()
    assert await receive(again) == [["slow done"], [ACK_COMMAND, 1]]
    assert runs == ["slow"]
    await silent.disconnect()
    await again.disconnect()


async def test_a_reply_too_large_to_keep_makes_its_copy_resync_instead():
    Room, runs, _ = define_room()
    socket_id = uuid.uuid4().hex
    socket = await open_socket(Room, socket_id)
    await socket.send_to(text_data=frame(1, "large", replies.REPLY_BYTES_PER_FRAME))
    large, ack = await receive(socket)
    assert large[0] == "large" and ack == [ACK_COMMAND, 1]
    await socket.send_to(text_data=frame(1, "large", replies.REPLY_BYTES_PER_FRAME))
    assert await receive(socket) == [[RESYNC_COMMAND, {"reload": True}]]  # The page reloads: it missed an answer.
    assert (await receive(socket))[0][0] == POSITION_COMMAND
    assert await receive(socket) == [[ACK_COMMAND, 1]]
    assert runs == [replies.REPLY_BYTES_PER_FRAME]
    await socket.disconnect()


@override_settings(HYPERGEN_CONSUMERS_SERVER_MAX_MESSAGE_BYTES=2000)
async def test_a_reply_up_to_the_room_kept_for_its_ack_carries_the_ack_and_one_byte_more_is_refused():
    from hypergen_consumers.wire.outgoing import TAIL_BYTES

    Room, runs, _ = define_room()
    socket = await open_socket(Room, uuid.uuid4().hex)
    size = 2000 - TAIL_BYTES - len('[["large",""]]')  # Fits with the room kept for the ack (or a position).
    await socket.send_to(text_data=frame(1, "large", size))
    assert await receive(socket) == [["large", "x" * size], [ACK_COMMAND, 1]]
    await socket.send_to(text_data=frame(2, "large", size + 1))  # Would not fit once the ack is added: refused.
    refused = await receive(socket)
    assert refused[0][1]["code"] == "frame_too_large" and refused[-1] == [ACK_COMMAND, 2]
    await socket.disconnect()


# --- hostile clients, in memory and in Redis -----------------------------------------------


layer = pytest.fixture(params=["memory", "redis"])(memory_or_redis)  # In memory, then on a real Redis.


def reply_store():
    from channels.layers import get_channel_layer

    store = backend_for(get_channel_layer()).replies
    assert isinstance(
        store, replies.RedisReplies if "Redis" in type(get_channel_layer()).__name__ else replies.MemoryReplies
    )
    return store


async def test_one_id_sent_500_times_runs_once_and_keeps_one_reply(layer):
    Room, runs, _ = define_room()
    socket_id = uuid.uuid4().hex
    socket = await open_socket(Room, socket_id)
    for _ in range(500):
        await socket.send_to(text_data=frame(1, "whisper", "again"))
    answers = [await receive(socket) for _ in range(1000)]
    assert answers == [[["first", "again", 1]], [["whisper", "again", 1], [ACK_COMMAND, 1]]] * 500
    assert runs == ["again"]
    ids, size = await reply_store().size(store_key(Room, socket_id))
    assert ids == 1 and 0 < size < 200  # One record of two short frames, however many copies came.
    await socket.disconnect()


async def test_thousands_of_ids_with_large_replies_keep_at_most_the_per_socket_bound(layer):
    Room, runs, _ = define_room()
    socket_id = uuid.uuid4().hex
    socket = await open_socket(Room, socket_id)
    size_per_reply = 10_000  # 25 of them reach the 256 KiB bound of a socket; 1000 ids reach the id bound.
    store, key = reply_store(), store_key(Room, socket_id)
    largest_ids = largest_size = 0
    for frame_id in range(1, 1001):
        await socket.send_to(text_data=frame(frame_id, "large", size_per_reply if frame_id <= 100 else 1))
        assert (await receive(socket))[-1] == [ACK_COMMAND, frame_id]
        ids, size = await store.size(key)
        largest_ids, largest_size = max(largest_ids, ids), max(largest_size, size)
    assert largest_ids <= replies.REPLY_IDS_PER_SOCKET
    assert 0 < largest_size <= replies.REPLY_BYTES_PER_SOCKET
    assert len(runs) == 1000
    # The oldest ids are no longer kept: their copies resync; nothing runs again.
    await socket.send_to(text_data=frame(1, "large", size_per_reply))
    assert await receive(socket) == [[RESYNC_COMMAND, {"reload": True}]]
    assert (await receive(socket))[0][0] == POSITION_COMMAND
    assert await receive(socket) == [[ACK_COMMAND, 1]]
    # The latest are: their copies get their replies.
    await socket.send_to(text_data=frame(1000, "large", 1))
    assert await receive(socket) == [["large", "x"], [ACK_COMMAND, 1000]]
    assert len(runs) == 1000
    await socket.disconnect()


async def test_many_sockets_cannot_grow_the_in_memory_store_past_its_total(monkeypatch):
    monkeypatch.setattr(replies, "MEMORY_TOTAL_BYTES", 100_000)
    Room, runs, _ = define_room()
    store = reply_store()
    for n in range(40):
        socket = await open_socket(Room, f"many-{n:04d}-sockets")
        await socket.send_to(text_data=frame(1, "large", 10_000))
        assert (await receive(socket))[-1] == [ACK_COMMAND, 1]
        await socket.disconnect()
        assert store.total <= 100_000
    assert len(runs) == 40
    assert (await store.size(store_key(Room, "many-0039-sockets")))[0] == 1  # The latest kept theirs.
    assert (await store.size(store_key(Room, "many-0000-sockets")))[0] == 0  # The oldest gave theirs up.


@pytest.fixture
def redis_only(request):
    request.param = "redis"
    yield from memory_or_redis(request)


async def evalsha_calls():
    from channels.layers import get_channel_layer
    from redis import asyncio as aioredis

    client = aioredis.Redis.from_url(get_channel_layer().hosts[0]["address"])
    stats = await client.info("commandstats")
    await client.aclose()
    return sum(stats.get(name, {}).get("calls", 0) for name in ("cmdstat_evalsha", "cmdstat_eval"))


async def test_on_redis_a_reply_record_rides_on_the_next_claim_and_is_kept_for_a_copy(redis_only):
    """A page that keeps talking costs one Redis script call per frame, not two (the claim of
    frame n+1 writes frame n's record), and nothing of "nothing twice" is lost: a copy of the
    last id, re-sent after the connection ended, gets the first run's answer."""
    Room, runs, _ = define_room()
    socket_id = uuid.uuid4().hex
    socket = await open_socket(Room, socket_id)
    before = await evalsha_calls()
    for n in range(1, 11):
        await socket.send_to(text_data=frame(n, "whisper", f"m{n}"))
        assert (await receive(socket))[0][0] == "first"
        assert (await receive(socket))[-1] == [ACK_COMMAND, n]
    scripts = await evalsha_calls() - before
    await socket.disconnect()  # Its last record is written now.
    assert scripts <= 11, f"{scripts} script calls for 10 frames"
    again = await open_socket(Room, socket_id)
    await again.send_to(text_data=frame(10, "whisper", "m10"))
    assert [await receive(again) for _ in range(2)] == [
        [["first", "m10", 10]],
        [["whisper", "m10", 10], [ACK_COMMAND, 10]],
    ]
    assert len(runs) == 10
    await again.disconnect()


async def test_on_redis_a_copy_sent_at_once_from_another_socket_waits_for_the_record_not_a_resync(redis_only):
    """The page reconnected elsewhere while its old connection is still open (a half-dead
    path): the copy arrives before the record was written, finds the id claimed, and gets the
    answer once the record is written (at most RECORD_DELAY later)."""
    Room, runs, _ = define_room()
    socket_id = uuid.uuid4().hex
    old = await open_socket(Room, socket_id)
    await old.send_to(text_data=frame(1, "whisper", "once"))
    first = [await receive(old) for _ in range(2)]
    copy = await open_socket(Room, socket_id)
    await copy.send_to(text_data=frame(1, "whisper", "once"))
    assert [await receive(copy) for _ in range(2)] == first
    assert runs == ["once"]
    await copy.disconnect()
    await old.disconnect()
