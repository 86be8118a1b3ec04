"""Consumers served by tests/attack19_asgi.py to a real daphne for tests/test_attack19.py.

``tick`` is a group_send handler that is slow while its room's gate file exists (an async
handler awaiting a slow service); each run is logged with the socket it ran for.
"""

import asyncio
import os
import time
from pathlib import Path
from urllib.parse import parse_qs

from hypergen.imports import command

from hypergen_consumers import NO_PERM_REQUIRED, HypergenConsumer, handler


def attack_dir() -> Path:
    return Path(os.environ["ATTACK19_DIR"])


def gate(room: str) -> Path:
    return attack_dir() / f"gate-{room}"


def run_log(room: str) -> Path:
    return attack_dir() / f"runs-{room}"


def socket_of(scope) -> str:
    query = parse_qs(scope.get("query_string", b"").decode())
    return query.get("hypergen_socket", ["-"])[-1]


class ReplayRoom(HypergenConsumer):
    perm = NO_PERM_REQUIRED
    path = "replay-room/<slug:room>/"

    @handler
    async def tick(self, request, room: str, n: int):
        with open(run_log(room), "a") as log:
            log.write(f"{socket_of(self.scope)} {n}\n")
        deadline = time.monotonic() + 20
        while gate(room).exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        command("tick", n)


class Kicker(HypergenConsumer):
    perm = NO_PERM_REQUIRED
    path = "kicker/"
    broadcast = False

    @handler
    async def kick(self, request, room: str, count: int):
        for n in range(count):
            await ReplayRoom.agroup_send("tick", n, room=room)
        command("kicked", count)


class Counter(HypergenConsumer):
    """A sender-only handler with a side effect: how often did it run (per process)?"""

    perm = NO_PERM_REQUIRED
    path = "counter/<slug:name>/"
    broadcast = False
    runs: dict = {}

    @handler
    async def bump(self, request, name: str):
        Counter.runs[name] = Counter.runs.get(name, 0) + 1
        with open(attack_dir() / f"bump-{name}", "a") as log:
            log.write("run\n")
        command("bumped", Counter.runs[name])

    @handler(broadcast=True)
    async def shout(self, request, name: str, text: str):
        command("shouted", text)
