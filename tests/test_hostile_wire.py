"""Hostile clients against a real daphne: what one connection sends must not hurt the others.

Each test has an attacker and at least one bystander; the bystander's messages must still be
answered. Timing is measured in bench/hostile.py (numbers in docs/deployment.rst), not here:
the timeouts below are only generous bounds for "answered at all".
"""

import asyncio
import json

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
    async with connect(url(port, "numbers/"), origin=origin(port)) as attacker, connect(
        url(port, "numbers/"), origin=origin(port)
    ) as bystander:
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
