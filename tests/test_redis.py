"""channels-redis: several daphne processes, pushes from another process, and Redis outages.

Each test starts its own redis-server on a free loopback port. Both channels-redis layers
are covered.
"""

import asyncio
import contextlib
import json
import re
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.servers import daphne, free_port, redis_server, run_script

pytestmark = pytest.mark.server

LAYERS = ["channels_redis.core.RedisChannelLayer", "channels_redis.pubsub.RedisPubSubChannelLayer"]
PUSH = (
    "import django; django.setup()\n"
    "from hypergen_consumers import consumer_command, group_send\n"
    "from tests.consumers import Echo\n"
    "group = Echo.group_name(room='vip')\n"
    "group_send(group, 'shout', 'from a script')\n"
    "consumer_command(group, [['alert', 42]])\n"
)


def frame(*args):
    return json.dumps({"args": ["shout", *args], "meta": {}})


async def receive(socket, timeout=5):
    return json.loads(await asyncio.wait_for(socket.recv(), timeout=timeout))


def echo(port):
    return connect(f"ws://127.0.0.1:{port}/ws/tests/echo/vip/", origin=f"http://127.0.0.1:{port}")


@pytest.fixture(params=LAYERS, ids=["core", "pubsub"])
def redis_env(request):
    with redis_server() as port:
        yield {"TEST_REDIS_URL": f"redis://127.0.0.1:{port}", "TEST_REDIS_LAYER": request.param}


async def test_messages_cross_processes_and_pushes_come_from_a_third_process(redis_env):
    with (
        daphne("tests.asgi:application", env=redis_env) as (port_a, _),
        daphne("tests.asgi:application", env=redis_env) as (port_b, _),
    ):
        async with echo(port_a) as on_a, echo(port_b) as on_b:
            for n in range(5):
                await on_a.send(frame(f"m{n}"))
            for socket in (on_a, on_b):
                texts = [(await receive(socket))[1][2] for _ in range(5)]
                assert texts == [f"m{n}" for n in range(5)], "in order, on both processes"

            result = run_script(PUSH, redis_env)
            assert result.returncode == 0, result.stderr
            for socket in (on_a, on_b):
                assert await receive(socket) == [
                    ["hypergen.morph", "echo", "<span>vip: FROM A SCRIPT</span>"],
                    ["hypergen.append", "log", "from a script"],
                ]
                assert await receive(socket) == [["alert", 42]]


async def test_a_burst_of_500_handshakes_all_join_the_group(redis_env):
    """Every client reconnecting at once (after a deploy) must not be refused.

    Each handshake adds a group member in Redis at the same moment; redis-py 8 caps a
    connection pool at 100 by default and fails the excess, so the settings raise
    ``max_connections`` as docs/deployment.rst recommends.
    """
    with daphne("tests.asgi:application", env=redis_env) as (port, _):
        async with contextlib.AsyncExitStack() as stack:
            sockets = await asyncio.gather(*(stack.enter_async_context(echo(port)) for _ in range(500)))
            await sockets[0].send(frame("all here?"))
            replies = await asyncio.gather(*(receive(socket, timeout=20) for socket in sockets))
            assert all(reply[1] == ["hypergen.append", "log", "all here?"] for reply in replies)


async def test_closed_sockets_end_their_application_instances_while_the_layer_is_busy():
    """120 clients close one after another while broadcasts keep channels-redis's one
    blocking read per process busy: every application instance ends by itself, none is
    killed by daphne (its ``application_close_timeout``), and the room's presence is empty.

    The read a closing connection's receive happened to be making for the process used to
    swallow its cancellation (redis-py writes through ``asyncio.wait_for``, which on Python
    before 3.12 can return instead of raising, CPython gh-86296): the instance then lived on
    until daphne killed it 10 s later ("took too long to shut down").
    """
    CLOSING = 120
    with redis_server() as redis_port:
        env = {"TEST_REDIS_URL": f"redis://127.0.0.1:{redis_port}", "TEST_REDIS_LAYER": LAYERS[0]}
        with daphne("tests.asgi:application", env=env) as (port, process):
            origin = f"http://127.0.0.1:{port}"
            leaving = [
                await connect(f"ws://127.0.0.1:{port}/ws/tests/leaving/r/", origin=origin) for _ in range(CLOSING)
            ]
            busy = True

            async def broadcast(sender):
                n = 0
                while busy:
                    n += 1
                    await sender.send(frame(f"b{n}"))
                    await asyncio.sleep(0.002)  # About 400 a second: the process's read never rests.

            async def read_all(sender):
                async for _ in sender:
                    pass

            async with echo(port) as sender:
                reading = asyncio.ensure_future(read_all(sender))
                broadcasting = asyncio.ensure_future(broadcast(sender))
                try:
                    for socket in leaving:
                        await socket.close()
                        await asyncio.sleep(0.02)
                finally:
                    busy = False
                    await broadcasting
                    reading.cancel()

            endings: list[str] = []
            deadline = time.monotonic() + 20  # Past daphne's 10 s, so a killed instance shows up.
            while len(endings) < CLOSING and time.monotonic() < deadline:
                endings = re.findall(r"instance (?:ended|cancelled).*", Path(process.log_path).read_text())
                await asyncio.sleep(0.1)
            log = Path(process.log_path).read_text()
            assert "took too long to shut down" not in log
            assert len(endings) == CLOSING, endings
            assert all(ending.startswith("instance ended") for ending in endings), endings
            times = [float(ending.split()[2]) for ending in endings]
            assert max(times) < 2, f"an instance outlived its socket by {max(times):.1f} s"
            print(f"\n{CLOSING} instances ended {min(times):.3f}-{max(times):.3f} s after websocket.disconnect")

            async with connect(f"ws://127.0.0.1:{port}/ws/tests/leaving/r/", origin=origin) as newcomer:
                await newcomer.send(json.dumps({"args": ["who"], "meta": {}}))
                assert await receive(newcomer) == [["who", 1]], "a closed socket stayed in the room's presence"


@pytest.mark.parametrize("layer", LAYERS, ids=["core", "pubsub"])
async def test_a_redis_outage_keeps_connections_up_and_broadcasts_resume(layer):
    """Redis stops under live connections and comes back.

    Core layer: nothing sent after Redis is back is lost (groups are re-joined first).
    Pub/sub layer: Redis pub/sub delivers at most once, so a broadcast published while the
    layer's subscriber is still reconnecting may be lost; broadcasts must resume, though.
    """
    lossy = "pubsub" in layer
    redis_port = free_port()
    env = {"TEST_REDIS_URL": f"redis://127.0.0.1:{redis_port}", "TEST_REDIS_LAYER": layer}
    redis = redis_server(redis_port)
    redis.__enter__()
    try:
        with daphne("tests.asgi:application", env=env) as (port, process):
            async with echo(port) as sender, echo(port) as member:
                await sender.send(frame("before"))
                assert (await receive(member))[1][2] == "before"
                await receive(sender)

                redis.__exit__(None, None, None)
                await sender.send(frame("during"))
                error = await receive(sender, timeout=15)
                assert error[0][0] == "hypergen.websocket.error"
                assert error[0][1]["code"] == "layer_unavailable"

                result = run_script(PUSH, env)
                assert result.returncode != 0
                assert (
                    "ChannelLayerUnavailable: group_send('hc.tests.consumers.Echo.room-vip') could not reach the channel layer"
                    in result.stderr
                )
                assert "Is Redis running and CHANNEL_LAYERS pointing at it?" in result.stderr

                redis = redis_server(redis_port)
                redis.__enter__()
                deadline = time.monotonic() + 45
                attempt = 0
                while True:  # Broadcasts resume without restarting anything.
                    attempt += 1
                    await sender.send(frame(f"after{attempt}"))
                    try:
                        reply = await receive(sender, timeout=15 if not lossy else 3)
                    except asyncio.TimeoutError:
                        assert lossy, "the core layer lost a broadcast sent after Redis came back"
                        reply = None
                    if reply and reply[0][0] == "hypergen.morph":
                        break
                    if reply:
                        assert reply[0][1]["code"] == "layer_unavailable"
                    assert time.monotonic() < deadline, "broadcasts did not resume"
                    await asyncio.sleep(0.2)
                received = reply[1][2]
                while True:
                    text = (await receive(member, timeout=15))[1][2]
                    if text == received:
                        break
                assert process.poll() is None
    finally:
        redis.__exit__(None, None, None)
