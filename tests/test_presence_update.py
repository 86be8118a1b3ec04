"""update_presence / aupdate_presence: a connection's presence meta changes, and the group's
on_presence renders follow (coalesced), in one process and across two over Redis."""

import asyncio
import json
import time

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from hypergen.imports import command
from websockets.asyncio.client import connect

from hypergen_consumers import HANDLER_ERROR, NO_PERM_REQUIRED, UNKNOWN_HANDLER, HypergenConsumer, handler
from hypergen_consumers.testing import ConsumerClient
from tests.servers import daphne, redis_server


def define_table(renders=None):
    class Table(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "table/<slug:name>/"
        presence = True

        def presence_meta(self, request):
            return {"voted": False}

        def on_presence(self, request, name, present, joins, leaves):
            if renders is not None:
                renders.append((id(self), present, joins, leaves))
            command("votes", [(item["user"], [meta["voted"] for meta in item["metas"]]) for item in present])

        @handler(broadcast=False)
        def vote(self, request, name, value: int):
            self.update_presence(voted=True)  # A def handler: the sync form, in its worker thread.
            command("voted", value)

        @handler(broadcast=False)
        async def typing(self, request, name, n: int):
            await self.aupdate_presence(typing=n)

        @handler(broadcast=False)
        async def clear(self, request, name):
            await self.aupdate_presence(voted=False)

        @handler(broadcast=False)
        async def bad(self, request, name, what: str):
            changes = (
                {"id": "someone-else"}
                if what == "id"
                else {"huge": "x" * 10_000}
                if what == "huge"
                else {"nan": float("nan")}
            )
            await self.aupdate_presence(**changes)

    return Table


async def make_user(username):
    return await sync_to_async(User.objects.create_user)(username, password="pw")


async def until(client, predicate, timeout=5):
    """Read frames until one satisfies ``predicate``; return it."""
    deadline = time.monotonic() + timeout
    while True:
        commands = await client.receive(timeout=max(0.05, deadline - time.monotonic()))
        if predicate(commands):
            return commands


async def test_an_updated_meta_reaches_every_connection_of_the_group_and_presence():
    renders = []
    table = define_table(renders)
    alice, bob = await make_user("alice"), await make_user("bob")
    async with ConsumerClient(table, name="t", user=alice) as a:
        await until(a, lambda c: c == [["votes", [["alice", [False]]]]])
        async with ConsumerClient(table, name="t", user=bob) as b, ConsumerClient(table, name="other", user=bob) as far:
            both = [["votes", [["alice", [False]], ["bob", [False]]]]]
            await until(a, lambda c: c == both)
            await until(b, lambda c: c == both)
            await until(far, lambda c: c[0][0] == "votes")
            assert await a.call("vote", 5) == [["voted", 5]]
            voted = [["votes", [["alice", [True]], ["bob", [False]]]]]
            await until(a, lambda c: c == voted)
            await until(b, lambda c: c == voted)
            _, present, joins, leaves = renders[-1]
            assert joins == [] and leaves == [], "an update is neither a join nor a leave"
            assert [meta["voted"] for item in await table.apresence(name="t") for meta in item["metas"]] == [
                True,
                False,
            ]
            await far.expect_nothing(0.2)  # Another group's pages are not woken.
            await a.call("clear")
            await until(b, lambda c: c == both)


async def test_an_update_that_changes_nothing_renders_nothing():
    renders = []
    table = define_table(renders)
    async with ConsumerClient(table, name="t") as a, ConsumerClient(table, name="t") as b:
        await until(b, lambda c: len(c[0][1]) == 2)
        await until(a, lambda c: len(c[0][1]) == 2)
        before = len(renders)
        await a.send("clear")  # voted is already False.
        await a.send("typing", 1)
        await until(b, lambda c: True)
        await until(a, lambda c: True)
        assert len(renders) == before + 2, "one render per connection, for the real change only"


async def test_a_burst_of_updates_is_coalesced_and_the_last_value_wins():
    renders = []
    table = define_table(renders)
    async with ConsumerClient(table, name="t") as typist, ConsumerClient(table, name="t") as watcher:
        await until(watcher, lambda c: len(c[0][1]) == 2)
        start = len(renders)
        for n in range(1, 201):
            await typist.send("typing", n)
        await until(watcher, lambda c: True)  # Some render came.
        while True:
            _, present, _, _ = renders[-1]
            if 200 in [meta.get("typing") for item in present for meta in item["metas"]]:
                break
            await watcher.receive(timeout=5)
        final = [meta.get("typing") for item in await table.apresence(name="t") for meta in item["metas"]]
        renders_per_connection = (len(renders) - start) / 2
        print(f"\n200 meta updates in a burst: {len(renders) - start} on_presence renders for 2 connections")
        assert 200 in final
        assert renders_per_connection < 50, "renders are coalesced, not one per update"


async def test_bad_updates_are_refused_with_a_handler_error_and_leave_the_meta_alone():
    table = define_table()
    async with ConsumerClient(table, name="t") as a:
        await until(a, lambda c: c[0][0] == "votes")
        for what in ("id", "huge", "nan"):
            await a.send("bad", what)
            await a.expect_error(HANDLER_ERROR)
        metas = [meta for item in await table.apresence(name="t") for meta in item["metas"]]
        assert metas == [{"voted": False, "id": metas[0]["id"]}]


async def test_clients_cannot_call_update_presence():
    table = define_table()
    async with ConsumerClient(table, name="t") as a:
        await until(a, lambda c: c[0][0] == "votes")
        for name in ("update_presence", "aupdate_presence"):
            await a.send(name, {"voted": True})
            await a.expect_error(UNKNOWN_HANDLER)


async def test_update_presence_needs_presence_and_the_right_twin():
    class NoPresence(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        broadcast = False

        @handler
        async def try_update(self, request):
            for call in (self.aupdate_presence(x=1), sync_to_async(self.update_presence)(x=1)):
                try:
                    await call
                except Exception as exc:
                    command("refused", type(exc).__name__, str(exc))

        @handler
        async def wrong_twin(self, request):
            try:
                self.update_presence(x=1)
            except RuntimeError as exc:
                command("refused", str(exc))

    async with ConsumerClient(NoPresence) as client:
        message = "NoPresence.update_presence(): NoPresence does not track presence: set presence = True on the class."
        await client.send("try_update")
        assert await client.receive() == [
            ["refused", "ImproperlyConfigured", message],
            ["refused", "ImproperlyConfigured", message],
        ]
        assert await client.call("wrong_twin") == [
            [
                "refused",
                "NoPresence.update_presence() was called from async code; use 'await self.aupdate_presence(...)' there.",
            ]
        ]


# --- two processes over Redis -----------------------------------------------------------

LAYERS = ["channels_redis.core.RedisChannelLayer", "channels_redis.pubsub.RedisPubSubChannelLayer"]


@pytest.fixture(params=LAYERS, ids=["core", "pubsub"])
def redis_env(request):
    with redis_server() as port:
        yield {"TEST_REDIS_URL": f"redis://127.0.0.1:{port}", "TEST_REDIS_LAYER": request.param}


def board(port):
    return connect(f"ws://127.0.0.1:{port}/ws/tests/status/x/", origin=f"http://127.0.0.1:{port}")


async def until_statuses(socket, expected, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(await asyncio.wait_for(socket.recv(), timeout=max(0.1, deadline - time.monotonic())))
        if frame[0][0] == "statuses" and frame[0][1] == sorted(expected):
            return frame[0]


@pytest.mark.server
async def test_an_update_in_one_process_re_renders_pages_in_the_other(redis_env):
    with (
        daphne("tests.asgi:application", env=redis_env) as (port_a, _),
        daphne("tests.asgi:application", env=redis_env) as (port_b, _),
    ):
        a, b = str(port_a), str(port_b)
        async with board(port_a) as on_a, board(port_b) as on_b:
            for socket in (on_a, on_b):
                await until_statuses(socket, [f"{a}:here", f"{b}:here"])
            await on_a.send(json.dumps({"args": ["set_status", "voted"], "meta": {}}))
            for socket in (on_a, on_b):
                frame = await until_statuses(socket, [f"{a}:voted", f"{b}:here"])
                assert frame[2:] == [0, 0], "neither a join nor a leave"
            await on_b.send(json.dumps({"args": ["set_status", "away"], "meta": {}}))
            for socket in (on_a, on_b):
                await until_statuses(socket, [f"{a}:voted", f"{b}:away"])
