"""Replay windows of rooms that fell silent are freed (the in-memory layer).

A window used to be trimmed only when its own group was touched again, so every room a
visitor opened kept up to ``replay_frames`` frames for good: measured +115 MB per 100 rooms of
200 x 5 KB frames, with ``replay_seconds = 5``. Now a room silent for its ``replay_seconds``
costs nothing but its last position, and a page that comes back later is told to resync.
"""

from __future__ import annotations

import gc
import time
import tracemalloc

from channels.layers import get_channel_layer

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, aconsumer_command, handler
from hypergen_consumers.delivery import replay
from hypergen_consumers.layers.backend import backend_for
from tests.test_delivery_streams import open_socket, positions_in, receive

ROOMS = 100
FRAMES = 20
FRAME = "x" * 5000


class Clock:
    """The replay window's clock, moved on by the test: "silent for replay_seconds" without waiting."""

    def __init__(self, monkeypatch) -> None:
        self.offset = 0.0
        real = time.monotonic
        monkeypatch.setattr(replay.time, "monotonic", lambda: real() + self.offset)


def define_room():
    class MemoryRoom(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "memory-room/<slug:room>/"
        replay_seconds = 5

        @handler
        async def noop(self, request, room: str):
            pass

    return MemoryRoom


async def fill(room_class, prefix: str) -> None:
    for n in range(ROOMS):
        group = room_class.group_name(room=f"{prefix}{n}")
        for _ in range(FRAMES):
            await aconsumer_command(group, [["said", FRAME]])


def heap() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def test_a_hundred_new_rooms_after_silent_ones_cost_memory_for_the_new_ones_only(monkeypatch):
    clock = Clock(monkeypatch)
    room = define_room()
    window = backend_for(get_channel_layer()).window
    tracemalloc.start()
    try:
        before = heap()
        await fill(room, "early")
        one_batch = heap() - before
        assert window.held_groups() == ROOMS
        clock.offset += 6  # The early rooms fall silent for longer than replay_seconds.
        await fill(room, "late")
        both = heap() - before
    finally:
        tracemalloc.stop()
    assert window.held_groups() == ROOMS, "only the late rooms' frames are held"
    assert one_batch > ROOMS * FRAMES * len(FRAME) * 0.9, "the measure sees the frames"
    assert both < one_batch * 1.25, f"two batches held {both} bytes; one batch is {one_batch}"


async def test_a_page_that_returns_to_a_freed_room_is_told_to_resync(monkeypatch):
    clock = Clock(monkeypatch)
    room = define_room()
    await aconsumer_command(room.group_name(room="quiet"), [["said", "before"]])
    page = await open_socket(room, "quiet", socket_id="returning-page-1")
    position = positions_in(await receive(page))[0]
    await page.disconnect()
    await aconsumer_command(room.group_name(room="quiet"), [["said", "while away"]])
    clock.offset += 6  # Longer than replay_seconds: the room's frames are freed ...
    await aconsumer_command(room.group_name(room="other"), [["said", "elsewhere"]])  # ... at the next frame anywhere.
    page = await open_socket(room, "quiet", socket_id="returning-page-1", positions={0: position})
    frame = await receive(page)
    assert frame[0][0] == "hypergen.websocket.resync", frame
    await page.disconnect()
