"""Layer outages on a real redis-server: groups are rejoined as soon as Redis answers, and every
stream (own group, extra groups) is caught up with what was sent while the groups were forgotten.

Redis restarts without its data, so after it comes back nobody is in any group: a frame sent
then is lost live and must come from the replay window.
"""

import asyncio
import logging
import time

import pytest
from channels.layers import get_channel_layer
from django.test import override_settings

from hypergen_consumers import aconsumer_command
from hypergen_consumers.delivery import recovery
from hypergen_consumers.layers.backend import backend_for
from tests.servers import free_port, redis_server
from tests.test_delivery_streams import define_room, open_socket, positions_in, receive

pytestmark = pytest.mark.server


@pytest.fixture
def restartable_redis():
    """A redis-server on a fixed port, with ``restart(seconds_down)``, and its layer configured."""
    port = free_port()
    state = {"server": redis_server(port)}
    state["server"].__enter__()

    def stop():
        state["server"].__exit__(None, None, None)

    def start():
        state["server"] = redis_server(port)
        state["server"].__enter__()

    layer = {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [f"redis://127.0.0.1:{port}"]}}
    with override_settings(CHANNEL_LAYERS={"default": layer}):
        try:
            yield stop, start
        finally:
            stop()


async def until(condition, what):
    deadline = time.monotonic() + 15
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


async def test_frames_sent_before_anyone_rejoined_are_caught_up_in_every_stream(restartable_redis, monkeypatch):
    """No probe in time (its interval is an hour): a broadcast's recovery rejoins everyone, and
    the idle page gets what its own and its extra group said meanwhile, once, then the broadcast."""
    stop, start = restartable_redis
    monkeypatch.setattr(recovery, "PROBE_INTERVAL", 3600)
    Room, extra = define_room()
    idle = await open_socket(Room, "outage")
    sender = await open_socket(Room, "outage")
    await receive(idle), await receive(sender)
    layer = get_channel_layer()
    stop()
    await until(lambda: backend_for(layer).health.is_down(), "the receive noticed the outage")
    start()
    await aconsumer_command(extra, [["said", "extra while forgotten"]])  # Kept in the window only:
    await aconsumer_command(Room.group_name(room="outage"), [["said", "own while forgotten"]])  # nobody is in a group.
    await sender.send_to(text_data='{"args": ["post", "recover"], "meta": {}}')  # Its broadcast recovers everyone.
    frames = []
    while not await idle.receive_nothing(0.5):
        frames.append(await receive(idle))
    said = [frame[0][1] for frame in frames if frame[0][0] == "said"]
    assert sorted(said) == ["extra while forgotten", "own while forgotten"], frames
    assert frames[-1][0] == ["posted", "recover"], "then the broadcast, live"
    assert sorted(k for frame in frames for k in positions_in(frame)) == [0, 0, 1]
    for socket in (idle, sender):
        await socket.disconnect()


async def test_groups_are_rejoined_by_one_probe_as_soon_as_redis_answers(restartable_redis, caplog):
    """Ten idle connections wait for one probe (no poll storm), and a frame sent right after
    Redis is back reaches them all. The old per-connection backoff waited up to 5 s more
    (measured 3.3 s after an 8 s outage); the receive timeout here is 3 s after a 7 s outage."""
    caplog.set_level(logging.WARNING, logger="hypergen_consumers")
    stop, start = restartable_redis
    Room, extra = define_room()
    sockets = [await open_socket(Room, f"probe{n % 2}") for n in range(10)]
    for socket in sockets:
        await receive(socket)
    stop()

    def failed_receives(who):
        return sum(
            "channel layer receive failed" in message and message.startswith(who)
            for message in (record.getMessage() for record in caplog.records)
        )

    await until(lambda: failed_receives("Room:") == 10, "every idle connection noticed the outage")
    # ... and the process's one member of each of the three groups (local_groups).
    await until(lambda: failed_receives("group ") == 3, "the process's member of each group noticed it")
    probes = [task for task in asyncio.all_tasks() if task.get_coro().__name__ == "_probe"]
    assert len(probes) == 1, "one probe for the process, not one poll per connection"
    await asyncio.sleep(7)  # The outage goes on (an old backoff would be at its 5 s ceiling).
    start()
    await aconsumer_command(extra, [["said", "right after"]])
    for socket in sockets:
        frame = await receive(socket, timeout=3)
        assert frame[0] == ["said", "right after"] and list(positions_in(frame)) == [1]
    for socket in sockets:
        assert await socket.receive_nothing(0.2)
        await socket.disconnect()
