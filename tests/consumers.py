"""Module-level consumers served by tests/asgi.py to a real daphne process."""

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

from asgiref.sync import sync_to_async
from django.db import connections
from hypergen.imports import command, span
from pydantic import Field

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, handler
from hypergen_consumers.connection.db_cleanup import cleanup_needed


class Echo(HypergenConsumer):
    perm = NO_PERM_REQUIRED
    path = "echo/<slug:room>/"
    target_id = "echo"

    @handler
    def shout(self, request, room: str, text: str):
        span(room, ": ", text.upper())
        command("hypergen.append", "log", text)


class Secret(HypergenConsumer):
    perm = "auth.view_user"

    @handler
    def peek(self, request):
        command("secret")


class Slow(HypergenConsumer):
    perm = NO_PERM_REQUIRED
    target_id = "slow"

    @handler
    async def wait(self, request, seconds: float):
        import asyncio

        await asyncio.sleep(seconds)
        span("waited ", seconds)


class Load(HypergenConsumer):
    """For the load test: one broadcast and one sender-only handler."""

    perm = NO_PERM_REQUIRED
    path = "load/<int:team>/"

    @handler
    async def everyone(self, request, team: int, sender: int, n: int):
        command("e", sender, n)

    @handler(broadcast=False)
    async def mine(self, request, team: int, sender: int, n: int):
        command("m", sender, n)


class DatabaseProbe(HypergenConsumer):
    """For the database clean-up test: open a connection the way the async ORM does, and report."""

    perm = NO_PERM_REQUIRED
    target_id = "probe"

    @handler
    async def use_database(self, request):
        await sync_to_async(lambda: connections["default"].cursor().execute("SELECT 1"))()
        span("used, cleanup_needed=", cleanup_needed())

    @handler
    async def report(self, request):
        is_open = await sync_to_async(lambda: connections["default"].connection is not None)()
        span("open=", is_open, " cleanup_needed=", cleanup_needed())


class Numbers(HypergenConsumer):
    """For the crafted-frame test: a ``list[int]`` parameter that pydantic walks item by item."""

    perm = NO_PERM_REQUIRED
    broadcast = False

    @handler
    async def total(self, request, numbers: list[int]):
        command("total", sum(numbers))

    @handler
    async def echo(self, request, value=None):
        command("echo", value)


class Big(HypergenConsumer):
    """For the outgoing-size tests: a broadcast whose size the client chooses."""

    perm = NO_PERM_REQUIRED
    path = "big/<slug:room>/"

    @handler
    async def blob(self, request, room: str, size: int):
        command("blob", "x" * size)

    @handler(broadcast=False)
    async def ping(self, request, room: str):
        command("pong", room)


Token = Annotated[str, Field(pattern=r"^[a-f0-9]{32}$")]  # Field, not StringConstraints: pydantic 2.0 is supported.


def blocker_file(token: str, what: str) -> Path:
    return Path(tempfile.gettempdir()) / f"hypergen-blocker-{token}-{what}"


class Blocker(HypergenConsumer):
    """For the executor test: a def handler that holds its worker thread until released (3 s at most)."""

    perm = NO_PERM_REQUIRED
    broadcast = False

    @handler
    def block(self, request, token: Token):
        blocker_file(token, "started").touch()
        deadline = time.monotonic() + 3
        while not blocker_file(token, "release").exists():
            if time.monotonic() > deadline:
                command("gave up")
                return
            time.sleep(0.01)
        command("released")

    @handler
    def quick(self, request):
        command("quick")


class Lobby(HypergenConsumer):
    """For the presence tests over Redis: tells each page who is here, and where they connected."""

    perm = NO_PERM_REQUIRED
    path = "lobby/<slug:room>/"
    presence = True

    def presence_meta(self, request):
        return {"server": request.META.get("SERVER_PORT")}

    async def on_presence(self, request, room: str, present, joins, leaves):
        command("present", sorted(meta["server"] for item in present for meta in item["metas"]))

    @handler(broadcast=False)
    async def who(self, request, room: str):
        command("who", await type(self).apresence(room=room))


class Crowd(HypergenConsumer):
    """For the scale tests on the defaults (tests/test_scale_defaults.py): a big room, one handler
    that answers the room and one that answers the sender alone."""

    perm = NO_PERM_REQUIRED
    path = "crowd/<slug:room>/"

    @handler
    async def say(self, request, room: str, text: str):
        command("said", text)

    @handler(broadcast=False)
    async def mine(self, request, room: str, text: str):
        command("mine", text)


class SlowMeta(HypergenConsumer):
    """For the presence hook test: a ``def presence_meta`` that holds its thread until released (20 s at most)."""

    perm = NO_PERM_REQUIRED
    path = "slow-meta/<slug:token>/"
    presence = True

    def presence_meta(self, request):
        token = self.url_kwargs["token"]
        blocker_file(token, "meta-started").touch()
        deadline = time.monotonic() + 20
        while not blocker_file(token, "release").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return {"slow": True}

    @handler(broadcast=False)
    async def ping(self, request, token: str):
        command("pong")


class StatusBoard(HypergenConsumer):
    """For update_presence over Redis: each page shows every connection's status, by server."""

    perm = NO_PERM_REQUIRED
    path = "status/<slug:room>/"
    presence = True

    def presence_meta(self, request):
        return {"server": request.META.get("SERVER_PORT"), "status": "here"}

    async def on_presence(self, request, room: str, present, joins, leaves):
        statuses = sorted(f"{meta['server']}:{meta['status']}" for item in present for meta in item["metas"])
        command("statuses", statuses, len(joins), len(leaves))

    @handler(broadcast=False)
    async def set_status(self, request, room: str, status: str):
        await self.aupdate_presence(status=status)


class Leaving(HypergenConsumer):
    """For the shutdown test over Redis: a presence room whose application instance says on
    stderr how it ended (by itself, or cancelled: daphne kills an instance that outlives its
    socket by ``application_close_timeout``) and how long after the client's close."""

    perm = NO_PERM_REQUIRED
    path = "leaving/<slug:room>/"
    presence = True
    closed_at: float | None = None

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        except asyncio.CancelledError:
            print("instance cancelled", file=sys.stderr, flush=True)
            raise
        after = None if self.closed_at is None else time.monotonic() - self.closed_at
        print(f"instance ended {after!r} s after websocket.disconnect", file=sys.stderr, flush=True)

    async def websocket_disconnect(self, message):
        self.closed_at = time.monotonic()
        await super().websocket_disconnect(message)

    @handler(broadcast=False)
    async def who(self, request, room: str):
        command("who", sum(len(item["metas"]) for item in await type(self).apresence(room=room)))
