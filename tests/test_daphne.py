"""The wire: a real daphne process, real websocket clients, the seed's asgi.py stack."""

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.servers import daphne, read_log

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def server():
    with daphne("tests.asgi:application") as (port, process):
        yield port, process


def url(port, path):
    return f"ws://127.0.0.1:{port}/ws/tests/{path}"


def origin(port):
    return f"http://127.0.0.1:{port}"


async def receive(socket):
    return json.loads(await asyncio.wait_for(socket.recv(), timeout=5))


async def test_a_callback_frame_over_the_wire_reaches_every_member_of_the_group(server):
    port, _ = server
    async with (
        connect(url(port, "echo/vip/"), origin=origin(port)) as sender,
        connect(url(port, "echo/vip/"), origin=origin(port)) as member,
        connect(url(port, "echo/other/"), origin=origin(port)) as outsider,
    ):
        await sender.send(json.dumps({"args": ["shout", "hello"], "meta": {}}))
        expected = [["hypergen.morph", "echo", "<span>vip: HELLO</span>"], ["hypergen.append", "log", "hello"]]
        assert await receive(sender) == expected
        assert await receive(member) == expected
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(outsider.recv(), timeout=0.3)


async def test_bad_input_over_the_wire_gets_an_error_and_the_socket_stays_open(server):
    port, _ = server
    async with connect(url(port, "echo/x/"), origin=origin(port)) as socket:
        await socket.send(b"\x00binary")
        assert (await receive(socket))[0][1]["code"] == "invalid_frame"
        await socket.send("not json")
        assert (await receive(socket))[0][1]["code"] == "invalid_frame"
        await socket.send(json.dumps({"args": ["shout"], "meta": {}}))
        assert (await receive(socket))[0][1]["code"] == "validation_error"
        await socket.send(json.dumps({"args": ["shout", "ok"], "meta": {}}))
        assert (await receive(socket))[1] == ["hypergen.append", "log", "ok"]


async def test_a_user_without_perm_is_refused_with_close_code_4403_not_an_http_403(server):
    """A browser reports an HTTP 403 handshake as 1006 (an outage); a 4403 close it can see."""
    port, _ = server
    async with connect(url(port, "secret/"), origin=origin(port)) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), timeout=5)
    assert closed.value.rcvd.code == 4403
    # The refused connection left nothing behind: a permitted neighbour works as before.
    async with connect(url(port, "echo/after-refusal/"), origin=origin(port)) as socket:
        await socket.send(json.dumps({"args": ["shout", "ok"], "meta": {}}))
        assert (await receive(socket))[1] == ["hypergen.append", "log", "ok"]


async def test_a_foreign_origin_is_refused(server):
    port, _ = server
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url(port, "echo/x/"), origin="http://evil.example"):
            pass  # pragma: no cover - never connected
    assert refused.value.response.status_code == 403


async def test_a_client_that_disconnects_mid_handler_does_not_hurt_the_server(server):
    port, process = server
    socket = await connect(url(port, "slow/"), origin=origin(port))
    await socket.send(json.dumps({"args": ["wait", 0.5], "meta": {}}))
    await socket.close()
    await asyncio.sleep(0.8)  # Let the handler finish and try to reply to the closed socket.
    async with connect(url(port, "slow/"), origin=origin(port)) as again:
        await again.send(json.dumps({"args": ["wait", 0], "meta": {}}))
        assert await receive(again) == [["hypergen.morph", "slow", "<span>waited 0.0</span>"]]
    assert process.poll() is None
    assert "Traceback" not in read_log(process)


async def test_a_database_connection_a_handler_opened_is_closed_before_the_next_message(server):
    """Channels' per-message clean-up still happens when there is something to clean (db_cleanup.py)."""
    port, _ = server
    async with connect(url(port, "database_probe/"), origin=origin(port)) as socket:

        async def call(name):
            await socket.send(json.dumps({"args": [name], "meta": {}}))
            return (await receive(socket))[0][2]

        assert await call("report") == "<span>open=False cleanup_needed=False</span>"
        assert await call("use_database") == "<span>used, cleanup_needed=True</span>"
        assert await call("report") == "<span>open=False cleanup_needed=False</span>"
