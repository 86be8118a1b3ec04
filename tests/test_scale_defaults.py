"""A thousand client.js connections on one daphne process, on the defaults a user gets.

The channel layer here is what ``pip install hypergen-consumers[redis]`` and a settings file
with only ``hosts`` give: redis-py's own timeouts (5 s socket timeout in redis-py 8),
channels-redis's own ``capacity`` (100) and pool size. Nothing below tunes a setting, because
each of these defaults once hid a failure: a quiet process reported a healthy Redis as down
every few seconds (redis-py's 5 s read timeout against channels-redis's 5 s blocking read),
and recovery after an outage never finished at 1,000 connections (one catch-up message per
connection into a process inbox that holds 100).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time

import pytest
from websockets.asyncio.client import connect

from tests.servers import daphne, read_log, redis_server, restartable_redis

pytestmark = [pytest.mark.server, pytest.mark.soak]  # Not in the version matrix: noxfile.py says why.

CONNECTIONS = 1000
OUTAGE_LOG = "channel layer receive failed"


def defaults_env(port: int) -> dict[str, str]:
    """A RedisChannelLayer with nothing but its host (see tests/settings.py)."""
    return {"TEST_REDIS_URL": f"redis://127.0.0.1:{port}"}


class Page:
    """One client.js page: its socket id in the URL, numbered frames, the frames it got."""

    def __init__(self, socket, socket_id: str) -> None:
        self.socket = socket
        self.socket_id = socket_id
        self.frames: list[list] = []
        self.next_id = 0
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for text in self.socket:
                self.frames.append(json.loads(text))

    async def send(self, handler: str, *args) -> int:
        self.next_id += 1
        await self.socket.send(json.dumps({"args": [handler, *args], "meta": {"id": self.next_id}}))
        return self.next_id

    def commands(self, name: str) -> list[list]:
        return [command for frame in self.frames for command in frame if command and command[0] == name]

    def got(self, name: str, value) -> bool:
        return any(command[1] == value for command in self.commands(name))


async def open_pages(port: int, room: str, count: int, stack: contextlib.AsyncExitStack) -> list[Page]:
    """``count`` pages in one room, opened in batches of 100 like a crowd arriving."""
    pages: list[Page] = []

    async def one() -> Page:
        socket_id = secrets.token_urlsafe(12)
        url = f"ws://127.0.0.1:{port}/ws/tests/crowd/{room}/?hypergen_socket={socket_id}"
        socket = await stack.enter_async_context(
            connect(url, origin=f"http://127.0.0.1:{port}", max_queue=None, open_timeout=60)
        )
        return Page(socket, socket_id)

    for start in range(0, count, 100):
        pages += await asyncio.gather(*(one() for _ in range(start, min(start + 100, count))))
    return pages


async def until(condition, what: str, seconds: float) -> None:
    """Poll ``condition`` (a guard against a hang: the assertion is the condition, not the time)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def broadcast_reaches_everyone(pages: list[Page], text: str, seconds: float) -> None:
    await pages[0].send("say", text)
    await until(
        lambda: all(page.got("said", text) for page in pages),
        f"{text!r} reached {sum(page.got('said', text) for page in pages)} of {len(pages)} pages",
        seconds,
    )
    errors = [command for page in pages for command in page.commands("hypergen.websocket.error")]
    assert errors == [], errors[:3]


async def test_a_thousand_idle_connections_see_no_outage_and_get_a_broadcast_after_13_s_of_quiet():
    with (
        redis_server() as redis_port,
        daphne("tests.asgi:application", env=defaults_env(redis_port)) as (port, process),
    ):
        async with contextlib.AsyncExitStack() as stack:
            pages = await open_pages(port, "quiet", CONNECTIONS, stack)
            await broadcast_reaches_everyone(pages, "before the quiet", seconds=60)
            await asyncio.sleep(13)  # The quiet itself is the condition under test (not an assertion).
            await broadcast_reaches_everyone(pages, "after the quiet", seconds=30)
            assert OUTAGE_LOG not in read_log(process), "a healthy, idle Redis was reported down"


async def test_a_thousand_connections_recover_from_a_redis_restart_within_seconds():
    with restartable_redis() as redis:
        with daphne("tests.asgi:application", env=defaults_env(redis.port)) as (port, process):
            async with contextlib.AsyncExitStack() as stack:
                pages = await open_pages(port, "restart", CONNECTIONS, stack)
                await broadcast_reaches_everyone(pages, "before the restart", seconds=60)
                redis.stop()  # Redis gone: every group it held is forgotten (no persistence).
                await asyncio.sleep(2)  # A 2 s outage, as a restart takes.
                redis.start()
                # Until the process has rejoined its groups, a broadcast may answer
                # layer_unavailable; client.js re-sends it. Here: try once a second.
                deadline = time.monotonic() + 20
                text = ""
                while time.monotonic() < deadline:
                    text = f"after the restart {time.monotonic():.3f}"
                    await pages[0].send("say", text)
                    with contextlib.suppress(AssertionError):
                        await until(lambda: pages[0].got("said", text), "", 1.0)
                        break
                await until(
                    lambda: all(page.got("said", text) for page in pages),
                    f"after a 2 s restart, a broadcast reached {sum(p.got('said', text) for p in pages)} of "
                    f"{len(pages)} pages within 20 s\n{read_log(process)[-3000:]}",
                    20,
                )
