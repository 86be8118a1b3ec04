"""Load: 1000 concurrent connections to one daphne, 50 000 messages, broadcast and sender-only mixed.

Asserts correctness only (nothing lost, duplicated or reordered, no errors); the rate is
printed for the record and never asserted (see bench/ for measurements).
"""

import asyncio
import collections
import json
import os
import time

import pytest
from websockets.asyncio.client import connect

from tests.servers import daphne

pytestmark = pytest.mark.server

CONNECTIONS = int(os.environ.get("LOAD_CONNECTIONS", 1000))
MESSAGES_EACH = int(os.environ.get("LOAD_MESSAGES_EACH", 50))  # 1000 x 50 = 50 000 messages
TEAM_SIZE = 10


async def run_client(port, index, connected, start, finish, received):
    team = index // TEAM_SIZE
    url = f"ws://127.0.0.1:{port}/ws/tests/load/{team}/"
    async with connect(url, origin=f"http://127.0.0.1:{port}", max_queue=None, open_timeout=60) as socket:
        frames = received[index]
        own_reply = asyncio.Event()

        async def read():
            async for text in socket:
                (command,) = json.loads(text)
                frames.append(tuple(command))
                if command[1] == index:
                    own_reply.set()

        reader = asyncio.create_task(read())
        connected.append(index)
        await start.wait()
        for n in range(MESSAGES_EACH):
            own_reply.clear()
            kind = "everyone" if n % 2 == 0 else "mine"
            await socket.send(json.dumps({"args": [kind, index, n], "meta": {}}))
            await asyncio.wait_for(own_reply.wait(), timeout=60)  # Closed loop: one in flight.
        await finish.wait()  # Stay connected for teammates' broadcasts.
        reader.cancel()


async def test_a_thousand_connections_fifty_thousand_messages_nothing_lost_duplicated_or_reordered():
    with daphne("tests.asgi:application", env={"HYPERGEN_TEST_CAPACITY": "1000"}) as (port, process):
        connected, start, finish = [], asyncio.Event(), asyncio.Event()
        received = [[] for _ in range(CONNECTIONS)]
        clients = []
        for batch in range(0, CONNECTIONS, 100):  # Open in batches, like a crowd arriving.
            clients += [
                asyncio.create_task(run_client(port, i, connected, start, finish, received))
                for i in range(batch, min(batch + 100, CONNECTIONS))
            ]
            while len(connected) < len(clients):
                await asyncio.sleep(0.01)
        team_members = collections.defaultdict(list)
        for index in range(CONNECTIONS):
            team_members[index // TEAM_SIZE].append(index)
        broadcasts_each = (MESSAGES_EACH + 1) // 2
        expected_total = sum(
            MESSAGES_EACH // 2 + broadcasts_each * len(team_members[index // TEAM_SIZE]) for index in range(CONNECTIONS)
        )
        began = time.monotonic()
        start.set()
        deadline = began + 600  # A guard against a hang, not a speed limit (bench/ measures speed).
        while sum(len(frames) for frames in received) < expected_total:
            assert time.monotonic() < deadline, "frames missing after 600 s"
            assert not any(task.done() and task.exception() for task in clients), [
                t.exception() for t in clients if t.done()
            ]
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - began
        await asyncio.sleep(0.2)  # Anything extra (a duplicate) would arrive now; counted below.
        finish.set()
        await asyncio.gather(*clients)

        for index, frames in enumerate(received):
            assert not [f for f in frames if f[0] == "hypergen.websocket.error"], f"errors on {index}"
            assert len(frames) == len(set(frames)), f"duplicates on {index}"
            mine = [n for kind, sender, n in frames if kind == "m"]
            assert mine == list(range(1, MESSAGES_EACH, 2)), f"sender-only replies lost or reordered on {index}"
            for sender in team_members[index // TEAM_SIZE]:
                broadcast = [n for kind, who, n in frames if kind == "e" and who == sender]
                assert broadcast == list(range(0, MESSAGES_EACH, 2)), f"broadcasts of {sender} on {index}"
        assert sum(len(frames) for frames in received) == expected_total
        assert process.poll() is None
        print(
            f"\nload: {CONNECTIONS} connections, {CONNECTIONS * MESSAGES_EACH} messages, {expected_total} frames "
            f"delivered in {elapsed:.1f}s: {CONNECTIONS * MESSAGES_EACH / elapsed:.0f} messages/s, "
            f"{expected_total / elapsed:.0f} frames/s"
        )
