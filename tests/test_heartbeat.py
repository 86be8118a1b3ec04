"""The server's side of the heartbeat (client.js's side: tests/test_client_heartbeat_browser.py).

A heartbeat is answered at once, runs nothing, takes no frame id and is never rate limited;
a path outside every namespace is closed with 4404 by ``not_found_route()``.
"""

import asyncio
import json

import pytest
from django.test import override_settings
from hypergen.imports import command
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, handler
from hypergen_consumers.connection.heartbeat import HEARTBEAT_FRAME, HEARTBEAT_REPLY
from hypergen_consumers.testing import ConsumerClient
from tests.servers import daphne, read_log


def define_counter(runs):
    class Counter(HypergenConsumer):
        perm = NO_PERM_REQUIRED

        @handler
        def bump(self, request):
            runs.append("bump")
            command("bumped", len(runs))

    return Counter


async def test_a_heartbeat_is_answered_and_runs_nothing():
    runs = []
    counter = define_counter(runs)
    async with ConsumerClient(counter) as client, ConsumerClient(counter) as other:
        await client.send_text(HEARTBEAT_FRAME)
        assert (await client.communicator.receive_output(2))["text"] == HEARTBEAT_REPLY
        # Another spelling of the same frame (a client that is not client.js) is answered too.
        await client.send_text('{"meta": {"heartbeat": true}, "args": []}')
        assert (await client.communicator.receive_output(2))["text"] == HEARTBEAT_REPLY
        await other.expect_nothing()  # Nothing reached the group.
        assert await client.call("bump") == [["bumped", 1]]  # The connection works as before.
        assert await other.receive() == [["bumped", 1]]
    assert runs == ["bump"]


@override_settings(HYPERGEN_CONSUMERS_RATE_LIMIT=2)
async def test_heartbeats_are_never_rate_limited_nor_use_up_the_limit():
    runs = []
    counter = define_counter(runs)
    async with ConsumerClient(counter) as client:
        for _ in range(10):
            await client.send_text(HEARTBEAT_FRAME)
        for _ in range(10):
            assert (await client.communicator.receive_output(2))["text"] == HEARTBEAT_REPLY
        assert await client.call("bump") == [["bumped", 1]]  # The limit was not used up.
    assert runs == ["bump"]


# --- on the wire, against a real daphne ---------------------------------------------------


@pytest.fixture(scope="module")
def server():
    with daphne("tests.asgi:application") as (port, process):
        yield port, process


@pytest.mark.server
async def test_daphne_answers_a_heartbeat_among_handler_frames(server):
    port, _ = server
    async with connect(f"ws://127.0.0.1:{port}/ws/tests/echo/hb/", origin=f"http://127.0.0.1:{port}") as socket:
        await socket.send(HEARTBEAT_FRAME)
        assert await asyncio.wait_for(socket.recv(), 10) == HEARTBEAT_REPLY
        await socket.send(json.dumps({"args": ["shout", "hi"], "meta": {}}))
        assert json.loads(await asyncio.wait_for(socket.recv(), 10))[1] == ["hypergen.append", "log", "hi"]


@pytest.mark.server
@pytest.mark.parametrize("path", ["/ws/elsewhere/room/", "/somewhere/", "/ws/"])
async def test_a_path_outside_every_namespace_is_closed_with_4404(server, path):
    port, process = server
    before = len(read_log(process))
    try:
        async with connect(f"ws://127.0.0.1:{port}{path}", origin=f"http://127.0.0.1:{port}") as socket:
            await asyncio.wait_for(socket.wait_closed(), timeout=10)
    except InvalidStatus as refused:  # Without not_found_route(): Channels' "No route found", HTTP 500.
        pytest.fail(f"the handshake was answered with HTTP {refused.response.status_code}, not a 4404 close")
    assert socket.close_code == 4404
    await asyncio.sleep(0.2)  # let daphne flush its log
    written = read_log(process)[before:]
    assert "Traceback" not in written and "No route found" not in written


@pytest.mark.server
async def test_a_heartbeat_flood_outside_the_rate_limit_does_not_hold_up_other_connections(server):
    """Heartbeats skip the rate limit, so a hostile client may send many and read none: each costs
    one comparison and a 34-byte answer, and the connection that stops reading is dropped."""
    port, _ = server
    origin = f"http://127.0.0.1:{port}"
    async with (
        connect(f"ws://127.0.0.1:{port}/ws/tests/echo/flood/", origin=origin, max_queue=1) as attacker,
        connect(f"ws://127.0.0.1:{port}/ws/tests/echo/calm/", origin=origin) as bystander,
    ):
        await asyncio.gather(*(attacker.send(HEARTBEAT_FRAME) for _ in range(5_000)))
        for n in range(3):
            await bystander.send(json.dumps({"args": ["shout", f"still here {n}"], "meta": {}}))
            reply = json.loads(await asyncio.wait_for(bystander.recv(), 10))
            assert reply[1] == ["hypergen.append", "log", f"still here {n}"]


def test_manage_py_check_warns_when_the_routes_do_not_end_with_not_found_route():
    import sys
    import types

    from channels.routing import URLRouter
    from django.core import checks

    from hypergen_consumers import autoconsumers, not_found_route
    from hypergen_consumers.declaring.checks import check_not_found_route

    module = types.ModuleType("w003_consumers")
    sys.modules["w003_consumers"] = module
    asgi = types.ModuleType("w003_asgi")
    sys.modules["w003_asgi"] = asgi
    try:
        exec(
            "from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, handler\n"
            "class Lobby(HypergenConsumer):\n"
            "    perm = NO_PERM_REQUIRED\n"
            "    @handler\n"
            "    def say(self, request): ...\n",
            module.__dict__,
        )
        routes = autoconsumers(module, namespace="w003")
        asgi.application = URLRouter(routes)
        with override_settings(ASGI_APPLICATION="w003_asgi.application"):
            (warning,) = check_not_found_route()
            assert warning.id == "hypergen_consumers.W003"
            assert "End the project's websocket routes with not_found_route()" in warning.hint
            assert warning in checks.run_checks()  # Registered: manage.py check reports it.
            asgi.application = URLRouter([*routes, not_found_route()])
            assert check_not_found_route() == []
        assert check_not_found_route() == []  # The suite's own project (tests/routing.py) ends with it.
    finally:
        for name in ["w003_consumers", "w003_asgi"]:
            sys.modules.pop(name, None)


# --- a long run keeps a heartbeating page's socket alive ----------------------------------


@pytest.mark.server
async def test_a_long_run_is_kept_alive_for_a_client_that_gave_its_heartbeat(server):
    """One frame at a time per connection: a heartbeat waits behind a long handler. A client that
    gave its heartbeat (``?hypergen_heartbeat=<ms>``) is answered every half of it meanwhile."""
    port, _ = server
    origin = f"http://127.0.0.1:{port}"
    base = f"ws://127.0.0.1:{port}/ws/tests/slow/"
    wait = json.dumps({"args": ["wait", 1.5], "meta": {"id": 1}})

    async def frames_until_answered(page):
        frames = []
        while not any("waited 1.5" in frame for frame in frames):
            frames.append(await asyncio.wait_for(page.recv(), 10))
        return frames

    url = f"{base}?hypergen_socket=keepalive-page-1&hypergen_heartbeat=400"
    async with connect(url, origin=origin) as page:
        await page.send(wait)
        frames = await frames_until_answered(page)
        answered = next(n for n, frame in enumerate(frames) if "waited 1.5" in frame)
        assert HEARTBEAT_REPLY in frames[:answered]  # While the handler ran.
    # A client that gave no heartbeat (not client.js) gets nothing it did not ask for.
    async with connect(base, origin=origin) as plain:
        await plain.send(json.dumps({"args": ["wait", 1.5], "meta": {}}))
        assert json.loads(await asyncio.wait_for(plain.recv(), 10)) == [
            ["hypergen.morph", "slow", "<span>waited 1.5</span>"]
        ]


@pytest.mark.server
async def test_a_re_sent_frame_waiting_for_its_first_run_is_kept_alive_too(server):
    """A page that reconnected re-sends a frame still running on its old socket; the new socket
    waits for that run's answer (up to the handler's timeout) and must not look dead meanwhile."""
    port, _ = server
    origin = f"http://127.0.0.1:{port}"
    url = f"ws://127.0.0.1:{port}/ws/tests/slow/?hypergen_socket=keepalive-dup-1&hypergen_heartbeat=400"
    wait = json.dumps({"args": ["wait", 2], "meta": {"id": 1}})
    async with connect(url, origin=origin) as old:
        await old.send(wait)
        while await asyncio.wait_for(old.recv(), 10) != HEARTBEAT_REPLY:
            pass  # The first run is under way.
        async with connect(url, origin=origin) as new:
            await new.send(wait)
            frames = []
            while not any("hypergen.websocket.ack" in frame for frame in frames):
                frames.append(await asyncio.wait_for(new.recv(), 10))
            assert HEARTBEAT_REPLY in frames  # While it waited, before the ack.
