"""Order per connection is a guarantee: many senders, many receivers, joins and leaves.

Group frames reach a process once and are handed to its local members (``local_groups``). An
earlier local path saw one frame out of order in a 1,000-connection run, so this checks, per
connection, on every layer: every connection present throughout sees the same frames in the
same order (each sender's in its send order, each once), with positions that only grow; one
that joins or leaves meanwhile sees a contiguous stretch of that same order, without a gap.
"""

import asyncio
import random
import uuid

import pytest
from channels.testing import WebsocketCommunicator
from django.test import override_settings
from hypergen.imports import command
from hypergen.liveview import loads

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, aconsumer_command, agroup_send, handler
from hypergen_consumers.delivery.catchup import POSITION_COMMAND
from hypergen_consumers.delivery.frame_ids import ACK_COMMAND
from hypergen_consumers.delivery.replay import position_key
from hypergen_consumers.testing import DEFAULT_HEADERS, _application
from tests.servers import redis_server
from tests.support import wait_for

SENDERS, FRAMES_PER_SENDER, COMMANDS, RUNS = 4, 25, 15, 10
STAYING, JOINING, LEAVING, PLAIN = 24, 8, 8, 6
END = "end"


@pytest.fixture(params=["memory", "redis", "pubsub"])
def layer(request):
    if request.param == "memory":
        yield request.param
        return
    backend = {
        "redis": "channels_redis.core.RedisChannelLayer",
        "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    }
    with redis_server() as port:
        config = {"BACKEND": backend[request.param], "CONFIG": {"hosts": [f"redis://127.0.0.1:{port}"]}}
        with override_settings(CHANNEL_LAYERS={"default": config}):
            yield request.param


def define_room():
    class Room(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "ordered/<slug:room>/"

        @handler
        async def say(self, request, room: str, label: str):
            command("said", label)

    return Room


class Page:
    """One connection speaking client.js's delivery protocol, recording the group frames it gets."""

    def __init__(self, room_class, room, *, plain=False):
        application, route = _application(room_class, None)
        url = "/" + route.replace("<slug:room>", room)
        if not plain:  # A plain client (not client.js) gets no positions: its order is the transport's alone.
            url += f"?hypergen_socket={uuid.uuid4().hex}"
        self.communicator = WebsocketCommunicator(application, url, headers=DEFAULT_HEADERS)
        self.seen: list[tuple[str, str]] = []  # (label, position) of each group frame, as received.
        self.positions: list[str] = []
        self.acked = 0  # Frames of its own the server acknowledged (run, their broadcast sent).
        self.reader: asyncio.Task | None = None

    async def open(self):
        connected, _ = await self.communicator.connect(timeout=30)
        assert connected
        self.reader = asyncio.create_task(self.read())

    async def read(self):
        while True:
            frame = loads(await self.communicator.receive_from(timeout=60))
            labels = [args[0] for name, *args in frame if name in ("said", "cmd")]
            positions = [args[0] for name, *args in frame if name == POSITION_COMMAND]
            self.positions += positions
            self.acked += sum(name == ACK_COMMAND for name, *_ in frame)
            if labels:
                [label] = labels  # One group frame: its commands, then its position (none for a plain client).
                position = positions[-1] if positions else None
                self.seen.append((label, position))
                if label == END:
                    return

    async def close(self):
        self.reader.cancel()
        await asyncio.gather(self.reader, return_exceptions=True)
        await self.communicator.disconnect()


def frame(label, frame_id):
    return '{"args": ["say", "%s"], "meta": {"id": %d}}' % (label, frame_id)


def assert_in_order(sequence, labels):
    """Each sender's labels (``s1:0, s1:1, ...``) appear once each, in the order they were sent."""
    by_sender: dict[str, list[int]] = {}
    for label in labels:
        source, _, n = label.partition(":")
        by_sender.setdefault(source, []).append(int(n))
    for source, numbers in by_sender.items():
        assert numbers == sorted(set(numbers)), f"{source}'s frames out of order or twice: {numbers}"
    assert len(labels) == len(set(labels))


@pytest.mark.parametrize("seed", [1, 2])
async def test_every_connection_sees_each_senders_frames_in_order_without_gaps(layer, seed):
    chance = random.Random(seed)
    Room = define_room()
    room = f"r{seed}"
    group = Room.group_name(room=room)
    staying = [Page(Room, room) for _ in range(STAYING)]
    leaving = [Page(Room, room) for _ in range(LEAVING)]
    senders = [Page(Room, room) for _ in range(SENDERS)]
    plain = [Page(Room, room, plain=True) for _ in range(PLAIN)]
    for page in [*staying, *leaving, *senders, *plain]:
        await page.open()
    joining: list[Page] = []

    async def send_frames(index, page):
        for n in range(FRAMES_PER_SENDER):
            await page.communicator.send_to(text_data=frame(f"s{index}:{n}", n + 1))
            if chance.random() < 0.3:
                await asyncio.sleep(0)

    async def from_the_server():
        for n in range(max(COMMANDS, RUNS)):
            if n < COMMANDS:
                await aconsumer_command(group, [["cmd", f"c:{n}"]])
            if n < RUNS:
                await agroup_send(group, "say", f"r:{n}")  # A handler run on each member.
            await asyncio.sleep(0.001 * chance.random())

    async def come_and_go():
        for page in leaving:
            await asyncio.sleep(0.005 * chance.random())
            await page.close()
        for _ in range(JOINING):
            page = Page(Room, room)
            await page.open()
            joining.append(page)
            await asyncio.sleep(0.005 * chance.random())

    await asyncio.gather(*(send_frames(i, page) for i, page in enumerate(senders)), from_the_server(), come_and_go())
    await wait_for(lambda: all(page.acked == FRAMES_PER_SENDER for page in senders), timeout=60)
    await aconsumer_command(group, [["cmd", END]])  # After everything else was sent.
    everyone = [*staying, *senders, *joining, *plain]
    await asyncio.wait_for(asyncio.gather(*(page.reader for page in everyone)), 120)

    order = [label for label, _ in staying[0].seen]
    sent = SENDERS * FRAMES_PER_SENDER + COMMANDS + RUNS + 1
    assert len(order) == sent and order[-1] == END, f"{len(order)} of {sent} frames arrived"
    assert_in_order(order, order[:-1])
    global_positions = [position for _, position in staying[0].seen]
    assert [position_key(p) for p in global_positions] == sorted(map(position_key, global_positions))
    for page in [*staying, *senders]:
        assert page.seen == staying[0].seen, (
            "every connection present throughout sees the same frames in the same order"
        )
    for page in [*joining, *leaving]:
        if not page.seen:
            continue
        start = staying[0].seen.index(page.seen[0])
        assert page.seen == staying[0].seen[start : start + len(page.seen)], "a contiguous stretch, no gap"
    for page in plain:  # No catch-up repairs anything for these: each sender's frames in order, once.
        labels = [label for label, _ in page.seen]
        assert labels[-1] == END
        assert_in_order(labels, labels[:-1])
    for page in [*staying, *senders, *joining, *leaving]:
        keys = [position_key(p) for p in page.positions]
        assert keys == sorted(keys), "a page's position never goes back"
    for page in everyone:
        await page.close()
