"""A slow ``def presence_meta`` on a real daphne: it holds one worker thread, never the thread
every handshake needs.

Channels' ``AuthMiddleware`` loads each handshake's user on asgiref's one thread-sensitive
thread. A ``presence_meta`` run there (as ``database_sync_to_async`` does) made every other
consumer's handshakes wait for it: measured, a 3 s hook delayed them 2.8 s, and at 8 s they
failed.
"""

from __future__ import annotations

import asyncio
import json
import secrets

import pytest
from websockets.asyncio.client import connect

from tests.consumers import blocker_file
from tests.servers import daphne

pytestmark = pytest.mark.server


async def wait_until_exists(path, seconds: float = 10) -> None:
    for _ in range(int(seconds * 100)):
        if path.exists():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{path} never appeared")


async def test_another_consumer_s_handshake_completes_while_a_presence_meta_blocks():
    token = secrets.token_hex(16)
    with daphne("tests.asgi:application") as (port, _):
        origin = f"http://127.0.0.1:{port}"
        slow_handshake = asyncio.ensure_future(
            connect(f"ws://127.0.0.1:{port}/ws/tests/slow-meta/{token}/", origin=origin, open_timeout=30)
        )
        try:
            await wait_until_exists(blocker_file(token, "meta-started"))
            # The hook now blocks. Another consumer's handshake (and its first frame) must not wait for it.
            async with connect(
                f"ws://127.0.0.1:{port}/ws/tests/echo/bystander/", origin=origin, open_timeout=10
            ) as echo:
                await echo.send(json.dumps({"args": ["shout", "hi"], "meta": {}}))
                reply = json.loads(await asyncio.wait_for(echo.recv(), timeout=10))
                assert reply[1] == ["hypergen.append", "log", "hi"]
            assert not blocker_file(token, "release").exists() and not slow_handshake.done(), "still blocked meanwhile"
        finally:
            blocker_file(token, "release").touch()
        async with await slow_handshake as slow:  # Released: it joins and works.
            await slow.send(json.dumps({"args": ["ping"], "meta": {}}))
            frames = [json.loads(await asyncio.wait_for(slow.recv(), timeout=10)) for _ in range(1)]
            assert ["pong"] in frames[0]
        for what in ("meta-started", "release"):
            blocker_file(token, what).unlink(missing_ok=True)
