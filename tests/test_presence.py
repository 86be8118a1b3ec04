"""Presence with the in-memory layer: who is here, on_presence, bursts, and hostile uses."""

import asyncio
import re

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from hypergen.imports import command

from hypergen_consumers import NO_PERM_REQUIRED, UNKNOWN_HANDLER, HypergenConsumer, consumer, handler
from hypergen_consumers.testing import ConsumerClient
from tests.support import wait_for


def define_room(renders=None, meta=None):
    class Room(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        path = "room/<slug:name>/"
        presence = True

        def presence_meta(self, request):
            return {"tab": request.GET.get("tab", "?")} if meta is None else meta(self, request)

        async def on_presence(self, request, name: str, present, joins, leaves):
            if renders is not None:
                renders.append((id(self), [item["key"] for item in present], joins, leaves))
            command("present", name, [item["user"] for item in present])

        @handler
        async def ping(self, request):
            command("pong")

    return Room


async def make_user(username):
    return await sync_to_async(User.objects.create_user)(username, password="pw")


def keys_and_tabs(present):
    return [(item["key"], item["user"], sorted(meta["tab"] for meta in item["metas"])) for item in present]


async def test_two_tabs_of_one_user_are_one_key_with_two_metas_and_anonymous_are_their_own_keys():
    room = define_room()
    alice, bob = await make_user("alice"), await make_user("bob")
    async with (
        ConsumerClient(room, name="vip", user=alice) as tab1,
        ConsumerClient(room, name="vip", user=alice) as tab2,
        ConsumerClient(room, name="vip", user=bob),
        ConsumerClient(room, name="vip"),
        ConsumerClient(room, name="vip"),
        ConsumerClient(room, name="other", user=bob),
    ):
        present = await room.apresence(name="vip")
        assert [item["user"] for item in present] == ["alice", "bob", None, None]
        assert present[0]["key"] == f"user:{alice.pk}" and present[1]["key"] == f"user:{bob.pk}"
        assert len(present[0]["metas"]) == 2 and len(present[1]["metas"]) == 1
        assert present[2]["key"] != present[3]["key"], "each anonymous connection is its own key"
        assert all(meta["tab"] == "?" and len(meta["id"]) == 16 for item in present for meta in item["metas"])
        assert [item["user"] for item in await room.apresence(name="other")] == ["bob"]
        assert await sync_to_async(room.presence)(name="vip") == present, "the sync twin reads the same"
        await tab1.close()
        present = await room.apresence(name="vip")
        assert len(present[0]["metas"]) == 1, "alice is still here in her second tab"
        await tab2.close()
        assert [item["user"] for item in await room.apresence(name="vip")] == ["bob", None, None]
    assert await room.apresence(name="vip") == [] and await room.apresence(name="other") == []


async def test_on_presence_runs_on_each_connection_with_joins_and_leaves():
    renders = []
    room = define_room(renders)
    alice, bob = await make_user("alice"), await make_user("bob")
    async with ConsumerClient(room, name="vip", user=alice) as a:
        assert await a.receive() == [["present", "vip", ["alice"]]]
        async with ConsumerClient(room, name="vip", user=bob) as b:
            assert await a.receive() == [["present", "vip", ["alice", "bob"]]]
            assert await b.receive() == [["present", "vip", ["alice", "bob"]]]
            _, _, joins, leaves = renders[-1]
            assert [item["user"] for item in joins] == ["bob"] or [item["user"] for item in joins] == ["alice", "bob"]
            assert leaves == []
            assert await a.call("ping") == [["pong"]], "handlers work alongside presence"
        assert await a.receive() == [["present", "vip", ["alice"]]]
        own_id, _, joins, leaves = renders[-1]
        assert joins == [] and [item["user"] for item in leaves] == ["bob"]
        await a.expect_nothing(0.3)


async def test_a_burst_of_1000_joins_renders_a_bounded_number_of_times():
    """1,000 connections at once: without coalescing the group would render 1+2+...+1000 = 500,500 times."""
    renders = []
    room = define_room(renders)
    clients = [ConsumerClient(room, name="burst") for _ in range(1000)]
    try:
        results = await asyncio.gather(*(client.communicator.connect(timeout=60) for client in clients))
        assert all(accepted for accepted, _ in results)
        for client in clients:
            client.connected = True

        def everyone_saw_everyone():
            last_seen = {}
            for own_id, keys, _, _ in renders:
                last_seen[own_id] = len(keys)
            return sum(n == 1000 for n in last_seen.values()) == 1000

        await wait_for(everyone_saw_everyone, timeout=60, interval=0.1)
        print(f"\n1,000 joins at once: {len(renders)} on_presence renders")
        assert len(renders) <= 5 * 1000, f"{len(renders)} renders for 1,000 joins"
    finally:
        await asyncio.gather(*(client.close() for client in clients))


async def test_a_failing_presence_meta_keeps_the_connection_up_and_out_of_the_list():
    def meta(consumer, request):
        raise RuntimeError("boom")

    room = define_room(meta=meta)
    async with ConsumerClient(room, name="x") as client:
        assert await client.call("ping") == [["pong"]]
        assert await room.apresence(name="x") == []


async def test_clients_cannot_call_the_presence_hooks():
    room = define_room()
    async with ConsumerClient(room, name="x") as client:
        await client.receive()
        for name in ("on_presence", "presence_meta", "presence", "apresence"):
            await client.send(name, [], [], [])
            error = await client.expect_error(UNKNOWN_HANDLER)
            assert "has no handler" in error["message"]
    assert await room.apresence(name="x") == []


async def test_a_connection_that_ends_mid_render_leaves_presence_and_the_others_are_told():
    entered = asyncio.Event()
    release = asyncio.Event()

    class Slow(HypergenConsumer):
        perm = NO_PERM_REQUIRED
        presence = True

        async def on_presence(self, request, present, joins, leaves):
            command("n", len(present))
            if len(present) == 2 and not entered.is_set():
                entered.set()
                await release.wait()

        @handler
        async def ping(self, request):
            command("pong")

    async with ConsumerClient(Slow) as first:
        assert await first.receive() == [["n", 1]]
        second = ConsumerClient(Slow)
        await second.connect()
        await asyncio.wait_for(entered.wait(), 5)
        await second.close()  # Whichever connection is stuck rendering, it leaves cleanly.
        release.set()
        seen = []
        while seen[-1:] != [[["n", 1]]]:  # The survivor is told; a timeout here fails the test.
            seen.append(await first.receive(timeout=5))
        assert [len(item["metas"]) for item in await Slow.apresence()] == [1]
        assert await first.call("ping") == [["pong"]]


def test_configuration_mistakes_are_refused_at_class_creation():
    with pytest.raises(ImproperlyConfigured, match=re.escape("Bad.presence must be True or False, not 'yes'.")):

        class Bad(HypergenConsumer):
            perm = NO_PERM_REQUIRED
            presence = "yes"

            @handler
            def ping(self, request): ...

    msg = "Forgot defines on_presence but does not track presence: set presence = True on the class."
    with pytest.raises(ImproperlyConfigured, match=re.escape(msg)):

        class Forgot(HypergenConsumer):
            perm = NO_PERM_REQUIRED

            def on_presence(self, request, present, joins, leaves): ...

            @handler
            def ping(self, request): ...

    class Untracked(HypergenConsumer):
        perm = NO_PERM_REQUIRED

        @handler
        def ping(self, request): ...

    msg = "Untracked does not track presence: set presence = True on the class."
    with pytest.raises(ImproperlyConfigured, match=re.escape(msg)):
        Untracked.presence()


async def test_consumer_functions_take_presence_too():
    @consumer(perm=NO_PERM_REQUIRED, path="fn/<slug:room>/", presence=True)
    def shout(consumer, request, room, text):
        command("said", text)

    async with ConsumerClient(shout, room="a"):
        assert [item["user"] for item in await shout.apresence(room="a")] == [None]


def test_the_default_heartbeat_drops_a_dead_process_within_30_seconds(settings):
    from hypergen_consumers import conf

    defaults = conf.HypergenConsumersSettings()
    assert defaults.presence_expiry + defaults.presence_heartbeat <= 30
    settings.HYPERGEN_CONSUMERS_PRESENCE_HEARTBEAT = 10
    settings.HYPERGEN_CONSUMERS_PRESENCE_EXPIRY = 10
    msg = "HYPERGEN_CONSUMERS_PRESENCE_EXPIRY (10) must be longer than HYPERGEN_CONSUMERS_PRESENCE_HEARTBEAT (10)"
    with pytest.raises(ImproperlyConfigured, match=re.escape(msg)):
        conf.current()
