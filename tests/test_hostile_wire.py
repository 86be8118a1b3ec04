"""Hostile clients against a real daphne: what one connection sends must not hurt the others.

Each test has an attacker and at least one bystander; the bystander's messages must still be
answered. Timing is measured in bench/hostile.py (numbers in docs/deployment.rst), not here:
the timeouts below are only generous bounds for "answered at all".
"""

import asyncio
import base64
import json
import os
import socket as sockets_module

import pytest
from websockets.asyncio.client import connect

from tests.servers import daphne, read_log

pytestmark = pytest.mark.server

RANGE_FRAME = '{"args":["total",{"_":["range",[0,30000000]]}],"meta":{}}'


@pytest.fixture(scope="module")
def server():
    with daphne("tests.asgi:application") as (port, process):
        yield port, process


def url(port, path):
    return f"ws://127.0.0.1:{port}/ws/tests/{path}"


def origin(port):
    return f"http://127.0.0.1:{port}"


async def receive(socket, timeout=10):
    return json.loads(await asyncio.wait_for(socket.recv(), timeout=timeout))


def browser_json(text):
    """Parse like a browser's JSON.parse, which has no NaN or Infinity."""

    def refuse(name):
        raise ValueError(f"JSON.parse would fail on {name}")

    return json.loads(text, parse_constant=refuse)


def call(*args):
    return json.dumps({"args": list(args), "meta": {}})


async def test_a_57_byte_range_frame_is_refused_and_other_connections_are_answered(server):
    port, process = server
    assert len(RANGE_FRAME) == 57
    async with (
        connect(url(port, "numbers/"), origin=origin(port)) as attacker,
        connect(url(port, "numbers/"), origin=origin(port)) as bystander,
    ):
        await attacker.send(RANGE_FRAME)
        await bystander.send(call("total", [1, 2, 3]))
        assert await receive(bystander) == [["total", 6]]
        reply = await receive(attacker)
        assert reply[0][0] == "hypergen.websocket.error"
        assert reply[0][1]["code"] == "invalid_frame"
        assert "range" in reply[0][1]["message"]
        await attacker.send(call("total", [4]))
        assert await receive(attacker) == [["total", 4]]
    assert process.poll() is None


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
async def test_nan_and_infinity_are_refused_instead_of_broadcast_back(server, literal):
    port, _ = server
    async with connect(url(port, "numbers/"), origin=origin(port)) as socket:
        await socket.send('{"args": ["echo", %s], "meta": {}}' % literal)
        raw = await asyncio.wait_for(socket.recv(), timeout=10)
        assert browser_json(raw)[0][1]["code"] == "invalid_frame"


async def test_deep_nesting_is_refused_before_it_reaches_pydantic(server):
    port, _ = server
    async with connect(url(port, "numbers/"), origin=origin(port)) as socket:
        await socket.send(call("echo", json.loads("[" * 40 + "]" * 40)))
        assert (await receive(socket))[0][1]["code"] == "invalid_frame"
        await socket.send(call("echo", json.loads("[" * 20 + "]" * 20)))
        assert (await receive(socket))[0][0] == "echo"


MEMBERS = 3


async def test_an_output_over_the_servers_limit_goes_to_the_sender_as_an_error_and_nobody_is_dropped(server):
    port, _ = server
    sockets = [await connect(url(port, "big/room/"), origin=origin(port)) for _ in range(MEMBERS)]
    sender, *others = sockets
    try:
        await sender.send(call("blob", 2 * 1024 * 1024))
        error = (await receive(sender))[0]
        assert error[0] == "hypergen.websocket.error"
        assert error[1]["code"] == "frame_too_large"
        assert "Big.blob's output is 2097165 bytes" in error[1]["message"]
        await sender.send(call("blob", 10))
        for socket in sockets:  # Everyone is still connected, and the small broadcast is the next frame.
            assert await receive(socket) == [["blob", "x" * 10]]
    finally:
        for socket in sockets:
            await socket.close()


async def test_a_validation_error_list_over_the_limit_is_cut_to_fit_and_the_sender_stays(server):
    port, _ = server
    async with connect(url(port, "numbers/"), origin=origin(port)) as sender:
        bad = ["x"] * 60_000  # 240 KB in; pydantic's list of 60,000 errors is about 6 MB out.
        await sender.send(json.dumps({"args": ["total", bad], "meta": {}}, separators=(",", ":")))
        raw = await asyncio.wait_for(sender.recv(), timeout=30)
        assert len(raw) <= 1024 * 1024
        error = json.loads(raw)[0][1]
        assert error["code"] == "validation_error"
        assert error["errors_total"] == 60_000
        assert 0 < len(error["errors"]) < 60_000
        assert error["errors"][0]["loc"] == ["numbers", 0]
        await sender.send(call("total", [1]))
        assert await receive(sender) == [["total", 1]]


async def test_daphne_drops_an_incoming_message_over_its_limit_before_the_package_sees_it(server):
    """Documents the server's own limit: HYPERGEN_CONSUMERS_MAX_FRAME_BYTES must stay under it."""
    port, process = server
    async with connect(url(port, "numbers/"), origin=origin(port), max_size=None) as socket:
        await socket.send(call("echo", "x" * 300_000))  # over ours, under daphne's: our error
        assert (await receive(socket))[0][1]["code"] == "frame_too_large"
        await socket.send(call("echo", "x" * (1024 * 1024 + 1)))
        if daphne_limits_messages():  # over daphne's 1 MiB: it drops the TCP connection
            await asyncio.wait_for(socket.wait_closed(), timeout=10)  # (autobahn's failByDrop)
            assert socket.close_code == 1006
        else:  # daphne 4.0 sets no limit: the frame reaches the package, which refuses it
            assert (await receive(socket))[0][1]["code"] == "frame_too_large"


def daphne_limits_messages() -> bool:
    """daphne 4.1 added websocket_max_message_size (default 1 MiB); 4.0 passes messages of any size."""
    import inspect

    from daphne.server import Server

    return "websocket_max_message_size" in inspect.signature(Server.__init__).parameters


@pytest.mark.parametrize("path", ["nobody/here/", "echo/a/b/c/", "echo/"])
async def test_an_unmatched_path_is_closed_with_4404_and_one_log_line(server, path):
    port, process = server
    before = len(read_log(process))
    async with connect(url(port, path), origin=origin(port)) as socket:
        await asyncio.wait_for(socket.wait_closed(), timeout=10)
        assert socket.close_code == 4404
    await asyncio.sleep(0.2)  # let daphne flush its log
    written = read_log(process)[before:]
    assert "Traceback" not in written and "No route found" not in written
    line = f"autoconsumers: not_found: no consumer at '/ws/tests/{path}'; closed with 4404"
    # daphne's basicConfig repeats every record in its own format; count the settings' handler's lines.
    assert written.splitlines().count(line) == 1
    async with connect(url(port, "echo/x/"), origin=origin(port)) as socket:  # matched paths still work
        await socket.send(call("shout", "hi"))
        assert (await receive(socket))[1] == ["hypergen.append", "log", "hi"]


def open_socket_that_never_reads(port, path):
    """A websocket handshake over a raw socket with a tiny receive buffer; then it reads nothing."""
    raw = sockets_module.socket()
    raw.setsockopt(sockets_module.SOL_SOCKET, sockets_module.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        f"GET /ws/tests/{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: {origin(port)}\r\n\r\n".encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += raw.recv(1)
    assert response.startswith(b"HTTP/1.1 101"), response
    return raw


def drain(raw):
    """Everything the server still delivers to the socket, until it closes or aborts it."""
    raw.settimeout(10)
    received = 0
    try:
        while chunk := raw.recv(65536):
            received += len(chunk)
    except ConnectionResetError:
        pass
    return received


BROADCASTS, BLOB = 300, 100_000  # 30 MB to every member of the group


async def test_a_client_that_never_reads_is_closed_past_the_bound_and_the_group_keeps_receiving(server):
    port, process = server
    raw = open_socket_that_never_reads(port, "big/slow/")
    try:
        async with connect(url(port, "big/slow/"), origin=origin(port), max_size=None) as member:
            for _ in range(BROADCASTS):
                await member.send(call("blob", BLOB))
            for _ in range(BROADCASTS):  # Every broadcast reaches the member that reads.
                assert await receive(member, timeout=30) == [["blob", "x" * BLOB]]
            await member.send(call("ping"))
            assert await receive(member) == [["pong", "slow"]]
        received = await asyncio.to_thread(drain, raw)  # ends: the server closed the connection
    finally:
        raw.close()
    assert received < BROADCASTS * BLOB / 2, received  # most of it was never queued for the socket
    assert "the client is not reading" in read_log(process)
    assert "dropped the connection" in read_log(process)
